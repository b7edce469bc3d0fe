//! Behavioural segmentation: per-user snapshot features at a day D ([`features`]), and K-means
//! clusters over them that stay put ([`kmeans`]): a fitted model is stored and later snapshots are
//! assigned to its clusters instead of refitting, and clusters are numbered and named from their
//! centroids, so cluster 1 means the same thing on every date.

pub mod features;
pub mod kmeans;
pub mod silhouette;

pub use features::{FEATURES, Snapshot, Transform};
pub use kmeans::{FitError, FitOptions, FitReport, Model, fit};
