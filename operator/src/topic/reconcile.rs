//! One reconcile pass of a Topic.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use strom_admin::{AdminError, BrokerAdmin, ObservedTopic};
use strom_crds::topic::{DeletionPolicy, TOPIC_FINALIZER};
use strom_crds::{Cluster, Topic, TopicStatus};

use super::plan::{DesiredTopic, TopicAction, plan};
use crate::cluster::builders::{FIELD_MANAGER, bootstrap_address};
use crate::conditions::set_condition;
use crate::context::{AdminFactory, Context};
use crate::error::Error;

/// Kind label of the Topic reconciler in metrics and logs.
pub const TOPIC_KIND: &str = "Topic";

/// How often a converged topic is checked for drift (configs changed by hand).
const RESYNC: Duration = Duration::from_secs(300);
/// Retry delay when the Cluster is missing or unreachable.
const RETRY_UNAVAILABLE: Duration = Duration::from_secs(30);
/// Retry delay after Kafka rejected a request (bad config value, policy violation).
const RETRY_REJECTED: Duration = Duration::from_secs(120);

/// Reconciles one Topic: through the finalizer, so a deletion becomes a cleanup.
pub async fn reconcile<F: AdminFactory>(
    topic: Arc<Topic>,
    ctx: Arc<Context<F>>,
) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started(TOPIC_KIND);
    let namespace = topic.namespace().ok_or_else(|| Error::MissingNamespace {
        kind: TOPIC_KIND,
        name: topic.name_any(),
    })?;
    let api: Api<Topic> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&api, TOPIC_FINALIZER, topic, |event| async {
        match event {
            FinalizerEvent::Apply(topic) => apply(&topic, &ctx, &namespace).await,
            FinalizerEvent::Cleanup(topic) => cleanup(&topic, &ctx, &namespace).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Why a pass could not reach the topic, with the condition reason it gets.
struct Unavailable {
    reason: &'static str,
    message: String,
    retry: Duration,
}

impl Unavailable {
    fn from_admin(operation: &str, bootstrap: &str, error: &AdminError) -> Self {
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

/// The Cluster the Topic names, if it exists.
async fn referenced_cluster<F: AdminFactory>(
    topic: &Topic,
    ctx: &Context<F>,
    namespace: &str,
) -> Result<Option<Cluster>, Error> {
    let cluster_name = &topic.spec.cluster_ref.name;
    let clusters: Api<Cluster> = Api::namespaced(ctx.client.clone(), namespace);
    clusters
        .get_opt(cluster_name)
        .await
        .map_err(Error::kube(format!(
            "get Cluster {namespace}/{cluster_name}"
        )))
}

async fn apply<F: AdminFactory>(
    topic: &Topic,
    ctx: &Context<F>,
    namespace: &str,
) -> Result<Action, Error> {
    let name = topic.topic_name().to_owned();
    let cluster_name = &topic.spec.cluster_ref.name;
    let cluster = referenced_cluster(topic, ctx, namespace).await?;
    let Some(cluster) = cluster else {
        let why = Unavailable {
            reason: "ClusterNotFound",
            message: format!(
                "Cluster {cluster_name} does not exist in namespace {namespace}: create it or fix spec.clusterRef.name"
            ),
            retry: RETRY_UNAVAILABLE,
        };
        return report_unavailable(topic, ctx, namespace, why, None).await;
    };
    let bootstrap = bootstrap_address(cluster_name, namespace, cluster.spec.listeners.port);
    let admin = match ctx.admin.connect(&bootstrap).await {
        Ok(admin) => admin,
        Err(error) => {
            let why = Unavailable::from_admin("connect", &bootstrap, &error);
            return report_unavailable(topic, ctx, namespace, why, None).await;
        }
    };
    let observed = match admin.describe_topic(&name).await {
        Ok(observed) => observed,
        Err(error) => {
            let why = Unavailable::from_admin("DescribeTopic", &bootstrap, &error);
            return report_unavailable(topic, ctx, namespace, why, None).await;
        }
    };

    let desired = DesiredTopic {
        name: name.clone(),
        partitions: topic.spec.partitions,
        replication_factor: topic.spec.replication_factor,
        configs: topic.spec.config.clone(),
    };
    let previously_managed = previously_managed(topic);
    let plan = plan(&desired, observed.as_ref(), previously_managed.as_ref());
    let reference = topic.object_ref(&());

    if plan.adopts && observed.is_some() {
        ctx.publish(
            &reference,
            EventType::Normal,
            "Adopted",
            "Adopt",
            format!("topic {name} already existed; it is now managed by this Topic"),
        )
        .await;
    }
    for action in &plan.actions {
        if let Err(error) = execute(&admin, &name, action).await {
            let operation = operation_name(action);
            let why = Unavailable::from_admin(operation, &bootstrap, &error);
            // Keep tracking the old and the new keys: a key half-way through removal must still
            // be reset on the next pass.
            let mut managed = previously_managed.clone().unwrap_or_default();
            managed.extend(plan.managed_config_keys.iter().cloned());
            return report_unavailable(
                topic,
                ctx,
                namespace,
                why,
                Some((observed.as_ref(), managed)),
            )
            .await;
        }
        let (reason, note) = describe_action(&name, action);
        ctx.publish(
            &reference,
            EventType::Normal,
            reason,
            operation_name(action),
            note,
        )
        .await;
    }

    // Read back what Kafka now has, so the status reports facts (e.g. the replication factor a
    // broker default gave) rather than intentions.
    let current = if plan.actions.is_empty() {
        observed
    } else {
        match admin.describe_topic(&name).await {
            Ok(current) => current,
            Err(error) => {
                let why = Unavailable::from_admin("DescribeTopic", &bootstrap, &error);
                let mut managed = previously_managed.clone().unwrap_or_default();
                managed.extend(plan.managed_config_keys.iter().cloned());
                return report_unavailable(topic, ctx, namespace, why, Some((None, managed))).await;
            }
        }
    };

    let mut status = topic.status.clone().unwrap_or_default();
    status.observed_generation = topic.metadata.generation;
    status.managed_config_keys = plan.managed_config_keys.iter().cloned().collect();
    record_observed(&mut status, current.as_ref());
    let now = ctx.clock.now();
    if plan.refusals.is_empty() {
        status.message = None;
        let message = match &current {
            Some(t) => format!(
                "topic {name} has {} partitions, replication factor {} and the declared configs",
                t.partitions, t.replication_factor
            ),
            None => format!("topic {name} was created"),
        };
        set_condition(
            &mut status.conditions,
            "Ready",
            true,
            "Ready",
            message,
            topic.metadata.generation,
            now,
        );
    } else {
        let message = plan
            .refusals
            .iter()
            .map(|r| r.message())
            .collect::<Vec<_>>()
            .join("; ");
        for refusal in &plan.refusals {
            ctx.metrics.reconcile_error(TOPIC_KIND, "refused");
            ctx.publish(
                &reference,
                EventType::Warning,
                refusal.reason(),
                "Refuse",
                refusal.message(),
            )
            .await;
        }
        set_condition(
            &mut status.conditions,
            "Ready",
            false,
            plan.refusals[0].reason(),
            message.clone(),
            topic.metadata.generation,
            now,
        );
        status.message = Some(message);
    }
    patch_status(ctx, namespace, topic, &status).await?;
    Ok(Action::requeue(RESYNC))
}

async fn cleanup<F: AdminFactory>(
    topic: &Topic,
    ctx: &Context<F>,
    namespace: &str,
) -> Result<Action, Error> {
    let name = topic.topic_name().to_owned();
    let reference = topic.object_ref(&());
    if topic.spec.deletion_policy == DeletionPolicy::Retain {
        ctx.publish(
            &reference,
            EventType::Normal,
            "Retained",
            "Delete",
            format!("deletionPolicy is Retain: topic {name} is kept"),
        )
        .await;
        return Ok(Action::await_change());
    }
    let cluster_name = &topic.spec.cluster_ref.name;
    let cluster = referenced_cluster(topic, ctx, namespace).await?;
    let Some(cluster) = cluster else {
        // The brokers went with the Cluster; there is no topic left to delete.
        ctx.publish(
            &reference,
            EventType::Normal,
            "ClusterGone",
            "Delete",
            format!("Cluster {cluster_name} no longer exists; nothing to delete for topic {name}"),
        )
        .await;
        return Ok(Action::await_change());
    };
    let bootstrap = bootstrap_address(cluster_name, namespace, cluster.spec.listeners.port);
    let result = match ctx.admin.connect(&bootstrap).await {
        Ok(admin) => admin.delete_topic(&name).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => {
            ctx.publish(
                &reference,
                EventType::Normal,
                "Deleted",
                "Delete",
                format!("deleted topic {name}"),
            )
            .await;
            Ok(Action::await_change())
        }
        Err(source) => {
            ctx.publish(
                &reference,
                EventType::Warning,
                "DeleteFailed",
                "Delete",
                format!("cannot delete topic {name} through {bootstrap}: {source}; retrying"),
            )
            .await;
            Err(Error::Admin {
                operation: "DeleteTopics",
                topic: name,
                source,
            })
        }
    }
}

/// Keys managed after the last pass that saw the topic; `None` before that (new or adopted).
pub(crate) fn previously_managed(topic: &Topic) -> Option<BTreeSet<String>> {
    topic
        .status
        .as_ref()
        .filter(|s| s.partitions.is_some())
        .map(|s| s.managed_config_keys.iter().cloned().collect())
}

pub(crate) fn record_observed(status: &mut TopicStatus, observed: Option<&ObservedTopic>) {
    if let Some(t) = observed {
        if !t.topic_id.is_empty() {
            status.topic_id = Some(t.topic_id.clone());
        }
        status.partitions = Some(t.partitions);
        status.replication_factor = Some(t.replication_factor);
    }
}

pub(crate) async fn execute<A: BrokerAdmin>(
    admin: &A,
    name: &str,
    action: &TopicAction,
) -> Result<(), AdminError> {
    match action {
        TopicAction::Create {
            partitions,
            replication_factor,
            configs,
        } => admin
            .create_topic(name, *partitions, *replication_factor, configs)
            .await
            .map(drop),
        TopicAction::CreatePartitions { total } => admin.create_partitions(name, *total).await,
        TopicAction::AlterConfigs { set, delete } => {
            admin.alter_topic_configs(name, set, delete).await
        }
    }
}

pub(crate) fn operation_name(action: &TopicAction) -> &'static str {
    match action {
        TopicAction::Create { .. } => "CreateTopics",
        TopicAction::CreatePartitions { .. } => "CreatePartitions",
        TopicAction::AlterConfigs { .. } => "IncrementalAlterConfigs",
    }
}

fn describe_action(name: &str, action: &TopicAction) -> (&'static str, String) {
    match action {
        TopicAction::Create { partitions, .. } => (
            "Created",
            format!("created topic {name} with {partitions} partitions"),
        ),
        TopicAction::CreatePartitions { total } => (
            "PartitionsIncreased",
            format!("topic {name} now has {total} partitions"),
        ),
        TopicAction::AlterConfigs { set, delete } => {
            let set: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let delete: Vec<&str> = delete.iter().map(String::as_str).collect();
            (
                "ConfigsAltered",
                format!(
                    "topic {name}: set [{}], reset to default [{}]",
                    set.join(", "),
                    delete.join(", ")
                ),
            )
        }
    }
}

/// Writes a `Ready=False` status with `why`, an Event, and requeues after `why.retry`.
/// `progress` carries what is known of the topic when a request failed part-way.
async fn report_unavailable<F: AdminFactory>(
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

async fn patch_status<F>(
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
