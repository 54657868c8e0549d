//! Reference-client helpers (rdkafka = librdkafka) shared by the end-to-end tests.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Client settings every test shares: fast failure instead of librdkafka's long defaults.
pub fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "30000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("log_level", "4");
    config
}

/// A producer with the given extra settings (`compression.type`, `acks`, ...).
pub fn producer(bootstrap: &str, settings: &[(&str, &str)]) -> anyhow::Result<FutureProducer> {
    let mut config = base_config(bootstrap);
    config.set("linger.ms", "5");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config.create().context("creating the producer")
}

/// Produces `count` records keyed `k{i}` with the value `{tag}-{i}`, one after the other, each
/// awaited; returns the (partition, offset) of each.
pub async fn produce_keyed(
    producer: &FutureProducer,
    topic: &str,
    tag: &str,
    count: usize,
) -> anyhow::Result<Vec<(i32, i64)>> {
    let mut acked = Vec::with_capacity(count);
    for i in 0..count {
        acked.push(send_acked(producer, topic, &format!("k{i}"), &format!("{tag}-{i}")).await?);
    }
    Ok(acked)
}

/// Produces one record and waits for its acknowledgement (30 s at most); returns its
/// (partition, offset).
pub async fn send_acked(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: &str,
) -> anyhow::Result<(i32, i64)> {
    let delivery = producer
        .send(
            FutureRecord::to(topic).key(key).payload(value),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(error, _)| anyhow::anyhow!("produce failed: {error}"))?;
    Ok((delivery.partition, delivery.offset))
}

/// A consumer without a group, assigned every given partition from the log start.
pub fn assigned_consumer(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<BaseConsumer> {
    let mut config = base_config(bootstrap);
    config
        .set("group.id", "strom-e2e-assign")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = config.create().context("creating the consumer")?;
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&list).context("assigning partitions")?;
    Ok(consumer)
}

/// Polls `consumer` until `count` messages arrived (or `deadline` passes); fails on an error.
pub fn consume(
    consumer: &BaseConsumer,
    count: usize,
    deadline: Duration,
) -> anyhow::Result<Vec<OwnedMessage>> {
    let end = Instant::now() + deadline;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        if Instant::now() > end {
            bail!(
                "consumed {} of {count} messages before the deadline",
                out.len()
            );
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => out.push(message.detach()),
            Some(Err(error)) => bail!("consumer error: {error}"),
            None => {}
        }
    }
    Ok(out)
}

/// Groups consumed messages by partition, in offset order.
pub fn by_partition(messages: Vec<OwnedMessage>) -> HashMap<i32, Vec<OwnedMessage>> {
    let mut out: HashMap<i32, Vec<OwnedMessage>> = HashMap::new();
    for message in messages {
        out.entry(message.partition()).or_default().push(message);
    }
    for list in out.values_mut() {
        list.sort_by_key(Message::offset);
    }
    out
}

/// An admin client.
pub fn admin(bootstrap: &str) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    base_config(bootstrap)
        .create()
        .context("creating the admin client")
}

/// Creates a topic and fails on any error.
pub async fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> anyhow::Result<()> {
    create_replicated_topic(bootstrap, name, partitions, 1, configs).await
}

/// Creates a topic with `replication_factor` replicas per partition (placed by the controller)
/// and fails on any error.
pub async fn create_replicated_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication_factor: i32,
    configs: &[(&str, &str)],
) -> anyhow::Result<()> {
    create_topic_with(
        bootstrap,
        name,
        partitions,
        TopicReplication::Fixed(replication_factor),
        configs,
    )
    .await
}

/// Creates a topic whose partition `i` has the replicas `assignment[i]`, the first one its
/// preferred leader, and fails on any error.
pub async fn create_assigned_topic(
    bootstrap: &str,
    name: &str,
    assignment: &[&[i32]],
    configs: &[(&str, &str)],
) -> anyhow::Result<()> {
    let partitions = i32::try_from(assignment.len())?;
    create_topic_with(
        bootstrap,
        name,
        partitions,
        TopicReplication::Variable(assignment),
        configs,
    )
    .await
}

async fn create_topic_with(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    replication: TopicReplication<'_>,
    configs: &[(&str, &str)],
) -> anyhow::Result<()> {
    let admin = admin(bootstrap)?;
    let mut topic = NewTopic::new(name, partitions, replication);
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .context("CreateTopics")?;
    for result in results {
        if let Err((topic, code)) = result {
            bail!("creating {topic}: {code:?}");
        }
    }
    Ok(())
}
