//! The `Topic` custom resource: one Kafka topic on a Strom `Cluster` in the same namespace.
//!
//! The operator creates the topic, raises its partition count, changes its replication factor
//! through partition reassignment, and keeps the configs named in `spec.config` at their
//! declared values. It never lowers partitions; such requests are refused with a `Ready=False`
//! condition whose reason and `status.message` say why.
//!
//! Safety rules, each reported as the `Ready` condition's reason:
//! - `ResourceConflict`: another Topic of the same Cluster names the same Kafka topic and
//!   claimed it first (older `metadata.creationTimestamp`, then lower `metadata.name`); this one
//!   changes nothing, and deleting it does not delete the Kafka topic;
//! - `TopicIdChanged`: the Kafka topic's id is not the one recorded in `status.topicId` (it was
//!   deleted and re-created by someone else); nothing is changed until the user accepts the new
//!   topic with the annotation [`ACCEPT_TOPIC_ID_ANNOTATION`] set to the new id (or removes
//!   `status.topicId`), and deleting the Topic does not delete the new Kafka topic;
//! - `Unmanaged`: `spec.managed: false` or the annotation [`MANAGED_ANNOTATION`]` = "false"`:
//!   the operator lets go of the Kafka topic (removes its finalizer, changes and deletes
//!   nothing).

#![allow(
    unreachable_pub,
    reason = "the KubeSchema derive expands a private copy of each struct it validates"
)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Finalizer the operator puts on every Topic so a deletion with `deletionPolicy: Delete`
/// deletes the Kafka topic before the object goes away.
pub const TOPIC_FINALIZER: &str = "strom.io/topic";

/// Annotation that, set to `"false"`, lets go of the Kafka topic as `spec.managed: false` does.
pub const MANAGED_ANNOTATION: &str = "strom.io/managed";

/// Annotation naming the Kafka topic id the user accepts after a `TopicIdChanged` report: when
/// it equals the Kafka topic's id, the Topic adopts that topic and records its id.
pub const ACCEPT_TOPIC_ID_ANNOTATION: &str = "strom.io/accept-topic-id";

/// Desired state of a Kafka topic.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "strom.io",
    version = "v1alpha1",
    kind = "Topic",
    plural = "topics",
    namespaced,
    doc = "A Kafka topic on a Strom Cluster in the same namespace",
    status = "TopicStatus",
    shortname = "stt",
    category = "strom",
    derive = "PartialEq",
    printcolumn = r#"{"name": "Cluster", "type": "string", "description": "Cluster the topic lives on", "jsonPath": ".spec.clusterRef.name"}"#,
    printcolumn = r#"{"name": "Partitions", "type": "integer", "description": "Partitions the topic has", "jsonPath": ".status.partitions"}"#,
    printcolumn = r#"{"name": "Replication", "type": "integer", "description": "Replication factor the topic has", "jsonPath": ".status.replicationFactor"}"#,
    printcolumn = r#"{"name": "Ready", "type": "string", "description": "Whether the topic matches its spec", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("has(self.topicName) == has(oldSelf.topicName) && (!has(self.topicName) || self.topicName == oldSelf.topicName)").message("spec.topicName is immutable"))]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    /// The Cluster (same namespace) that holds the topic. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.clusterRef is immutable"))]
    pub cluster_ref: ClusterRef,

    /// Kafka topic name; `metadata.name` when omitted (Kafka allows names that Kubernetes does
    /// not, such as upper case or underscores). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9._-]{1,249}$"))]
    pub topic_name: Option<String>,

    /// Number of partitions. May be raised; lowering is refused (Kafka cannot remove
    /// partitions) and reported in the status.
    #[schemars(range(min = 1, max = 100000))]
    pub partitions: i32,

    /// Replication factor; the broker's `default.replication.factor` when omitted. Changing it
    /// on an existing topic moves replicas through partition reassignment, in batches and
    /// throttled as the Cluster's `spec.operations` says; a factor above the registered
    /// brokers is refused and reported in the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32767))]
    pub replication_factor: Option<i16>,

    /// Topic configs (`retention.ms`, `cleanup.policy`, ...). The operator owns exactly these
    /// keys: removing a key resets it to the broker default, keys set by others are left alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,

    /// What happens to the Kafka topic when this object is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Whether the operator manages the Kafka topic. `false` lets go of it: the finalizer is
    /// removed, and the topic is neither changed nor deleted (also when this object is
    /// deleted). Setting it back to `true` manages the topic again.
    #[serde(default = "managed_default")]
    pub managed: bool,
}

fn managed_default() -> bool {
    true
}

impl Topic {
    /// The Kafka topic name: `spec.topicName`, else `metadata.name`.
    pub fn topic_name(&self) -> &str {
        match &self.spec.topic_name {
            Some(name) => name,
            None => self.metadata.name.as_deref().unwrap_or_default(),
        }
    }

    /// Whether the operator manages the Kafka topic: `spec.managed` and the
    /// [`MANAGED_ANNOTATION`] both allow it.
    pub fn is_managed(&self) -> bool {
        let annotated_off = self
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(MANAGED_ANNOTATION))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
        self.spec.managed && !annotated_off
    }

    /// The topic id the [`ACCEPT_TOPIC_ID_ANNOTATION`] accepts, if set.
    pub fn accepted_topic_id(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ACCEPT_TOPIC_ID_ANNOTATION))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Reference to a Cluster in the Topic's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    /// Name of the Cluster.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What happens to the Kafka topic when the Topic object is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the Kafka topic and its data.
    #[default]
    Delete,
    /// Keep the Kafka topic; only the Kubernetes object goes away.
    Retain,
}

/// Observed state of a Kafka topic, written by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// The `Ready` condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Kafka topic id of the topic this object manages, recorded when it created or adopted
    /// the topic. A Kafka topic with another id under the same name is reported
    /// (`TopicIdChanged`) and left alone; see [`ACCEPT_TOPIC_ID_ANNOTATION`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Partitions the topic has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Replication factor the topic has (the replica count of its partitions once every
    /// reassignment has finished; the lowest count of a partition while one runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i16>,
    /// Replication factor a change in progress moves the topic to; absent when none runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_replication_factor: Option<i16>,
    /// Progress of the replication-factor change in progress; absent when none runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassignment: Option<ReassignmentProgress>,
    /// Config keys this object manages on the topic (the `spec.config` keys last applied).
    /// A key that leaves `spec.config` is reset to its default; keys not listed are not touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_config_keys: Vec<String>,
    /// Why the last change was refused or failed; absent when the topic matches its spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How far a replication-factor change has come.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReassignmentProgress {
    /// Partitions of the topic.
    pub total_partitions: i32,
    /// Partitions whose replicas already are the target ones.
    pub done_partitions: i32,
    /// Partitions being moved now (at most the Cluster's `spec.operations.maxConcurrentMoves`).
    pub moving_partitions: i32,
    /// Bytes the added replicas still have to copy, from the brokers' log directories; absent
    /// when the brokers do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_remaining: Option<i64>,
}
