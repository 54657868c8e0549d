//! [`observe_admin`] and [`act`] against an in-memory cluster that records every request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use strom_admin::{
    AdminError, AlteredConfigs, ClusterAdmin, ClusterDescription, ConfigAdmin, ConfigChanges,
    ConfigResource, DescribedBroker, DescribedConfigs, ElectionType, KafkaError, LogDir,
    LogDirReplica, OngoingReassignment, PartitionResults, PartitionState, ReplicaAdmin,
    ResponseError, TopicPartition,
};

use super::*;
use crate::day2::observed::WorkloadState;

/// What a request changed or asked, in the order it came.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Alter(BTreeMap<ConfigResource, ConfigChanges>),
    Reassign(BTreeMap<TopicPartition, Option<Vec<i32>>>),
    Elect(Vec<TopicPartition>),
}

/// One partition of a fake topic: (replicas, isr, leader).
type FakePartition = (Vec<i32>, Vec<i32>, i32);

struct FakeAdmin {
    brokers: Vec<i32>,
    fenced: Vec<i32>,
    controller: i32,
    /// Topic → per partition (replicas, isr, leader).
    topics: BTreeMap<String, Vec<FakePartition>>,
    reassignments: BTreeMap<TopicPartition, OngoingReassignment>,
    configs: Mutex<BTreeMap<ConfigResource, BTreeMap<String, String>>>,
    /// Brokers answering DescribeLogDirs, with (partition, bytes).
    log_dirs: BTreeMap<i32, Vec<(TopicPartition, i64)>>,
    partition_errors: BTreeMap<TopicPartition, ResponseError>,
    calls: Mutex<Vec<Call>>,
}

impl FakeAdmin {
    /// Brokers 0..3, controller 1; `orders` with two partitions on [0, 1] and [1, 2], `audit`
    /// with one on [2, 0] and `min.insync.replicas=2` set on `orders` only.
    fn new() -> Self {
        let topics = BTreeMap::from([
            (
                "orders".to_owned(),
                vec![(vec![0, 1], vec![0, 1], 0), (vec![1, 2], vec![1, 2], 1)],
            ),
            ("audit".to_owned(), vec![(vec![2, 0], vec![2], 2)]),
        ]);
        let configs = BTreeMap::from([(
            ConfigResource::Topic("orders".to_owned()),
            BTreeMap::from([(MIN_INSYNC_REPLICAS.to_owned(), "2".to_owned())]),
        )]);
        FakeAdmin {
            brokers: vec![0, 1, 2],
            fenced: vec![],
            controller: 1,
            topics,
            reassignments: BTreeMap::new(),
            configs: Mutex::new(configs),
            log_dirs: BTreeMap::new(),
            partition_errors: BTreeMap::new(),
            calls: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    fn record(&self, call: Call) {
        self.calls.lock().expect("calls").push(call);
    }

    fn results<'a>(&self, asked: impl Iterator<Item = &'a TopicPartition>) -> PartitionResults {
        asked
            .map(|tp| {
                let result = match self.partition_errors.get(tp) {
                    Some(e) => Err(KafkaError::new(e.code(), None)),
                    None => Ok(()),
                };
                (tp.clone(), result)
            })
            .collect()
    }
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn unreachable() -> AdminError {
    AdminError::Unreachable {
        bootstrap: "fake".to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "stopped"),
    }
}

impl ClusterAdmin for FakeAdmin {
    async fn describe_cluster(&self) -> Result<ClusterDescription, AdminError> {
        Ok(ClusterDescription {
            cluster_id: "c".to_owned(),
            controller_id: Some(self.controller),
            brokers: self
                .brokers
                .iter()
                .map(|&id| DescribedBroker {
                    node_id: id,
                    host: "127.0.0.1".to_owned(),
                    port: 9092 + id,
                    rack: (id == 0).then(|| "a".to_owned()),
                    fenced: self.fenced.contains(&id),
                })
                .collect(),
        })
    }
}

impl ReplicaAdmin for FakeAdmin {
    async fn describe_topics_partitions(
        &self,
        topics: Option<&[&str]>,
    ) -> Result<BTreeMap<String, Result<Vec<PartitionState>, KafkaError>>, AdminError> {
        Ok(self
            .topics
            .iter()
            .filter(|(name, _)| topics.is_none_or(|t| t.contains(&name.as_str())))
            .map(|(name, partitions)| {
                let states = partitions
                    .iter()
                    .zip(0..)
                    .map(|((replicas, isr, leader), partition)| PartitionState {
                        partition,
                        leader: Some(*leader),
                        leader_epoch: Some(1),
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        offline_replicas: vec![],
                        error: None,
                    })
                    .collect();
                (name.clone(), Ok(states))
            })
            .collect())
    }

    async fn describe_log_dirs(
        &self,
        broker_id: i32,
        _partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<LogDir>, AdminError> {
        let held = self.log_dirs.get(&broker_id).ok_or_else(unreachable)?;
        Ok(vec![LogDir {
            path: format!("/data/{broker_id}"),
            error: None,
            total_bytes: None,
            usable_bytes: None,
            replicas: held
                .iter()
                .map(|(partition, size_bytes)| LogDirReplica {
                    partition: partition.clone(),
                    size_bytes: *size_bytes,
                    offset_lag: 0,
                    is_future: false,
                })
                .collect(),
        }])
    }

    async fn alter_partition_reassignments(
        &self,
        reassignments: &BTreeMap<TopicPartition, Option<Vec<i32>>>,
    ) -> Result<PartitionResults, AdminError> {
        self.record(Call::Reassign(reassignments.clone()));
        Ok(self.results(reassignments.keys()))
    }

    async fn list_partition_reassignments(
        &self,
        _partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, OngoingReassignment>, AdminError> {
        Ok(self.reassignments.clone())
    }

    async fn elect_leaders(
        &self,
        _election: ElectionType,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<PartitionResults, AdminError> {
        let partitions = partitions.unwrap_or_default().to_vec();
        self.record(Call::Elect(partitions.clone()));
        Ok(self.results(partitions.iter()))
    }
}

impl ConfigAdmin for FakeAdmin {
    async fn describe_effective_configs(
        &self,
        resources: &[ConfigResource],
        keys: Option<&[&str]>,
    ) -> Result<DescribedConfigs, AdminError> {
        let configs = self.configs.lock().expect("configs");
        Ok(resources
            .iter()
            .map(|r| {
                let own = configs.get(r).cloned().unwrap_or_default();
                let wanted = own
                    .into_iter()
                    .filter(|(k, _)| keys.is_none_or(|keys| keys.contains(&k.as_str())))
                    .collect();
                (r.clone(), Ok(wanted))
            })
            .collect())
    }

    async fn incremental_alter_configs(
        &self,
        changes: &BTreeMap<ConfigResource, ConfigChanges>,
    ) -> Result<AlteredConfigs, AdminError> {
        self.record(Call::Alter(changes.clone()));
        let mut configs = self.configs.lock().expect("configs");
        for (resource, change) in changes {
            let entry = configs.entry(resource.clone()).or_default();
            entry.extend(change.set.clone());
            entry.retain(|k, _| !change.delete.contains(k));
        }
        Ok(changes.keys().map(|r| (r.clone(), Ok(()))).collect())
    }
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
        .configs
        .lock()
        .expect("configs")
        .get(&resource)
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn observation_joins_metadata_reassignments_configs_and_log_dirs() {
    let mut admin = FakeAdmin::new();
    admin.fenced = vec![2];
    admin.reassignments.insert(
        tp("orders", 1),
        OngoingReassignment {
            replicas: vec![1, 2, 0],
            adding_replicas: vec![0],
            removing_replicas: vec![2],
        },
    );
    admin
        .log_dirs
        .insert(0, vec![(tp("orders", 0), 100), (tp("audit", 0), 7)]);
    admin.log_dirs.insert(1, vec![]);

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
    let admin = FakeAdmin::new();
    admin
        .configs
        .lock()
        .expect("configs")
        .entry(ConfigResource::Topic("orders".to_owned()))
        .or_default()
        .insert(LEADER_THROTTLED_REPLICAS.to_owned(), "5:9".to_owned());
    let moves = BTreeMap::from([(tp("orders", 0), vec![1, 3])]);
    let action = Action::Reassign {
        moves: moves.clone(),
        throttle: Some(1_048_576),
    };
    act(&action, &FakeWorkload::default(), &admin)
        .await
        .expect("act");

    let calls = admin.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        matches!(calls[0], Call::Alter(_)),
        "throttles first: {calls:?}"
    );
    assert_eq!(
        calls[1],
        Call::Reassign(BTreeMap::from([(tp("orders", 0), Some(vec![1, 3]))]))
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
    let admin = FakeAdmin::new();
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
        admin.calls(),
        vec![Call::Reassign(BTreeMap::from([(
            tp("audit", 0),
            Some(vec![0, 1])
        )]))]
    );
}

#[tokio::test]
async fn cancels_and_elections_tolerate_what_is_already_done_and_report_the_rest() {
    let mut admin = FakeAdmin::new();
    admin
        .partition_errors
        .insert(tp("orders", 0), ResponseError::NoReassignmentInProgress);
    admin
        .partition_errors
        .insert(tp("orders", 1), ResponseError::ElectionNotNeeded);
    admin
        .partition_errors
        .insert(tp("audit", 0), ResponseError::PreferredLeaderNotAvailable);
    let workload = FakeWorkload::default();

    let cancel = Action::CancelReassignments {
        partitions: vec![tp("orders", 0)],
    };
    act(&cancel, &workload, &admin)
        .await
        .expect("nothing left to cancel is done");
    assert_eq!(
        admin.calls()[0],
        Call::Reassign(BTreeMap::from([(tp("orders", 0), None)])),
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
    let admin = FakeAdmin::new();
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
    let Call::Alter(changes) = &admin.calls()[0] else {
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
    assert_eq!(admin.calls().len(), 1, "idle and wait send nothing");
}
