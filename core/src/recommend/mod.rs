//! Recommendations from order items: popularity, buy-again, item-kNN (cosine, BM25), EASE and the
//! EASE + own-orders hybrid (`models`), on the customers × products data of a window (`data`),
//! and the evaluation protocol (`evaluate`) with Microsoft Recommenders' ranking metrics
//! (`metrics`). Definitions and literature: `products.md`, section 2.

pub mod data;
pub mod evaluate;
pub mod metrics;
pub mod models;

#[cfg(test)]
mod tests;
