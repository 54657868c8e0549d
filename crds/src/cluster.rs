//! The `Cluster` custom resource: one Strom cluster (brokers + controller quorum) in a namespace.
//!
//! The spec is what a user writes; the operator turns it into a ConfigMap, two Services, a
//! StatefulSet, a PodDisruptionBudget and optionally a ServiceMonitor. Broker id = pod ordinal.
//!
//! Validation happens in three places, each where it can be exact:
//! - the OpenAPI schema (ranges, enums, patterns, required fields) — rejected by the apiserver;
//! - CEL rules (`x-kubernetes-validations`) for cross-field and immutability constraints;
//! - the reconciler, for what neither can express (the broker config allow-list,
//!   [`crate::BROKER_CONFIG_KEYS`]), reported as a status condition and an Event.

#![allow(
    unreachable_pub,
    reason = "the KubeSchema derive expands a private copy of each struct it validates"
)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Port the Kafka listener binds when `spec.listeners.port` is omitted.
pub const DEFAULT_KAFKA_PORT: i32 = 9092;
/// Port of the broker's admin HTTP server (`/metrics`, `/healthz`, `/readyz`). Fixed by the
/// broker container contract, not configurable.
pub const ADMIN_PORT: i32 = 9404;
/// Port of the broker's controller listener (the metadata quorum's Raft RPCs and controller
/// forwarding over gRPC), as in Kafka's usual `CONTROLLER://:9093`. Fixed by the broker
/// container contract, not configurable.
pub const CONTROLLER_PORT: i32 = 9093;

/// Desired state of a Strom cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "strom.io",
    version = "v1alpha1",
    kind = "Cluster",
    plural = "clusters",
    namespaced,
    doc = "A Strom cluster: brokers with persistent storage and a metadata quorum",
    status = "ClusterStatus",
    shortname = "stc",
    category = "strom",
    derive = "PartialEq",
    printcolumn = r#"{"name": "Replicas", "type": "integer", "description": "Desired number of brokers", "jsonPath": ".spec.replicas"}"#,
    printcolumn = r#"{"name": "Ready", "type": "integer", "description": "Brokers that pass their readiness probe", "jsonPath": ".status.readyReplicas"}"#,
    printcolumn = r#"{"name": "Version", "type": "string", "description": "Strom version the cluster runs", "jsonPath": ".spec.version"}"#,
    printcolumn = r#"{"name": "Status", "type": "string", "description": "Reason of the Ready condition", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name": "Operation", "type": "string", "description": "Day-2 operation in progress", "jsonPath": ".status.operation.kind"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self.replicas >= self.controller.voters").message("spec.replicas must be at least spec.controller.voters: the controller voters are the brokers with the lowest ids"))]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Number of brokers (StatefulSet replicas). Broker ids are the pod ordinals `0..replicas`.
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: i32,

    /// Broker container image. Fields left out fall back to the operator's `--broker-image`;
    /// the tag falls back to `spec.version` first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,

    /// Strom version the cluster runs (for example `0.1.0`). Used as the image tag when
    /// `spec.image.tag` is not set, and reported per broker in the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,127}$"))]
    pub version: Option<String>,

    /// The metadata quorum.
    #[serde(default)]
    pub controller: ControllerSpec,

    /// Persistent storage of each broker (one PersistentVolumeClaim per pod).
    pub storage: StorageSpec,

    /// CPU and memory requests/limits of the broker container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Broker configuration, written to `server.properties`. Only keys in the documented
    /// allow-list are accepted (see `BROKER_CONFIG_KEYS`); others put the Cluster into a
    /// `Degraded` condition with reason `InvalidConfig` and nothing is applied.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,

    /// How clients reach the brokers.
    #[serde(default)]
    pub listeners: ListenersSpec,

    /// Rack awareness: spread brokers evenly over the values of a node label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<RackSpec>,

    /// Additions to the broker pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<PodTemplateOverrides>,

    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: MetricsSpec,

    /// When true the operator observes and reports status but changes nothing (no applies, no
    /// restarts). Useful during manual maintenance.
    #[serde(default)]
    pub paused: bool,

    /// How the day-2 operations (rolling restarts, drains, rebalances) run.
    #[serde(default)]
    pub operations: OperationsSpec,
}

/// Policy of the day-2 operations.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationsSpec {
    /// Let a rolling restart take down a broker even when a partition it hosts cannot keep
    /// `min.insync.replicas` in-sync replicas without it (its replication factor is 1 or below
    /// `min.insync.replicas`). Those partitions are unavailable while the broker restarts.
    /// When false such partitions block the roll and a `RollBlocked` condition names them.
    #[serde(default)]
    pub allow_unavailable_partitions: bool,
    /// Partition moves started at once by a drain, a rebalance or a replication-factor change.
    #[serde(default = "default_max_moves")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_concurrent_moves: i32,
    /// Replication throttle, in bytes per second per broker, set on the brokers a batch of
    /// moves reads from and writes to while it runs; 0 leaves moves unthrottled.
    #[serde(default = "default_throttle")]
    #[schemars(range(min = 0))]
    pub throttle_bytes_per_second: i64,
    /// Restarts of one broker a roll attempts before the Cluster turns `Degraded`.
    #[serde(default = "default_restart_attempts")]
    #[schemars(range(min = 1, max = 100))]
    pub max_restart_attempts: i32,
}

fn default_max_moves() -> i32 {
    10
}

fn default_throttle() -> i64 {
    50 * 1024 * 1024
}

fn default_restart_attempts() -> i32 {
    3
}

impl Default for OperationsSpec {
    fn default() -> Self {
        Self {
            allow_unavailable_partitions: false,
            max_concurrent_moves: default_max_moves(),
            throttle_bytes_per_second: default_throttle(),
            max_restart_attempts: default_restart_attempts(),
        }
    }
}

/// Broker container image.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository, for example `ghcr.io/strom-io/strom-broker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub repository: Option<String>,
    /// Image tag. Defaults to `spec.version`, then to the operator's default tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"))]
    pub tag: Option<String>,
    /// Kubernetes image pull policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
}

/// Kubernetes `imagePullPolicy` values.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when the image is not on the node.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The value Kubernetes expects in `imagePullPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// The metadata quorum (Raft voters).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ControllerSpec {
    /// Number of controller voters: 1 (no fault tolerance), 3 (tolerates one failure) or 5
    /// (tolerates two). The voters are the brokers with ids `0..voters`. Immutable: changing the
    /// voter set is a quorum reconfiguration the operator does not perform.
    #[serde(default = "default_voters")]
    #[schemars(extend("enum" = [1, 3, 5]))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.controller.voters is immutable"))]
    pub voters: i32,
}

fn default_voters() -> i32 {
    3
}

impl Default for ControllerSpec {
    fn default() -> Self {
        Self {
            voters: default_voters(),
        }
    }
}

/// Persistent storage of each broker.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)").message("spec.storage.storageClassName is immutable"))]
pub struct StorageSpec {
    /// Size of each broker's volume, as a Kubernetes quantity (`100Gi`). It may only grow:
    /// raising it expands every broker's PersistentVolumeClaim in place (the StorageClass must
    /// allow volume expansion); a volume never shrinks.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"))]
    #[x_kube(validation = Rule::new("!quantity(self).isLessThan(quantity(oldSelf))").message("spec.storage.size may only grow: a volume cannot shrink"))]
    pub size: String,
    /// StorageClass of the volumes; the cluster default when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
    /// Delete the PersistentVolumeClaims when the Cluster is deleted. False keeps the data.
    #[serde(default)]
    pub delete_claim: bool,
}

/// How clients reach the brokers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.port != 9093 && self.port != 9404").message("spec.listeners.port must differ from the controller port 9093 and the admin port 9404, which every broker also binds"))]
pub struct ListenersSpec {
    /// Port of the Kafka listener on every broker and on the bootstrap Service.
    #[serde(default = "default_kafka_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// Where the listener is reachable from.
    #[serde(default)]
    pub exposure: ListenerExposure,
}

fn default_kafka_port() -> i32 {
    DEFAULT_KAFKA_PORT
}

impl Default for ListenersSpec {
    fn default() -> Self {
        Self {
            port: DEFAULT_KAFKA_PORT,
            exposure: ListenerExposure::default(),
        }
    }
}

/// Where the Kafka listener is reachable from. Access from outside the Kubernetes cluster
/// (NodePort, LoadBalancer) will be further variants; today only in-cluster access exists.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ListenerExposure {
    /// In-cluster: the bootstrap Service `<cluster>-bootstrap` and the per-pod DNS names
    /// `<pod>.<cluster>-brokers.<namespace>.svc` that brokers advertise.
    #[default]
    Internal,
}

/// Rack awareness.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RackSpec {
    /// Node label whose value is the broker's rack, for example `topology.kubernetes.io/zone`.
    /// Brokers are spread across its values, and each broker's `broker.rack` is the value of
    /// this label on its own pod (read through the downward API when the broker starts).
    /// Kubernetes 1.35 and later copy `topology.kubernetes.io/zone` and
    /// `topology.kubernetes.io/region` from the node onto every pod (the `PodTopologyLabels`
    /// admission plugin); with another key, or an older cluster, brokers start without a rack
    /// and the Cluster reports `Degraded` with reason `RackUnknown`.
    #[schemars(length(min = 1, max = 316))]
    pub topology_key: String,
}

/// Additions to the broker pod template. The operator's own labels, probes, security context
/// and volumes always win over these.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateOverrides {
    /// Extra pod labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Node selector of the broker pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the broker pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity of the broker pods. When set it replaces the operator's default anti-affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// PriorityClass of the broker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// Prometheus metrics.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// Annotate pods for scraping and name the admin port `metrics`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Create a ServiceMonitor (prometheus-operator) when its CRD is installed.
    #[serde(default)]
    pub service_monitor: bool,
}

fn default_true() -> bool {
    true
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            service_monitor: false,
        }
    }
}

/// Observed state of a Strom cluster, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// `Ready`, `Progressing` and `Degraded` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Desired number of brokers.
    #[serde(default)]
    pub replicas: i32,
    /// Brokers whose pod is ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Bootstrap address for clients inside the Kubernetes cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<String>,
    /// One entry per broker pod that exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<BrokerStatus>,
    /// The day-2 operation in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationStatus>,
    /// The cluster id every broker reports (DescribeCluster), once they all agree on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The broker id of the active controller every broker reports, once they all agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_id: Option<i32>,
}

/// State of one broker.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatus {
    /// Broker id (the pod ordinal).
    pub id: i32,
    /// Pod name.
    pub pod: String,
    /// Strom version the pod runs (its `strom.io/version` label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Whether the pod passes its readiness probe.
    pub ready: bool,
    /// Whether every broker that answered DescribeCluster lists this broker registered and
    /// unfenced; absent when no broker answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<bool>,
    /// The `broker.rack` the brokers report for this broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

/// A day-2 operation in progress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    /// What is running.
    pub kind: OperationKind,
    /// When it started.
    pub started_at: Time,
    /// Steps done so far (for example brokers provisioned or restarted).
    pub completed_steps: i32,
    /// Steps in total.
    pub total_steps: i32,
    /// What the operator is doing or waiting for; while it waits, what blocks it (for
    /// example the partition that would drop below `min.insync.replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The broker the current step acts on (the one restarting, or being drained).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<i32>,
    /// The current step, e.g. `Restarting`, `AwaitingCatchUp`, `Reassigning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// When the current step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<Time>,
    /// Restarts of `broker` attempted in this operation.
    #[serde(default)]
    pub attempts: i32,
    /// The brokers this operation has finished with (restarted and caught up, or drained).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<i32>,
    /// The revision a roll moves the brokers to (see `strom.io/revision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// Kinds of day-2 operation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum OperationKind {
    /// Brokers are being created and have not all become ready yet.
    Provisioning,
    /// Brokers are being added.
    ScaleUp,
    /// Brokers are being removed.
    ScaleDown,
    /// Pods are being restarted one at a time onto a new image or config.
    RollingUpgrade,
    /// Replicas are being moved for balance or a replication-factor change.
    Rebalance,
}

impl OperationKind {
    /// The name used in status and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "Provisioning",
            Self::ScaleUp => "ScaleUp",
            Self::ScaleDown => "ScaleDown",
            Self::RollingUpgrade => "RollingUpgrade",
            Self::Rebalance => "Rebalance",
        }
    }
}
