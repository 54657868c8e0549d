//! The workload port: how a runtime runs brokers.

use std::future::Future;

use super::observed::WorkloadState;
use crate::error::Error;

/// The brokers of one Cluster as a runtime runs them: the StatefulSet and its pods on
/// Kubernetes, child processes locally.
pub trait Workload: Send + Sync {
    /// The broker count the workload is set to and the brokers that exist.
    fn observe(&self) -> impl Future<Output = Result<WorkloadState, Error>> + Send;
    /// Run brokers `0..replicas`: start the missing ones, stop the ones above.
    fn scale(&self, replicas: i32) -> impl Future<Output = Result<(), Error>> + Send;
    /// Restart `broker` gracefully onto the desired revision (pod deletion; process SIGTERM,
    /// wait, start).
    fn restart(&self, broker: i32) -> impl Future<Output = Result<(), Error>> + Send;
}
