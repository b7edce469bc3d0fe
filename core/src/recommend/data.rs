//! The interaction data of a training window: which customer bought which product, in how many
//! distinct orders, as index maps and per-user sorted rows (a CSR matrix by hand: the products
//! needed are XᵀX and a sparse row times a matrix, nothing more).

use rustc_hash::FxHashMap;

use crate::items::ItemLine;

/// Customers × products over a window of days.
#[derive(Debug, Clone, Default)]
pub struct Interactions {
    /// Item index → product id, ascending: ties between items broken by index are broken by
    /// product id.
    pub items: Vec<i64>,
    /// User index → user id, ascending.
    pub users: Vec<i64>,
    /// Per user: (item index, distinct orders with the item), by item index.
    pub rows: Vec<Vec<(u32, u32)>>,
    /// Per item: distinct buyers.
    pub buyers: Vec<u32>,
}

impl Interactions {
    /// The lines with `from <= day < to` (`from` None: from the start).
    pub fn build(lines: &[ItemLine], from: Option<i32>, to: i32) -> Interactions {
        let mut triples: Vec<(i64, i64, i64)> = lines
            .iter()
            .filter(|l| l.day < to && from.is_none_or(|f| l.day >= f))
            .map(|l| (l.user, l.product, l.order))
            .collect();
        triples.sort_unstable();
        triples.dedup();
        let mut items: Vec<i64> = triples.iter().map(|t| t.1).collect();
        items.sort_unstable();
        items.dedup();
        let index: FxHashMap<i64, u32> = items
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, i as u32))
            .collect();
        let mut users: Vec<i64> = Vec::new();
        let mut rows: Vec<Vec<(u32, u32)>> = Vec::new();
        let mut buyers = vec![0u32; items.len()];
        for &(user, product, _) in &triples {
            if users.last() != Some(&user) {
                users.push(user);
                rows.push(Vec::new());
            }
            let item = index[&product];
            let row = rows.last_mut().expect("a row was pushed for this user");
            match row.last_mut() {
                Some((i, n)) if *i == item => *n += 1,
                _ => {
                    row.push((item, 1));
                    buyers[item as usize] += 1;
                }
            }
        }
        // Triples sort by product id within a user, and item indexes follow product ids.
        Interactions {
            items,
            users,
            rows,
            buyers,
        }
    }

    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// The row of `user`, if they bought anything in the window.
    pub fn row_of(&self, user: i64) -> Option<&[(u32, u32)]> {
        self.users
            .binary_search(&user)
            .ok()
            .map(|u| self.rows[u].as_slice())
    }

    /// The item index of `product`, if it was bought in the window.
    pub fn item_of(&self, product: i64) -> Option<u32> {
        self.items.binary_search(&product).ok().map(|i| i as u32)
    }
}
