//! Writing a Topic's status: the `Ready` condition, what is known of the Kafka topic, and the
//! Events that go with a condition.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;
use strom_admin::{AdminError, ObservedTopic};
use strom_crds::topic::TOPIC_FINALIZER;
use strom_crds::{Topic, TopicStatus};

use super::reconcile::TOPIC_KIND;
use crate::cluster::builders::FIELD_MANAGER;
use crate::conditions::{find, set_condition};
use crate::context::{AdminFactory, Context};
use crate::error::Error;

/// Retry delay when the Cluster is missing or unreachable.
pub(super) const RETRY_UNAVAILABLE: Duration = Duration::from_secs(30);
/// Retry delay after Kafka rejected a request (bad config value, policy violation).
pub(super) const RETRY_REJECTED: Duration = Duration::from_secs(120);

/// Why a pass could not reach the topic, with the condition reason it gets.
pub(super) struct Unavailable {
    pub(super) reason: &'static str,
    pub(super) message: String,
    pub(super) retry: Duration,
}

impl Unavailable {
    pub(super) fn from_admin(operation: &str, bootstrap: &str, error: &AdminError) -> Self {
        match error {
            AdminError::Kafka { name, .. } => Self {
                reason: "KafkaRejected",
                message: format!("{operation} was rejected by the cluster ({name}): {error}"),
                retry: RETRY_REJECTED,
            },
            AdminError::Unreachable { .. } | AdminError::Timeout { .. } => Self {
                reason: "ClusterUnreachable",
                message: format!(
                    "cannot reach the cluster at {bootstrap} for {operation}: {error}"
                ),
                retry: RETRY_UNAVAILABLE,
            },
            _ => Self {
                reason: "ClusterUnreachable",
                message: format!("{operation} against {bootstrap} failed: {error}"),
                retry: RETRY_UNAVAILABLE,
            },
        }
    }
}

impl Unavailable {
    /// A replication-factor change's request that failed.
    pub(super) fn from_engine(bootstrap: &str, error: &Error) -> Self {
        match error {
            Error::ClusterAdmin { operation, source } => {
                Self::from_admin(operation, bootstrap, source)
            }
            Error::Refused { operation, message } => Self {
                reason: "KafkaRejected",
                message: format!("{operation} was rejected by the cluster: {message}"),
                retry: RETRY_REJECTED,
            },
            other => Self {
                reason: "ClusterUnreachable",
                message: format!("replication-factor change against {bootstrap} failed: {other}"),
                retry: RETRY_UNAVAILABLE,
            },
        }
    }
}

/// Records what Kafka reports of the topic: its id, partitions and replication factor.
pub(crate) fn record_observed(status: &mut TopicStatus, observed: Option<&ObservedTopic>) {
    if let Some(t) = observed {
        if !t.topic_id.is_empty() {
            status.topic_id = Some(t.topic_id.clone());
        }
        status.partitions = Some(t.partitions);
        status.replication_factor = Some(t.replication_factor);
    }
}

/// Writes a `Ready=False` status with `why`, an Event, and requeues after `why.retry`.
/// `progress` carries what is known of the topic when a request failed part-way.
pub(super) async fn report_unavailable<F: AdminFactory>(
    topic: &Topic,
    ctx: &Context<F>,
    namespace: &str,
    why: Unavailable,
    progress: Option<(Option<&ObservedTopic>, BTreeSet<String>)>,
) -> Result<Action, Error> {
    tracing::warn!(topic = %topic.name_any(), namespace, reason = why.reason, message = %why.message, "topic not reconciled");
    ctx.metrics.reconcile_error(TOPIC_KIND, why.reason);
    ctx.publish(
        &topic.object_ref(&()),
        EventType::Warning,
        why.reason,
        "Reconcile",
        why.message.clone(),
    )
    .await;
    let mut status = topic.status.clone().unwrap_or_default();
    status.observed_generation = topic.metadata.generation;
    if let Some((observed, managed)) = progress {
        record_observed(&mut status, observed);
        status.managed_config_keys = managed.into_iter().collect();
    }
    set_condition(
        &mut status.conditions,
        "Ready",
        false,
        why.reason,
        why.message.clone(),
        topic.metadata.generation,
        ctx.clock.now(),
    );
    status.message = Some(why.message);
    patch_status(ctx, namespace, topic, &status).await?;
    Ok(Action::requeue(why.retry))
}

/// Writes `Ready=False` with `reason` for a state the operator waits out without touching the
/// Kafka topic (a conflict, a changed topic id, letting go). The Event goes out only when the
/// reason is new, so a state that lasts does not repeat it on every pass.
pub(super) async fn report_held<F: AdminFactory>(
    topic: &Topic,
    ctx: &Context<F>,
    namespace: &str,
    reason: &'static str,
    event_type: EventType,
    message: String,
) -> Result<(), Error> {
    let mut status = topic.status.clone().unwrap_or_default();
    let already = find(&status.conditions, "Ready")
        .is_some_and(|c| c.status == "False" && c.reason == reason);
    if !already {
        ctx.publish(
            &topic.object_ref(&()),
            event_type,
            reason,
            "Hold",
            message.clone(),
        )
        .await;
    }
    if event_type == EventType::Warning {
        ctx.metrics.reconcile_error(TOPIC_KIND, reason);
    }
    status.observed_generation = topic.metadata.generation;
    set_condition(
        &mut status.conditions,
        "Ready",
        false,
        reason,
        message.clone(),
        topic.metadata.generation,
        ctx.clock.now(),
    );
    status.message = Some(message);
    patch_status(ctx, namespace, topic, &status).await
}

/// Server-side applies `status` as the Topic's status.
pub(super) async fn patch_status<F>(
    ctx: &Context<F>,
    namespace: &str,
    topic: &Topic,
    status: &TopicStatus,
) -> Result<(), Error> {
    let api: Api<Topic> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = json!({
        "apiVersion": Topic::api_version(&()),
        "kind": Topic::kind(&()),
        "status": status,
    });
    api.patch_status(
        &topic.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(patch),
    )
    .await
    .map_err(Error::kube(format!(
        "patch status of Topic {namespace}/{}",
        topic.name_any()
    )))?;
    Ok(())
}

/// Removes the `strom.io/topic` finalizer outside a deletion (letting go of an unmanaged
/// topic). The merge patch carries the `resourceVersion`, so it fails rather than drop a
/// finalizer someone else added meanwhile.
pub(super) async fn remove_finalizer<F>(
    ctx: &Context<F>,
    namespace: &str,
    topic: &Topic,
) -> Result<(), Error> {
    let remaining: Vec<&String> = topic
        .finalizers()
        .iter()
        .filter(|f| *f != TOPIC_FINALIZER)
        .collect();
    let api: Api<Topic> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = json!({
        "metadata": {
            "resourceVersion": topic.resource_version(),
            "finalizers": remaining,
        }
    });
    api.patch(
        &topic.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await
    .map_err(Error::kube(format!(
        "remove the finalizer of Topic {namespace}/{}",
        topic.name_any()
    )))?;
    Ok(())
}

/// Sets the Ready condition a topic pass ends with, the same in both runtimes: refused (the
/// first refusal's reason, every refusal's message), a replication-factor change in progress,
/// or ready. `existed`: the topic was there before this pass (not created by it).
pub(crate) fn set_pass_outcome(
    status: &mut TopicStatus,
    name: &str,
    existed: bool,
    refusals: &[(&'static str, String)],
    changing: Option<String>,
    generation: Option<i64>,
    now: Timestamp,
) {
    if let Some((reason, _)) = refusals.first() {
        let message = refusals
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        set_condition(
            &mut status.conditions,
            "Ready",
            false,
            reason,
            message.clone(),
            generation,
            now,
        );
        status.message = Some(message);
    } else if let Some(message) = changing {
        status.message = None;
        set_condition(
            &mut status.conditions,
            "Ready",
            false,
            "ReplicationFactorChanging",
            message,
            generation,
            now,
        );
    } else {
        status.message = None;
        let message = if existed {
            format!(
                "topic {name} has {} partitions, replication factor {} and the declared configs",
                status.partitions.unwrap_or_default(),
                status.replication_factor.unwrap_or_default()
            )
        } else {
            format!("topic {name} was created")
        };
        set_condition(
            &mut status.conditions,
            "Ready",
            true,
            "Ready",
            message,
            generation,
            now,
        );
    }
}
