//! Order items: the lines of the counted orders (who bought which product, when, how many, at
//! what unit price), the input of recommendations and price elasticity. A line that cannot be a
//! sale is counted by why and left out, never used: a missing or non-positive quantity (returns
//! and cancellations are not negative demand), a missing or non-positive unit price, a product
//! the products table does not have, a product the shop marks as not a product (postage, fees,
//! vouchers).

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
        assert_eq!(
            items.report().as_deref(),
            Some(
                "3 order lines left out: 2 quantity missing or not positive; 1 marked as not a product"
            )
        );
    }
}
