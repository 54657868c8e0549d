//! Admin operations sent to a broker that is not the active controller are forwarded to it
//! and answer exactly as the controller does (raw requests, librdkafka's and confluent-kafka's
//! admin clients), also across a controller change; and replicas of new topics are placed
//! rack-aware over the live brokers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, InitProducerIdRequest,
    InitProducerIdResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_e2e::BrokerOptions;
use strom_e2e::cluster::{Cluster, fast_sessions, metadata};
use strom_e2e::wire::call;
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(60);

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

async fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
) -> anyhow::Result<i16> {
    create(
        bootstrap,
        CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor),
    )
    .await
}

async fn create(bootstrap: &str, topic: CreatableTopic) -> anyhow::Result<i16> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(30_000);
    let response: CreateTopicsResponse =
        call(&mut stream, ApiKey::CreateTopics, 7, &request).await?;
    Ok(response.topics.first().context("one result")?.error_code)
}

async fn create_partitions(bootstrap: &str, topic: &str, count: i32) -> anyhow::Result<i16> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(name(topic))
                .with_count(count)
                .with_assignments(None),
        ])
        .with_timeout_ms(30_000);
    let response: CreatePartitionsResponse =
        call(&mut stream, ApiKey::CreatePartitions, 3, &request).await?;
    Ok(response.results.first().context("one result")?.error_code)
}

async fn set_config(bootstrap: &str, topic: &str, key: &str, value: &str) -> anyhow::Result<i16> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_owned()))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.to_owned()))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(value.to_owned()))),
            ]),
    ]);
    let response: IncrementalAlterConfigsResponse =
        call(&mut stream, ApiKey::IncrementalAlterConfigs, 1, &request).await?;
    Ok(response.responses.first().context("one result")?.error_code)
}

async fn delete_topic(bootstrap: &str, topic: &str) -> anyhow::Result<i16> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    let request = DeleteTopicsRequest::default()
        .with_topic_names(vec![name(topic)])
        .with_timeout_ms(30_000);
    let response: DeleteTopicsResponse =
        call(&mut stream, ApiKey::DeleteTopics, 5, &request).await?;
    Ok(response.responses.first().context("one result")?.error_code)
}

async fn init_producer_id(bootstrap: &str) -> anyhow::Result<(i16, i64)> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(kafka_protocol::messages::ProducerId(-1))
        .with_producer_epoch(-1);
    let response: InitProducerIdResponse =
        call(&mut stream, ApiKey::InitProducerId, 4, &request).await?;
    Ok((response.error_code, response.producer_id.0))
}

/// Partition count of every topic as `bootstrap`'s Metadata reports it.
async fn topics(bootstrap: &str) -> anyhow::Result<BTreeMap<String, usize>> {
    Ok(metadata(bootstrap)
        .await?
        .topics
        .iter()
        .filter_map(|t| Some((t.name.as_ref()?.to_string(), t.partitions.len())))
        .collect())
}

async fn start(
    voters: usize,
    configure: fn(i32, BrokerOptions) -> BrokerOptions,
) -> anyhow::Result<(Cluster, usize, usize)> {
    let cluster =
        tokio::task::spawn_blocking(move || Cluster::start(voters, 0, configure)).await??;
    let controller = usize::try_from(cluster.await_controller(DEADLINE).await?)?;
    let follower = (0..voters)
        .find(|i| *i != controller)
        .context("a follower")?;
    Ok((cluster, controller, follower))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_operations_on_a_follower_answer_as_on_the_controller() -> anyhow::Result<()> {
    let (cluster, controller, follower) = start(3, fast_sessions).await?;
    let on_follower = cluster.broker(follower).bootstrap();
    let on_controller = cluster.broker(controller).bootstrap();

    for (bootstrap, topic) in [
        (&on_follower, "via-follower"),
        (&on_controller, "via-controller"),
    ] {
        assert_eq!(
            create_topic(bootstrap, topic, 3, 1).await?,
            0,
            "{topic} created"
        );
        assert_eq!(
            create_topic(bootstrap, topic, 3, 1).await?,
            36,
            "{topic} exists already"
        );
        assert_eq!(create_topic(bootstrap, "rf-too-high", 1, 4).await?, 38);
        assert_eq!(
            create_partitions(bootstrap, topic, 5).await?,
            0,
            "{topic} grows"
        );
        assert_eq!(
            create_partitions(bootstrap, topic, 2).await?,
            37,
            "{topic} never shrinks"
        );
        assert_eq!(
            set_config(bootstrap, topic, "retention.ms", "60000").await?,
            0
        );
        assert_eq!(set_config(bootstrap, topic, "no.such.key", "1").await?, 40);
    }
    for broker in cluster.brokers() {
        let seen = topics(&broker.bootstrap()).await?;
        assert_eq!(
            seen.get("via-follower"),
            Some(&5),
            "{}: {seen:?}",
            broker.bootstrap()
        );
        assert_eq!(
            seen.get("via-controller"),
            Some(&5),
            "{}: {seen:?}",
            broker.bootstrap()
        );
    }
    let (code_a, id_a) = init_producer_id(&on_follower).await?;
    let (code_b, id_b) = init_producer_id(&on_controller).await?;
    assert_eq!((code_a, code_b), (0, 0));
    assert_ne!(
        id_a, id_b,
        "producer id blocks never overlap across brokers"
    );
    assert!(id_a >= 0 && id_b >= 0);

    // A real admin client bootstrapped at the follower, and auto-creation through it.
    strom_e2e::kafka::create_topic(
        &on_follower,
        "via-librdkafka",
        2,
        &[("retention.ms", "1000")],
    )
    .await?;
    let producer = strom_e2e::kafka::producer(&on_follower, &[])?;
    producer
        .send(
            rdkafka::producer::FutureRecord::<(), str>::to("auto-created").payload("x"),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)?;
    let seen = topics(&on_controller).await?;
    assert!(
        seen.contains_key("via-librdkafka") && seen.contains_key("auto-created"),
        "{seen:?}"
    );

    for topic in ["via-follower", "via-controller", "via-librdkafka"] {
        assert_eq!(
            delete_topic(&on_follower, topic).await?,
            0,
            "{topic} deleted"
        );
        assert_eq!(
            delete_topic(&on_follower, topic).await?,
            3,
            "{topic} is gone"
        );
    }
    let seen = topics(&on_controller).await?;
    assert!(!seen.contains_key("via-follower") && !seen.contains_key("via-controller"));
    Ok(())
}

/// Runs `e2e/scripts/admin_forwarding.py` against `bootstrap`: the outcome of every step.
async fn confluent_admin(
    bootstrap: String,
    topic: &'static str,
) -> anyhow::Result<serde_json::Value> {
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new("python3")
            .arg(strom_e2e::repo_root().join("e2e/scripts/admin_forwarding.py"))
            .args([&bootstrap, topic])
            .output()
            .context("python3 (run e2e/install-tools.sh)")?;
        anyhow::ensure!(
            output.status.success(),
            "admin_forwarding.py against {bootstrap} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "admin_forwarding.py printed {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_kafka_admin_on_a_follower_answers_as_on_the_controller() -> anyhow::Result<()> {
    let (cluster, controller, follower) = start(3, fast_sessions).await?;
    let via_follower = confluent_admin(cluster.broker(follower).bootstrap(), "py-admin").await?;
    let via_controller =
        confluent_admin(cluster.broker(controller).bootstrap(), "py-admin").await?;
    let expected = serde_json::json!({
        "create": "OK",
        "create_again": "TOPIC_ALREADY_EXISTS",
        "replication_factor_4": "INVALID_REPLICATION_FACTOR",
        "grow_to_5": "OK",
        "shrink_to_2": "INVALID_PARTITIONS",
        "set_retention": "OK",
        "set_unknown_key": "INVALID_CONFIG",
        "retention_read_back": "60000",
        "partitions_seen": 5,
        "delete": "OK",
        "delete_again": "UNKNOWN_TOPIC_OR_PART",
    });
    assert_eq!(
        via_follower, expected,
        "through broker {follower}, not the controller"
    );
    assert_eq!(
        via_controller, expected,
        "through the controller, broker {controller}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_operations_survive_a_controller_change() -> anyhow::Result<()> {
    let (mut cluster, controller, follower) = start(3, fast_sessions).await?;
    let on_follower = cluster.broker(follower).bootstrap();
    let mut codes = BTreeMap::new();
    for i in 0..12 {
        if i == 4 {
            cluster.broker_mut(controller).kill9();
        }
        let topic = format!("batch-{i}");
        let code = create_topic(&on_follower, &topic, 1, 1).await?;
        codes.insert(topic, code);
    }
    // A create retried after its first attempt committed finds the topic there (36); nothing
    // else may reach the client: no NOT_CONTROLLER, no timeout.
    assert!(codes.values().all(|c| *c == 0 || *c == 36), "{codes:?}");
    let seen = topics(&on_follower).await?;
    let created: BTreeSet<&String> = codes.keys().collect();
    assert!(created.iter().all(|t| seen.contains_key(*t)), "{seen:?}");
    let new_controller = cluster.await_controller(DEADLINE).await?;
    assert_ne!(usize::try_from(new_controller)?, controller);
    Ok(())
}

fn on_racks(id: i32, options: BrokerOptions) -> BrokerOptions {
    options.with("broker.rack", &format!("rack-{}", id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_placed_on_distinct_racks_and_leaders_spread() -> anyhow::Result<()> {
    let (cluster, _, follower) = start(3, on_racks).await?;
    let bootstrap = cluster.broker(follower).bootstrap();
    assert_eq!(create_topic(&bootstrap, "orders", 12, 3).await?, 0);
    let meta = metadata(&bootstrap).await?;
    let racks: BTreeMap<i32, String> = meta
        .brokers
        .iter()
        .map(|b| {
            (
                b.node_id.0,
                b.rack.as_ref().map(|r| r.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(racks.len(), 3);
    let topic = meta
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "orders"))
        .context("orders in Metadata")?;
    assert_eq!(topic.partitions.len(), 12);
    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for partition in &topic.partitions {
        let replicas: BTreeSet<i32> = partition.replica_nodes.iter().map(|b| b.0).collect();
        let replica_racks: BTreeSet<&String> =
            replicas.iter().filter_map(|b| racks.get(b)).collect();
        assert_eq!(replicas.len(), 3, "three distinct brokers: {partition:?}");
        assert_eq!(
            replica_racks.len(),
            3,
            "three distinct racks: {partition:?}"
        );
        *leaders.entry(partition.leader_id.0).or_default() += 1;
    }
    assert_eq!(
        leaders.values().copied().collect::<Vec<_>>(),
        vec![4, 4, 4],
        "{leaders:?}"
    );

    // Explicit assignments: valid, then naming a broker that does not exist, then a
    // partition whose replicas repeat a broker.
    let assign = |replicas: &[&[i32]]| {
        CreatableTopic::default()
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(
                replicas
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        CreatableReplicaAssignment::default()
                            .with_partition_index(i32::try_from(i).unwrap_or(0))
                            .with_broker_ids(r.iter().map(|b| BrokerId(*b)).collect())
                    })
                    .collect(),
            )
    };
    assert_eq!(
        create(
            &bootstrap,
            assign(&[&[2, 0], &[1, 2]]).with_name(name("manual"))
        )
        .await?,
        0
    );
    assert_eq!(
        create(
            &bootstrap,
            assign(&[&[7]]).with_name(name("unknown-broker"))
        )
        .await?,
        39
    );
    assert_eq!(
        create(&bootstrap, assign(&[&[1, 1]]).with_name(name("repeated"))).await?,
        39
    );
    let meta = metadata(&bootstrap).await?;
    let manual = meta
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "manual"))
        .context("manual in Metadata")?;
    let replicas: Vec<Vec<i32>> = manual
        .partitions
        .iter()
        .map(|p| p.replica_nodes.iter().map(|b| b.0).collect())
        .collect();
    assert_eq!(replicas, vec![vec![2, 0], vec![1, 2]]);
    Ok(())
}
