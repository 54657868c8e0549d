//! `strom-operator`: turns `Cluster` and `Topic` objects (crate `strom-crds`) into running Strom
//! brokers and real Kafka topics.
//!
//! Every reconcile pass is observe → plan (pure) → act → status:
//! - [`cluster`]: builds the ConfigMap, Services, StatefulSet, PodDisruptionBudget and
//!   ServiceMonitor from the spec ([`cluster::builders`], pure and snapshot-tested), applies
//!   them with server-side apply as `strom-operator`, asks every broker how it sees the cluster
//!   (DescribeCluster at its pod address, [`cluster::observe`]), and derives the status from
//!   the pods and whether the brokers agree on one cluster ([`cluster::agreement`] and
//!   [`cluster::status`], pure). Each pass then runs one day-2 step ([`cluster::operation`]:
//!   the shared planner [`day2::plan`] over the StatefulSet and pods as a workload,
//!   [`cluster::workload`], and the admin API), whose operation is the status's `operation`.
//! - [`topic`]: plans topic changes ([`topic::plan`], pure) and runs them through the Kafka
//!   admin API (`strom-admin`), with a finalizer for deletion.
//!
//! - [`local`]: `strom-operator local`, the same Cluster and Topic manifests run as broker
//!   processes on this machine.
//!
//! Process plumbing: [`cli`] (flags), [`run`] (controllers, shutdown), [`leader`] (Lease
//! election), [`http`] (`/metrics`, `/healthz`, `/readyz`), [`metrics`], [`rbac`] (the
//! permission table the Helm chart renders), [`context`] (what passes share, including the
//! admin factory tests replace), [`conditions`], [`backoff`], [`clock`], [`error`].

pub mod backoff;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod conditions;
pub mod context;
pub mod day2;
pub mod error;
pub mod http;
pub mod leader;
pub mod local;
pub mod metrics;
pub mod rbac;
pub mod run;
pub mod topic;

#[cfg(test)]
mod fixtures;
