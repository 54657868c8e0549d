//! The Topics of the local manifest, reconciled with the Topic reconciler's own planner
//! ([`crate::topic::plan`]) and admin requests, their status kept in status files instead of
//! the API server.

use k8s_openapi::jiff::Timestamp;
use strom_admin::BrokerAdmin;
use strom_crds::{Topic, TopicStatus};

use crate::conditions::set_condition;
use crate::topic::plan::{DesiredTopic, plan};
use crate::topic::{execute, operation_name, previously_managed, record_observed};

/// One pass over `topic` (its `status` the one last written): create it, grow it, converge
/// its configs; the new status says what Kafka has and what was refused.
pub async fn reconcile_topic<A: BrokerAdmin>(
    admin: &A,
    topic: &Topic,
    now: Timestamp,
) -> TopicStatus {
    let name = topic.topic_name().to_owned();
    let generation = topic.metadata.generation;
    let mut status = topic.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    let fail = |mut status: TopicStatus, reason: &str, message: String| {
        tracing::warn!(topic = %name, reason, %message, "topic not reconciled");
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
        status
    };
    let observed = match admin.describe_topic(&name).await {
        Ok(observed) => observed,
        Err(error) => {
            return fail(
                status,
                "ClusterUnreachable",
                format!("DescribeTopic {name}: {error}"),
            );
        }
    };
    let desired = DesiredTopic {
        name: name.clone(),
        partitions: topic.spec.partitions,
        replication_factor: topic.spec.replication_factor,
        configs: topic.spec.config.clone(),
    };
    let managed_before = previously_managed(topic);
    let planned = plan(&desired, observed.as_ref(), managed_before.as_ref());
    for action in &planned.actions {
        if let Err(error) = execute(admin, &name, action).await {
            record_observed(&mut status, observed.as_ref());
            let mut managed = managed_before.clone().unwrap_or_default();
            managed.extend(planned.managed_config_keys.iter().cloned());
            status.managed_config_keys = managed.into_iter().collect();
            let reason = if error.kafka_error().is_some() {
                "KafkaRejected"
            } else {
                "ClusterUnreachable"
            };
            return fail(
                status,
                reason,
                format!("{} on topic {name}: {error}", operation_name(action)),
            );
        }
        tracing::info!(topic = %name, action = operation_name(action), "topic changed");
    }
    let current = if planned.actions.is_empty() {
        observed
    } else {
        match admin.describe_topic(&name).await {
            Ok(current) => current,
            Err(error) => {
                return fail(
                    status,
                    "ClusterUnreachable",
                    format!("DescribeTopic {name}: {error}"),
                );
            }
        }
    };
    status.managed_config_keys = planned.managed_config_keys.iter().cloned().collect();
    record_observed(&mut status, current.as_ref());
    if planned.refusals.is_empty() {
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
            generation,
            now,
        );
    } else {
        let message = planned
            .refusals
            .iter()
            .map(|r| r.message())
            .collect::<Vec<_>>()
            .join("; ");
        set_condition(
            &mut status.conditions,
            "Ready",
            false,
            planned.refusals[0].reason(),
            message.clone(),
            generation,
            now,
        );
        status.message = Some(message);
    }
    status
}
