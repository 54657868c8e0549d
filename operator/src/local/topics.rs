//! The Topics of the local manifest, reconciled with the Topic reconciler's own planner
//! ([`crate::topic::plan`]), admin requests and replication-factor changes
//! ([`crate::topic::replicate`]), their status kept in status files instead of the API server
//! and the bytes their moves still copy in the operator metrics, as on Kubernetes.
//!
//! As the Kubernetes Topic reconciler runs beside the Cluster's, the Topics are reconciled in
//! every pass whose admin observation succeeded, whatever operation the Cluster runs (a scale,
//! a drain, a roll); only the first provisioning waits, while the brokers a topic's replicas
//! go to are not all there. A topic created during a drain is placed by the brokers as on
//! Kubernetes (over the registered, unfenced brokers, so possibly on one being drained): the
//! drain moves every partition with a replica on a broker it removes, those created after it
//! began included, and stops the brokers only once none holds any.

use k8s_openapi::jiff::Timestamp;
use strom_admin::BrokerAdmin;
use strom_crds::{Cluster, Topic, TopicStatus};

use strom_crds::cluster::{OperationKind, OperationStatus};

use crate::conditions::set_condition;
use crate::day2::Observed;
use crate::day2::engine::DayTwoAdmin;
use crate::metrics::Metrics;
use crate::topic::plan::{DesiredTopic, plan};
use crate::topic::replicate::{record_replication, replicate, replication_target};

use crate::topic::{
    execute, operation_name, previously_managed, record_observed, set_pass_outcome,
};

/// Whether this pass reconciles the Topics: the admin API answered with an active
/// controller, and the cluster is not being provisioned (`operation` is the one this pass
/// planned).
pub fn topics_reconciled(observed: &Observed, operation: Option<&OperationStatus>) -> bool {
    let answered = observed
        .admin
        .as_ref()
        .is_some_and(|admin| admin.controller.is_some());
    let provisioning = operation.is_some_and(|op| op.kind == OperationKind::Provisioning);
    answered && !provisioning
}

/// One pass over `topic` (its `status` the one last written) of `cluster`: create it, grow
/// it, converge its configs, move its replicas to a new replication factor; the new status says
/// what Kafka has, how far a factor change has come and what was refused, and `metrics` the
/// bytes its moves still copy (`cluster_key`: the Cluster's `namespace/name`).
pub async fn reconcile_topic<A: BrokerAdmin + DayTwoAdmin>(
    admin: &A,
    cluster: &Cluster,
    topic: &Topic,
    metrics: &Metrics,
    cluster_key: &str,
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
    let target = replication_target(
        topic.spec.replication_factor,
        planned.replication_factor.is_some(),
        &status,
    );
    let replication = match (target, &current) {
        (Some(rf), Some(t)) => {
            let rf_count = usize::try_from(rf).unwrap_or(0);
            let min_insync = t.configs.get("min.insync.replicas").map(String::as_str);
            let finishing = status.target_replication_factor.is_some();
            match replicate(admin, cluster, &name, rf_count, min_insync, finishing).await {
                Ok(outcome) => Some((rf, outcome)),
                Err(error) => {
                    let reason = match &error {
                        crate::error::Error::Refused { .. } => "KafkaRejected",
                        _ => "ClusterUnreachable",
                    };
                    return fail(
                        status,
                        reason,
                        format!("replication-factor change of topic {name}: {error}"),
                    );
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
    report.publish_bytes_remaining(
        metrics,
        cluster_key,
        topic.metadata.name.as_deref().unwrap_or_default(),
    );
    if report.started > 0 {
        tracing::info!(topic = %name, partitions = report.started, "reassignment started");
    }
    if report.finished {
        tracing::info!(topic = %name, "replication factor changed on every partition");
    }
    let mut refusals: Vec<(&'static str, String)> = planned
        .refusals
        .iter()
        .map(|r| (r.reason(), r.message()))
        .collect();
    refusals.extend(report.refusal);
    set_pass_outcome(
        &mut status,
        &name,
        current.is_some(),
        &refusals,
        report.changing,
        generation,
        now,
    );
    status
}
