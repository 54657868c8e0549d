//! The local Topic pass: when it runs beside the Cluster's operation, and what it publishes of
//! a replication-factor change, against the planner and the fake Kafka admin.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use strom_admin::{ObservedTopic, OngoingReassignment, TopicPartition};
use strom_crds::cluster::OperationKind;
use strom_crds::{Cluster, Topic, TopicStatus};

use super::status::cluster_ready;
use super::topics::{reconcile_topic, topics_reconciled};
use crate::day2::observed::{
    AdminState, PartitionView, RegisteredBroker, WorkloadBroker, WorkloadState,
};
use crate::day2::{Desired, Observed, plan, revision};
use crate::fixtures::{FakeAdmin, cluster_view, minimal_cluster, topic};
use crate::metrics::Metrics;

const ADDRESS: &str = "127.0.0.1:9092";
const GAUGE: &str = "strom_operator_reassignment_bytes_remaining{cluster=\"kafka/demo\"}";

fn cluster(replicas: i32) -> Cluster {
    let mut cluster = minimal_cluster();
    cluster.spec.replicas = replicas;
    cluster.spec.operations.max_concurrent_moves = 2;
    cluster
}

/// `brokers` brokers on `desired`'s revision, ready, registered and unfenced, controller 0, and
/// topic `orders` with a replica on every broker.
fn serving(desired: &Desired, brokers: i32) -> Observed {
    let ids: Vec<i32> = (0..brokers).collect();
    let partitions = ids
        .iter()
        .map(|&id| {
            let replicas = vec![id, (id + 1) % brokers];
            PartitionView {
                partition: TopicPartition::new("orders", id),
                leader: Some(id),
                isr: replicas.clone(),
                replicas,
                min_insync_replicas: 1,
                adding: Vec::new(),
                removing: Vec::new(),
            }
        })
        .collect::<Vec<_>>();
    let mut log_dirs: BTreeMap<i32, BTreeMap<TopicPartition, i64>> = BTreeMap::new();
    for p in &partitions {
        for id in &p.replicas {
            log_dirs
                .entry(*id)
                .or_default()
                .insert(p.partition.clone(), 1024);
        }
    }
    Observed {
        workload: WorkloadState {
            replicas: brokers,
            brokers: ids
                .iter()
                .map(|&id| WorkloadBroker {
                    id,
                    revision: Some(desired.revision.clone()),
                    ready: true,
                    restarting: false,
                    crash_looping: false,
                    resize_pending: false,
                })
                .collect(),
        },
        admin: Some(AdminState {
            controller: Some(0),
            brokers: ids
                .iter()
                .map(|&id| RegisteredBroker {
                    id,
                    fenced: false,
                    rack: None,
                })
                .collect(),
            partitions,
            log_dirs,
            dynamic_config: BTreeMap::new(),
        }),
    }
}

fn now() -> Time {
    Time(Timestamp::from_second(1_800_000_000).expect("timestamp"))
}

#[test]
fn topics_are_reconciled_while_a_scale_or_a_drain_runs_and_not_while_the_cluster_is_provisioned() {
    // Five brokers, the spec asks for three: the planner drains brokers 3 and 4.
    let three = revision::desired(&cluster(3));
    let five_running = serving(&three, 5);
    let drain = plan::plan(&three, &five_running, None, now());
    let operation = drain.operation.expect("an operation");
    assert_eq!(operation.kind, OperationKind::ScaleDown);
    assert!(
        !cluster_ready(&three, &five_running),
        "the cluster does not serve as the spec asks while it drains"
    );
    assert!(topics_reconciled(&five_running, Some(&operation)));

    // Three brokers, the spec asks for five: two start.
    let five = revision::desired(&cluster(5));
    let three_running = serving(&five, 3);
    let scale_up = plan::plan(&five, &three_running, None, now());
    let operation = scale_up.operation.expect("an operation");
    assert_eq!(operation.kind, OperationKind::ScaleUp);
    assert!(!cluster_ready(&five, &three_running));
    assert!(topics_reconciled(&three_running, Some(&operation)));

    // The first start: the brokers are being provisioned, no topic is created yet.
    let nothing = Observed {
        workload: WorkloadState::default(),
        admin: None,
    };
    let provisioning = plan::plan(&three, &nothing, None, now());
    let operation = provisioning.operation.expect("an operation");
    assert_eq!(operation.kind, OperationKind::Provisioning);
    assert!(!topics_reconciled(&nothing, Some(&operation)));
    let mut registering = serving(&three, 3);
    registering.workload.brokers[2].ready = false;
    let still = plan::plan(&three, &registering, Some(&operation), now());
    let operation = still.operation.expect("still provisioning");
    assert_eq!(operation.kind, OperationKind::Provisioning);
    assert!(!topics_reconciled(&registering, Some(&operation)));

    // No active controller: nothing to create topics through.
    let mut leaderless = serving(&three, 3);
    if let Some(admin) = leaderless.admin.as_mut() {
        admin.controller = None;
    }
    assert!(!topics_reconciled(&leaderless, None));
    assert!(topics_reconciled(&serving(&three, 3), None));
}

/// DescribeTopic's view of `orders`: 3 partitions, the lowest with `rf` replicas.
fn observed_topic(rf: i16) -> ObservedTopic {
    ObservedTopic {
        name: "orders".to_owned(),
        topic_id: "AAAAAAAAAAAAAAAAAAAAAQ".to_owned(),
        partitions: 3,
        replication_factor: rf,
        configs: BTreeMap::from([("retention.ms".to_owned(), "86400000".to_owned())]),
    }
}

/// Topic `orders` asking for three replicas, `status` the one last written.
fn wanting_three(status: Option<TopicStatus>) -> Topic {
    let mut topic = topic();
    topic.spec.partitions = 3;
    topic.status = Some(status.unwrap_or_else(|| TopicStatus {
        topic_id: Some("AAAAAAAAAAAAAAAAAAAAAQ".to_owned()),
        partitions: Some(3),
        replication_factor: Some(2),
        managed_config_keys: vec!["retention.ms".to_owned()],
        ..TopicStatus::default()
    }));
    topic
}

/// Starts every move asked for as the controller does: the target plus the leaving replicas
/// assigned, the added ones catching up (their log directories not holding them yet).
fn start_moves(admin: &FakeAdmin) {
    let requests: Vec<_> = admin
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            crate::fixtures::AdminCall::Reassign(request) => Some(request),
            _ => None,
        })
        .collect();
    admin.with_replicas(|r| {
        for (tp, target) in requests.into_iter().flatten() {
            let Some(target) = target else { continue };
            let Some(state) = r
                .partitions
                .get_mut(&tp.topic)
                .and_then(|s| s.iter_mut().find(|s| s.partition == tp.partition))
            else {
                continue;
            };
            let adding: Vec<i32> = target
                .iter()
                .copied()
                .filter(|b| !state.replicas.contains(b))
                .collect();
            state.replicas = target.clone();
            r.reassignments.insert(
                tp,
                OngoingReassignment {
                    replicas: target,
                    adding_replicas: adding,
                    removing_replicas: Vec::new(),
                },
            );
        }
    });
}

/// Finishes every move: the added replicas join the ISR and their log directories.
fn finish_moves(admin: &FakeAdmin) {
    admin.with_replicas(|r| {
        for (tp, ongoing) in std::mem::take(&mut r.reassignments) {
            if let Some(state) = r
                .partitions
                .get_mut(&tp.topic)
                .and_then(|s| s.iter_mut().find(|s| s.partition == tp.partition))
            {
                state.isr = state.replicas.clone();
            }
            for broker in ongoing.adding_replicas {
                r.log_dirs.entry(broker).or_default().push(tp.clone());
            }
        }
    });
    admin
        .topics
        .lock()
        .expect("lock")
        .insert("orders".to_owned(), observed_topic(3));
}

fn gauge(metrics: &Metrics) -> Option<String> {
    let text = metrics.encode().expect("metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(GAUGE).map(|v| v.trim().to_owned()))
}

#[tokio::test]
async fn a_local_topic_pass_publishes_the_bytes_its_replication_factor_change_still_copies() {
    let admin = FakeAdmin {
        connected: Some(ADDRESS.to_owned()),
        ..FakeAdmin::with_topic(observed_topic(2))
    };
    admin.set_cluster_view(ADDRESS, cluster_view("c1", Some(0), &[0, 1, 2]));
    admin.with_replicas(|r| r.add_topic("orders", 1, &[&[0, 1], &[1, 2], &[2, 0]]));
    let cluster = cluster(3);
    let metrics = Metrics::new().expect("metrics");
    let pass = |status: Option<TopicStatus>| {
        let topic = wanting_three(status);
        let (admin, cluster, metrics) = (&admin, &cluster, &metrics);
        async move {
            reconcile_topic(
                admin,
                cluster,
                &topic,
                metrics,
                "kafka/demo",
                Timestamp::now(),
            )
            .await
        }
    };

    // Pass 1 starts two moves (maxConcurrentMoves); pass 2 sees them copying.
    let status = pass(None).await;
    assert_eq!(status.target_replication_factor, Some(3), "{status:?}");
    start_moves(&admin);
    let status = pass(Some(status)).await;
    let progress = status.reassignment.clone().expect("progress");
    assert_eq!(progress.moving_partitions, 2, "{status:?}");
    assert_eq!(
        progress.bytes_remaining,
        Some(2048),
        "two new replicas lack 1024 bytes each"
    );
    assert_eq!(gauge(&metrics).as_deref(), Some("2048"));

    // The moves finish, the last partition moves and finishes: the figure is cleared.
    finish_moves(&admin);
    let status = pass(Some(status)).await;
    start_moves(&admin);
    finish_moves(&admin);
    let status = pass(Some(status)).await;
    assert_eq!(status.target_replication_factor, None, "{status:?}");
    assert_eq!(status.replication_factor, Some(3));
    assert_eq!(gauge(&metrics).as_deref(), Some("0"));
}
