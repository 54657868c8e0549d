//! The Topic reconciler: observe the topic through the Kafka admin API, [`plan`] (pure), act,
//! write the status. Deletion runs through the `strom.io/topic` finalizer.

pub mod plan;
mod reconcile;

pub use reconcile::{TOPIC_KIND, reconcile};
pub(crate) use reconcile::{execute, operation_name, previously_managed, record_observed};

#[cfg(test)]
mod reconcile_tests;
