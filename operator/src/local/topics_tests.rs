//! The local Topic pass: when it runs beside the Cluster's operation, against the planner.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use strom_admin::TopicPartition;
use strom_crds::Cluster;
use strom_crds::cluster::OperationKind;

use super::status::cluster_ready;
use super::topics::topics_reconciled;
use crate::day2::observed::{
    AdminState, PartitionView, RegisteredBroker, WorkloadBroker, WorkloadState,
};
use crate::day2::{Desired, Observed, plan, revision};
use crate::fixtures::minimal_cluster;

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
