//! Letting go of a Kafka topic: a deleted Topic (through the `strom.io/topic` finalizer) and an
//! unmanaged one.
//!
//! A deleted Topic with `deletionPolicy: Delete` deletes its Kafka topic, except when the
//! topic is not its own to delete:
//! - it is unmanaged, or another Topic claimed the Kafka topic first (`ResourceConflict`), or
//!   another Topic names it too and takes it over: the topic is kept;
//! - the Kafka topic's id is not the recorded one (re-created by someone else): kept;
//! - the Cluster is gone: its brokers went with it, there is nothing left to ask;
//! - the Cluster is being deleted and its brokers no longer answer: the finalizer is released
//!   [`FINALIZER_DEADLINE`] after the Topic's deletion started, so a namespace deletion does
//!   not hang on brokers that are going away.
//!
//! A Topic whose Cluster exists and is not being deleted keeps retrying the deletion: releasing
//! it would leave the Kafka topic behind unseen.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use strom_admin::BrokerAdmin;
use strom_crds::Topic;
use strom_crds::topic::DeletionPolicy;

use super::claim::{claimed_by, other_claimants};
use super::identity::{Identity, identity};
use super::reconcile::referenced_cluster;
use super::status::{remove_finalizer, report_held};
use crate::cluster::builders::bootstrap_address;
use crate::context::{AdminFactory, Context};
use crate::error::Error;

/// How long after a Topic's deletion started the finalizer waits for the brokers of a Cluster
/// that is being deleted, before it is released without deleting the Kafka topic.
pub const FINALIZER_DEADLINE: Duration = Duration::from_secs(300);

/// Time left before the finalizer deadline of a Topic whose deletion started at `deleted_at`;
/// `None` once it has passed.
pub fn deadline_remaining(deleted_at: Timestamp, now: Timestamp) -> Option<Duration> {
    let elapsed = now.duration_since(deleted_at);
    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
    FINALIZER_DEADLINE
        .checked_sub(elapsed)
        .filter(|left| !left.is_zero())
}

/// The Topics of `namespace`, to tell who owns a Kafka topic.
pub(super) async fn namespace_topics<F>(
    ctx: &Context<F>,
    namespace: &str,
) -> Result<Vec<Topic>, Error> {
    let api: Api<Topic> = Api::namespaced(ctx.client.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .map(|list| list.items)
        .map_err(Error::kube(format!("list Topics in {namespace}")))
}

/// Lets go of an unmanaged Topic that is not being deleted: status `Unmanaged`, finalizer off.
pub(super) async fn let_go<F: AdminFactory>(
    topic: &Topic,
    ctx: &Context<F>,
    namespace: &str,
) -> Result<Action, Error> {
    let message = format!(
        "the Topic is not managed (spec.managed is false or annotation strom.io/managed is \"false\"): \
         Kafka topic {} is neither changed nor deleted by the operator",
        topic.topic_name()
    );
    report_held(
        topic,
        ctx,
        namespace,
        "Unmanaged",
        EventType::Normal,
        message,
    )
    .await?;
    if topic
        .finalizers()
        .iter()
        .any(|f| f == strom_crds::topic::TOPIC_FINALIZER)
    {
        remove_finalizer(ctx, namespace, topic).await?;
    }
    Ok(Action::await_change())
}

/// The finalizer's cleanup: deletes the Kafka topic when it is this Topic's to delete.
/// `Ok` releases the finalizer (the finalizer helper removes it); an error keeps it.
pub(super) async fn cleanup<F: AdminFactory>(
    topic: &Topic,
    ctx: &Context<F>,
    namespace: &str,
) -> Result<Action, Error> {
    let name = topic.topic_name().to_owned();
    let reference = topic.object_ref(&());
    let keep = |reason: &'static str, note: String| async move {
        ctx.publish(
            &topic.object_ref(&()),
            EventType::Normal,
            reason,
            "Delete",
            note,
        )
        .await;
        Ok(Action::await_change())
    };
    if !topic.is_managed() {
        return keep(
            "Unmanaged",
            format!("the Topic is not managed: topic {name} is kept"),
        )
        .await;
    }
    if topic.spec.deletion_policy == DeletionPolicy::Retain {
        return keep(
            "Retained",
            format!("deletionPolicy is Retain: topic {name} is kept"),
        )
        .await;
    }
    let topics = namespace_topics(ctx, namespace).await?;
    if let Some(owner) = claimed_by(topic, &topics) {
        return keep(
            "ResourceConflict",
            format!(
                "Topic {} manages Kafka topic {name}, not this one: the topic is kept",
                owner.name_any()
            ),
        )
        .await;
    }
    if let Some(heir) = other_claimants(topic, &topics).first() {
        return keep(
            "HandedOver",
            format!(
                "Topic {} names Kafka topic {name} too and takes it over: the topic is kept",
                heir.name_any()
            ),
        )
        .await;
    }

    let cluster_name = &topic.spec.cluster_ref.name;
    let Some(cluster) = referenced_cluster(topic, ctx, namespace).await? else {
        return keep(
            "ClusterGone",
            format!("Cluster {cluster_name} no longer exists; nothing to delete for topic {name}"),
        )
        .await;
    };
    let cluster_leaving = cluster.metadata.deletion_timestamp.is_some();
    let bootstrap = bootstrap_address(cluster_name, namespace, cluster.spec.listeners.port);
    let result = match ctx.admin.connect(&bootstrap).await {
        Ok(admin) => delete_own_topic(topic, &admin, &name).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(Deletion::Deleted) => keep("Deleted", format!("deleted topic {name}")).await,
        Ok(Deletion::Missing) => keep("Deleted", format!("topic {name} no longer exists")).await,
        Ok(Deletion::NotOurs(message)) => {
            ctx.publish(
                &reference,
                EventType::Warning,
                "TopicIdChanged",
                "Delete",
                message,
            )
            .await;
            Ok(Action::await_change())
        }
        Err(source) if cluster_leaving => {
            let deleted_at = topic
                .metadata
                .deletion_timestamp
                .as_ref()
                .map_or_else(|| ctx.clock.now(), |t| t.0);
            match deadline_remaining(deleted_at, ctx.clock.now()) {
                Some(left) => {
                    ctx.publish(
                        &reference,
                        EventType::Warning,
                        "DeleteFailed",
                        "Delete",
                        format!(
                            "Cluster {cluster_name} is being deleted and topic {name} cannot be deleted \
                             through {bootstrap}: {source}; retrying for {}s more",
                            left.as_secs()
                        ),
                    )
                    .await;
                    // An error keeps the finalizer; the controller retries with backoff.
                    Err(Error::Admin {
                        operation: "DeleteTopics",
                        topic: name,
                        source,
                    })
                }
                None => {
                    ctx.publish(
                        &reference,
                        EventType::Warning,
                        "FinalizerDeadline",
                        "Delete",
                        format!(
                            "Cluster {cluster_name} is being deleted and its brokers did not delete topic \
                             {name} within {}s ({source}): the Topic is released without deleting it",
                            FINALIZER_DEADLINE.as_secs()
                        ),
                    )
                    .await;
                    Ok(Action::await_change())
                }
            }
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

/// What happened to the Kafka topic of a deleted Topic.
enum Deletion {
    Deleted,
    Missing,
    /// The topic under that name is another one (its id is not the recorded one); kept.
    NotOurs(String),
}

/// Deletes Kafka topic `name` if it still is the one `topic` recorded.
async fn delete_own_topic<A: BrokerAdmin>(
    topic: &Topic,
    admin: &A,
    name: &str,
) -> Result<Deletion, strom_admin::AdminError> {
    let Some(observed) = admin.describe_topic(name).await? else {
        return Ok(Deletion::Missing);
    };
    let recorded = topic.status.as_ref().and_then(|s| s.topic_id.as_deref());
    let check = identity(recorded, &observed.topic_id, topic.accepted_topic_id());
    if let Identity::Changed { recorded, observed } = check {
        return Ok(Deletion::NotOurs(format!(
            "Kafka topic {name} has id {observed}, not the id {recorded} this Topic managed: it was \
             re-created outside this Topic and is kept"
        )));
    }
    admin.delete_topic(name).await?;
    Ok(Deletion::Deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).expect("valid")
    }

    #[test]
    fn the_deadline_runs_five_minutes_from_the_deletion() {
        assert_eq!(
            deadline_remaining(at(1_000), at(1_000)),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            deadline_remaining(at(1_000), at(1_299)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(deadline_remaining(at(1_000), at(1_300)), None);
        assert_eq!(deadline_remaining(at(1_000), at(9_000)), None);
    }

    #[test]
    fn a_clock_behind_the_deletion_waits_the_whole_deadline() {
        assert_eq!(
            deadline_remaining(at(1_000), at(900)),
            Some(Duration::from_secs(300))
        );
    }
}
