//! Exact amounts: integers of minor units (cents when the scale is 2).
//!
//! Revenue must add up to the cent, so amounts are never summed as floats. An amount is read from
//! its decimal text, scaled to `scale` decimal places, and summed as an integer; amounts with more
//! decimal places than the scale are rounded half away from zero (as PostgreSQL's `round()` does)
//! and the caller is told, so the rounding is reported rather than silent.

/// The largest scale we keep. 10^6 minor units per unit still leaves room for sums of nine
/// trillion units in an i64.
pub const MAX_SCALE: u32 = 6;

/// A decimal amount read at a fixed scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The amount in minor units.
    pub minor: i64,
    /// True when the text had more decimal places than the scale and was rounded.
    pub rounded: bool,
    /// True when the amount was below zero before rounding: -0.004 at scale 2 rounds to 0 minor
    /// units but is still a negative amount, which the documented rule leaves out.
    pub negative: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    /// Not a finite decimal number (`NaN`, `Infinity`, garbage).
    NotANumber(String),
    /// Too large for minor units in 64 bits.
    Overflow(String),
}

impl std::fmt::Display for AmountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AmountError::NotANumber(s) => write!(f, "amount \"{s}\" is not a finite number"),
            AmountError::Overflow(s) => write!(f, "amount \"{s}\" is too large"),
        }
    }
}

/// Parses PostgreSQL's text form of a number (`numeric`, integer or `float8` output, such as
/// `-12.345`, `7`, `1e+21` or `1.5e-05`) into minor units at `scale`.
pub fn parse_minor(text: &str, scale: u32) -> Result<Parsed, AmountError> {
    let scale = scale.min(MAX_SCALE);
    let bad = || AmountError::NotANumber(text.to_string());
    let overflow = || AmountError::Overflow(text.to_string());
    let s = text.trim();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (s, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad());
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // All digits as one integer D with the value D * 10^(exponent - frac_len). We want
    // D * 10^(exponent - frac_len + scale), rounded half away from zero.
    let digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    let shift = i64::from(exponent) - frac_part.len() as i64 + i64::from(scale);
    let mut value: i128 = 0;
    let mut rounded = false;
    let keep = if shift >= 0 {
        digits.len()
    } else {
        digits.len().saturating_sub((-shift) as usize)
    };
    for &digit in &digits[..keep] {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(digit)))
            .ok_or_else(overflow)?;
    }
    if shift > 0 {
        for _ in 0..shift {
            value = value.checked_mul(10).ok_or_else(overflow)?;
        }
    } else if keep < digits.len() {
        let dropped = &digits[keep..];
        // Half away from zero: look at the first dropped digit only.
        if dropped.iter().any(|&d| d != 0) {
            rounded = true;
        }
        // When shift drops more digits than exist, the first dropped digit is an implicit zero.
        let first_dropped = if (-shift) as usize > digits.len() {
            0
        } else {
            dropped[0]
        };
        if first_dropped >= 5 {
            value = value.checked_add(1).ok_or_else(overflow)?;
        }
    }
    if negative {
        value = -value;
    }
    let below_zero = negative && (value != 0 || rounded);
    let minor = i64::try_from(value).map_err(|_| overflow())?;
    Ok(Parsed {
        minor,
        rounded,
        negative: below_zero,
    })
}

/// The decimal text of `minor` minor units at `scale`, with exactly `scale` decimal places:
/// `format_minor(12345, 2) == "123.45"`, `format_minor(-5, 2) == "-0.05"`.
pub fn format_minor(minor: i128, scale: u32) -> String {
    let negative = minor < 0;
    let digits = minor.unsigned_abs().to_string();
    let scale = scale as usize;
    let mut out = String::with_capacity(digits.len() + 3);
    if negative {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(&digits);
        return out;
    }
    if digits.len() <= scale {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(&digits);
    } else {
        let (int_part, frac_part) = digits.split_at(digits.len() - scale);
        out.push_str(int_part);
        out.push('.');
        out.push_str(frac_part);
    }
    out
}

/// `numerator / denominator` rounded half away from zero, as `round(a::numeric / b)` does.
/// `denominator` must not be zero.
pub fn div_round(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(denominator != 0);
    let q = numerator / denominator;
    let r = numerator % denominator;
    if 2 * r.unsigned_abs() >= denominator.unsigned_abs() {
        if (numerator < 0) != (denominator < 0) {
            q - 1
        } else {
            q + 1
        }
    } else {
        q
    }
}

/// The average `sum / count`, rounded half away from zero as [`div_round`] does; None when
/// `count` is zero. In 64-bit arithmetic: a run averages four sums for each of a million users,
/// and the 128-bit division of [`div_round`] is a library call several times slower.
#[inline]
pub fn average(sum: i64, count: u64) -> Option<i64> {
    if count == 0 {
        return None;
    }
    let magnitude = sum.unsigned_abs();
    let (q, r) = (magnitude / count, magnitude % count);
    // 2r >= count, without doubling r.
    let q = if r >= count - r { q + 1 } else { q };
    // |average| <= |sum|, so it fits.
    if sum < 0 {
        0i64.checked_sub_unsigned(q)
    } else {
        i64::try_from(q).ok()
    }
}

/// 10^scale as an integer.
pub fn unit(scale: u32) -> i64 {
    10_i64.pow(scale.min(MAX_SCALE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str, scale: u32) -> (i64, bool) {
        let r = parse_minor(s, scale).unwrap();
        (r.minor, r.rounded)
    }

    #[test]
    fn a_negative_amount_that_rounds_to_zero_stays_negative() {
        for (text, negative) in [
            ("-0.004", true),
            ("-0.0001e0", true),
            ("-0", false),
            ("-0.00", false),
            ("0.004", false),
        ] {
            let r = parse_minor(text, 2).unwrap();
            assert_eq!((r.minor, r.negative), (0, negative), "{text}");
        }
        assert!(parse_minor("-0.005", 2).unwrap().negative);
    }

    #[test]
    fn parses_numeric_text_exactly() {
        assert_eq!(p("123.45", 2), (12345, false));
        assert_eq!(p("0.00", 2), (0, false));
        assert_eq!(p("7", 2), (700, false));
        assert_eq!(p("-12.30", 2), (-1230, false));
        assert_eq!(p("1000", 0), (1000, false));
        assert_eq!(p(".5", 2), (50, false));
    }

    #[test]
    fn rounds_extra_places_half_away_from_zero_and_says_so() {
        assert_eq!(p("1.005", 2), (101, true));
        assert_eq!(p("1.004", 2), (100, true));
        assert_eq!(p("-1.005", 2), (-101, true));
        assert_eq!(p("2.50", 0), (3, true));
        assert_eq!(p("1.0000", 2), (100, false));
        assert_eq!(p("0.001", 2), (0, true));
    }

    #[test]
    fn parses_float_exponents() {
        assert_eq!(p("1.5e+02", 2), (15000, false));
        assert_eq!(p("1.5e-05", 2), (0, true));
        assert_eq!(p("2.5e-3", 2), (0, true));
        assert_eq!(p("5e-3", 2), (1, true));
    }

    #[test]
    fn rejects_non_numbers_and_overflow() {
        assert!(matches!(
            parse_minor("NaN", 2),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            parse_minor("Infinity", 2),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            parse_minor("", 2),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            parse_minor("1.2.3", 2),
            Err(AmountError::NotANumber(_))
        ));
        assert!(matches!(
            parse_minor("1e30", 2),
            Err(AmountError::Overflow(_))
        ));
    }

    #[test]
    fn formats_with_fixed_places() {
        assert_eq!(format_minor(12345, 2), "123.45");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(-5, 2), "-0.05");
        assert_eq!(format_minor(0, 2), "0.00");
        assert_eq!(format_minor(42, 0), "42");
        assert_eq!(format_minor(1_000_000, 3), "1000.000");
    }

    #[test]
    fn div_round_is_half_away_from_zero() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(div_round(5, 3), 2);
        assert_eq!(div_round(10, 5), 2);
    }

    #[test]
    fn averages_round_half_away_from_zero() {
        assert_eq!(average(5, 2), Some(3));
        assert_eq!(average(-5, 2), Some(-3));
        assert_eq!(average(4, 3), Some(1));
        assert_eq!(average(7, 0), None);
        assert_eq!(average(i64::MIN, 1), Some(i64::MIN));
        assert_eq!(average(i64::MAX, 2), Some(i64::MAX / 2 + 1));
    }

    proptest! {
        #[test]
        fn average_is_the_128_bit_division(sum in any::<i64>(), count in 1u64..=u64::from(u32::MAX)) {
            prop_assert_eq!(
                average(sum, count),
                Some(div_round(i128::from(sum), i128::from(count)) as i64)
            );
        }

        #[test]
        fn format_then_parse_round_trips(minor in -1_000_000_000_000i64..1_000_000_000_000, scale in 0u32..=6) {
            let text = format_minor(i128::from(minor), scale);
            prop_assert_eq!(parse_minor(&text, scale).unwrap(), Parsed { minor, rounded: false, negative: minor < 0 });
        }
    }
}
