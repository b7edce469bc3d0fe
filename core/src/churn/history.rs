//! One customer's successful orders, sorted by day, with what the features need to look up
//! windows by binary search: every window is a slice of orders on or before a day.

/// A customer's orders as (day, amount) sorted by day, and the (day, category) pairs of the
/// products they bought, sorted by day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub days: Vec<i32>,
    pub amounts: Vec<f64>,
    pub categories: Vec<(i32, u32)>,
}

impl History {
    pub fn new(mut orders: Vec<(i32, f64)>, mut categories: Vec<(i32, u32)>) -> History {
        orders.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        categories.sort_unstable();
        let (days, amounts) = orders.into_iter().unzip();
        History {
            days,
            amounts,
            categories,
        }
    }

    /// The orders on or before `day`: the only part of the history a snapshot at `day` may see.
    pub fn upto(&self, day: i32) -> View<'_> {
        let n = self.days.partition_point(|&d| d <= day);
        let c = self.categories.partition_point(|&(d, _)| d <= day);
        View {
            day,
            days: &self.days[..n],
            amounts: &self.amounts[..n],
            categories: &self.categories[..c],
        }
    }

    /// Whether there is an order in (from, to].
    pub fn any_between(&self, from: i32, to: i32) -> bool {
        let i = self.days.partition_point(|&d| d <= from);
        self.days.get(i).is_some_and(|&d| d <= to)
    }

    pub fn first_day(&self) -> Option<i32> {
        self.days.first().copied()
    }
}

/// The orders of a history up to a day.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub day: i32,
    pub days: &'a [i32],
    pub amounts: &'a [f64],
    pub categories: &'a [(i32, u32)],
}

impl View<'_> {
    /// Index of the first order in (day - window, day].
    fn window_start(&self, window: i32) -> usize {
        self.days.partition_point(|&d| d <= self.day - window)
    }

    /// Orders and spend in (day - window, day].
    pub fn window(&self, window: i32) -> (usize, f64) {
        let i = self.window_start(window);
        // + 0.0: an empty sum is -0.0.
        (
            self.days.len() - i,
            self.amounts[i..].iter().sum::<f64>() + 0.0,
        )
    }

    /// Spend in (day - to, day - from] for from < to.
    pub fn spend_between(&self, from: i32, to: i32) -> f64 {
        let i = self.window_start(to);
        let j = self.window_start(from);
        self.amounts[i..j].iter().sum::<f64>() + 0.0
    }

    /// Distinct categories bought in (day - window, day].
    pub fn categories_in(&self, window: i32) -> usize {
        let i = self
            .categories
            .partition_point(|&(d, _)| d <= self.day - window);
        let mut seen: Vec<u32> = self.categories[i..].iter().map(|&(_, c)| c).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    /// Distinct purchase days, in order.
    pub fn purchase_days(&self) -> Vec<i32> {
        let mut d = self.days.to_vec();
        d.dedup();
        d
    }
}
