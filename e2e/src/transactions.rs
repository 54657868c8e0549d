//! Reference-client helpers for transactions: transactional producers, consumers of either
//! isolation level, and reading a partition set to its end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::base_config;
use crate::wire::call;

/// How long a transactional call (init, commit, abort) may take.
pub const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// A transactional producer for `transactional_id`, initialized (InitProducerId done).
pub fn transactional_producer(
    bootstrap: &str,
    transactional_id: &str,
    settings: &[(&str, &str)],
) -> anyhow::Result<ThreadedProducer<DefaultProducerContext>> {
    let mut config = base_config(bootstrap);
    config
        .set("transactional.id", transactional_id)
        .set("linger.ms", "5");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    let producer: ThreadedProducer<DefaultProducerContext> = config
        .create()
        .context("creating the transactional producer")?;
    producer
        .init_transactions(TXN_TIMEOUT)
        .context("init_transactions")?;
    Ok(producer)
}

/// Queues one record for `topic`/`partition` (the producer must be in a transaction).
pub fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    partition: i32,
    value: &str,
) -> anyhow::Result<()> {
    producer
        .send(
            BaseRecord::to(topic)
                .partition(partition)
                .key(value)
                .payload(value),
        )
        .map_err(|(error, _)| anyhow::anyhow!("queueing a record: {error}"))
}

/// A consumer without a group at `isolation.level` `isolation`, assigned `partitions` from the
/// log start.
pub fn isolated_consumer(
    bootstrap: &str,
    isolation: &str,
    partitions: &[(&str, i32)],
) -> anyhow::Result<BaseConsumer> {
    let mut config = base_config(bootstrap);
    config
        .set("group.id", "strom-e2e-txn-reader")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = config.create().context("creating the consumer")?;
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    consumer.assign(&list).context("assigning partitions")?;
    Ok(consumer)
}

/// Values read per (topic, partition), in offset order, each with its offset.
pub type Read = BTreeMap<(String, i32), Vec<(i64, String)>>;

/// Polls until `count` records arrived, then for `quiet` more to see that nothing else does;
/// fails past `deadline` or on a consumer error.
pub fn read_exactly(
    consumer: &BaseConsumer,
    count: usize,
    quiet: Duration,
    deadline: Duration,
) -> anyhow::Result<Read> {
    let end = Instant::now() + deadline;
    let mut read = Read::new();
    let mut total = 0;
    let mut quiet_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if total >= count {
            let until = *quiet_until.get_or_insert(now + quiet);
            if now >= until {
                break;
            }
        } else if now > end {
            bail!("read {total} of {count} records before the deadline: {read:?}");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let value = message
                    .payload()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default();
                read.entry((message.topic().to_string(), message.partition()))
                    .or_default()
                    .push((message.offset(), value));
                total += 1;
            }
            Some(Err(error)) => bail!("consumer error: {error}"),
            None => {}
        }
    }
    if total != count {
        bail!("read {total} records, expected exactly {count}: {read:?}");
    }
    Ok(read)
}

/// The latest offset ListOffsets (v5) answers for `topic`/`partition` at `isolation_level`
/// (0 read_uncommitted: the high watermark; 1 read_committed: the last stable offset).
pub async fn latest_offset(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    isolation_level: i8,
) -> anyhow::Result<i64> {
    let address = bootstrap.split(',').next().unwrap_or(bootstrap);
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(-1),
                ]),
        ]);
    let response: ListOffsetsResponse = call(&mut stream, ApiKey::ListOffsets, 5, &request).await?;
    let answer = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .context("ListOffsets answered no partition")?;
    anyhow::ensure!(
        answer.error_code == 0,
        "ListOffsets of {topic}-{partition}: error {}",
        answer.error_code
    );
    Ok(answer.offset)
}
