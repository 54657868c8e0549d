//! Internal topics belong to the broker: clients cannot create, grow or delete
//! `__consumer_offsets` (or `__transaction_state`), and groups hash onto the partitions the
//! existing `__consumer_offsets` has, whatever `offsets.topic.num.partitions` says now.

use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::admin::{AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use strom_e2e::kafka::{admin, base_config, create_topic};
use strom_e2e::{BrokerOptions, BrokerProcess};

const OFFSETS_TOPIC: &str = "__consumer_offsets";
const TOPIC: &str = "orders";
/// Long enough for a first FindCoordinator (which creates the offsets topic) on a loaded
/// machine; never a measure of speed.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Kafka's coordinator partition: `abs(groupId.hashCode) % partitions`, Java's String hash.
fn kafka_partition_for(group: &str, partitions: i32) -> i32 {
    let hash = group.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions
}

/// `count` distinct group ids that Kafka's hash places on partition `min` or above of
/// `partitions`.
fn groups_hashing_at_or_above(min: i32, partitions: i32, count: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("group-{i}"))
        .filter(|g| kafka_partition_for(g, partitions) >= min)
        .take(count)
        .collect()
}

fn group_consumer(bootstrap: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    let mut config = base_config(bootstrap);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    config.create().context("creating the consumer")
}

/// Commits `offset` for partition 0 of [`TOPIC`] in `group` and reads it back.
fn commit_and_read_back(bootstrap: &str, group: &str, offset: i64) -> anyhow::Result<()> {
    let consumer = group_consumer(bootstrap, group)?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(TOPIC, 0, Offset::Offset(offset))?;
    consumer
        .commit(&list, CommitMode::Sync)
        .with_context(|| format!("committing for {group}"))?;
    assert_eq!(
        committed(bootstrap, group)?,
        Offset::Offset(offset),
        "{group}"
    );
    Ok(())
}

/// The offset `group` committed for partition 0 of [`TOPIC`], read by a new consumer.
fn committed(bootstrap: &str, group: &str) -> anyhow::Result<Offset> {
    let consumer = group_consumer(bootstrap, group)?;
    let mut list = TopicPartitionList::new();
    list.add_partition(TOPIC, 0);
    let committed = consumer
        .committed_offsets(list, TIMEOUT)
        .with_context(|| format!("fetching the offsets of {group}"))?;
    let Some(element) = committed.find_partition(TOPIC, 0) else {
        bail!("no committed offset of {group} in the answer");
    };
    Ok(element.offset())
}

fn offsets_topic_partitions(bootstrap: &str) -> anyhow::Result<usize> {
    let consumer = group_consumer(bootstrap, "metadata-reader")?;
    let metadata = consumer
        .fetch_metadata(Some(OFFSETS_TOPIC), TIMEOUT)
        .context("metadata")?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == OFFSETS_TOPIC)
        .map_or(0, |t| t.partitions().len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_create_grow_or_delete_internal_topics() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap)?;
    let options = AdminOptions::new();

    // On a fresh broker, before any group exists: the topic a client asks for would have one
    // partition and every group would then hash onto partitions that do not exist.
    for name in [OFFSETS_TOPIC, "__transaction_state"] {
        let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
        let results = admin.create_topics([&topic], &options).await?;
        assert_eq!(
            results,
            vec![Err((name.to_owned(), RDKafkaErrorCode::InvalidRequest))],
            "CreateTopics {name}"
        );
    }
    // A normal topic in the same request still is created.
    let internal = NewTopic::new(OFFSETS_TOPIC, 1, TopicReplication::Fixed(1));
    let normal = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1));
    let results = admin.create_topics([&internal, &normal], &options).await?;
    assert_eq!(
        results,
        vec![
            Err((OFFSETS_TOPIC.to_owned(), RDKafkaErrorCode::InvalidRequest)),
            Ok(TOPIC.to_owned()),
        ]
    );

    // The broker creates it itself on the first FindCoordinator, with its configured count.
    tokio::task::block_in_place(|| commit_and_read_back(&bootstrap, "first", 7))?;
    assert_eq!(offsets_topic_partitions(&bootstrap)?, 50);

    let grow = NewPartitions::new(OFFSETS_TOPIC, 60);
    let results = admin.create_partitions([&grow], &options).await?;
    assert_eq!(
        results,
        vec![Err((
            OFFSETS_TOPIC.to_owned(),
            RDKafkaErrorCode::InvalidRequest
        ))]
    );
    let results = admin.delete_topics(&[OFFSETS_TOPIC], &options).await?;
    assert_eq!(
        results,
        vec![Err((
            OFFSETS_TOPIC.to_owned(),
            RDKafkaErrorCode::InvalidRequest
        ))]
    );
    assert_eq!(offsets_topic_partitions(&bootstrap)?, 50);

    // Nothing was lost: the group's commit is still there and new groups work.
    tokio::task::block_in_place(|| {
        assert_eq!(committed(&bootstrap, "first")?, Offset::Offset(7));
        commit_and_read_back(&bootstrap, "second", 11)
    })?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_use_the_partition_count_the_offsets_topic_has() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    // Groups that hash onto partitions 3..50 under the default count: on a topic with 3
    // partitions they have no coordinator unless the broker hashes onto the real count.
    let [early, other, late] =
        <[String; 3]>::try_from(groups_hashing_at_or_above(3, 50, 3)).expect("three group ids");
    // A broker configured for 3 partitions creates the topic with 3.
    {
        let broker = BrokerProcess::start(
            BrokerOptions {
                data_dir: Some(data.path().to_path_buf()),
                ..BrokerOptions::default()
            }
            .with("offsets.topic.num.partitions", "3"),
        )?;
        let bootstrap = broker.bootstrap();
        create_topic(&bootstrap, TOPIC, 1, &[]).await?;
        tokio::task::block_in_place(|| commit_and_read_back(&bootstrap, &early, 5))?;
        assert_eq!(offsets_topic_partitions(&bootstrap)?, 3);
        // Configured and actual count agree here: every group works.
        tokio::task::block_in_place(|| commit_and_read_back(&bootstrap, &other, 6))?;
    }

    // The same data restarted with the default 50: the topic keeps its 3 partitions, and a
    // group that would hash onto partition 3..50 under 50 still finds its coordinator.
    let broker = BrokerProcess::start(BrokerOptions {
        data_dir: Some(data.path().to_path_buf()),
        ..BrokerOptions::default()
    })?;
    let bootstrap = broker.bootstrap();
    tokio::task::block_in_place(|| {
        assert_eq!(offsets_topic_partitions(&bootstrap)?, 3);
        assert_eq!(
            committed(&bootstrap, &early)?,
            Offset::Offset(5),
            "the commit made before the restart"
        );
        assert_eq!(committed(&bootstrap, &other)?, Offset::Offset(6));
        commit_and_read_back(&bootstrap, &late, 9)
    })?;
    Ok(())
}
