//! Amounts read straight from PostgreSQL's `numeric` storage format, without the text round
//! trip: reading ten million amounts as text costs more than the rest of an LTV refresh.
//!
//! The format (src/backend/utils/adt/numeric.c, stable since PostgreSQL 9.1): after the varlena
//! header, a 16-bit header word, then base-10000 digits as 16-bit integers in native byte order,
//! most significant first, with leading and trailing zero digits stripped. The header word says
//! whether the number is special (NaN, +/-Infinity), short (sign, display scale and a 7-bit
//! weight packed in the header) or long (sign and display scale in the header, a 16-bit weight
//! after it). The value is the sum of digit[i] * 10000^(weight - i).

use crate::money::{AmountError, MAX_SCALE, Parsed};

const SIGN_MASK: u16 = 0xC000;
const NEG: u16 = 0x4000;
const SHORT: u16 = 0x8000;
const SPECIAL: u16 = 0xC000;
const EXT_SIGN_MASK: u16 = 0xF000;
const NAN: u16 = 0xC000;
const PINF: u16 = 0xD000;
const SHORT_SIGN_MASK: u16 = 0x2000;
const SHORT_DSCALE_MASK: u16 = 0x1F80;
const SHORT_DSCALE_SHIFT: u16 = 7;
const SHORT_WEIGHT_SIGN_MASK: u16 = 0x0040;
const SHORT_WEIGHT_MASK: u16 = 0x003F;
const DSCALE_MASK: u16 = 0x3FFF;

/// A decoded finite numeric: sign, weight, display scale and base-10000 digits.
struct Finite<'a> {
    negative: bool,
    weight: i32,
    dscale: u32,
    digits: &'a [u8],
}

impl Finite<'_> {
    fn digit(&self, i: usize) -> i64 {
        i64::from(i16::from_ne_bytes([
            self.digits[2 * i],
            self.digits[2 * i + 1],
        ]))
    }

    fn ndigits(&self) -> usize {
        self.digits.len() / 2
    }

    /// The decimal text, for error messages.
    fn to_text(&self) -> String {
        // The base-10000 digit at exponent p; stripped leading and trailing digits are zeros.
        let at = |p: i32| {
            let i = self.weight - p;
            if (0..self.ndigits() as i32).contains(&i) {
                self.digit(i as usize)
            } else {
                0
            }
        };
        let int_part: String = (0..=self.weight.max(0))
            .rev()
            .map(|p| format!("{:04}", at(p)))
            .collect();
        let int_part = int_part.trim_start_matches('0');
        let frac: String = (1..=(self.dscale as i32 + 3) / 4)
            .map(|p| format!("{:04}", at(-p)))
            .collect();
        let sign = if self.negative { "-" } else { "" };
        let int_part = if int_part.is_empty() { "0" } else { int_part };
        match &frac[..self.dscale as usize] {
            "" => format!("{sign}{int_part}"),
            frac => format!("{sign}{int_part}.{frac}"),
        }
    }
}

/// 10^0 to 10^19, every power of ten a u64 holds.
const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

fn corrupt() -> AmountError {
    AmountError::NotANumber("<corrupt numeric>".into())
}

/// What a `numeric` payload holds.
enum Stored<'a> {
    NaN,
    Infinity,
    NegativeInfinity,
    Finite(Finite<'a>),
}

fn parse(payload: &[u8]) -> Result<Stored<'_>, AmountError> {
    let header = u16::from_ne_bytes([
        *payload.first().ok_or_else(corrupt)?,
        *payload.get(1).ok_or_else(corrupt)?,
    ]);
    let n = match header & SIGN_MASK {
        SPECIAL => {
            return Ok(match header & EXT_SIGN_MASK {
                NAN => Stored::NaN,
                PINF => Stored::Infinity,
                _ => Stored::NegativeInfinity,
            });
        }
        SHORT => {
            let raw = header & SHORT_WEIGHT_MASK;
            let weight = if header & SHORT_WEIGHT_SIGN_MASK != 0 {
                i32::from(raw) - 64
            } else {
                i32::from(raw)
            };
            Finite {
                negative: header & SHORT_SIGN_MASK != 0,
                weight,
                dscale: u32::from((header & SHORT_DSCALE_MASK) >> SHORT_DSCALE_SHIFT),
                digits: &payload[2..],
            }
        }
        sign => {
            let w = payload.get(2..4).ok_or_else(corrupt)?;
            Finite {
                negative: sign == NEG,
                weight: i32::from(i16::from_ne_bytes([w[0], w[1]])),
                dscale: u32::from(header & DSCALE_MASK),
                digits: &payload[4..],
            }
        }
    };
    if n.digits.len() % 2 != 0 {
        return Err(corrupt());
    }
    Ok(Stored::Finite(n))
}

/// A `numeric` as a double, and where it stands against zero: what the order-events read needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Float {
    /// A finite value, and whether it is below zero.
    Finite {
        value: f64,
        negative: bool,
    },
    NaN,
    Infinity,
    NegativeInfinity,
}

/// Reads a `numeric` value's payload as PostgreSQL's `numeric::float8` does: the nearest double
/// to the exact decimal (that cast prints the value and parses the text with `strtod`, which
/// rounds correctly), without the text when the value is at most 2^53 units of a power of ten
/// within 10^±22: then both factors are exact doubles and one IEEE multiplication or division
/// rounds correctly too.
pub fn decode_f64(payload: &[u8]) -> Result<Float, AmountError> {
    let n = match parse(payload)? {
        Stored::NaN => return Ok(Float::NaN),
        Stored::Infinity => return Ok(Float::Infinity),
        Stored::NegativeInfinity => return Ok(Float::NegativeInfinity),
        Stored::Finite(n) => n,
    };
    const EXACT: u64 = 1 << 53;
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let mut units: u64 = 0;
    let mut fits = true;
    for i in 0..n.ndigits() {
        match units
            .checked_mul(10_000)
            .and_then(|u| u.checked_add(n.digit(i) as u64))
        {
            Some(u) if u < EXACT => units = u,
            _ => {
                fits = false;
                break;
            }
        }
    }
    // The decimal exponent of the last stored digit's units.
    let exp = 4 * (n.weight - n.ndigits() as i32 + 1);
    let magnitude = if fits && exp.unsigned_abs() <= 22 {
        let p = POW10[exp.unsigned_abs() as usize];
        if exp >= 0 {
            units as f64 * p
        } else {
            units as f64 / p
        }
    } else {
        let text = n.to_text();
        text.trim_start_matches('-')
            .parse::<f64>()
            .map_err(|_| corrupt())?
    };
    let negative = n.negative && units != 0;
    Ok(Float::Finite {
        value: if n.negative { -magnitude } else { magnitude },
        negative,
    })
}

/// Reads a `numeric` value's payload (the bytes after its varlena header) into minor units at
/// `scale`, rounding half away from zero exactly as [`crate::money::parse_minor`] does with the
/// value's text.
pub fn decode_minor(payload: &[u8], scale: u32) -> Result<Parsed, AmountError> {
    let scale = scale.min(MAX_SCALE) as i32;
    let n = match parse(payload)? {
        Stored::NaN => return Err(AmountError::NotANumber("NaN".into())),
        Stored::Infinity => return Err(AmountError::NotANumber("Infinity".into())),
        Stored::NegativeInfinity => return Err(AmountError::NotANumber("-Infinity".into())),
        Stored::Finite(n) => n,
    };
    let overflow = || AmountError::Overflow(n.to_text());
    // The magnitude only grows from digit to digit, so it overflows a u64 on the way only if the
    // result cannot fit an i64 either. Every division is by a constant: at ten million amounts a
    // division by a computed power of ten (tens of cycles each, three per amount) was a visible
    // part of the fold.
    let mut value: u64 = 0;
    let mut first_dropped = 0;
    let mut rounded = false;
    for i in 0..n.ndigits() {
        let d = n.digit(i);
        let Ok(d) = u64::try_from(d) else {
            return Err(corrupt());
        };
        if d >= 10_000 {
            return Err(corrupt());
        }
        // Decimal exponent of this digit's last decimal place, in minor units.
        let e = 4 * (n.weight - i as i32) + scale;
        if e >= 0 {
            if d != 0 {
                let pow = POW10.get(e as usize).ok_or_else(overflow)?;
                value = d
                    .checked_mul(*pow)
                    .and_then(|v| value.checked_add(v))
                    .ok_or_else(overflow)?;
            }
            continue;
        }
        // The digit reaches past the scale: keep its leading decimal places, note the first one
        // dropped (in this digit when it keeps 0 to 3 of its 4 places).
        let (kept, dropped) = match -e {
            1 => {
                first_dropped = d % 10;
                (d / 10, d % 10)
            }
            2 => {
                first_dropped = d / 10 % 10;
                (d / 100, d % 100)
            }
            3 => {
                first_dropped = d / 100 % 10;
                (d / 1000, d % 1000)
            }
            4 => {
                first_dropped = d / 1000;
                (0, d)
            }
            _ => (0, d),
        };
        value = value.checked_add(kept).ok_or_else(overflow)?;
        if dropped != 0 {
            rounded = true;
        }
    }
    if first_dropped >= 5 {
        value = value.checked_add(1).ok_or_else(overflow)?;
    }
    let negative = n.negative && (value != 0 || rounded);
    let minor = if n.negative {
        0i64.checked_sub_unsigned(value)
    } else {
        i64::try_from(value).ok()
    }
    .ok_or_else(overflow)?;
    Ok(Parsed {
        minor,
        rounded,
        negative,
    })
}

/// Appends `minor` minor units at `scale` as a complete `numeric` varlena (4-byte header), laid
/// out exactly as PostgreSQL's make_result() would store the same value with display scale
/// `scale`: what `numeric_in` gives for [`crate::money::format_minor`]'s text.
pub fn encode_minor(minor: i64, scale: u32, out: &mut Vec<u8>) {
    let scale = scale.min(MAX_SCALE) as i32;
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    // Align the decimal point to a base-10000 digit boundary.
    let frac_digits = (scale + 3) / 4;
    let mut u = u128::from(minor.unsigned_abs()) * 10u128.pow((frac_digits * 4 - scale) as u32);
    let mut digits = [0i16; 12];
    let mut n = 0;
    while u > 0 {
        digits[n] = (u % 10_000) as i16;
        u /= 10_000;
        n += 1;
    }
    // digits[..n] is least significant first; the most significant has weight n - 1 - frac.
    let weight = n as i32 - 1 - frac_digits;
    let mut low = 0;
    while low < n && digits[low] == 0 {
        low += 1;
    }
    let negative = minor < 0;
    let weight = if n == 0 { 0 } else { weight };
    if (-64..=63).contains(&weight) {
        let mut h = SHORT | ((scale as u16) << SHORT_DSCALE_SHIFT);
        if negative {
            h |= SHORT_SIGN_MASK;
        }
        if weight < 0 {
            h |= SHORT_WEIGHT_SIGN_MASK;
        }
        h |= (weight as u16) & SHORT_WEIGHT_MASK;
        out.extend_from_slice(&h.to_ne_bytes());
    } else {
        let h = if negative { NEG } else { 0 } | scale as u16;
        out.extend_from_slice(&h.to_ne_bytes());
        out.extend_from_slice(&(weight as i16).to_ne_bytes());
    }
    for i in (low..n).rev() {
        out.extend_from_slice(&digits[i].to_ne_bytes());
    }
    // A 4-byte varlena header holds the total size shifted left by 2 (little-endian layout).
    let size = (out.len() - start) as u32;
    let header = if cfg!(target_endian = "little") {
        size << 2
    } else {
        size & 0x3FFF_FFFF
    };
    out[start..start + 4].copy_from_slice(&header.to_ne_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::parse_minor;
    use proptest::prelude::*;

    /// PostgreSQL's storage of a decimal text (numeric.c: set_var_from_str, then make_result),
    /// in the short format when it fits unless `long` is asked for.
    fn encode(text: &str, long: bool) -> Vec<u8> {
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
        let dscale = frac_part.len() as i32;
        // Pad to whole base-10000 digits on both sides of the point.
        let int_pad = (4 - int_part.len() % 4) % 4;
        let frac_pad = (4 - frac_part.len() % 4) % 4;
        let all = format!(
            "{}{}{}{}",
            "0".repeat(int_pad),
            int_part,
            frac_part,
            "0".repeat(frac_pad)
        );
        let mut digits: Vec<i16> = all
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap().parse().unwrap())
            .collect();
        let mut weight = ((int_part.len() + int_pad) / 4) as i32 - 1;
        while digits.first() == Some(&0) {
            digits.remove(0);
            weight -= 1;
        }
        while digits.last() == Some(&0) {
            digits.pop();
        }
        let negative = negative && !digits.is_empty();
        if digits.is_empty() {
            weight = 0;
        }
        let mut out = Vec::new();
        if !long && dscale <= 63 && (-64..=63).contains(&weight) {
            let mut h = SHORT | ((dscale as u16) << SHORT_DSCALE_SHIFT);
            if negative {
                h |= SHORT_SIGN_MASK;
            }
            if weight < 0 {
                h |= SHORT_WEIGHT_SIGN_MASK | ((weight + 64) as u16 & SHORT_WEIGHT_MASK);
            } else {
                h |= weight as u16;
            }
            out.extend_from_slice(&h.to_ne_bytes());
        } else {
            let h = if negative { NEG } else { 0 } | dscale as u16;
            out.extend_from_slice(&h.to_ne_bytes());
            out.extend_from_slice(&(weight as i16).to_ne_bytes());
        }
        for d in digits {
            out.extend_from_slice(&d.to_ne_bytes());
        }
        out
    }

    #[test]
    fn a_negative_amount_that_rounds_to_zero_stays_negative() {
        for long in [false, true] {
            for (text, negative) in [
                ("-0.004", true),
                ("-0.00001", true),
                ("-0.00", false),
                ("0.004", false),
            ] {
                let r = decode_minor(&encode(text, long), 2).unwrap();
                assert_eq!(
                    (r.minor, r.negative),
                    (0, negative),
                    "{text} (long: {long})"
                );
            }
        }
    }

    #[test]
    fn the_ends_of_the_i64_range_read_as_their_text() {
        for (text, scale) in [
            ("-9223372036854.775808", 6),
            ("9223372036854.775807", 6),
            ("9223372036854.775808", 6),
            ("-9223372036854.775809", 6),
            ("92233720368547758.07", 2),
            ("92233720368547758.075", 2),
            ("-92233720368547758.085", 2),
            ("18446744073709551616", 0),
            ("-18446744073709551615.5", 0),
            ("1e25", 0),
        ] {
            let text = match text.split_once('e') {
                Some((m, e)) => format!("{m}{}", "0".repeat(e.parse().unwrap())),
                None => text.to_string(),
            };
            for long in [false, true] {
                assert_eq!(
                    decode_minor(&encode(&text, long), scale),
                    parse_minor(&text, scale),
                    "{text} at scale {scale} (long: {long})"
                );
            }
        }
    }

    #[test]
    fn known_values() {
        for (text, scale, minor, rounded) in [
            ("0", 2, 0, false),
            ("0.00", 2, 0, false),
            ("12.34", 2, 1234, false),
            ("-12.34", 2, -1234, false),
            ("12.345", 2, 1235, true),
            ("-12.345", 2, -1235, true),
            ("12.3449", 2, 1234, true),
            ("0.005", 2, 1, true),
            ("0.0049", 2, 0, true),
            ("0.00001", 2, 0, true),
            ("-0.005", 2, -1, true),
            ("10000", 2, 1_000_000, false),
            ("99999999999.99", 2, 9_999_999_999_999, false),
            ("123456789.123456", 6, 123_456_789_123_456, false),
            ("5", 0, 5, false),
            ("4.5", 0, 5, true),
            ("0.5", 0, 1, true),
            ("100000000", 0, 100_000_000, false),
        ] {
            for long in [false, true] {
                assert_eq!(
                    decode_minor(&encode(text, long), scale),
                    Ok(Parsed {
                        minor,
                        rounded,
                        negative: minor < 0
                    }),
                    "{text} at scale {scale} (long: {long})"
                );
            }
        }
    }

    /// What `numeric::float8` gives: the correctly rounded double of the decimal text.
    fn strtod(text: &str) -> Float {
        let value: f64 = text.parse().unwrap();
        Float::Finite {
            value,
            negative: value < 0.0,
        }
    }

    #[test]
    fn doubles_equal_the_correctly_rounded_text() {
        for text in [
            "0",
            "0.00",
            "12.34",
            "-12.34",
            "0.1",
            "-0.3",
            "1234567.89",
            "99999999999.99",
            "9007199254740993",
            "123456789012345678901234567890.5",
            "0.000000000000000000000000012345",
            "1e-30",
        ] {
            let text = if text == "1e-30" {
                format!("0.{}1", "0".repeat(29))
            } else {
                text.to_string()
            };
            for long in [false, true] {
                assert_eq!(
                    decode_f64(&encode(&text, long)),
                    Ok(strtod(&text)),
                    "{text} (long: {long})"
                );
            }
        }
        assert_eq!(decode_f64(&0xC000u16.to_ne_bytes()), Ok(Float::NaN));
        assert_eq!(decode_f64(&0xD000u16.to_ne_bytes()), Ok(Float::Infinity));
        assert_eq!(
            decode_f64(&0xF000u16.to_ne_bytes()),
            Ok(Float::NegativeInfinity)
        );
        assert!(decode_f64(&[0x00]).is_err());
    }

    proptest! {
        #[test]
        fn doubles_match_strtod(units in any::<i64>(), scale in 0usize..30, long in any::<bool>()) {
            let digits = units.unsigned_abs().to_string();
            let padded = format!("{}{digits}", "0".repeat((scale + 1).saturating_sub(digits.len())));
            let (int_part, frac) = padded.split_at(padded.len() - scale);
            let sign = if units < 0 { "-" } else { "" };
            let text = if scale == 0 { format!("{sign}{int_part}") } else { format!("{sign}{int_part}.{frac}") };
            prop_assert_eq!(decode_f64(&encode(&text, long)), Ok(strtod(&text)), "{}", text);
        }
    }

    #[test]
    fn specials_and_overflow_are_errors_that_name_the_value() {
        let special = |h: u16| decode_minor(&h.to_ne_bytes(), 2).unwrap_err().to_string();
        assert_eq!(special(0xC000), "amount \"NaN\" is not a finite number");
        assert_eq!(
            special(0xD000),
            "amount \"Infinity\" is not a finite number"
        );
        assert_eq!(
            special(0xF000),
            "amount \"-Infinity\" is not a finite number"
        );
        assert_eq!(
            decode_minor(&encode("123456789012345678901234567890.5", false), 2),
            Err(AmountError::Overflow(
                "123456789012345678901234567890.5".into()
            ))
        );
        assert!(decode_minor(&[0x00], 2).is_err());
        assert!(decode_minor(&encode("1.5", false)[..3], 2).is_err());
    }

    proptest! {
        #[test]
        fn encoding_minor_units_matches_postgres_and_round_trips(
            minor in any::<i64>(),
            scale in 0u32..=6,
        ) {
            let mut out = Vec::new();
            encode_minor(minor, scale, &mut out);
            let text = crate::money::format_minor(i128::from(minor), scale);
            prop_assert_eq!(&out[4..], &encode(&text, false)[..], "{}", text);
            prop_assert_eq!(decode_minor(&out[4..], scale), Ok(Parsed { minor, rounded: false, negative: minor < 0 }));
            prop_assert_eq!(u32::from_ne_bytes([out[0], out[1], out[2], out[3]]) >> 2, out.len() as u32);
        }

        #[test]
        fn equals_reading_the_text(
            negative in any::<bool>(),
            int_part in "[0-9]{0,14}",
            frac_part in "[0-9]{0,9}",
            scale in 0u32..=6,
            long in any::<bool>(),
        ) {
            // As numeric_out prints it: no leading zeros (the overflow error quotes the text).
            let int_part = int_part.trim_start_matches('0');
            let int_part = if int_part.is_empty() { "0".to_string() } else { int_part.to_string() };
            let body = if frac_part.is_empty() { int_part.clone() } else { format!("{int_part}.{frac_part}") };
            let text = if negative { format!("-{body}") } else { body };
            prop_assert_eq!(decode_minor(&encode(&text, long), scale), parse_minor(&text, scale));
        }
    }
}
