//! The Cluster reconciler: build the children from the spec ([`builders`], pure), apply them
//! with server-side apply, observe the pods and ask each broker how it sees the cluster
//! ([`observe`], through the admin port), judge whether the brokers form one cluster
//! ([`agreement`], pure), and write the status ([`status`], pure).

pub mod agreement;
pub mod builders;
pub mod observe;
mod reconcile;
pub mod status;

pub use reconcile::{CLUSTER_KIND, reconcile};

#[cfg(test)]
mod reconcile_tests;
