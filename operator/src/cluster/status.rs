//! The Cluster status as a pure function of the spec, the StatefulSet and the broker pods.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use strom_crds::Cluster;
use strom_crds::cluster::{BrokerStatus, ClusterStatus, OperationKind, OperationStatus};

use super::builders::{VERSION_LABEL, bootstrap_address, stateful_set_name};
use crate::conditions::set_condition;

/// Label the StatefulSet controller puts on each pod with the template revision it runs.
const REVISION_LABEL: &str = "controller-revision-hash";

/// What was observed of a cluster's workload in one pass.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The broker StatefulSet, when it exists.
    pub stateful_set: Option<&'a StatefulSet>,
    /// The cluster's broker pods.
    pub pods: &'a [Pod],
}

/// The status to write for `cluster` given what was observed, carrying over condition
/// transition times and the running operation from the previous status.
pub fn cluster_status(cluster: &Cluster, observed: Observed<'_>, now: Timestamp) -> ClusterStatus {
    let previous = cluster.status.clone().unwrap_or_default();
    let generation = cluster.metadata.generation;
    let replicas = cluster.spec.replicas;
    let name = cluster.name_any();
    let prefix = format!("{}-", stateful_set_name(&name));

    let mut brokers: Vec<BrokerStatus> = observed
        .pods
        .iter()
        .filter_map(|pod| {
            let pod_name = pod.name_any();
            let id = pod_name.strip_prefix(&prefix)?.parse::<i32>().ok()?;
            Some(BrokerStatus {
                id,
                pod: pod_name,
                version: pod.labels().get(VERSION_LABEL).cloned(),
                ready: pod_ready(pod),
            })
        })
        .collect();
    brokers.sort_by_key(|b| b.id);

    let ready_replicas = i32::try_from(
        brokers
            .iter()
            .filter(|b| b.ready && b.id < replicas)
            .count(),
    )
    .unwrap_or(i32::MAX);
    let extra = brokers.iter().filter(|b| b.id >= replicas).count();
    let update_revision = observed
        .stateful_set
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.update_revision.clone());
    let outdated = match &update_revision {
        Some(revision) => observed
            .pods
            .iter()
            .filter(|p| {
                p.labels()
                    .get(REVISION_LABEL)
                    .is_some_and(|r| r != revision)
            })
            .count(),
        None => 0,
    };

    let all_ready = ready_replicas == replicas && extra == 0;
    let operation_kind = if all_ready {
        None
    } else if extra > 0 {
        Some(OperationKind::ScaleDown)
    } else if let Some(op) = &previous.operation {
        Some(op.kind)
    } else if previous.ready_replicas == 0 {
        Some(OperationKind::Provisioning)
    } else if replicas > previous.replicas {
        Some(OperationKind::ScaleUp)
    } else {
        // Brokers that were ready went down without a change asking for it.
        None
    };
    let operation = operation_kind.map(|kind| {
        let started_at = previous
            .operation
            .as_ref()
            .filter(|op| op.kind == kind)
            .map_or(Time(now), |op| op.started_at.clone());
        let (completed_steps, total_steps, message) = match kind {
            OperationKind::ScaleDown => (
                0,
                i32::try_from(extra).unwrap_or(i32::MAX),
                format!("{extra} broker(s) above spec.replicas={replicas} are still running"),
            ),
            _ => (
                ready_replicas,
                replicas,
                format!("{ready_replicas}/{replicas} brokers ready"),
            ),
        };
        OperationStatus {
            kind,
            started_at,
            completed_steps,
            total_steps,
            message: Some(message),
        }
    });

    let mut conditions = previous.conditions.clone();
    if all_ready {
        set_condition(
            &mut conditions,
            "Ready",
            true,
            "BrokersReady",
            format!("{replicas}/{replicas} brokers ready"),
            generation,
            now,
        );
    } else {
        set_condition(
            &mut conditions,
            "Ready",
            false,
            "BrokersNotReady",
            format!("{ready_replicas}/{replicas} brokers ready"),
            generation,
            now,
        );
    }
    match (&operation, cluster.spec.paused) {
        (_, true) => set_condition(
            &mut conditions,
            "Progressing",
            false,
            "Paused",
            "spec.paused is true: the operator changes nothing",
            generation,
            now,
        ),
        (Some(op), false) => {
            let message = op.message.clone().unwrap_or_default();
            set_condition(
                &mut conditions,
                "Progressing",
                true,
                op.kind.as_str(),
                message,
                generation,
                now,
            );
        }
        (None, false) if outdated > 0 => set_condition(
            &mut conditions,
            "Progressing",
            false,
            "RestartPending",
            format!(
                "{outdated} broker pod(s) run an older template; with updateStrategy OnDelete they pick up the change when restarted"
            ),
            generation,
            now,
        ),
        (None, false) => set_condition(
            &mut conditions,
            "Progressing",
            false,
            "Idle",
            "no operation in progress",
            generation,
            now,
        ),
    }
    if !all_ready && operation.is_none() {
        set_condition(
            &mut conditions,
            "Degraded",
            true,
            "BrokersUnavailable",
            format!("{ready_replicas}/{replicas} brokers ready and no operation explains it"),
            generation,
            now,
        );
    } else {
        set_condition(
            &mut conditions,
            "Degraded",
            false,
            "AsExpected",
            "all brokers are where the spec wants them",
            generation,
            now,
        );
    }

    ClusterStatus {
        conditions,
        observed_generation: generation,
        replicas,
        ready_replicas,
        bootstrap_servers: cluster
            .namespace()
            .map(|ns| bootstrap_address(&name, &ns, cluster.spec.listeners.port)),
        brokers,
        operation,
    }
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use kube::api::ObjectMeta;

    use super::*;
    use crate::conditions::find;
    use crate::fixtures::minimal_cluster;

    fn pod(name: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".to_owned(),
                    status: if ready { "True" } else { "False" }.to_owned(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).expect("valid timestamp")
    }

    /// The status of `cluster` with these pods and no StatefulSet observed yet.
    fn status_with(cluster: &Cluster, pods: &[Pod]) -> ClusterStatus {
        cluster_status(
            cluster,
            Observed {
                stateful_set: None,
                pods,
            },
            now(),
        )
    }

    #[test]
    fn new_cluster_is_provisioning() {
        let cluster = minimal_cluster();
        let pods = [pod("demo-broker-1", true), pod("demo-broker-0", false)];
        let status = status_with(&cluster, &pods);
        assert_eq!(status.ready_replicas, 1);
        assert_eq!(
            status.brokers.iter().map(|b| b.id).collect::<Vec<_>>(),
            vec![0, 1]
        );
        let op = status.operation.expect("an operation runs");
        assert_eq!(
            (op.kind, op.completed_steps, op.total_steps),
            (OperationKind::Provisioning, 1, 3)
        );
        assert_eq!(
            find(&status.conditions, "Ready").map(|c| c.status.as_str()),
            Some("False")
        );
        assert_eq!(
            find(&status.conditions, "Progressing").map(|c| c.reason.as_str()),
            Some("Provisioning")
        );
        assert_eq!(
            status.bootstrap_servers.as_deref(),
            Some("demo-bootstrap.kafka.svc:9092")
        );
    }

    #[test]
    fn all_ready_cluster_is_ready_and_idle() {
        let cluster = minimal_cluster();
        let pods = [
            pod("demo-broker-0", true),
            pod("demo-broker-1", true),
            pod("demo-broker-2", true),
        ];
        let status = status_with(&cluster, &pods);
        assert!(status.operation.is_none());
        assert_eq!(
            find(&status.conditions, "Ready").map(|c| c.status.as_str()),
            Some("True")
        );
        assert_eq!(
            find(&status.conditions, "Degraded").map(|c| c.status.as_str()),
            Some("False")
        );
    }

    #[test]
    fn broker_lost_after_ready_is_degraded() {
        let mut cluster = minimal_cluster();
        let pods = [
            pod("demo-broker-0", true),
            pod("demo-broker-1", true),
            pod("demo-broker-2", true),
        ];
        cluster.status = Some(status_with(&cluster, &pods));
        let pods = [
            pod("demo-broker-0", true),
            pod("demo-broker-1", false),
            pod("demo-broker-2", true),
        ];
        let status = status_with(&cluster, &pods);
        assert!(status.operation.is_none());
        assert_eq!(
            find(&status.conditions, "Degraded").map(|c| c.reason.as_str()),
            Some("BrokersUnavailable")
        );
    }
}
