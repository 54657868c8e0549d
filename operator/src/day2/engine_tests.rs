//! [`observe_admin`] and [`act`] against the in-memory cluster of [`crate::fixtures`], which
//! records every request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use strom_admin::{
    ClusterDescription, ConfigResource, DescribedBroker, OngoingReassignment, ResponseError,
    TopicPartition,
};

use super::*;
use crate::day2::observed::WorkloadState;
use crate::fixtures::{AdminCall, FakeAdmin};

/// Where the fake cluster is reached.
const ADDRESS: &str = "fake:9092";

/// A client of a fake cluster: brokers 0..3, controller 1, broker 0 in rack `a`; `orders` with
/// two partitions on [0, 1] and [1, 2], `audit` with one on [2, 0] (only 2 in sync) and
/// `min.insync.replicas=2` set on `orders` only. Every broker answers DescribeLogDirs with an
/// empty log directory.
fn fake_admin() -> FakeAdmin {
    let admin = FakeAdmin::default();
    admin.set_cluster_view(
        ADDRESS,
        ClusterDescription {
            cluster_id: "c".to_owned(),
            controller_id: Some(1),
            brokers: (0..3)
                .map(|id| DescribedBroker {
                    node_id: id,
                    host: "127.0.0.1".to_owned(),
                    port: 9092 + id,
                    rack: (id == 0).then(|| "a".to_owned()),
                    fenced: false,
                })
                .collect(),
        },
    );
    admin.with_replicas(|r| {
        r.add_topic("orders", 2, &[&[0, 1], &[1, 2]]);
        r.add_topic("audit", 1, &[&[2, 0]]);
        r.configs.remove(&ConfigResource::Topic("audit".to_owned()));
        for state in r.partitions.values_mut().flatten() {
            if state.replicas == [2, 0] {
                state.isr = vec![2];
            }
        }
        r.log_dirs.clear();
    });
    admin.connected_to(ADDRESS)
}

/// Broker `id` is fenced in what the fake cluster reports.
fn fence(admin: &FakeAdmin, id: i32) {
    let mut views = admin.cluster_views.lock().expect("fake admin lock");
    for broker in views.values_mut().flat_map(|v| v.brokers.iter_mut()) {
        if broker.node_id == id {
            broker.fenced = true;
        }
    }
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

/// A workload that records what it was asked.
#[derive(Default)]
struct FakeWorkload {
    asked: Mutex<Vec<String>>,
}

impl Workload for FakeWorkload {
    async fn observe(&self) -> Result<WorkloadState, Error> {
        Ok(WorkloadState::default())
    }
    async fn scale(&self, replicas: i32) -> Result<(), Error> {
        self.asked
            .lock()
            .expect("asked")
            .push(format!("scale {replicas}"));
        Ok(())
    }
    async fn restart(&self, broker: i32) -> Result<(), Error> {
        self.asked
            .lock()
            .expect("asked")
            .push(format!("restart {broker}"));
        Ok(())
    }
}

fn configs_of(admin: &FakeAdmin, resource: ConfigResource) -> BTreeMap<String, String> {
    admin
        .replicas
        .lock()
        .expect("fake admin lock")
        .configs
        .get(&resource)
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn observation_joins_metadata_reassignments_configs_and_log_dirs() {
    let admin = fake_admin();
    fence(&admin, 2);
    admin.with_replicas(|r| {
        r.reassignments.insert(
            tp("orders", 1),
            OngoingReassignment {
                replicas: vec![1, 2, 0],
                adding_replicas: vec![0],
                removing_replicas: vec![2],
            },
        );
        r.log_dirs.insert(0, vec![tp("orders", 0), tp("audit", 0)]);
        r.sizes.insert(tp("orders", 0), 100);
        r.sizes.insert(tp("audit", 0), 7);
        r.silent.insert(2);
    });

    let state = observe_admin(&admin).await.expect("observe");
    assert_eq!(state.controller, Some(1));
    assert_eq!(
        state.brokers,
        vec![
            RegisteredBroker {
                id: 0,
                fenced: false,
                rack: Some("a".to_owned())
            },
            RegisteredBroker {
                id: 1,
                fenced: false,
                rack: None
            },
            RegisteredBroker {
                id: 2,
                fenced: true,
                rack: None
            },
        ]
    );
    let names: Vec<String> = state
        .partitions
        .iter()
        .map(|p| p.partition.to_string())
        .collect();
    assert_eq!(
        names,
        ["audit-0", "orders-0", "orders-1"],
        "sorted by partition"
    );
    let audit = &state.partitions[0];
    assert_eq!(
        audit.min_insync_replicas, 1,
        "Kafka's default when nothing sets it"
    );
    assert_eq!(
        (audit.replicas.clone(), audit.isr.clone(), audit.leader),
        (vec![2, 0], vec![2], Some(2))
    );
    let moving = &state.partitions[2];
    assert_eq!(moving.min_insync_replicas, 2);
    assert_eq!(
        (moving.adding.clone(), moving.removing.clone()),
        (vec![0], vec![2])
    );
    assert!(!state.partitions[1].reassigning());
    assert_eq!(
        state.log_dirs,
        BTreeMap::from([
            (
                0,
                BTreeMap::from([(tp("audit", 0), 7), (tp("orders", 0), 100)])
            ),
            (1, BTreeMap::new()),
        ]),
        "broker 2 did not answer, so it is missing rather than empty"
    );
}

#[tokio::test]
async fn a_throttled_reassignment_sets_rates_and_replica_lists_before_moving() {
    let admin = fake_admin();
    admin.with_replicas(|r| {
        r.configs
            .entry(ConfigResource::Topic("orders".to_owned()))
            .or_default()
            .insert(LEADER_THROTTLED_REPLICAS.to_owned(), "5:9".to_owned());
    });
    let moves = BTreeMap::from([(tp("orders", 0), vec![1, 3])]);
    let action = Action::Reassign {
        moves: moves.clone(),
        throttle: Some(1_048_576),
    };
    act(&action, &FakeWorkload::default(), &admin)
        .await
        .expect("act");

    let calls = admin.day2_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        matches!(calls[0], AdminCall::AlterResourceConfigs(_)),
        "throttles first: {calls:?}"
    );
    assert_eq!(
        calls[1],
        AdminCall::Reassign(BTreeMap::from([(tp("orders", 0), Some(vec![1, 3]))]))
    );
    for broker in [0, 1, 3] {
        let rates = configs_of(&admin, ConfigResource::Broker(broker));
        for key in THROTTLE_RATE_KEYS {
            assert_eq!(
                rates.get(key).map(String::as_str),
                Some("1048576"),
                "broker {broker}"
            );
        }
    }
    assert!(
        configs_of(&admin, ConfigResource::Broker(2)).is_empty(),
        "broker 2 is not involved"
    );
    let orders = configs_of(&admin, ConfigResource::Topic("orders".to_owned()));
    assert_eq!(
        orders.get(LEADER_THROTTLED_REPLICAS).map(String::as_str),
        Some("0:0,0:1,5:9"),
        "the current replicas serve the copy; an earlier batch's pair stays"
    );
    assert_eq!(
        orders.get(FOLLOWER_THROTTLED_REPLICAS).map(String::as_str),
        Some("0:3")
    );

    act(&Action::ClearThrottles, &FakeWorkload::default(), &admin)
        .await
        .expect("clear");
    for broker in [0, 1, 2] {
        assert!(
            configs_of(&admin, ConfigResource::Broker(broker)).is_empty(),
            "broker {broker}"
        );
    }
    let orders = configs_of(&admin, ConfigResource::Topic("orders".to_owned()));
    assert_eq!(
        orders,
        BTreeMap::from([(MIN_INSYNC_REPLICAS.to_owned(), "2".to_owned())]),
        "only the throttle keys go"
    );
}

#[tokio::test]
async fn an_unthrottled_reassignment_sends_only_the_moves() {
    let admin = fake_admin();
    let moves = BTreeMap::from([(tp("audit", 0), vec![0, 1])]);
    act(
        &Action::Reassign {
            moves,
            throttle: None,
        },
        &FakeWorkload::default(),
        &admin,
    )
    .await
    .expect("act");
    assert_eq!(
        admin.day2_calls(),
        vec![AdminCall::Reassign(BTreeMap::from([(
            tp("audit", 0),
            Some(vec![0, 1])
        )]))]
    );
}

#[tokio::test]
async fn cancels_and_elections_tolerate_what_is_already_done_and_report_the_rest() {
    let admin = fake_admin();
    admin.with_replicas(|r| {
        r.partition_errors
            .insert(tp("orders", 0), ResponseError::NoReassignmentInProgress);
        r.partition_errors
            .insert(tp("orders", 1), ResponseError::ElectionNotNeeded);
        r.partition_errors
            .insert(tp("audit", 0), ResponseError::PreferredLeaderNotAvailable);
    });
    let workload = FakeWorkload::default();

    let cancel = Action::CancelReassignments {
        partitions: vec![tp("orders", 0)],
    };
    act(&cancel, &workload, &admin)
        .await
        .expect("nothing left to cancel is done");
    assert_eq!(
        admin.day2_calls()[0],
        AdminCall::Reassign(BTreeMap::from([(tp("orders", 0), None)])),
        "a cancel sends null replicas"
    );

    let elect = Action::ElectPreferred {
        partitions: vec![tp("orders", 1)],
    };
    act(&elect, &workload, &admin)
        .await
        .expect("election not needed is done");
    let elect = Action::ElectPreferred {
        partitions: vec![tp("audit", 0), tp("orders", 1)],
    };
    let error = act(&elect, &workload, &admin)
        .await
        .expect_err("audit-0 refused");
    let message = error.to_string();
    assert!(
        message.contains("audit-0") && !message.contains("orders-1"),
        "{message}"
    );
}

#[tokio::test]
async fn broker_configs_go_to_the_cluster_wide_defaults_and_workload_actions_to_the_workload() {
    let admin = fake_admin();
    let workload = FakeWorkload::default();
    let configs = BTreeMap::from([
        (
            "leader.replication.throttled.rate".to_owned(),
            "10".to_owned(),
        ),
        (
            "follower.replication.throttled.rate".to_owned(),
            String::new(),
        ),
    ]);
    act(&Action::AlterBrokerConfigs { configs }, &workload, &admin)
        .await
        .expect("alter");
    let AdminCall::AlterResourceConfigs(changes) = &admin.day2_calls()[0] else {
        panic!("an alter")
    };
    assert_eq!(
        changes.keys().collect::<Vec<_>>(),
        [&ConfigResource::BrokerDefault],
        "per-broker values stay the throttles' own"
    );
    let change = &changes[&ConfigResource::BrokerDefault];
    assert_eq!(change.set.len(), 1);
    assert_eq!(
        change.delete,
        BTreeSet::from(["follower.replication.throttled.rate".to_owned()]),
        "an empty value deletes the key"
    );
    let state = observe_admin(&admin).await.expect("observe");
    assert_eq!(
        state.dynamic_config,
        BTreeMap::from([(
            "leader.replication.throttled.rate".to_owned(),
            "10".to_owned()
        )]),
        "the defaults are observed as set"
    );

    act(&Action::Scale { replicas: 5 }, &workload, &admin)
        .await
        .expect("scale");
    act(&Action::Restart { broker: 2 }, &workload, &admin)
        .await
        .expect("restart");
    act(&Action::Idle, &workload, &admin).await.expect("idle");
    act(&Action::Wait, &workload, &admin).await.expect("wait");
    assert_eq!(
        *workload.asked.lock().expect("asked"),
        ["scale 5", "restart 2"]
    );
    assert_eq!(admin.day2_calls().len(), 1, "idle and wait send nothing");
}
