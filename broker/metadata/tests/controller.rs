//! Controller operations on a real single-voter quorum in a temporary directory.

mod common;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;

use strom_metadata::ConfigOp;
use strom_metadata::ConfigResource;
use strom_metadata::Controller;
use strom_metadata::ControllerError;
use strom_metadata::CreateTopicRequest;
use strom_metadata::MetadataQuorum;
use strom_metadata::QuorumConfig;
use strom_metadata::TopicDefaults;
use strom_metadata::topic_config::ConfigSource;
use strom_metadata::topic_config::effective_topic_configs;

async fn start(dir: &Path, brokers: i32) -> Controller {
    let quorum = MetadataQuorum::start(QuorumConfig::single_voter(1, dir, "127.0.0.1:9093"))
        .await
        .expect("single-voter quorum starts");
    let controller = Controller::new(
        quorum,
        TopicDefaults {
            num_partitions: 2,
            default_replication_factor: 1,
        },
    );
    for node_id in 1..=brokers {
        common::register_live(
            &controller,
            node_id,
            &format!("broker-{node_id}"),
            9092,
            None,
        )
        .await
        .expect("broker registers");
    }
    controller
}

fn topic(name: &str, partitions: i32, rf: i16) -> CreateTopicRequest {
    CreateTopicRequest {
        name: name.to_owned(),
        num_partitions: Some(partitions),
        replication_factor: Some(rf),
        ..Default::default()
    }
}

fn code<T>(result: &Result<T, ControllerError>) -> i16 {
    result
        .as_ref()
        .err()
        .map_or(0, ControllerError::kafka_error_code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_validates_with_kafka_error_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = start(dir.path(), 3).await;
    let created = controller
        .create_topics(vec![topic("existing", 1, 1), topic("a_b", 1, 1)], false)
        .await;
    assert!(created.iter().all(|r| r.result.is_ok()), "{created:?}");

    let with_config = |name: &str, key: &str, value: &str| CreateTopicRequest {
        configs: BTreeMap::from([(key.to_owned(), value.to_owned())]),
        ..topic(name, 1, 1)
    };
    let with_assignment =
        |name: &str, assignment: &[(i32, &[i32])], partitions: Option<i32>| CreateTopicRequest {
            name: name.to_owned(),
            num_partitions: partitions,
            assignments: Some(assignment.iter().map(|(p, r)| (*p, r.to_vec())).collect()),
            ..Default::default()
        };
    let cases: Vec<(CreateTopicRequest, i16)> = vec![
        (topic("bad name!", 1, 1), 17),
        (topic("", 1, 1), 17),
        (topic("..", 1, 1), 17),
        (topic(&"x".repeat(250), 1, 1), 17),
        (topic("a.b", 1, 1), 17),
        (topic("existing", 1, 1), 36),
        (topic("zero-partitions", 0, 1), 37),
        (topic("negative-partitions", -2, 1), 37),
        (topic("too-many-partitions", 1_000_000, 1), 37),
        (topic("zero-rf", 1, 0), 38),
        (topic("rf-above-brokers", 1, 4), 38),
        (with_config("unknown-config", "no.such.config", "1"), 40),
        (with_config("bad-value", "retention.ms", "soon"), 40),
        (
            with_config("bad-ratio", "min.cleanable.dirty.ratio", "1.5"),
            40,
        ),
        (with_assignment("both", &[(0, &[1])], Some(1)), 42),
        (with_assignment("unknown-broker", &[(0, &[9])], None), 39),
        (with_assignment("gap", &[(0, &[1]), (2, &[2])], None), 39),
        (with_assignment("twice", &[(0, &[1, 1])], None), 39),
        (
            with_assignment("same-partition-twice", &[(0, &[1]), (0, &[2])], None),
            39,
        ),
        (with_assignment("no-replicas", &[(0, &[])], None), 39),
        (
            with_assignment("uneven", &[(0, &[1, 2]), (1, &[2])], None),
            39,
        ),
    ];
    let (requests, codes): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
    let names: Vec<String> = requests.iter().map(|r| r.name.clone()).collect();
    let results = controller.create_topics(requests, false).await;
    assert_eq!(results.len(), codes.len());
    for ((result, expected), name) in results.iter().zip(codes).zip(&names) {
        assert_eq!(result.name, *name, "results keep request order");
        assert_eq!(
            code(&result.result),
            expected,
            "{name}: {:?}",
            result.result
        );
        let message = result.result.as_ref().expect_err("refused").to_string();
        assert!(!message.is_empty());
    }
    // Nothing refused was created.
    let image = controller.quorum().image();
    let mut topics: Vec<&str> = image.topics.keys().map(String::as_str).collect();
    topics.sort_unstable();
    assert_eq!(topics, vec!["a_b", "existing"]);

    let compact = controller
        .create_topics(
            vec![with_config("compacted", "cleanup.policy", "compact")],
            false,
        )
        .await;
    compact[0]
        .result
        .as_ref()
        .expect("a compacted topic is created");
    let image = controller.quorum().image();
    assert_eq!(
        image
            .topic("compacted")
            .map(|t| t.configs.get("cleanup.policy").cloned()),
        Some(Some("compact".to_owned()))
    );

    // Duplicate names in one request are refused, both of them.
    let duplicate = controller
        .create_topics(vec![topic("dup", 1, 1), topic("dup", 1, 1)], false)
        .await;
    assert!(
        duplicate.iter().all(|r| code(&r.result) == 42),
        "{duplicate:?}"
    );
    // Names that collide within one request: the second one is refused.
    let colliding = controller
        .create_topics(vec![topic("x.y", 1, 1), topic("x_y", 1, 1)], false)
        .await;
    assert_eq!(
        (code(&colliding[0].result), code(&colliding[1].result)),
        (0, 17)
    );
    controller.quorum().shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_topics_are_placed_round_robin_and_report_configs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = start(dir.path(), 3).await;
    let request = CreateTopicRequest {
        configs: BTreeMap::from([("retention.ms".to_owned(), "60000".to_owned())]),
        ..topic("orders", 6, 3)
    };
    let results = controller
        .create_topics(
            vec![
                request,
                CreateTopicRequest {
                    name: "defaults".into(),
                    ..Default::default()
                },
            ],
            false,
        )
        .await;
    let created = results[0].result.as_ref().expect("orders created");
    assert_eq!((created.num_partitions, created.replication_factor), (6, 3));
    let retention = created
        .configs
        .iter()
        .find(|c| c.name == "retention.ms")
        .expect("retention.ms reported");
    assert_eq!(
        (retention.value.as_str(), retention.source),
        ("60000", ConfigSource::Topic)
    );

    let image = controller.quorum().image();
    let orders = image.topic("orders").expect("orders in the image");
    assert_eq!(orders.topic_id, created.topic_id);
    assert_eq!(
        image
            .topic_by_id(&created.topic_id)
            .map(|t| t.name.as_str()),
        Some("orders")
    );
    assert_eq!(
        orders.configs.get("retention.ms").map(String::as_str),
        Some("60000")
    );
    let mut leaders = BTreeMap::new();
    for (index, partition) in &orders.partitions {
        let mut distinct = partition.replicas.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct, vec![1, 2, 3], "partition {index}: {partition:?}");
        assert_eq!(partition.leader, partition.replicas[0]);
        assert_eq!(
            partition.isr, partition.replicas,
            "every replica of a new partition is in sync"
        );
        assert_eq!((partition.leader_epoch, partition.partition_epoch), (0, 0));
        *leaders.entry(partition.leader).or_insert(0) += 1;
    }
    assert_eq!(
        orders.partitions.keys().copied().collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    assert_eq!(
        leaders,
        BTreeMap::from([(1, 2), (2, 2), (3, 2)]),
        "leaders balanced"
    );

    let defaults = results[1].result.as_ref().expect("defaults created");
    assert_eq!(
        (defaults.num_partitions, defaults.replication_factor),
        (2, 1)
    );
    assert_eq!(image.topic("defaults").map(|t| t.partitions.len()), Some(2));
    controller.quorum().shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_placed_rack_aware_and_rotate_their_leaders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = start(dir.path(), 0).await;
    for (node_id, rack) in [(1, "zone-a"), (2, "zone-b"), (3, "zone-c")] {
        common::register_live(
            &controller,
            node_id,
            &format!("broker-{node_id}"),
            9092,
            Some(rack),
        )
        .await
        .expect("broker registers");
    }
    let results = controller
        .create_topics(
            vec![
                topic("orders", 12, 3),
                topic("first", 1, 1),
                topic("second", 1, 1),
                topic("third", 1, 1),
            ],
            false,
        )
        .await;
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    let image = controller.quorum().image();
    let orders = image.topic("orders").expect("orders in the image");
    let mut leaders = BTreeMap::new();
    for (index, partition) in &orders.partitions {
        let racks: BTreeSet<_> = partition
            .replicas
            .iter()
            .filter_map(|r| image.broker(*r))
            .filter_map(|b| b.rack.clone())
            .collect();
        assert_eq!(racks.len(), 3, "partition {index}: {partition:?}");
        *leaders.entry(partition.leader).or_insert(0) += 1;
    }
    assert_eq!(leaders, BTreeMap::from([(1, 4), (2, 4), (3, 4)]));
    // Topics created one after the other do not all lead on the same broker.
    let single: BTreeSet<i32> = ["first", "second", "third"]
        .iter()
        .filter_map(|name| image.partition(name, 0).map(|p| p.leader))
        .collect();
    assert_eq!(single, BTreeSet::from([1, 2, 3]));

    let too_many = controller
        .create_topics(vec![topic("wide", 1, 4)], false)
        .await;
    assert_eq!(code(&too_many[0].result), 38);
    assert_eq!(
        too_many[0]
            .result
            .as_ref()
            .expect_err("refused")
            .to_string(),
        "Unable to replicate the partition 4 time(s): The target replication factor of 4 \
         cannot be reached because only 3 broker(s) are registered."
    );
    controller.quorum().shutdown().await.expect("shutdown");
}

// On a current-thread runtime on purpose: the quorum must not need a multi-thread runtime.
#[tokio::test]
async fn validate_only_creates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = start(dir.path(), 1).await;
    let offset = controller.quorum().image().offset;
    let results = controller
        .create_topics(vec![topic("dry-run", 3, 1)], true)
        .await;
    assert!(results[0].result.is_ok(), "{results:?}");
    let image = controller.quorum().image();
    assert!(image.topic("dry-run").is_none());
    assert_eq!(image.offset, offset, "nothing was committed");
    let refused = controller
        .create_topics(vec![topic("dry-run", 3, 2)], true)
        .await;
    assert_eq!(
        code(&refused[0].result),
        38,
        "validate_only still validates"
    );

    controller
        .create_topics(vec![topic("real", 1, 1)], false)
        .await[0]
        .result
        .as_ref()
        .expect("created");
    let grown = controller
        .create_partitions(vec![("real".into(), 4, None)], true)
        .await;
    assert!(grown[0].is_ok());
    assert_eq!(
        controller
            .quorum()
            .image()
            .topic("real")
            .map(|t| t.partitions.len()),
        Some(1)
    );
    let ops = vec![ConfigOp::Set("retention.ms".into(), "1".into())];
    controller
        .incremental_alter_configs(ConfigResource::Topic("real".into()), ops, true)
        .await
        .expect("valid");
    assert!(
        controller
            .quorum()
            .image()
            .topic("real")
            .is_some_and(|t| t.configs.is_empty())
    );
    controller.quorum().shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = start(dir.path(), 1).await;
    let created = controller
        .create_topics(vec![topic("doomed", 2, 1), topic("kept", 1, 1)], false)
        .await;
    let doomed_id = created[0].result.as_ref().expect("created").topic_id;

    let results = controller
        .delete_topics(vec!["doomed".into(), "missing".into()])
        .await;
    assert_eq!(results[0], Ok(doomed_id));
    assert_eq!(code(&results[1]), 3);
    let image = controller.quorum().image();
    assert!(image.topic("doomed").is_none());
    assert!(image.topic_by_id(&doomed_id).is_none());
    assert!(image.topic("kept").is_some());

    let duplicate = controller
        .delete_topics(vec!["kept".into(), "kept".into()])
        .await;
    assert!(duplicate.iter().all(|r| code(r) == 42));
    assert!(controller.quorum().image().topic("kept").is_some());

    // The name is free again and gets a new id.
    let again = controller
        .create_topics(vec![topic("doomed", 1, 1)], false)
        .await;
    assert_ne!(
        again[0].result.as_ref().expect("recreated").topic_id,
        doomed_id
    );
    controller.quorum().shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_grows_and_refuses_to_shrink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = start(dir.path(), 3).await;
    controller
        .create_topics(vec![topic("t", 2, 2)], false)
        .await[0]
        .result
        .as_ref()
        .expect("created");

    let results = controller
        .create_partitions(
            vec![("t".into(), 4, None), ("missing".into(), 2, None)],
            false,
        )
        .await;
    assert_eq!(results[0], Ok(()));
    assert_eq!(code(&results[1]), 3);
    let image = controller.quorum().image();
    let t = image.topic("t").expect("topic");
    assert_eq!(
        t.partitions.keys().copied().collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    for partition in t.partitions.values() {
        assert_eq!(partition.replicas.len(), 2, "{partition:?}");
        assert_ne!(partition.replicas[0], partition.replicas[1]);
        assert_eq!(partition.leader, partition.replicas[0]);
    }

    let shrink = controller
        .create_partitions(vec![("t".into(), 3, None)], false)
        .await;
    assert_eq!(code(&shrink[0]), 37);
    let message = shrink[0].as_ref().expect_err("refused").to_string();
    assert_eq!(
        message,
        "The topic t currently has 4 partition(s); 3 would not be an increase."
    );
    let same = controller
        .create_partitions(vec![("t".into(), 4, None)], false)
        .await;
    assert_eq!(code(&same[0]), 37);
    assert_eq!(
        same[0].as_ref().expect_err("refused").to_string(),
        "Topic already has 4 partition(s)."
    );

    let manual = controller
        .create_partitions(
            vec![("t".into(), 6, Some(vec![vec![3, 1], vec![2, 3]]))],
            false,
        )
        .await;
    assert_eq!(manual[0], Ok(()));
    let image = controller.quorum().image();
    assert_eq!(
        image.partition("t", 4).map(|p| p.replicas.clone()),
        Some(vec![3, 1])
    );
    assert_eq!(image.partition("t", 5).map(|p| p.leader), Some(2));

    let bad_manual = controller
        .create_partitions(vec![("t".into(), 8, Some(vec![vec![1, 2]]))], false)
        .await;
    assert_eq!(code(&bad_manual[0]), 39);
    let wrong_rf = controller
        .create_partitions(vec![("t".into(), 7, Some(vec![vec![1]]))], false)
        .await;
    assert_eq!(code(&wrong_rf[0]), 39);
    assert_eq!(
        controller
            .quorum()
            .image()
            .topic("t")
            .map(|t| t.partitions.len()),
        Some(6)
    );
    controller.quorum().shutdown().await.expect("shutdown");
}

/// `kafka-configs --entity-type brokers --entity-default`: the cluster-wide rates go through
/// the controller with the per-broker validation, and deleting one restores the static value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wide_broker_defaults_are_dynamic_configs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = start(dir.path(), 1).await;
    let rate = "follower.replication.throttled.rate";
    let defaults = || controller.quorum().image().broker_default_config().clone();

    controller
        .incremental_alter_configs(
            ConfigResource::BrokerDefault,
            vec![ConfigOp::Set(rate.into(), "1048576".into())],
            false,
        )
        .await
        .expect("a cluster-wide dynamic broker config");
    assert_eq!(defaults().get(rate).map(String::as_str), Some("1048576"));
    assert_eq!(controller.quorum().image().broker_config(1), None);

    let negative = controller
        .incremental_alter_configs(
            ConfigResource::BrokerDefault,
            vec![ConfigOp::Set(rate.into(), "-1".into())],
            false,
        )
        .await;
    assert_eq!(code(&negative), 40);
    let static_key = controller
        .incremental_alter_configs(
            ConfigResource::BrokerDefault,
            vec![ConfigOp::Set("num.partitions".into(), "3".into())],
            false,
        )
        .await;
    assert_eq!(code(&static_key), 42);
    controller
        .incremental_alter_configs(
            ConfigResource::BrokerDefault,
            vec![ConfigOp::Set(rate.into(), "5".into())],
            true,
        )
        .await
        .expect("validate only");
    assert_eq!(
        defaults().get(rate).map(String::as_str),
        Some("1048576"),
        "refused and validate-only requests change nothing"
    );

    // The legacy AlterConfigs replaces the whole set of defaults.
    controller
        .alter_configs(
            ConfigResource::BrokerDefault,
            BTreeMap::from([("leader.replication.throttled.rate".into(), "9".into())]),
            false,
        )
        .await
        .expect("alter configs");
    assert_eq!(
        defaults(),
        BTreeMap::from([("leader.replication.throttled.rate".into(), "9".into())])
    );
    controller
        .incremental_alter_configs(
            ConfigResource::BrokerDefault,
            vec![ConfigOp::Delete("leader.replication.throttled.rate".into())],
            false,
        )
        .await
        .expect("delete");
    assert!(defaults().is_empty());
    controller.quorum().shutdown().await.expect("shutdown");
}

/// KIP-73's throttles as `kafka-reassign-partitions --throttle` writes them: the rates per
/// broker, the replica lists per topic; nothing else about a broker changes at run time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_throttles_are_dynamic_configs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = start(dir.path(), 1).await;
    controller
        .create_topics(vec![topic("t", 2, 1)], false)
        .await[0]
        .result
        .as_ref()
        .expect("created");
    let rate = "leader.replication.throttled.rate";
    let broker_configs = || controller.quorum().image().broker_config(7).cloned();

    controller
        .incremental_alter_configs(
            ConfigResource::Broker(7),
            vec![ConfigOp::Set(rate.into(), "2097152".into())],
            false,
        )
        .await
        .expect("a dynamic broker config");
    assert_eq!(
        broker_configs()
            .and_then(|c| c.get(rate).cloned())
            .as_deref(),
        Some("2097152")
    );
    let negative = controller
        .incremental_alter_configs(
            ConfigResource::Broker(7),
            vec![ConfigOp::Set(rate.into(), "-1".into())],
            false,
        )
        .await;
    assert_eq!(code(&negative), 40);
    let static_key = controller
        .incremental_alter_configs(
            ConfigResource::Broker(7),
            vec![ConfigOp::Set("num.partitions".into(), "3".into())],
            false,
        )
        .await;
    assert_eq!(code(&static_key), 42);
    assert!(
        matches!(&static_key, Err(e) if e.to_string().contains("num.partitions")),
        "{static_key:?}"
    );
    let negative_id = controller
        .incremental_alter_configs(
            ConfigResource::Broker(-1),
            vec![ConfigOp::Set(rate.into(), "1".into())],
            false,
        )
        .await;
    assert_eq!(code(&negative_id), 42);
    assert_eq!(
        broker_configs().map(|c| c.len()),
        Some(1),
        "refused requests change nothing"
    );
    controller
        .incremental_alter_configs(
            ConfigResource::Broker(7),
            vec![ConfigOp::Delete(rate.into())],
            false,
        )
        .await
        .expect("delete");
    assert_eq!(broker_configs(), None);

    let replicas = "leader.replication.throttled.replicas";
    let topic_value = || {
        controller
            .quorum()
            .image()
            .topic("t")
            .and_then(|t| t.configs.get(replicas).cloned())
    };
    let resource = ConfigResource::Topic("t".into());
    for (op, expected) in [
        (ConfigOp::Set(replicas.into(), "0:1".into()), "0:1"),
        (
            ConfigOp::Append(replicas.into(), "1:1,0:1".into()),
            "0:1,1:1",
        ),
        (ConfigOp::Subtract(replicas.into(), "0:1".into()), "1:1"),
        (ConfigOp::Subtract(replicas.into(), "1:1".into()), ""),
        (ConfigOp::Set(replicas.into(), "*".into()), "*"),
    ] {
        controller
            .incremental_alter_configs(resource.clone(), vec![op.clone()], false)
            .await
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
        assert_eq!(topic_value().as_deref(), Some(expected), "{op:?}");
    }
    let bad = controller
        .incremental_alter_configs(
            resource.clone(),
            vec![ConfigOp::Set(replicas.into(), "0-1".into())],
            false,
        )
        .await;
    assert_eq!(code(&bad), 40);
    assert!(
        matches!(&bad, Err(e) if e.to_string().contains("[partitionId]:[brokerId]")),
        "{bad:?}"
    );
    assert_eq!(topic_value().as_deref(), Some("*"));
    controller.quorum().shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_configs_replace_and_incremental() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = start(dir.path(), 1).await;
    controller
        .create_topics(vec![topic("t", 1, 1)], false)
        .await[0]
        .result
        .as_ref()
        .expect("created");
    let resource = ConfigResource::Topic("t".into());
    let configs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let explicit = || {
        controller
            .quorum()
            .image()
            .topic("t")
            .expect("topic")
            .configs
            .clone()
    };

    // Legacy AlterConfigs replaces the whole set.
    controller
        .alter_configs(
            resource.clone(),
            configs(&[("retention.ms", "1000"), ("segment.ms", "500")]),
            false,
        )
        .await
        .expect("valid configs");
    assert_eq!(
        explicit(),
        configs(&[("retention.ms", "1000"), ("segment.ms", "500")])
    );
    controller
        .alter_configs(resource.clone(), configs(&[("segment.ms", "600")]), false)
        .await
        .expect("valid configs");
    assert_eq!(explicit(), configs(&[("segment.ms", "600")]));

    let unknown = controller
        .alter_configs(
            resource.clone(),
            configs(&[("retention.ms", "1"), ("nope", "1")]),
            false,
        )
        .await;
    assert_eq!(code(&unknown), 40);
    assert!(matches!(&unknown, Err(ControllerError::InvalidConfig { key, .. }) if key == "nope"));
    assert_eq!(
        explicit(),
        configs(&[("segment.ms", "600")]),
        "refused request changes nothing"
    );
    let missing = controller
        .alter_configs(ConfigResource::Topic("missing".into()), configs(&[]), false)
        .await;
    assert_eq!(code(&missing), 3);
    let broker = controller
        .alter_configs(
            ConfigResource::Broker(1),
            configs(&[("log.retention.ms", "1")]),
            false,
        )
        .await;
    assert_eq!(code(&broker), 42);

    // Incremental: set, delete back to the default.
    controller
        .incremental_alter_configs(
            resource.clone(),
            vec![
                ConfigOp::Set("retention.ms".into(), "5000".into()),
                ConfigOp::Delete("segment.ms".into()),
            ],
            false,
        )
        .await
        .expect("valid ops");
    assert_eq!(explicit(), configs(&[("retention.ms", "5000")]));
    controller
        .incremental_alter_configs(
            resource.clone(),
            vec![ConfigOp::Delete("retention.ms".into())],
            false,
        )
        .await
        .expect("delete");
    assert!(explicit().is_empty());
    let effective = effective_topic_configs(&explicit());
    let retention = effective
        .iter()
        .find(|c| c.name == "retention.ms")
        .expect("listed");
    assert_eq!(
        (retention.value.as_str(), retention.source),
        ("604800000", ConfigSource::Default)
    );

    let refused: Vec<(Vec<ConfigOp>, i16)> = vec![
        (vec![ConfigOp::Set("no.such".into(), "1".into())], 40),
        (vec![ConfigOp::Delete("no.such".into())], 40),
        (vec![ConfigOp::Set("retention.ms".into(), "-5".into())], 40),
        (
            vec![ConfigOp::Append("retention.ms".into(), "1".into())],
            40,
        ),
        (
            vec![ConfigOp::Append("cleanup.policy".into(), "archive".into())],
            40,
        ),
        (
            vec![ConfigOp::Subtract("cleanup.policy".into(), "delete".into())],
            40,
        ),
        (
            vec![
                ConfigOp::Set("retention.ms".into(), "1".into()),
                ConfigOp::Delete("retention.ms".into()),
            ],
            42,
        ),
    ];
    for (ops, expected) in refused {
        let result = controller
            .incremental_alter_configs(resource.clone(), ops.clone(), false)
            .await;
        assert_eq!(code(&result), expected, "{ops:?}: {result:?}");
    }
    assert!(explicit().is_empty(), "refused ops change nothing");
    // Appending an item already present is accepted and writes the list explicitly.
    controller
        .incremental_alter_configs(
            resource,
            vec![ConfigOp::Append("cleanup.policy".into(), "delete".into())],
            false,
        )
        .await
        .expect("append present item");
    assert_eq!(explicit(), configs(&[("cleanup.policy", "delete")]));
    controller.quorum().shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_topic_yield_exactly_one_success() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = start(dir.path(), 1).await;
    for round in 0..5 {
        let name = format!("raced-{round}");
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let controller = controller.clone();
                let request = topic(&name, 3, 1);
                tokio::spawn(async move { controller.create_topics(vec![request], false).await })
            })
            .collect();
        let mut codes = Vec::new();
        let mut ids = Vec::new();
        for task in tasks {
            let result = task.await.expect("task completes").remove(0).result;
            codes.push(code(&result));
            ids.extend(result.ok().map(|c| c.topic_id));
        }
        codes.sort_unstable();
        assert_eq!(codes, vec![0, 36], "round {round}");
        assert_eq!(
            controller.quorum().image().topic(&name).map(|t| t.topic_id),
            ids.first().copied(),
            "the winner's topic id is the one in the image"
        );
    }
    controller.quorum().shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_registration_and_proposal_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let controller = start(dir.path(), 0).await;
    let quorum = controller.quorum().clone();
    let mut updates = quorum.subscribe();
    updates.borrow_and_update();

    common::register_live(&controller, 7, "host-a", 9092, Some("rack-1"))
        .await
        .expect("registers");
    let first = quorum.image().broker(7).cloned().expect("registered");
    assert_eq!(
        (first.host.as_str(), first.port, first.rack.as_deref()),
        ("host-a", 9092, Some("rack-1"))
    );
    assert_eq!(
        first.epoch + 1,
        quorum.image().offset,
        "registered, then unfenced"
    );
    assert!(!first.fenced);
    assert!(
        updates.has_changed().expect("sender alive"),
        "subscribers see the new image"
    );
    assert!(updates.borrow_and_update().broker(7).is_some());

    common::register_live(&controller, 7, "host-b", 9093, None)
        .await
        .expect("re-registers");
    let second = quorum.image().broker(7).cloned().expect("registered");
    assert_eq!((second.host.as_str(), second.port), ("host-b", 9093));
    assert_ne!(second.incarnation, first.incarnation);
    assert!(second.epoch > first.epoch);
    assert_eq!(quorum.image().brokers.len(), 1);

    for (node_id, host, port) in [(-1, "h", 1), (1, " ", 1), (1, "h", 0)] {
        let err = common::register_live(&controller, node_id, host, port, None)
            .await
            .expect_err("invalid registration refused");
        assert!(
            err.to_string().contains("Invalid registration of broker"),
            "{err}"
        );
    }
    // A topic cannot be replicated more times than there are brokers.
    let refused = controller
        .create_topics(vec![topic("t", 1, 2)], false)
        .await;
    assert_eq!(code(&refused[0].result), 38);

    let before = quorum.image().offset;
    let offset = quorum
        .propose(vec![strom_metadata::MetadataRecord::Topic {
            name: "direct".into(),
            topic_id: uuid::Uuid::new_v4(),
        }])
        .await
        .expect("committed");
    assert!(offset > before);
    assert_eq!(
        quorum.image().offset,
        offset,
        "propose returns once the image includes it"
    );
    assert!(quorum.image().topic("direct").is_some());
    assert!(quorum.is_leader());
    quorum.shutdown().await.expect("shutdown");
    let after = quorum
        .propose(vec![strom_metadata::MetadataRecord::RemoveTopic {
            topic_id: uuid::Uuid::new_v4(),
        }])
        .await;
    assert!(after.is_err(), "no proposals after shutdown");
}
