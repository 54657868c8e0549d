//! Client behaviour against the in-process fake broker: version negotiation, routing, framing
//! and error handling, and the topic lifecycle the operator relies on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, CreateTopicsResponse, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::fake_broker::{
    Bound, FAKE_CLUSTER_ID, FakeBroker, FakeKafka, Received, Reply, respond,
    respond_with_correlation, versions_then,
};
use crate::{
    AdminError, BrokerAdmin, ClusterAdmin, ClusterDescription, DescribedBroker, KafkaAdmin,
    ResponseError, Target,
};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A single-broker fake cluster (node 1, also the controller).
async fn single_node() -> (std::sync::Arc<FakeKafka>, FakeBroker) {
    let bound = Bound::new().await;
    let cluster = FakeKafka::new(vec![(1, bound.addr())], 1);
    let broker = bound.serve(cluster.handler(1));
    (cluster, broker)
}

fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn versions_of(received: &[Received], key: ApiKey) -> Vec<i16> {
    received
        .iter()
        .filter(|r| r.api_key == key as i16)
        .map(|r| r.version)
        .collect()
}

#[tokio::test]
async fn topic_lifecycle() {
    let (cluster, broker) = single_node().await;
    let admin = KafkaAdmin::connect(&broker.address(), TIMEOUT)
        .await
        .expect("connect");

    assert_eq!(
        admin.describe_topic("orders").await.expect("describe"),
        None
    );
    assert!(
        cluster.topic("orders").is_none(),
        "describing a missing topic must not create it"
    );

    let wanted = configs(&[("retention.ms", "86400000"), ("min.insync.replicas", "1")]);
    let topic_id = admin
        .create_topic("orders", 3, 1, &wanted)
        .await
        .expect("create");
    let mut id = [0; 16];
    id[15] = 1;
    assert_eq!(topic_id, crate::topic_id::kafka_uuid_string(&id));

    let observed = admin
        .describe_topic("orders")
        .await
        .expect("describe")
        .expect("topic exists");
    assert_eq!(observed.name, "orders");
    assert_eq!(observed.topic_id, topic_id);
    assert_eq!(observed.partitions, 3);
    assert_eq!(observed.replication_factor, 1);
    // The broker default (cleanup.policy from source DEFAULT_CONFIG) is not reported.
    assert_eq!(observed.configs, wanted);

    admin.create_partitions("orders", 5).await.expect("grow");
    let observed = admin.describe_topic("orders").await.expect("describe");
    assert_eq!(observed.map(|t| t.partitions), Some(5));

    let set = configs(&[("retention.ms", "3600000"), ("cleanup.policy", "compact")]);
    let delete = BTreeSet::from(["min.insync.replicas".to_owned()]);
    admin
        .alter_topic_configs("orders", &set, &delete)
        .await
        .expect("alter");
    let observed = admin.describe_topic("orders").await.expect("describe");
    assert_eq!(observed.map(|t| t.configs), Some(set));

    admin.delete_topic("orders").await.expect("delete");
    assert_eq!(
        admin.describe_topic("orders").await.expect("describe"),
        None
    );
    // Deleting again succeeds: the topic is gone, as asked.
    admin.delete_topic("orders").await.expect("delete again");

    // One connection served everything: the controller is the bootstrap broker.
    assert_eq!(broker.connections(), 1);
}

#[tokio::test]
async fn kafka_errors_carry_code_name_and_message() {
    let (_cluster, broker) = single_node().await;
    let admin = KafkaAdmin::connect(&broker.address(), TIMEOUT)
        .await
        .expect("connect");
    admin
        .create_topic("orders", 2, 1, &BTreeMap::new())
        .await
        .expect("create");

    let err = admin
        .create_topic("orders", 2, 1, &BTreeMap::new())
        .await
        .expect_err("second create must fail");
    match &err {
        AdminError::Kafka {
            api,
            code,
            name,
            message,
        } => {
            assert_eq!(
                (*api, *code, *name),
                ("CreateTopics", 36, "TOPIC_ALREADY_EXISTS")
            );
            assert_eq!(message.as_deref(), Some("Topic 'orders' already exists."));
        }
        other => panic!("expected a Kafka error, got {other:?}"),
    }
    assert_eq!(err.kafka_error(), Some(ResponseError::TopicAlreadyExists));

    let err = admin
        .create_partitions("orders", 1)
        .await
        .expect_err("shrinking must fail");
    assert!(
        matches!(
            err,
            AdminError::Kafka {
                api: "CreatePartitions",
                code: 37,
                name: "INVALID_PARTITIONS",
                ..
            }
        ),
        "{err:?}"
    );

    let err = admin
        .create_partitions("missing", 4)
        .await
        .expect_err("missing topic");
    assert_eq!(
        err.kafka_error(),
        Some(ResponseError::UnknownTopicOrPartition)
    );
    assert!(err.is_retriable());
}

#[tokio::test]
async fn apiversions_falls_back_to_v0_when_broker_rejects_v3() {
    let (cluster, broker) = single_node().await;
    cluster.set_versions(ApiKey::ApiVersions, 0, 2);
    // An older broker: its UNSUPPORTED_VERSION answer does not say which versions it knows.
    cluster.set_list_api_versions_on_error(false);
    cluster.set_versions(ApiKey::Metadata, 0, 9);

    let admin = KafkaAdmin::connect(&broker.address(), TIMEOUT)
        .await
        .expect("connect after fallback");
    assert_eq!(
        versions_of(&cluster.received(), ApiKey::ApiVersions),
        [3, 0]
    );

    // The versions learnt from the v0 answer drive the next request: Metadata v9, the highest
    // both sides implement; v9 carries no topic id.
    admin
        .create_topic("orders", 1, 1, &BTreeMap::new())
        .await
        .expect("create");
    let observed = admin.describe_topic("orders").await.expect("describe");
    assert_eq!(observed.map(|t| t.topic_id), Some(String::new()));
    let received = cluster.received();
    let metadata = versions_of(&received, ApiKey::Metadata);
    assert!(!metadata.is_empty());
    assert!(metadata.iter().all(|&v| v == 9), "{metadata:?}");
    assert_eq!(versions_of(&received, ApiKey::CreateTopics), [7]);
}

#[tokio::test]
async fn apiversions_retries_with_the_version_the_broker_lists() {
    let (cluster, broker) = single_node().await;
    cluster.set_versions(ApiKey::ApiVersions, 0, 2);
    KafkaAdmin::connect(&broker.address(), TIMEOUT)
        .await
        .expect("connect after fallback");
    assert_eq!(
        versions_of(&cluster.received(), ApiKey::ApiVersions),
        [3, 2]
    );
}

#[tokio::test]
async fn picks_highest_version_both_sides_implement() {
    let (cluster, broker) = single_node().await;
    cluster.set_versions(ApiKey::CreateTopics, 2, 4);
    cluster.set_versions(ApiKey::DeleteTopics, 1, 5);
    let admin = KafkaAdmin::connect(&broker.address(), TIMEOUT)
        .await
        .expect("connect");
    let topic_id = admin
        .create_topic("orders", 1, 1, &BTreeMap::new())
        .await
        .expect("create");
    // CreateTopics v4 has no topic id; the client asks Metadata (v13) for it instead.
    assert_eq!(topic_id.len(), 22);
    admin
        .delete_topic("orders")
        .await
        .expect("delete with topic_names (v5)");
    assert!(cluster.topic("orders").is_none());
    let received = cluster.received();
    assert_eq!(versions_of(&received, ApiKey::ApiVersions), [3]);
    assert_eq!(versions_of(&received, ApiKey::CreateTopics), [4]);
    assert_eq!(versions_of(&received, ApiKey::DeleteTopics), [5]);
    assert!(
        versions_of(&received, ApiKey::Metadata)
            .iter()
            .all(|&v| v == 13)
    );
}

#[tokio::test]
async fn metadata_before_v4_is_refused_to_avoid_auto_creation() {
    let (cluster, broker) = single_node().await;
    cluster.set_versions(ApiKey::Metadata, 0, 3);
    let admin = KafkaAdmin::connect(&broker.address(), TIMEOUT)
        .await
        .expect("connect");
    let err = admin
        .describe_topic("orders")
        .await
        .expect_err("no usable Metadata version");
    match err {
        AdminError::UnsupportedApi {
            api,
            broker_versions,
            client_versions,
            ..
        } => {
            assert_eq!(api, "Metadata");
            assert_eq!(broker_versions.map(|r| (r.min, r.max)), Some((0, 3)));
            assert_eq!((client_versions.min, client_versions.max), (4, 13));
        }
        other => panic!("expected UnsupportedApi, got {other:?}"),
    }
    assert_eq!(versions_of(&cluster.received(), ApiKey::Metadata), []);
}

#[tokio::test]
async fn controller_requests_go_to_the_controller() {
    let first = Bound::new().await;
    let second = Bound::new().await;
    let cluster = FakeKafka::new(vec![(1, first.addr()), (2, second.addr())], 2);
    let node1 = first.serve(cluster.handler(1));
    let node2 = second.serve(cluster.handler(2));

    let admin = KafkaAdmin::connect(&node1.address(), TIMEOUT)
        .await
        .expect("connect");
    admin
        .create_topic("orders", 2, 1, &BTreeMap::new())
        .await
        .expect("create on the controller");
    admin.create_partitions("orders", 4).await.expect("grow");
    admin
        .alter_topic_configs(
            "orders",
            &configs(&[("retention.ms", "1000")]),
            &BTreeSet::new(),
        )
        .await
        .expect("alter");
    admin.delete_topic("orders").await.expect("delete");

    let received = cluster.received();
    let on = |key: ApiKey| -> Vec<i32> {
        received
            .iter()
            .filter(|r| r.api_key == key as i16)
            .map(|r| r.node_id)
            .collect()
    };
    assert_eq!(on(ApiKey::CreateTopics), [2]);
    assert_eq!(on(ApiKey::CreatePartitions), [2]);
    assert_eq!(on(ApiKey::DeleteTopics), [2]);
    assert_eq!(on(ApiKey::IncrementalAlterConfigs), [1]);
    // Metadata lookups stay on the bootstrap connection.
    assert!(on(ApiKey::Metadata).iter().all(|&node| node == 1));
    // The controller connection was opened once and reused.
    assert_eq!((node1.connections(), node2.connections()), (1, 1));

    // Node-directed requests reuse the same connections.
    let (_, response) = admin
        .send_to(Target::Node(2), |_| {
            kafka_protocol::messages::MetadataRequest::default()
                .with_topics(Some(Vec::new()))
                .with_allow_auto_topic_creation(false)
        })
        .await
        .expect("metadata on node 2");
    assert_eq!(response.controller_id.0, 2);
    assert_eq!(node2.connections(), 1);
}

/// Three fake brokers of one cluster: 0 is the controller, 1 is fenced, racks a, b, c.
async fn three_nodes() -> (std::sync::Arc<FakeKafka>, Vec<FakeBroker>) {
    let bound = [Bound::new().await, Bound::new().await, Bound::new().await];
    let cluster = FakeKafka::new(
        bound
            .iter()
            .zip(0..)
            .map(|(b, id)| (id, b.addr()))
            .collect(),
        0,
    );
    for (id, rack) in [(0, "a"), (1, "b"), (2, "c")] {
        cluster.set_rack(id, rack);
    }
    cluster.set_fenced(1);
    let brokers = bound
        .into_iter()
        .zip(0..)
        .map(|(b, id)| b.serve(cluster.handler(id)))
        .collect();
    (cluster, brokers)
}

fn described(id: i32, broker: &FakeBroker, rack: &str, fenced: bool) -> DescribedBroker {
    let addr: std::net::SocketAddr = broker.address().parse().expect("socket address");
    DescribedBroker {
        node_id: id,
        host: addr.ip().to_string(),
        port: i32::from(addr.port()),
        rack: Some(rack.to_owned()),
        fenced,
    }
}

#[tokio::test]
async fn describe_cluster_reports_id_controller_and_fenced_brokers() {
    let (cluster, brokers) = three_nodes().await;
    // Asked through broker 2: the answer comes from the broker connected to, not a controller.
    let admin = KafkaAdmin::connect(&brokers[2].address(), TIMEOUT)
        .await
        .expect("connect");
    let description = admin.describe_cluster().await.expect("describe cluster");
    assert_eq!(
        description,
        ClusterDescription {
            cluster_id: FAKE_CLUSTER_ID.to_owned(),
            controller_id: Some(0),
            brokers: vec![
                described(0, &brokers[0], "a", false),
                described(1, &brokers[1], "b", true),
                described(2, &brokers[2], "c", false),
            ],
        }
    );
    let received = cluster.received();
    let describe: Vec<(i32, i16)> = received
        .iter()
        .filter(|r| r.api_key == ApiKey::DescribeCluster as i16)
        .map(|r| (r.node_id, r.version))
        .collect();
    assert_eq!(describe, [(2, 2)]);
}

#[tokio::test]
async fn describe_cluster_below_v2_lists_unfenced_brokers_only() {
    let (cluster, brokers) = three_nodes().await;
    cluster.set_versions(ApiKey::DescribeCluster, 0, 1);
    cluster.set_controller(-1);
    let admin = KafkaAdmin::connect(&brokers[0].address(), TIMEOUT)
        .await
        .expect("connect");
    let description = admin.describe_cluster().await.expect("describe cluster");
    assert_eq!(description.controller_id, None, "-1 means no controller");
    assert_eq!(
        description.brokers,
        vec![
            described(0, &brokers[0], "a", false),
            described(2, &brokers[2], "c", false),
        ]
    );
}

#[tokio::test]
async fn describe_cluster_error_code_is_a_kafka_error() {
    let broker = FakeBroker::start(versions_then(|header, _| {
        let response = kafka_protocol::messages::DescribeClusterResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str("not allowed")));
        respond(header, &response)
    }))
    .await;
    let admin = KafkaAdmin::connect(&broker.address(), TIMEOUT)
        .await
        .expect("connect");
    let err = admin.describe_cluster().await.expect_err("refused");
    assert_eq!(
        err.kafka_error(),
        Some(ResponseError::ClusterAuthorizationFailed)
    );
    assert!(err.to_string().contains("not allowed"), "{err}");
}

#[tokio::test]
async fn correlation_id_mismatch_is_a_protocol_error_and_drops_the_connection() {
    let broker = FakeBroker::start(versions_then(|header, _| {
        respond_with_correlation(
            header.correlation_id.wrapping_add(7),
            header.request_api_version,
            &MetadataResponse::default(),
        )
    }))
    .await;
    let admin = KafkaAdmin::connect(&broker.address(), TIMEOUT)
        .await
        .expect("connect");
    for attempt in 1..=2 {
        let err = admin
            .describe_topic("orders")
            .await
            .expect_err("mismatched correlation id");
        match err {
            AdminError::Protocol { api, reason, .. } => {
                assert_eq!(api, "Metadata");
                assert!(reason.contains("correlation id"), "{reason}");
            }
            other => panic!("expected a protocol error, got {other:?}"),
        }
        // The failed connection is never reused: each attempt after the first dials again.
        assert_eq!(broker.connections(), attempt);
    }
}

#[tokio::test]
async fn malformed_frames_are_protocol_errors() {
    let negative_size = FakeBroker::start(versions_then(|_, _| {
        Reply::Raw(Bytes::from_static(&[0xff, 0xff, 0xff, 0xf0]))
    }))
    .await;
    let trailing_bytes = FakeBroker::start(versions_then(|header, _| {
        let Reply::Frame(body) = respond(header, &MetadataResponse::default()) else {
            unreachable!("respond always frames");
        };
        let mut longer = BytesMut::from(&body[..]);
        longer.put_slice(b"junk");
        Reply::Frame(longer.freeze())
    }))
    .await;
    let truncated_body = FakeBroker::start(versions_then(|header, _| {
        let Reply::Frame(body) = respond(header, &MetadataResponse::default()) else {
            unreachable!("respond always frames");
        };
        Reply::Frame(body.slice(..body.len() - 3))
    }))
    .await;

    for (broker, expected) in [
        (&negative_size, "frame size -16"),
        (&trailing_bytes, "4 of"),
        (&truncated_body, "cannot decode"),
    ] {
        let admin = KafkaAdmin::connect(&broker.address(), TIMEOUT)
            .await
            .expect("connect");
        let err = admin.describe_topic("orders").await.expect_err("malformed");
        match err {
            AdminError::Protocol { api, reason, .. } => {
                assert_eq!(api, "Metadata");
                assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
            }
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn connection_refused_is_unreachable() {
    // A port that was just free: nothing listens on it any more.
    let address = {
        let bound = Bound::new().await;
        bound.addr().to_string()
    };
    let err = KafkaAdmin::connect(&address, TIMEOUT)
        .await
        .expect_err("nothing listens");
    match err {
        AdminError::Unreachable { bootstrap, source } => {
            assert_eq!(bootstrap, address);
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }

    let err = KafkaAdmin::connect(" , ", TIMEOUT)
        .await
        .expect_err("empty bootstrap list");
    assert!(matches!(err, AdminError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn bootstrap_tries_each_address() {
    let refused = {
        let bound = Bound::new().await;
        bound.addr().to_string()
    };
    let (_cluster, broker) = single_node().await;
    let bootstrap = format!("{refused}, {}", broker.address());
    let admin = KafkaAdmin::connect(&bootstrap, TIMEOUT)
        .await
        .expect("second address answers");
    assert_eq!(
        admin.describe_topic("orders").await.expect("describe"),
        None
    );

    let err = KafkaAdmin::connect(&format!("{refused},{refused}"), TIMEOUT)
        .await
        .expect_err("no address answers");
    assert!(
        matches!(&err, AdminError::Unreachable { bootstrap, .. } if bootstrap.contains(',')),
        "{err:?}"
    );
}

#[tokio::test]
async fn silent_broker_times_out() {
    let broker = FakeBroker::start(versions_then(|_, _| Reply::Silent)).await;
    let timeout = Duration::from_millis(200);
    let admin = KafkaAdmin::connect(&broker.address(), timeout)
        .await
        .expect("connect");
    let err = admin.describe_topic("orders").await.expect_err("no answer");
    assert!(err.is_retriable());
    match err {
        AdminError::Timeout { api, after } => {
            assert_eq!(api, "Metadata");
            assert_eq!(after, timeout);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn generic_send_returns_the_decoded_response() {
    let broker = FakeBroker::start(versions_then(|header, _| {
        let response = CreateTopicsResponse::default().with_topics(vec![
            CreatableTopicResult::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_error_code(38)
                .with_error_message(Some(StrBytes::from_static_str(
                    "Replication factor: 3 larger than available brokers: 1.",
                ))),
        ]);
        respond(header, &response)
    }))
    .await;
    let admin = KafkaAdmin::connect(&broker.address(), TIMEOUT)
        .await
        .expect("connect");
    let response = admin
        .send(kafka_protocol::messages::CreateTopicsRequest::default())
        .await
        .expect("send");
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].error_code, 38);
    assert_eq!(
        crate::error_name(response.topics[0].error_code),
        "INVALID_REPLICATION_FACTOR"
    );
}
