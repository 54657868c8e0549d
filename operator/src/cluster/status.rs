//! The Cluster status as a pure function of the spec, the StatefulSet, the broker pods, what
//! each broker answered to DescribeCluster, and what the day-2 pass decided (its operation,
//! what blocks it, volumes that could not grow).
//!
//! `Ready` needs both: every pod passes its readiness probe, and the brokers form one cluster
//! ([`agreement`]: one cluster id, one active controller, every broker registered and
//! unfenced). A ready pod only says that its own broker serves; brokers that each formed a
//! cluster of their own would all pass.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use strom_crds::Cluster;
use strom_crds::cluster::{BrokerStatus, ClusterStatus, OperationStatus};

use super::agreement::{Agreement, BrokerAnswer, agreement, brokers_without_rack, registration};
use super::builders::{VERSION_LABEL, bootstrap_address, stateful_set_name};
use super::operation::blocker_condition;
use crate::conditions::set_condition;
use crate::day2::Blocker;

/// Conditions a day-2 blocker sets while it holds; once it no longer holds they turn False.
const BLOCKER_CONDITIONS: [&str; 2] = ["RollBlocked", "ScaleDownRefused"];

/// What the day-2 pass decided.
#[derive(Debug, Clone, Copy, Default)]
pub struct Day2Report<'a> {
    /// `spec.paused` or the pause annotation.
    pub paused: bool,
    /// The operation in progress (the plan's).
    pub operation: Option<&'a OperationStatus>,
    /// What blocks it.
    pub blockers: &'a [Blocker],
    /// Volume claims the API server refused to grow, with its message.
    pub refused_claims: &'a [(String, String)],
}

/// What was observed of a cluster's workload in one pass.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The broker StatefulSet, when it exists.
    pub stateful_set: Option<&'a StatefulSet>,
    /// The cluster's broker pods.
    pub pods: &'a [Pod],
    /// What each broker pod's broker answered to DescribeCluster.
    pub answers: &'a [BrokerAnswer],
    /// What the day-2 pass decided.
    pub day2: Day2Report<'a>,
}

/// The status to write for `cluster` given what was observed, carrying over condition
/// transition times from the previous status.
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
    let pods_ready = ready_replicas == replicas && extra == 0;
    let agreement = agreement(replicas, observed.answers);
    let all_ready = pods_ready && matches!(agreement, Agreement::Agreed { .. });
    let not_ready_pods: Vec<String> = (0..replicas)
        .filter(|id| !brokers.iter().any(|b| b.id == *id && b.ready))
        .map(|id| id.to_string())
        .collect();
    let pods_message = if !not_ready_pods.is_empty() {
        format!(
            "{ready_replicas}/{replicas} brokers ready; not ready: {}",
            not_ready_pods.join(", ")
        )
    } else if extra > 0 {
        format!(
            "{ready_replicas}/{replicas} brokers ready; {extra} broker(s) above spec.replicas={replicas} still run until drained"
        )
    } else {
        format!("{ready_replicas}/{replicas} brokers ready")
    };
    // Why the cluster is not ready, once the pods are: what the brokers disagree on.
    let (wait_reason, wait_message) = match &agreement {
        Agreement::NotAgreed { reason, message } if pods_ready => (*reason, message.clone()),
        _ => ("BrokersNotReady", pods_message.clone()),
    };
    let operation = observed.day2.operation.cloned();

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
    match (&operation, observed.day2.paused) {
        (_, true) => set_condition(
            &mut conditions,
            "Progressing",
            false,
            "Paused",
            "paused (spec.paused, or the strom.io/paused annotation): the operator changes nothing",
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
    for type_ in BLOCKER_CONDITIONS {
        let holding: Vec<(&str, String)> = observed
            .day2
            .blockers
            .iter()
            .map(blocker_condition)
            .filter(|(t, _, _)| *t == type_)
            .map(|(_, reason, message)| (reason, message))
            .collect();
        if let Some((reason, _)) = holding.first() {
            let message = holding
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            set_condition(
                &mut conditions,
                type_,
                true,
                reason,
                message,
                generation,
                now,
            );
        } else if conditions.iter().any(|c| c.type_ == type_) {
            set_condition(
                &mut conditions,
                type_,
                false,
                "NotBlocked",
                "nothing blocks the operations",
                generation,
                now,
            );
        }
    }
    let exhausted = observed
        .day2
        .blockers
        .iter()
        .map(blocker_condition)
        .find(|(t, _, _)| *t == "Degraded");
    let without_rack = if all_ready && cluster.spec.rack.is_some() {
        brokers_without_rack(observed.answers)
    } else {
        Vec::new()
    };
    if let Some((_, reason, message)) = exhausted {
        set_condition(
            &mut conditions,
            "Degraded",
            true,
            reason,
            message,
            generation,
            now,
        );
    } else if !observed.day2.refused_claims.is_empty() {
        let message = observed
            .day2
            .refused_claims
            .iter()
            .map(|(claim, why)| format!("{claim}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        set_condition(
            &mut conditions,
            "Degraded",
            true,
            "VolumeExpansionRefused",
            format!(
                "spec.storage.size is {} but these volumes cannot grow (does the StorageClass allow volume expansion?): {message}",
                cluster.spec.storage.size
            ),
            generation,
            now,
        );
    } else if !all_ready && operation.is_none() && observed.day2.paused {
        set_condition(
            &mut conditions,
            "Degraded",
            false,
            "Paused",
            format!("{pods_message}; paused, so the operator acts on nothing"),
            generation,
            now,
        );
    } else if !all_ready && operation.is_none() {
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
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;
    use strom_admin::TopicPartition;
    use strom_crds::cluster::OperationKind;

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
        status_reporting(cluster, pods, answers, Day2Report::default())
    }

    fn status_reporting(
        cluster: &Cluster,
        pods: &[Pod],
        answers: &[BrokerAnswer],
        day2: Day2Report<'_>,
    ) -> ClusterStatus {
        cluster_status(
            cluster,
            Observed {
                stateful_set: None,
                pods,
                answers,
                day2,
            },
            now(),
        )
    }

    /// A Provisioning operation as the planner reports it: 1 of 3 brokers up.
    fn provisioning() -> OperationStatus {
        OperationStatus {
            kind: OperationKind::Provisioning,
            started_at: Time(now()),
            completed_steps: 1,
            total_steps: 3,
            message: Some("waiting for brokers 0, 2".to_owned()),
            broker: None,
            step: Some("AwaitingBrokers".to_owned()),
            step_started_at: Some(Time(now())),
            attempts: 0,
            done: Vec::new(),
            revision: None,
        }
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
        let operation = provisioning();
        let status = status_reporting(
            &cluster,
            &pods,
            &agreeing(),
            Day2Report {
                operation: Some(&operation),
                ..Day2Report::default()
            },
        );
        assert_eq!(status.ready_replicas, 1);
        assert_eq!(
            status.brokers.iter().map(|b| b.id).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(
            status.operation.as_ref(),
            Some(&operation),
            "the plan's operation"
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

    #[test]
    fn blockers_set_their_conditions_and_clear_them_when_gone() {
        let mut cluster = minimal_cluster();
        let blockers = [
            Blocker::UnderMinIsr {
                broker: 1,
                partitions: vec![TopicPartition::new("orders", 0)],
            },
            Blocker::ScaleDownRefused {
                message: "topic orders has replication factor 3; 2 brokers would remain".to_owned(),
            },
        ];
        let status = status_reporting(
            &cluster,
            &ready_pods(),
            &agreeing(),
            Day2Report {
                blockers: &blockers,
                ..Day2Report::default()
            },
        );
        let (blocked, reason, message) = condition(&status, "RollBlocked");
        assert_eq!((blocked.as_str(), reason.as_str()), ("True", "UnderMinIsr"));
        assert!(
            message.contains("broker 1") && message.contains("orders-0"),
            "{message}"
        );
        let (refused, _, message) = condition(&status, "ScaleDownRefused");
        assert_eq!(refused, "True");
        assert!(message.contains("replication factor 3"), "{message}");

        cluster.status = Some(status);
        let status = status_with(&cluster, &ready_pods());
        assert_eq!(condition(&status, "RollBlocked").0, "False");
        assert_eq!(condition(&status, "ScaleDownRefused").0, "False");
        // A cluster that never was blocked carries no such condition.
        let fresh = status_with(&minimal_cluster(), &ready_pods());
        assert!(find(&fresh.conditions, "RollBlocked").is_none());
    }

    #[test]
    fn exhausted_restarts_and_refused_volumes_are_degraded() {
        let cluster = minimal_cluster();
        let blockers = [Blocker::RestartsExhausted { broker: 2 }];
        let status = status_reporting(
            &cluster,
            &ready_pods(),
            &agreeing(),
            Day2Report {
                blockers: &blockers,
                ..Day2Report::default()
            },
        );
        let (degraded, reason, message) = condition(&status, "Degraded");
        assert_eq!(
            (degraded.as_str(), reason.as_str()),
            ("True", "RestartsExhausted")
        );
        assert!(
            message.starts_with("broker 2 did not come back"),
            "{message}"
        );

        let refused = [(
            "data-demo-broker-0".to_owned(),
            "only dynamically provisioned pvc can be resized".to_owned(),
        )];
        let status = status_reporting(
            &cluster,
            &ready_pods(),
            &agreeing(),
            Day2Report {
                refused_claims: &refused,
                ..Day2Report::default()
            },
        );
        let (degraded, reason, message) = condition(&status, "Degraded");
        assert_eq!(
            (degraded.as_str(), reason.as_str()),
            ("True", "VolumeExpansionRefused")
        );
        assert!(message.contains("data-demo-broker-0"), "{message}");
    }
}
