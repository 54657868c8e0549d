//! The Topic reconciler: check who owns the Kafka topic ([`claim`]) and that it is still the
//! one recorded ([`identity`]), observe it through the Kafka admin API, [`plan`] (pure), act,
//! write the status. A replication-factor change moves replicas through reassignment in
//! batches ([`replication`], pure; `replicate` acts). Deletion runs through the
//! `strom.io/topic` finalizer (`cleanup`).

pub mod claim;
mod cleanup;
pub mod identity;
pub mod plan;
mod reconcile;
pub(crate) mod replicate;
pub mod replication;
mod status;

pub use cleanup::{FINALIZER_DEADLINE, deadline_remaining};
pub use reconcile::{TOPIC_KIND, reconcile};
pub(crate) use reconcile::{execute, operation_name, previously_managed};
pub(crate) use status::{record_observed, set_pass_outcome};

#[cfg(test)]
mod reconcile_tests;
#[cfg(test)]
mod replication_tests;
#[cfg(test)]
mod safety_tests;
