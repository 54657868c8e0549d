//! What the Cluster spec asks the day-2 operations for.

use std::collections::BTreeMap;

use strom_crds::cluster::OperationsSpec;

/// The target a plan moves the cluster to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Brokers `0..replicas`.
    pub replicas: i32,
    /// The controller voters: brokers `0..voters`.
    pub voters: i32,
    /// The revision every broker should run: a digest of what needs a restart to change
    /// (image or version, the config keys that are not dynamic, the restart annotation, and on
    /// Kubernetes the broker pod spec the operator renders).
    pub revision: String,
    /// Broker config keys the brokers apply without a restart (cluster-wide dynamic defaults
    /// set through IncrementalAlterConfigs), with their values.
    pub dynamic_config: BTreeMap<String, String>,
    /// `spec.paused` or the pause annotation: observe and report, change nothing.
    pub paused: bool,
    /// The operations policy from the spec.
    pub policy: OperationsSpec,
}
