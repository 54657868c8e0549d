//! Segments roll by `segment.bytes`, retention deletes whole old segments while a consumer keeps
//! reading (it never sees an error and gets every retained record), and ListOffsets by timestamp
//! returns the first offset whose timestamp is at or after the requested time, and for the max
//! timestamp (-3) the record carrying it, even inside a batch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};
use strom_e2e::kafka::{create_topic, producer};
use strom_e2e::wire::call;
use strom_e2e::{BrokerOptions, BrokerProcess, wait_until};
use tokio::net::TcpStream;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn log_files(broker: &BrokerProcess, dir: &str) -> usize {
    std::fs::read_dir(broker.data_dir().join(dir))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_segments_while_a_consumer_reads() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(
        BrokerOptions::default().with("log.retention.check.interval.ms", "200"),
    )?;
    let topic = "retained";
    create_topic(
        &broker.bootstrap(),
        topic,
        1,
        // Unlimited retention while the old records go in, so every rolled segment is still
        // there to count; the 1 hour limit is set afterwards, as an operator would.
        &[("segment.bytes", "8192"), ("retention.ms", "-1")],
    )
    .await?;
    let producer = producer(&broker.bootstrap(), &[("acks", "all"), ("linger.ms", "0")])?;
    let value = "x".repeat(200);
    let old_ts = now_ms() - 2 * 3_600_000;
    // Old records: their segments are past retention as soon as they are no longer active.
    for i in 0..300i64 {
        producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .payload(&value)
                    .timestamp(old_ts + i),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
    }
    let segments_before = log_files(&broker, "retained-0");
    assert!(
        segments_before > 5,
        "8 KiB segments rolled: {segments_before} segments"
    );
    let alter = rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic(topic))
        .set("segment.bytes", "8192")
        .set("retention.ms", "3600000");
    strom_e2e::kafka::admin(&broker.bootstrap())?
        .alter_configs([&alter], &rdkafka::admin::AdminOptions::new())
        .await?;

    // A consumer from the beginning, reading throughout; it resets to the new log start if the
    // segment under it goes away.
    let bootstrap = broker.bootstrap();
    let reader = std::thread::spawn(move || -> anyhow::Result<Vec<i64>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "retention-reader")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "50")
            .create()?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("retained", 0, Offset::Beginning)?;
        consumer.assign(&list)?;
        let mut offsets = Vec::new();
        let end = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < end {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    if m.payload() == Some(b"fresh-done") {
                        offsets.push(m.offset());
                        return Ok(offsets);
                    }
                    offsets.push(m.offset());
                }
                Some(Err(e)) => anyhow::bail!("consumer error: {e}"),
                None => {}
            }
        }
        anyhow::bail!("reader did not reach the last record")
    });

    let mut fresh = Vec::new();
    for i in 0..200 {
        let payload = if i == 199 {
            "fresh-done".to_string()
        } else {
            format!("fresh-{i}")
        };
        let delivery = producer
            .send(
                FutureRecord::<(), _>::to(topic).payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
        fresh.push(delivery.offset);
    }

    // Retention advances the log start past the old records, keeping every fresh one.
    let admin = strom_e2e::kafka::assigned_consumer(&broker.bootstrap(), topic, 1)?;
    let low = wait_until(
        "retention to delete the old segments",
        Duration::from_secs(30),
        || {
            let (low, _) = admin
                .fetch_watermarks(topic, 0, Duration::from_secs(5))
                .ok()?;
            // Old records fill ~10 segments; all but the one shared with fresh records go.
            (low > 150).then_some(low)
        },
    )?;
    assert!(
        low <= fresh[0],
        "retention kept every fresh record (log start {low})"
    );
    assert!(log_files(&broker, "retained-0") < segments_before);

    let read = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))??;
    for offset in &fresh {
        assert!(
            read.contains(offset),
            "the reader got fresh record {offset}"
        );
    }
    let mut sorted = read.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, read, "the reader saw offsets in order");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_by_timestamp_finds_the_first_record_at_or_after() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let topic = "by-time";
    create_topic(&broker.bootstrap(), topic, 1, &[("segment.bytes", "4096")]).await?;
    // Batches of several records (linger) over several segments, timestamps 1 s apart.
    let producer = producer(
        &broker.bootstrap(),
        &[("acks", "all"), ("linger.ms", "20"), ("batch.size", "1500")],
    )?;
    let t0 = 1_700_000_000_000i64;
    let mut pending = Vec::new();
    for i in 0..200i64 {
        let payload = format!("record-{i}-{}", "y".repeat(50));
        pending.push(
            producer
                .send_result(
                    FutureRecord::<(), _>::to(topic)
                        .payload(&payload)
                        .timestamp(t0 + i * 1000),
                )
                .map_err(|(e, _)| anyhow::anyhow!("{e}"))?,
        );
    }
    let mut offsets = Vec::new();
    for delivery in pending {
        offsets.push(
            delivery
                .await?
                .map_err(|(e, _)| anyhow::anyhow!("{e}"))?
                .offset,
        );
    }
    let consumer = strom_e2e::kafka::assigned_consumer(&broker.bootstrap(), topic, 1)?;
    for (query, expected_index) in [
        (t0, 0usize),
        (t0 + 500, 1),
        (t0 + 57_000, 57),
        (t0 + 57_001, 58),
        (t0 + 199_000, 199),
    ] {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, 0, Offset::Offset(query))?;
        let found = consumer.offsets_for_times(list, Duration::from_secs(10))?;
        let offset = found
            .find_partition(topic, 0)
            .map(|p| p.offset())
            .ok_or_else(|| anyhow::anyhow!("no answer for {query}"))?;
        assert_eq!(
            offset,
            Offset::Offset(offsets[expected_index]),
            "timestamp {query}"
        );
    }
    // After the last timestamp: no offset (Kafka answers -1, i.e. the end).
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Offset(t0 + 500_000))?;
    let found = consumer.offsets_for_times(list, Duration::from_secs(10))?;
    let offset = found.find_partition(topic, 0).map(|p| p.offset());
    assert_eq!(offset, Some(Offset::End));
    Ok(())
}

/// ListOffsets v7 (the first version with max timestamp, KIP-734) for partition 0 of `topic`.
async fn list_offset(
    stream: &mut TcpStream,
    topic: &str,
    timestamp: i64,
    isolation_level: i8,
) -> anyhow::Result<(i64, i64)> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp),
                ]),
        ]);
    let response: ListOffsetsResponse = call(stream, ApiKey::ListOffsets, 7, &request).await?;
    let answer = &response.topics[0].partitions[0];
    anyhow::ensure!(answer.error_code == 0, "error {}", answer.error_code);
    Ok((answer.offset, answer.timestamp))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_max_timestamp_answers_the_record_inside_its_batch() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let topic = "max-time";
    create_topic(&broker.bootstrap(), topic, 1, &[]).await?;
    // One batch (linger) of three records, the largest timestamp on the middle one, then a
    // second batch whose timestamps stay below it.
    let producer = producer(&broker.bootstrap(), &[("linger.ms", "200")])?;
    let t0 = 10_000_000i64;
    for timestamps in [
        [t0 + 100, t0 + 400, t0 + 250].as_slice(),
        &[t0 + 300, t0 + 50],
    ] {
        let mut pending = Vec::new();
        for timestamp in timestamps {
            pending.push(
                producer
                    .send_result(
                        FutureRecord::<(), _>::to(topic)
                            .payload("value")
                            .timestamp(*timestamp),
                    )
                    .map_err(|(e, _)| anyhow::anyhow!("{e}"))?,
            );
        }
        for delivery in pending {
            delivery.await?.map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
        }
    }
    let mut stream = TcpStream::connect(broker.bootstrap()).await?;
    for isolation_level in [0i8, 1] {
        assert_eq!(
            list_offset(&mut stream, topic, -3, isolation_level).await?,
            (1, t0 + 400),
            "max timestamp, isolation level {isolation_level}"
        );
    }
    Ok(())
}
