//! The Cluster reconciler: build the children from the spec ([`builders`], pure), apply them
//! with server-side apply, observe the pods, and write the status ([`status`], pure).

pub mod builders;
mod reconcile;
pub mod status;

pub use reconcile::{CLUSTER_KIND, reconcile};

#[cfg(test)]
mod reconcile_tests;
