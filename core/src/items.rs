//! Order items: the lines of the counted orders (who bought which product, when, how many, at
//! what unit price), the input of recommendations and price elasticity. A line that cannot be a
//! sale is counted by why and left out, never used: a missing or non-positive quantity (returns
//! and cancellations are not negative demand), a missing or non-positive unit price, a product
//! the products table does not have, a product the shop marks as not a product (postage, fees,
//! vouchers).

use crate::ltv::wire::{Reader, Writer};

/// Bytes per line on the wire.
const LINE_BYTES: usize = 44;

/// The most lines one encoded state may carry: its bytes must fit PostgreSQL's 1 GB limit on a
/// value (a parallel worker's share of the lines travels encoded).
pub const MAX_ENCODED_LINES: usize = 24_000_000;

/// The most lines one read gathers (about 48 bytes each in memory).
pub const MAX_LINES: usize = 200_000_000;

/// Why an order line is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemProblem {
    BadQuantity = 1,
    BadPrice = 2,
    UnknownProduct = 3,
    NotAProduct = 4,
}

impl ItemProblem {
    pub const ALL: [ItemProblem; 4] = [
        ItemProblem::BadQuantity,
        ItemProblem::BadPrice,
        ItemProblem::UnknownProduct,
        ItemProblem::NotAProduct,
    ];

    /// The code the read's SQL gives the problem (0 is a line that counts).
    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(code: i32) -> Option<ItemProblem> {
        ItemProblem::ALL.into_iter().find(|p| p.code() == code)
    }

    /// What the reports call it.
    pub fn label(self) -> &'static str {
        match self {
            ItemProblem::BadQuantity => "quantity missing or not positive",
            ItemProblem::BadPrice => "unit price missing or not positive",
            ItemProblem::UnknownProduct => "product not in the products table",
            ItemProblem::NotAProduct => "marked as not a product",
        }
    }
}

/// One line of a counted order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemLine {
    pub user: i64,
    pub day: i32,
    pub order: i64,
    pub product: i64,
    pub quantity: f64,
    pub unit_price: f64,
}

/// What an items read gathered: the lines that count and how many were left out, by why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Items {
    pub lines: Vec<ItemLine>,
    /// Lines left out, indexed by `ItemProblem as usize - 1`.
    pub left_out: [u64; 4],
}

impl Items {
    pub fn leave_out(&mut self, problem: ItemProblem) {
        self.left_out[problem as usize - 1] += 1;
    }

    /// Adds another part's lines and counts (a parallel worker's).
    pub fn merge(&mut self, other: Items) {
        if self.lines.is_empty() {
            self.lines = other.lines;
        } else {
            self.lines.extend(other.lines);
        }
        for (a, b) in self.left_out.iter_mut().zip(other.left_out) {
            *a += b;
        }
    }

    pub fn fits(&self) -> bool {
        self.lines.len() <= MAX_LINES
    }

    /// The bytes of the state, or None when they would pass [`MAX_ENCODED_LINES`].
    pub fn encode(&self) -> Option<Vec<u8>> {
        if self.lines.len() > MAX_ENCODED_LINES {
            return None;
        }
        let mut w = Writer::with_capacity(4 + 4 * 8 + 8 + LINE_BYTES * self.lines.len());
        w.tag(b"CIT1");
        for n in self.left_out {
            w.u64(n);
        }
        w.u64(self.lines.len() as u64);
        for l in &self.lines {
            w.i64(l.user);
            w.i32(l.day);
            w.i64(l.order);
            w.i64(l.product);
            w.u64(l.quantity.to_bits());
            w.u64(l.unit_price.to_bits());
        }
        Some(w.into_bytes())
    }

    pub fn decode(bytes: &[u8]) -> Result<Items, String> {
        let mut r = Reader::new(bytes);
        r.tag(b"CIT1")?;
        let mut left_out = [0u64; 4];
        for n in &mut left_out {
            *n = r.u64()?;
        }
        let n = r.len(LINE_BYTES)?;
        let body = r.rest();
        if body.len() != n * LINE_BYTES {
            return Err("trailing bytes in state".into());
        }
        let at8 = |b: &[u8], at: usize| -> [u8; 8] {
            let mut out = [0u8; 8];
            out.copy_from_slice(&b[at..at + 8]);
            out
        };
        let lines = body
            .chunks_exact(LINE_BYTES)
            .map(|b| ItemLine {
                user: i64::from_le_bytes(at8(b, 0)),
                day: i32::from_le_bytes([b[8], b[9], b[10], b[11]]),
                order: i64::from_le_bytes(at8(b, 12)),
                product: i64::from_le_bytes(at8(b, 20)),
                quantity: f64::from_bits(u64::from_le_bytes(at8(b, 28))),
                unit_price: f64::from_bits(u64::from_le_bytes(at8(b, 36))),
            })
            .collect();
        Ok(Items { lines, left_out })
    }

    pub fn left_out_total(&self) -> u64 {
        self.left_out.iter().sum()
    }

    /// "N lines: a with ..., b with ..." for a report, or None when nothing was left out.
    pub fn report(&self) -> Option<String> {
        let parts: Vec<String> = ItemProblem::ALL
            .iter()
            .zip(self.left_out)
            .filter(|(_, n)| *n > 0)
            .map(|(p, n)| format!("{n} {}", p.label()))
            .collect();
        (!parts.is_empty()).then(|| {
            format!(
                "{} order lines left out: {}",
                self.left_out_total(),
                parts.join("; ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_reports_name_every_reason() {
        for p in ItemProblem::ALL {
            assert_eq!(ItemProblem::from_code(p.code()), Some(p));
        }
        assert_eq!(ItemProblem::from_code(0), None);
        let mut items = Items::default();
        assert_eq!(items.report(), None);
        items.leave_out(ItemProblem::BadQuantity);
        items.leave_out(ItemProblem::BadQuantity);
        items.leave_out(ItemProblem::NotAProduct);
        items.lines.push(ItemLine {
            user: -3,
            day: 4000,
            order: 1 << 40,
            product: 77,
            quantity: 2.5,
            unit_price: 0.125,
        });
        let back = Items::decode(&items.encode().unwrap()).unwrap();
        assert_eq!(back, items);
        assert!(Items::decode(&items.encode().unwrap()[..40]).is_err());
        let mut twice = back.clone();
        twice.merge(back);
        assert_eq!(twice.lines.len(), 2);
        assert_eq!(twice.left_out, [4, 0, 0, 2]);
        assert_eq!(
            items.report().as_deref(),
            Some(
                "3 order lines left out: 2 quantity missing or not positive; 1 marked as not a product"
            )
        );
    }
}
