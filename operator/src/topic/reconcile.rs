//! One reconcile pass of a Topic: who owns the Kafka topic, whether it is still the one this
//! Topic recorded, then plan and act.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use strom_admin::{AdminError, BrokerAdmin};
use strom_crds::topic::TOPIC_FINALIZER;
use strom_crds::{Cluster, Topic};

use super::claim::claimed_by;
use super::cleanup::{cleanup, let_go, namespace_topics};
use super::identity::{Identity, identity};
use super::plan::{DesiredTopic, TopicAction, plan};
use super::replicate::{record_replication, replicate, replication_target};
use super::status::{
    RETRY_UNAVAILABLE, Unavailable, patch_status, record_observed, report_held, report_unavailable,
    set_pass_outcome,
};
use crate::cluster::builders::bootstrap_address;
use crate::context::{AdminFactory, Context};
use crate::error::Error;

/// Kind label of the Topic reconciler in metrics and logs.
pub const TOPIC_KIND: &str = "Topic";

/// How often a converged topic is checked for drift (configs changed by hand).
const RESYNC: Duration = Duration::from_secs(300);
/// How often a replication-factor change in progress is checked.
const RETRY_REPLICATION: Duration = Duration::from_secs(10);
/// How often a Topic in conflict checks whether the Topic that owns its Kafka topic is gone.
const RETRY_CONFLICT: Duration = Duration::from_secs(60);

/// Reconciles one Topic: through the finalizer, so a deletion becomes a cleanup. An unmanaged
/// Topic that is not being deleted is let go of instead (its finalizer removed).
pub async fn reconcile<F: AdminFactory>(
    topic: Arc<Topic>,
    ctx: Arc<Context<F>>,
) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started(TOPIC_KIND);
    let namespace = topic.namespace().ok_or_else(|| Error::MissingNamespace {
        kind: TOPIC_KIND,
        name: topic.name_any(),
    })?;
    if !topic.is_managed() && topic.metadata.deletion_timestamp.is_none() {
        return let_go(&topic, &ctx, &namespace).await;
    }
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

/// The Cluster the Topic names, if it exists.
pub(super) async fn referenced_cluster<F: AdminFactory>(
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
    let topics = namespace_topics(ctx, namespace).await?;
    if let Some(owner) = claimed_by(topic, &topics) {
        let message = format!(
            "Topic {} already manages Kafka topic {name} on Cluster {cluster_name}: this Topic changes \
             nothing, and deleting it does not delete the topic. Delete this Topic or give it another \
             spec.topicName",
            owner.name_any()
        );
        report_held(
            topic,
            ctx,
            namespace,
            "ResourceConflict",
            EventType::Warning,
            message,
        )
        .await?;
        return Ok(Action::requeue(RETRY_CONFLICT));
    }
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

    let recorded_id = topic.status.as_ref().and_then(|s| s.topic_id.clone());
    let check = observed.as_ref().map(|t| {
        identity(
            recorded_id.as_deref(),
            &t.topic_id,
            topic.accepted_topic_id(),
        )
    });
    if let Some(message) = check.as_ref().and_then(|c| c.changed_message(&name)) {
        report_held(
            topic,
            ctx,
            namespace,
            "TopicIdChanged",
            EventType::Warning,
            message,
        )
        .await?;
        return Ok(Action::requeue(RESYNC));
    }
    let accepted = matches!(check, Some(Identity::Accepted { .. }));

    let desired = DesiredTopic {
        name: name.clone(),
        partitions: topic.spec.partitions,
        replication_factor: topic.spec.replication_factor,
        configs: topic.spec.config.clone(),
    };
    // An accepted new topic is another topic: its configs were never ours.
    let previously_managed = previously_managed(topic).filter(|_| !accepted);
    let plan = plan(&desired, observed.as_ref(), previously_managed.as_ref());
    let reference = topic.object_ref(&());

    if let Some(Identity::Accepted { recorded }) = &check {
        ctx.publish(
            &reference,
            EventType::Normal,
            "TopicIdAccepted",
            "Adopt",
            format!(
                "topic {name} was re-created outside this Topic (id {recorded} before); the new topic \
                 is accepted and now managed by this Topic"
            ),
        )
        .await;
    } else if plan.adopts && observed.is_some() {
        ctx.publish(
            &reference,
            EventType::Normal,
            "Adopted",
            "Adopt",
            format!("topic {name} already existed; it is now managed by this Topic"),
        )
        .await;
    } else if observed.is_none()
        && let Some(recorded) = &recorded_id
    {
        ctx.publish(
            &reference,
            EventType::Warning,
            "Recreated",
            "Create",
            format!(
                "topic {name} (id {recorded}) was deleted outside this Topic; it is created again as \
                 the spec says"
            ),
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

    let target = replication_target(
        topic.spec.replication_factor,
        plan.replication_factor.is_some(),
        &status,
    );
    let replication = match (target, &current) {
        (Some(rf), Some(t)) => {
            let rf_count = usize::try_from(rf).unwrap_or(0);
            let min_insync = t.configs.get("min.insync.replicas").map(String::as_str);
            let finishing = status.target_replication_factor.is_some();
            match replicate(&admin, &cluster, &name, rf_count, min_insync, finishing).await {
                Ok(outcome) => Some((rf, outcome)),
                Err(error) => {
                    let why = Unavailable::from_engine(&bootstrap, &error);
                    return report_unavailable(
                        topic,
                        ctx,
                        namespace,
                        why,
                        Some((current.as_ref(), plan.managed_config_keys.clone())),
                    )
                    .await;
                }
            }
        }
        _ => None,
    };
    let report = record_replication(
        &mut status,
        &name,
        replication.as_ref().map(|(rf, outcome)| (*rf, outcome)),
    );
    if report.started > 0
        && let Some((rf, _)) = &replication
    {
        ctx.publish(
            &reference,
            EventType::Normal,
            "ReassignmentStarted",
            "Reassign",
            format!(
                "topic {name}: moving {} partitions to replication factor {rf}",
                report.started
            ),
        )
        .await;
    }
    if report.finished
        && let Some((rf, _)) = &replication
    {
        ctx.publish(
            &reference,
            EventType::Normal,
            "ReplicationFactorChanged",
            "Reassign",
            format!("topic {name} now has replication factor {rf} on every partition"),
        )
        .await;
    }
    report.publish_bytes_remaining(
        &ctx.metrics,
        &format!("{namespace}/{cluster_name}"),
        &topic.name_any(),
    );
    let requeue = if report.changing.is_some() {
        RETRY_REPLICATION
    } else {
        RESYNC
    };
    let replication_refusal = report.refusal;
    let changing_message = report.changing;

    let mut refusals: Vec<(&'static str, String)> = plan
        .refusals
        .iter()
        .map(|r| (r.reason(), r.message()))
        .collect();
    refusals.extend(replication_refusal);
    for (reason, note) in &refusals {
        ctx.metrics.reconcile_error(TOPIC_KIND, "refused");
        ctx.publish(
            &reference,
            EventType::Warning,
            reason,
            "Refuse",
            note.clone(),
        )
        .await;
    }
    set_pass_outcome(
        &mut status,
        &name,
        current.is_some(),
        &refusals,
        changing_message,
        topic.metadata.generation,
        ctx.clock.now(),
    );
    patch_status(ctx, namespace, topic, &status).await?;
    Ok(Action::requeue(requeue))
}

/// Keys managed after the last pass that saw the topic; `None` before that (new or adopted).
pub(crate) fn previously_managed(topic: &Topic) -> Option<BTreeSet<String>> {
    topic
        .status
        .as_ref()
        .filter(|s| s.partitions.is_some())
        .map(|s| s.managed_config_keys.iter().cloned().collect())
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
