//! Day-2 operations of a Cluster, shared by both runtimes (Kubernetes and local processes).
//!
//! One pass is observe → plan → act:
//! - [`observed`]: what the workload ([`Workload`]: pods, or local processes) and the Kafka
//!   admin API report, gathered into one [`Observed`];
//! - [`desired`]: what the Cluster spec asks for, as a [`Desired`];
//! - [`action`]: the next [`Action`] and the operation status a plan yields;
//! - [`workload`]: the port each runtime implements to start, restart and stop brokers;
//! - [`plan`]: the pure planner, `(desired, observed, previous operation, now) -> Plan`, with
//!   [`assignment`] (balanced, rack-aware replica targets) and [`revision`] (the [`Desired`] of
//!   a Cluster and the revision digest brokers are compared on);
//! - [`engine`]: observing through the admin API and running one action;
//! - [`report`]: what a pass tells the operator metrics.

pub mod action;
pub mod assignment;
pub mod desired;
pub mod engine;
pub mod observed;
pub mod plan;
pub mod report;
pub mod revision;
pub mod workload;

pub use action::{Action, Blocker, Plan};
pub use desired::Desired;
pub use observed::{
    AdminState, Observed, PartitionView, RegisteredBroker, WorkloadBroker, WorkloadState,
};
pub use workload::Workload;
