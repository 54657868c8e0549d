//! The Cluster status as a pure function of the spec, the StatefulSet, the broker pods and
//! what each broker answered to DescribeCluster.
//!
//! `Ready` needs both: every pod passes its readiness probe, and the brokers form one cluster
//! ([`agreement`]: one cluster id, one active controller, every broker registered and
//! unfenced). A ready pod only says that its own broker serves; brokers that each formed a
//! cluster of their own would all pass.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use strom_crds::Cluster;
use strom_crds::cluster::{BrokerStatus, ClusterStatus, OperationKind, OperationStatus};

use super::agreement::{Agreement, BrokerAnswer, agreement, brokers_without_rack, registration};
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
    /// What each broker pod's broker answered to DescribeCluster.
    pub answers: &'a [BrokerAnswer],
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
            let (registered, rack) = registration(id, observed.answers);
            Some(BrokerStatus {
                id,
                pod: pod_name,
                version: pod.labels().get(VERSION_LABEL).cloned(),
                ready: pod_ready(pod),
                registered,
                rack,
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

    let pods_ready = ready_replicas == replicas && extra == 0;
    let agreement = agreement(replicas, observed.answers);
    let all_ready = pods_ready && matches!(agreement, Agreement::Agreed { .. });
    let not_ready_pods: Vec<String> = (0..replicas)
        .filter(|id| !brokers.iter().any(|b| b.id == *id && b.ready))
        .map(|id| id.to_string())
        .collect();
    let pods_message = if not_ready_pods.is_empty() {
        format!("{ready_replicas}/{replicas} brokers ready")
    } else {
        format!(
            "{ready_replicas}/{replicas} brokers ready; not ready: {}",
            not_ready_pods.join(", ")
        )
    };
    // Why the cluster is not ready, once the pods are: what the brokers disagree on.
    let (wait_reason, wait_message) = match &agreement {
        Agreement::NotAgreed { reason, message } if pods_ready => (*reason, message.clone()),
        _ => ("BrokersNotReady", pods_message.clone()),
    };
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
            _ => (ready_replicas, replicas, wait_message.clone()),
        };
        OperationStatus {
            kind,
            started_at,
            completed_steps,
            total_steps,
            message: Some(message),
            broker: None,
            step: None,
            step_started_at: None,
            attempts: 0,
            done: Vec::new(),
            revision: None,
        }
    });

    let mut conditions = previous.conditions.clone();
    let (cluster_id, controller_id) = match &agreement {
        Agreement::Agreed {
            cluster_id,
            controller_id,
        } => (Some(cluster_id.clone()), Some(*controller_id)),
        Agreement::NotAgreed { .. } => (None, None),
    };
    if all_ready {
        set_condition(
            &mut conditions,
            "Ready",
            true,
            "BrokersReady",
            format!(
                "{replicas}/{replicas} brokers ready, registered and unfenced in cluster {}; active controller: broker {}",
                cluster_id.as_deref().unwrap_or_default(),
                controller_id.unwrap_or_default()
            ),
            generation,
            now,
        );
    } else {
        set_condition(
            &mut conditions,
            "Ready",
            false,
            wait_reason,
            wait_message.clone(),
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
    let without_rack = if all_ready && cluster.spec.rack.is_some() {
        brokers_without_rack(observed.answers)
    } else {
        Vec::new()
    };
    if !all_ready && operation.is_none() {
        let (reason, message) = if pods_ready {
            (wait_reason, wait_message)
        } else {
            (
                "BrokersUnavailable",
                format!("{pods_message}, and no operation explains it"),
            )
        };
        set_condition(
            &mut conditions,
            "Degraded",
            true,
            reason,
            message,
            generation,
            now,
        );
    } else if let (false, Some(rack)) = (without_rack.is_empty(), &cluster.spec.rack) {
        let ids: Vec<String> = without_rack.iter().map(i32::to_string).collect();
        let (who, has, pods) = if ids.len() == 1 {
            ("broker", "has", "its pod carries")
        } else {
            ("brokers", "have", "their pods carry")
        };
        set_condition(
            &mut conditions,
            "Degraded",
            true,
            "RackUnknown",
            format!(
                "{who} {} {has} no broker.rack: {pods} no label {} (Kubernetes 1.35+ copies topology.kubernetes.io/zone and topology.kubernetes.io/region from the node onto pods), so replicas are not placed by rack",
                ids.join(", "),
                rack.topology_key
            ),
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
        cluster_id,
        controller_id,
    }
}

/// Whether the pod's `Ready` condition is true (it passes its readiness probe).
pub(crate) fn pod_ready(pod: &Pod) -> bool {
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
    use crate::fixtures::{cluster_view, minimal_cluster};

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

    /// Brokers 0..3 that agree: cluster `c1`, controller 0, all registered.
    fn agreeing() -> Vec<BrokerAnswer> {
        (0..3)
            .map(|id| BrokerAnswer {
                id,
                result: Ok(cluster_view("c1", Some(0), &[0, 1, 2])),
            })
            .collect()
    }

    /// The status of `cluster` with these pods, brokers that agree, and no StatefulSet
    /// observed yet.
    fn status_with(cluster: &Cluster, pods: &[Pod]) -> ClusterStatus {
        status_answered(cluster, pods, &agreeing())
    }

    fn status_answered(cluster: &Cluster, pods: &[Pod], answers: &[BrokerAnswer]) -> ClusterStatus {
        cluster_status(
            cluster,
            Observed {
                stateful_set: None,
                pods,
                answers,
            },
            now(),
        )
    }

    fn condition(status: &ClusterStatus, type_: &str) -> (String, String, String) {
        let c = find(&status.conditions, type_).expect("condition is set");
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }

    fn ready_pods() -> [Pod; 3] {
        [
            pod("demo-broker-0", true),
            pod("demo-broker-1", true),
            pod("demo-broker-2", true),
        ]
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
        let op = status.operation.clone().expect("an operation runs");
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
            condition(&status, "Ready"),
            (
                "False".to_owned(),
                "BrokersNotReady".to_owned(),
                "1/3 brokers ready; not ready: 0, 2".to_owned()
            )
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
        assert_eq!(status.cluster_id.as_deref(), Some("c1"));
        assert_eq!(status.controller_id, Some(0));
    }

    #[test]
    fn ready_pods_of_brokers_that_do_not_agree_keep_provisioning() {
        let cluster = minimal_cluster();
        let answers: Vec<BrokerAnswer> = (0..3)
            .map(|id| BrokerAnswer {
                id,
                result: Ok(cluster_view("c1", Some(0), &[0, 2])),
            })
            .collect();
        let status = status_answered(&cluster, &ready_pods(), &answers);
        assert_eq!(status.ready_replicas, 3);
        let (ready, reason, message) = condition(&status, "Ready");
        assert_eq!(
            (ready.as_str(), reason.as_str()),
            ("False", "BrokersNotRegistered")
        );
        assert!(message.contains("broker 1 is not registered"), "{message}");
        let op = status.operation.as_ref().expect("provisioning goes on");
        assert_eq!(op.kind, OperationKind::Provisioning);
        assert_eq!(op.message.as_deref(), Some(message.as_str()));
        assert_eq!((status.cluster_id, status.controller_id), (None, None));
    }

    #[test]
    fn settled_cluster_that_splits_is_degraded_with_the_reason() {
        let mut cluster = minimal_cluster();
        cluster.status = Some(status_with(&cluster, &ready_pods()));
        let answers: Vec<BrokerAnswer> = (0..3)
            .map(|id| BrokerAnswer {
                id,
                result: Ok(cluster_view(&format!("c{id}"), Some(id), &[id])),
            })
            .collect();
        let status = status_answered(&cluster, &ready_pods(), &answers);
        assert!(status.operation.is_none());
        let (ready, reason, _) = condition(&status, "Ready");
        assert_eq!(
            (ready.as_str(), reason.as_str()),
            ("False", "ClusterIdMismatch")
        );
        let (degraded, reason, message) = condition(&status, "Degraded");
        assert_eq!(
            (degraded.as_str(), reason.as_str()),
            ("True", "ClusterIdMismatch")
        );
        assert!(
            message.contains("c0 (broker 0), c1 (broker 1), c2 (broker 2)"),
            "{message}"
        );
    }

    #[test]
    fn rack_awareness_without_racks_is_degraded() {
        let mut cluster = minimal_cluster();
        cluster.spec.rack = Some(strom_crds::cluster::RackSpec {
            topology_key: "example.org/rack".to_owned(),
        });
        let mut answers = agreeing();
        for answer in &mut answers {
            if let Ok(view) = &mut answer.result {
                view.brokers[1].rack = None;
            }
        }
        let status = status_answered(&cluster, &ready_pods(), &answers);
        assert_eq!(condition(&status, "Ready").0, "True");
        let (degraded, reason, message) = condition(&status, "Degraded");
        assert_eq!(
            (degraded.as_str(), reason.as_str()),
            ("True", "RackUnknown")
        );
        assert!(
            message.starts_with("broker 1 has no broker.rack"),
            "{message}"
        );
        assert!(message.contains("example.org/rack"), "{message}");
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
