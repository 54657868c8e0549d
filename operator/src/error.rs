//! The operator's error type. Every variant names what was being done so the log line and the
//! `reason` label of `strom_operator_reconcile_errors_total` say where to look.

use strom_admin::AdminError;

/// Errors of a reconcile pass. None of them stops the operator: `error_policy` counts them and
/// requeues the object with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API call failed while trying to {action}: {source}")]
    Kube {
        /// What the call was for, e.g. `apply StatefulSet prod-broker`.
        action: String,
        /// The client error (includes the API server's status message).
        #[source]
        source: kube::Error,
    },
    /// The PodDisruptionBudget refused to let a broker pod go (429): another broker is
    /// disrupted. The restart is tried again on a later pass.
    #[error("eviction of pod {pod} refused: {message}")]
    EvictionRefused {
        /// The pod.
        pod: String,
        /// The API server's reason, naming the PodDisruptionBudget.
        message: String,
    },
    /// A Kafka admin request failed in a way retrying may fix.
    #[error("Kafka admin {operation} for topic {topic} failed: {source}")]
    Admin {
        /// The admin operation, e.g. `CreateTopics`.
        operation: &'static str,
        /// The Kafka topic name.
        topic: String,
        /// What the admin client reported.
        #[source]
        source: AdminError,
    },
    /// A Kafka admin request of a day-2 operation failed.
    #[error("Kafka admin {operation} failed: {source}")]
    ClusterAdmin {
        /// The request, e.g. `DescribeLogDirs`.
        operation: &'static str,
        /// What the admin client reported.
        #[source]
        source: AdminError,
    },
    /// The cluster refused part of a day-2 request (per partition or per resource).
    #[error("{operation} was refused: {message}")]
    Refused {
        /// The request, e.g. `AlterPartitionReassignments`.
        operation: &'static str,
        /// Each refused partition or resource with its error.
        message: String,
    },
    /// A local broker process could not be started, stopped or found.
    #[error("local broker {broker}: cannot {action}: {reason}")]
    Process {
        /// The broker id.
        broker: i32,
        /// What was being done, e.g. `start`.
        action: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// Adding or removing the Topic finalizer, or its cleanup, failed.
    #[error("Topic finalizer failed: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The object has no namespace; Strom resources are namespaced, so this means a bad watch.
    #[error("{kind} {name} has no namespace; Strom resources are namespaced")]
    MissingNamespace {
        /// Resource kind.
        kind: &'static str,
        /// Object name.
        name: String,
    },
    /// An object could not be turned into JSON for a patch.
    #[error("cannot serialize {what} to JSON: {source}")]
    Serialize {
        /// What was serialized.
        what: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Short label for the `reason` of the error metric (bounded cardinality).
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube_api",
            Self::EvictionRefused { .. } => "eviction_refused",
            Self::Admin { source, .. } => match source {
                AdminError::Unreachable { .. } => "kafka_unreachable",
                AdminError::Timeout { .. } => "kafka_timeout",
                AdminError::Kafka { .. } => "kafka_error",
                _ => "kafka_protocol",
            },
            Self::ClusterAdmin { .. } => "kafka_admin",
            Self::Refused { .. } => "kafka_refused",
            Self::Process { .. } => "local_process",
            Self::Finalizer(_) => "finalizer",
            Self::MissingNamespace { .. } => "missing_namespace",
            Self::Serialize { .. } => "serialize",
        }
    }

    pub(crate) fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let action = action.into();
        move |source| Self::Kube { action, source }
    }
}
