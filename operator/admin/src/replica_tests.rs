//! [`ReplicaAdmin`] against the fake cluster: partition state, log directories,
//! reassignments and leader elections, with their per-partition errors and versions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ListPartitionReassignmentsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::fake_broker::{
    Bound, FakeBroker, FakeKafka, FakeLogDir, FakePartition, respond, versions_then,
};
use crate::{
    AdminError, BrokerAdmin, ElectionType, KafkaAdmin, KafkaError, LogDir, LogDirReplica,
    OngoingReassignment, PartitionState, ReplicaAdmin, ResponseError, TopicPartition,
};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Brokers 1, 2 and 3 of one cluster, broker 2 the controller; the client bootstraps
/// through broker 1.
async fn three_brokers() -> (Arc<FakeKafka>, Vec<FakeBroker>, KafkaAdmin) {
    three_brokers_with(|_| {}).await
}

/// [`three_brokers`], with `setup` run on the cluster before the client connects (API
/// versions are negotiated when a connection opens).
async fn three_brokers_with(
    setup: impl FnOnce(&FakeKafka),
) -> (Arc<FakeKafka>, Vec<FakeBroker>, KafkaAdmin) {
    let bound = [Bound::new().await, Bound::new().await, Bound::new().await];
    let cluster = FakeKafka::new(
        bound
            .iter()
            .zip(1..)
            .map(|(b, id)| (id, b.addr()))
            .collect(),
        2,
    );
    setup(&cluster);
    let brokers: Vec<FakeBroker> = bound
        .into_iter()
        .zip(1..)
        .map(|(b, id)| b.serve(cluster.handler(id)))
        .collect();
    let admin = KafkaAdmin::connect(&brokers[0].address(), TIMEOUT)
        .await
        .expect("connect");
    (cluster, brokers, admin)
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn code(error: &ResponseError) -> i16 {
    error.code()
}

fn kafka_error(error: ResponseError) -> KafkaError {
    KafkaError::new(code(&error), None)
}

/// (node id, version) of each request of `key` the cluster received.
fn sent(cluster: &FakeKafka, key: ApiKey) -> Vec<(i32, i16)> {
    cluster
        .received()
        .iter()
        .filter(|r| r.api_key == key as i16)
        .map(|r| (r.node_id, r.version))
        .collect()
}

async fn with_orders(admin: &KafkaAdmin) {
    admin
        .create_topic("orders", 3, 2, &BTreeMap::new())
        .await
        .expect("create orders");
}

#[tokio::test]
async fn partitions_report_leader_epoch_replicas_and_isr() {
    let (cluster, _brokers, admin) = three_brokers().await;
    with_orders(&admin).await;
    cluster.set_partition(
        "orders",
        1,
        FakePartition {
            leader: None,
            leader_epoch: 7,
            replicas: vec![1, 2],
            isr: vec![2],
            offline: vec![1],
            error_code: code(&ResponseError::LeaderNotAvailable),
        },
    );

    let described = admin
        .describe_topics_partitions(Some(&["orders", "missing"]))
        .await
        .expect("describe");
    let in_sync = |partition| PartitionState {
        partition,
        leader: Some(1),
        leader_epoch: Some(0),
        replicas: vec![1, 2],
        isr: vec![1, 2],
        offline_replicas: vec![],
        error: None,
    };
    assert_eq!(
        described["orders"],
        Ok(vec![
            in_sync(0),
            PartitionState {
                partition: 1,
                leader: None,
                leader_epoch: Some(7),
                replicas: vec![1, 2],
                isr: vec![2],
                offline_replicas: vec![1],
                error: Some(kafka_error(ResponseError::LeaderNotAvailable)),
            },
            in_sync(2),
        ])
    );
    assert_eq!(
        described["missing"],
        Err(kafka_error(ResponseError::UnknownTopicOrPartition))
    );
    assert!(cluster.topic("missing").is_none(), "never auto-created");

    // Every topic when none is named.
    let all = admin
        .describe_topics_partitions(None)
        .await
        .expect("describe all");
    assert_eq!(all.keys().collect::<Vec<_>>(), ["orders"]);
}

#[tokio::test]
async fn metadata_below_v7_does_not_say_the_leader_epoch() {
    let (_cluster, _brokers, admin) =
        three_brokers_with(|cluster| cluster.set_versions(ApiKey::Metadata, 0, 6)).await;
    with_orders(&admin).await;
    let described = admin
        .describe_topics_partitions(Some(&["orders"]))
        .await
        .expect("describe");
    let partitions = described["orders"].as_ref().expect("orders");
    assert!(partitions.iter().all(|p| p.leader_epoch.is_none()));
    assert!(partitions.iter().all(|p| p.leader == Some(1)));
}

fn log_dir(path: &str, replicas: Vec<(&str, i32, i64, bool)>) -> FakeLogDir {
    FakeLogDir {
        path: path.to_owned(),
        error_code: 0,
        total_bytes: 1 << 40,
        usable_bytes: 1 << 39,
        replicas: replicas
            .into_iter()
            .map(|(topic, partition, size, future)| (topic.to_owned(), partition, size, 0, future))
            .collect(),
    }
}

fn replica(topic: &str, partition: i32, size_bytes: i64, is_future: bool) -> LogDirReplica {
    LogDirReplica {
        partition: tp(topic, partition),
        size_bytes,
        offset_lag: 0,
        is_future,
    }
}

#[tokio::test]
async fn log_dirs_come_from_the_broker_asked() {
    let (cluster, _brokers, admin) = three_brokers().await;
    cluster.set_log_dirs(
        3,
        vec![
            log_dir(
                "/data/b",
                vec![("orders", 2, 4096, false), ("audit", 0, 10, false)],
            ),
            log_dir(
                "/data/a",
                vec![
                    ("orders", 0, 1234, false),
                    ("orders", 2, 512, true),
                    ("orders", 1, 99, false),
                ],
            ),
            FakeLogDir {
                error_code: code(&ResponseError::KafkaStorageError),
                ..log_dir("/data/offline", vec![])
            },
        ],
    );
    cluster.set_log_dirs(1, vec![log_dir("/data/a", vec![("orders", 0, 7, false)])]);

    let dirs = admin.describe_log_dirs(3, None).await.expect("describe");
    assert_eq!(
        dirs,
        vec![
            LogDir {
                path: "/data/a".to_owned(),
                error: None,
                total_bytes: Some(1 << 40),
                usable_bytes: Some(1 << 39),
                replicas: vec![
                    replica("orders", 0, 1234, false),
                    replica("orders", 1, 99, false),
                    replica("orders", 2, 512, true),
                ],
            },
            LogDir {
                path: "/data/b".to_owned(),
                error: None,
                total_bytes: Some(1 << 40),
                usable_bytes: Some(1 << 39),
                replicas: vec![
                    replica("audit", 0, 10, false),
                    replica("orders", 2, 4096, false)
                ],
            },
            LogDir {
                path: "/data/offline".to_owned(),
                error: Some(kafka_error(ResponseError::KafkaStorageError)),
                total_bytes: Some(1 << 40),
                usable_bytes: Some(1 << 39),
                replicas: vec![],
            },
        ]
    );
    assert_eq!(sent(&cluster, ApiKey::DescribeLogDirs), [(3, 4)]);

    // Asking about some partitions: those the broker hosts, and no others.
    let dirs = admin
        .describe_log_dirs(3, Some(&[tp("orders", 2), tp("orders", 9)]))
        .await
        .expect("describe some");
    let hosted: Vec<&LogDirReplica> = dirs.iter().flat_map(|d| &d.replicas).collect();
    assert_eq!(
        hosted,
        [
            &replica("orders", 2, 512, true),
            &replica("orders", 2, 4096, false)
        ]
    );

    // A broker with nothing on it.
    let dirs = admin
        .describe_log_dirs(2, None)
        .await
        .expect("describe empty");
    assert!(dirs.iter().all(|d| d.replicas.is_empty()));

    let err = admin
        .describe_log_dirs(9, None)
        .await
        .expect_err("no broker 9");
    assert!(matches!(err, AdminError::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn log_dirs_below_v4_do_not_say_the_volume_size() {
    let (cluster, _brokers, admin) =
        three_brokers_with(|cluster| cluster.set_versions(ApiKey::DescribeLogDirs, 1, 3)).await;
    cluster.set_log_dirs(1, vec![log_dir("/data", vec![("orders", 0, 7, false)])]);
    let dirs = admin.describe_log_dirs(1, None).await.expect("describe");
    assert_eq!(dirs.len(), 1);
    assert_eq!((dirs[0].total_bytes, dirs[0].usable_bytes), (None, None));
    assert_eq!(dirs[0].replicas, [replica("orders", 0, 7, false)]);
    assert_eq!(sent(&cluster, ApiKey::DescribeLogDirs), [(1, 3)]);
}

#[tokio::test]
async fn reassignments_start_list_and_cancel_on_the_controller() {
    let (cluster, _brokers, admin) = three_brokers().await;
    with_orders(&admin).await;

    let results = admin
        .alter_partition_reassignments(&BTreeMap::from([
            (tp("orders", 0), Some(vec![2, 3])),
            (tp("orders", 1), None),
            (tp("orders", 2), Some(vec![])),
            (tp("orders", 7), Some(vec![1, 2])),
        ]))
        .await
        .expect("alter");
    assert_eq!(results[&tp("orders", 0)], Ok(()));
    assert_eq!(
        results[&tp("orders", 1)],
        Err(kafka_error(ResponseError::NoReassignmentInProgress))
    );
    let invalid = results[&tp("orders", 2)].as_ref().expect_err("empty");
    assert_eq!(
        invalid.kafka_error(),
        Some(ResponseError::InvalidReplicaAssignment)
    );
    assert_eq!(
        invalid.message.as_deref(),
        Some("Replica assignment has brokers that are not alive.")
    );
    assert_eq!(
        results[&tp("orders", 7)],
        Err(kafka_error(ResponseError::UnknownTopicOrPartition))
    );
    assert_eq!(results.len(), 4);

    let moving = OngoingReassignment {
        replicas: vec![2, 3, 1],
        adding_replicas: vec![3],
        removing_replicas: vec![1],
    };
    let ongoing = admin
        .list_partition_reassignments(None)
        .await
        .expect("list");
    assert_eq!(ongoing, BTreeMap::from([(tp("orders", 0), moving.clone())]));
    let filtered = admin
        .list_partition_reassignments(Some(&[tp("orders", 1)]))
        .await
        .expect("list one");
    assert!(filtered.is_empty());
    // During the move, Metadata counts the replicas being added.
    let described = admin
        .describe_topics_partitions(Some(&["orders"]))
        .await
        .expect("describe");
    assert_eq!(
        described["orders"].as_ref().expect("orders")[0].replicas,
        [2, 3, 1]
    );

    // Cancelling puts the original replicas back.
    let results = admin
        .alter_partition_reassignments(&BTreeMap::from([(tp("orders", 0), None)]))
        .await
        .expect("cancel");
    assert_eq!(results, BTreeMap::from([(tp("orders", 0), Ok(()))]));
    assert!(
        admin
            .list_partition_reassignments(None)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(cluster.partition("orders", 0).replicas, [1, 2]);

    // A move that completes changes the replication factor (KIP-860 allows it).
    admin
        .alter_partition_reassignments(&BTreeMap::from([(tp("orders", 1), Some(vec![3, 2, 1]))]))
        .await
        .expect("grow");
    cluster.complete_reassignment("orders", 1);
    assert_eq!(cluster.partition("orders", 1).replicas, [3, 2, 1]);
    assert_eq!(cluster.partition("orders", 1).isr, [3, 2, 1]);

    // Every request went to the controller, at the highest version.
    assert!(
        sent(&cluster, ApiKey::AlterPartitionReassignments)
            .iter()
            .all(|&sent| sent == (2, 1))
    );
    assert!(
        sent(&cluster, ApiKey::ListPartitionReassignments)
            .iter()
            .all(|&sent| sent == (2, 0))
    );
    // Nothing to reassign sends nothing.
    let before = cluster.received().len();
    assert!(
        admin
            .alter_partition_reassignments(&BTreeMap::new())
            .await
            .expect("nothing")
            .is_empty()
    );
    assert_eq!(cluster.received().len(), before);
}

#[tokio::test]
async fn preferred_and_unclean_elections_report_per_partition() {
    let (cluster, _brokers, admin) = three_brokers().await;
    with_orders(&admin).await;
    let state = |leader: Option<i32>, isr: Vec<i32>| FakePartition {
        leader,
        leader_epoch: 4,
        replicas: vec![1, 2],
        isr,
        offline: vec![],
        error_code: 0,
    };
    // orders-0: broker 2 leads, preferred broker 1 in sync; orders-1: broker 1 out of sync;
    // orders-2: already led by its preferred replica.
    cluster.set_partition("orders", 0, state(Some(2), vec![1, 2]));
    cluster.set_partition("orders", 1, state(Some(2), vec![2]));

    let results = admin
        .elect_leaders(ElectionType::Preferred, None)
        .await
        .expect("elect");
    assert_eq!(
        results,
        BTreeMap::from([
            (tp("orders", 0), Ok(())),
            (
                tp("orders", 1),
                Err(kafka_error(ResponseError::PreferredLeaderNotAvailable))
            ),
            (
                tp("orders", 2),
                Err(kafka_error(ResponseError::ElectionNotNeeded))
            ),
        ])
    );
    let elected = cluster.partition("orders", 0);
    assert_eq!((elected.leader, elected.leader_epoch), (Some(1), 5));

    // Unclean: a leaderless partition takes a live replica out of the ISR.
    cluster.set_partition(
        "orders",
        1,
        FakePartition {
            offline: vec![1],
            ..state(None, vec![1])
        },
    );
    let results = admin
        .elect_leaders(
            ElectionType::Unclean,
            Some(&[tp("orders", 1), tp("orders", 2)]),
        )
        .await
        .expect("elect unclean");
    assert_eq!(results[&tp("orders", 1)], Ok(()));
    assert_eq!(
        results[&tp("orders", 2)],
        Err(kafka_error(ResponseError::ElectionNotNeeded))
    );
    let elected = cluster.partition("orders", 1);
    assert_eq!((elected.leader, elected.isr), (Some(2), vec![2]));
    assert_eq!(sent(&cluster, ApiKey::ElectLeaders), [(2, 2), (2, 2)]);
}

#[tokio::test]
async fn an_unclean_election_needs_elect_leaders_v1() {
    let (cluster, _brokers, admin) =
        three_brokers_with(|cluster| cluster.set_versions(ApiKey::ElectLeaders, 0, 0)).await;
    with_orders(&admin).await;
    let err = admin
        .elect_leaders(ElectionType::Unclean, Some(&[tp("orders", 0)]))
        .await
        .expect_err("v0 has no election type");
    match err {
        AdminError::UnsupportedApi {
            api,
            client_versions,
            ..
        } => {
            assert_eq!(api, "ElectLeaders");
            assert_eq!((client_versions.min, client_versions.max), (1, 2));
        }
        other => panic!("expected UnsupportedApi, got {other:?}"),
    }
    assert!(sent(&cluster, ApiKey::ElectLeaders).is_empty());

    // A preferred election works at v0.
    let results = admin
        .elect_leaders(ElectionType::Preferred, Some(&[tp("orders", 0)]))
        .await
        .expect("elect preferred");
    assert_eq!(
        results[&tp("orders", 0)],
        Err(kafka_error(ResponseError::ElectionNotNeeded))
    );
    assert_eq!(sent(&cluster, ApiKey::ElectLeaders), [(2, 0)]);
}

#[tokio::test]
async fn top_level_errors_fail_the_whole_request() {
    let broker = FakeBroker::start(versions_then(|header, _| {
        if header.request_api_key == ApiKey::Metadata as i16 {
            return respond(
                header,
                &kafka_protocol::messages::MetadataResponse::default(),
            );
        }
        let response = ListPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str("not allowed")));
        respond(header, &response)
    }))
    .await;
    let admin = KafkaAdmin::connect(&broker.address(), TIMEOUT)
        .await
        .expect("connect");
    let err = admin
        .list_partition_reassignments(None)
        .await
        .expect_err("refused");
    assert_eq!(
        err.kafka_error(),
        Some(ResponseError::ClusterAuthorizationFailed)
    );
    assert!(err.to_string().contains("not allowed"), "{err}");
}

#[tokio::test]
async fn a_partition_missing_from_the_answer_is_a_protocol_error() {
    let broker = FakeBroker::start(versions_then(|header, _| {
        if header.request_api_key == ApiKey::Metadata as i16 {
            return respond(
                header,
                &kafka_protocol::messages::MetadataResponse::default(),
            );
        }
        respond(
            header,
            &kafka_protocol::messages::AlterPartitionReassignmentsResponse::default(),
        )
    }))
    .await;
    let admin = KafkaAdmin::connect(&broker.address(), TIMEOUT)
        .await
        .expect("connect");
    let err = admin
        .alter_partition_reassignments(&BTreeMap::from([(tp("orders", 0), Some(vec![1]))]))
        .await
        .expect_err("no entry");
    match err {
        AdminError::Protocol { api, reason, .. } => {
            assert_eq!(api, "AlterPartitionReassignments");
            assert_eq!(reason, "the response has no entry for partition orders-0");
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}
