//! The Cluster reconciler: observe the StatefulSet and its pods ([`workload`], the day-2
//! workload port on Kubernetes), build the children from the spec ([`builders`], pure) and apply
//! them with server-side apply, grow the volumes ([`storage`]), ask each broker how it sees the
//! cluster ([`observe`], through the admin port) and judge whether the brokers form one
//! cluster ([`agreement`], pure), run one day-2 step ([`operation`]: plan, act, Events), and
//! write the status ([`status`], pure).

pub mod agreement;
pub mod builders;
pub mod observe;
pub mod operation;
mod reconcile;
pub mod status;
pub mod storage;
pub mod workload;

pub use reconcile::{CLUSTER_KIND, reconcile};

#[cfg(test)]
mod operation_tests;
#[cfg(test)]
mod reconcile_tests;
