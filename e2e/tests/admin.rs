//! The admin API through librdkafka's admin client: create with configs, describe configs,
//! alter configs, create partitions, delete records and delete topics — each visible in
//! Metadata or DescribeConfigs afterwards, and bad requests answered with Kafka's error codes.

use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigResource, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use strom_e2e::kafka::{admin, assigned_consumer, producer};
use strom_e2e::{BrokerOptions, BrokerProcess, wait_until};

fn partition_count(broker: &BrokerProcess, topic: &str) -> Option<usize> {
    let client = assigned_consumer(&broker.bootstrap(), topic, 0).ok()?;
    let metadata =
        rdkafka::consumer::Consumer::fetch_metadata(&client, Some(topic), Duration::from_secs(5))
            .ok()?;
    let topic = metadata.topics().first()?;
    topic.error().is_none().then(|| topic.partitions().len())
}

fn listed_topics(broker: &BrokerProcess) -> anyhow::Result<Vec<String>> {
    let client = assigned_consumer(&broker.bootstrap(), "unused", 0)?;
    let metadata =
        rdkafka::consumer::Consumer::fetch_metadata(&client, None, Duration::from_secs(5))?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect())
}

/// The DescribeConfigs answer for one topic.
async fn topic_configs(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> anyhow::Result<ConfigResource> {
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await?;
    described
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no answer for {topic}"))?
        .map_err(|e| anyhow::anyhow!("describing {topic}: {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_lifecycle_through_the_admin_client() -> anyhow::Result<()> {
    let broker =
        BrokerProcess::start(BrokerOptions::default().with("auto.create.topics.enable", "false"))?;
    let admin = admin(&broker.bootstrap())?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));

    // Create with configs.
    let topic = NewTopic::new("orders", 3, TopicReplication::Fixed(1))
        .set("retention.ms", "86400000")
        .set("cleanup.policy", "delete");
    let results = admin.create_topics([&topic], &options).await?;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(partition_count(&broker, "orders"), Some(3));

    // The same name again, a bad config key and a bad replication factor are refused.
    let again = admin.create_topics([&topic], &options).await?;
    assert_eq!(
        again[0].as_ref().err().map(|e| e.1),
        Some(RDKafkaErrorCode::TopicAlreadyExists)
    );
    let bad_key =
        NewTopic::new("bad-key", 1, TopicReplication::Fixed(1)).set("no.such.config", "1");
    let bad_rf = NewTopic::new("bad-rf", 1, TopicReplication::Fixed(3));
    let refused = admin.create_topics([&bad_key, &bad_rf], &options).await?;
    assert_eq!(
        refused[0].as_ref().err().map(|e| e.1),
        Some(RDKafkaErrorCode::InvalidConfig)
    );
    assert_eq!(
        refused[1].as_ref().err().map(|e| e.1),
        Some(RDKafkaErrorCode::InvalidReplicationFactor)
    );
    let listed = listed_topics(&broker)?;
    assert!(
        !listed.iter().any(|t| t == "bad-key" || t == "bad-rf"),
        "{listed:?}"
    );

    // Explicit replica assignments: on the registered broker (node 0) they are taken as
    // given; naming a broker that is not registered is INVALID_REPLICA_ASSIGNMENT.
    let manual = NewTopic::new("manual", 2, TopicReplication::Variable(&[&[0], &[0]]));
    let unknown = NewTopic::new("manual-unknown", 1, TopicReplication::Variable(&[&[7]]));
    let assigned = admin.create_topics([&manual, &unknown], &options).await?;
    assert!(assigned[0].is_ok(), "{assigned:?}");
    assert_eq!(partition_count(&broker, "manual"), Some(2));
    assert_eq!(
        assigned[1].as_ref().err().map(|e| e.1),
        Some(RDKafkaErrorCode::InvalidReplicaAssignment)
    );
    assert!(
        !listed_topics(&broker)?
            .iter()
            .any(|t| t == "manual-unknown")
    );

    // validate_only creates nothing.
    let dry = NewTopic::new("dry-run", 2, TopicReplication::Fixed(1));
    let dry_results = admin
        .create_topics([&dry], &AdminOptions::new().validate_only(true))
        .await?;
    assert!(dry_results[0].is_ok());
    assert!(!listed_topics(&broker)?.iter().any(|t| t == "dry-run"));

    // Describe configs: the set value with its source, defaults as defaults.
    let resource = topic_configs(&admin, "orders").await?;
    let retention = resource
        .get("retention.ms")
        .ok_or_else(|| anyhow::anyhow!("retention.ms missing"))?;
    assert_eq!(retention.value.as_deref(), Some("86400000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    let segment = resource
        .get("segment.bytes")
        .ok_or_else(|| anyhow::anyhow!("segment.bytes missing"))?;
    assert_eq!(segment.value.as_deref(), Some("1073741824"));
    assert!(segment.is_default);

    // Alter configs (legacy API: the whole set is replaced).
    let alter =
        AlterConfig::new(ResourceSpecifier::Topic("orders")).set("segment.bytes", "1048576");
    let altered = admin.alter_configs([&alter], &options).await?;
    assert!(altered[0].is_ok(), "{altered:?}");
    let resource = topic_configs(&admin, "orders").await?;
    assert_eq!(
        resource
            .get("segment.bytes")
            .and_then(|e| e.value.as_deref()),
        Some("1048576")
    );
    assert_eq!(
        resource.get("retention.ms").map(|e| e.is_default),
        Some(true),
        "keys left out of a legacy AlterConfigs return to their defaults"
    );
    let invalid =
        AlterConfig::new(ResourceSpecifier::Topic("orders")).set("segment.bytes", "not-a-number");
    // rdkafka's binding reports every AlterConfigs resource as Ok (it never reads the
    // per-resource error), so the refusal shows in the unchanged value.
    admin.alter_configs([&invalid], &options).await?;
    let resource = topic_configs(&admin, "orders").await?;
    assert_eq!(
        resource
            .get("segment.bytes")
            .and_then(|e| e.value.as_deref()),
        Some("1048576"),
        "an invalid value is refused"
    );

    // Create partitions: grow works, shrink is refused.
    let grown = admin
        .create_partitions([&NewPartitions::new("orders", 5)], &options)
        .await?;
    assert!(grown[0].is_ok(), "{grown:?}");
    wait_until("5 partitions in Metadata", Duration::from_secs(10), || {
        (partition_count(&broker, "orders") == Some(5)).then_some(())
    })?;
    let shrink = admin
        .create_partitions([&NewPartitions::new("orders", 2)], &options)
        .await?;
    assert_eq!(
        shrink[0].as_ref().err().map(|e| e.1),
        Some(RDKafkaErrorCode::InvalidPartitions)
    );

    // The new partitions take writes.
    let producer = producer(&broker.bootstrap(), &[("acks", "all")])?;
    for i in 0..10 {
        let value = format!("v{i}");
        producer
            .send(
                FutureRecord::<(), _>::to("orders")
                    .partition(4)
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
    }

    // Delete records below offset 4 on partition 4.
    let mut before = TopicPartitionList::new();
    before.add_partition_offset("orders", 4, Offset::Offset(4))?;
    let deleted = admin.delete_records(&before, &options).await?;
    let low = deleted.find_partition("orders", 4).map(|p| p.offset());
    assert_eq!(low, Some(Offset::Offset(4)));
    let consumer = assigned_consumer(&broker.bootstrap(), "orders", 5)?;
    let (start, end) = rdkafka::consumer::Consumer::fetch_watermarks(
        &consumer,
        "orders",
        4,
        Duration::from_secs(5),
    )?;
    assert_eq!((start, end), (4, 10));

    // Delete the topic: gone from Metadata, data gone from disk.
    let deleted = admin.delete_topics(&["orders"], &options).await?;
    assert!(deleted[0].is_ok(), "{deleted:?}");
    assert!(!listed_topics(&broker)?.iter().any(|t| t == "orders"));
    assert!(!broker.data_dir().join("orders-0").exists());
    let missing = admin.delete_topics(&["orders"], &options).await?;
    assert_eq!(
        missing[0].as_ref().err().map(|e| e.1),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_survive_a_restart_with_their_ids_and_configs() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start(BrokerOptions::default())?;
    let admin_client = admin(&broker.bootstrap())?;
    let options = AdminOptions::new();
    let topic =
        NewTopic::new("kept", 4, TopicReplication::Fixed(1)).set("retention.bytes", "123456789");
    assert!(admin_client.create_topics([&topic], &options).await?[0].is_ok());
    drop(admin_client);
    broker.kill9();
    broker.restart()?;
    assert_eq!(partition_count(&broker, "kept"), Some(4));
    let admin_client = admin(&broker.bootstrap())?;
    let resource = topic_configs(&admin_client, "kept").await?;
    assert_eq!(
        resource
            .get("retention.bytes")
            .and_then(|e| e.value.as_deref()),
        Some("123456789")
    );
    Ok(())
}
