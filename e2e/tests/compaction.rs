//! Log compaction with real clients: confluent-kafka writes keyed updates and tombstones to
//! compacted topics, librdkafka reads them back. After cleaning a reader from the start sees
//! exactly the latest value of every live key, with the original offsets; while the cleaner
//! runs every read is consistent; compressed batches stay in their codec; records without a key
//! are refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use strom_e2e::compaction::{
    check_consistent, fully_compacted, log_bytes, read_all, stored_batches, write_keyed,
};
use strom_e2e::kafka::{create_topic, producer, send_acked};
use strom_e2e::{BrokerOptions, BrokerProcess, wait_until};

const READ_DEADLINE: Duration = Duration::from_secs(60);

fn cleaning_broker() -> anyhow::Result<BrokerProcess> {
    BrokerProcess::start(BrokerOptions::default().with("log.cleaner.backoff.ms", "100"))
}

/// Topic configs that make a partition cleanable as soon as its segments roll: small segments,
/// any dirty share, a segment that rolls when idle for 1 s.
fn compacted_configs(delete_retention_ms: &str) -> Vec<(&'static str, String)> {
    vec![
        ("cleanup.policy", "compact".to_owned()),
        ("segment.bytes", "131072".to_owned()),
        ("segment.ms", "1000".to_owned()),
        ("min.cleanable.dirty.ratio", "0.01".to_owned()),
        ("delete.retention.ms", delete_retention_ms.to_owned()),
    ]
}

async fn create_compacted(
    broker: &BrokerProcess,
    topic: &str,
    delete_retention_ms: &str,
) -> anyhow::Result<()> {
    let configs = compacted_configs(delete_retention_ms);
    let configs: Vec<(&str, &str)> = configs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    create_topic(&broker.bootstrap(), topic, 1, &configs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_keeps_the_latest_value_of_every_key() -> anyhow::Result<()> {
    let broker = cleaning_broker()?;
    let topic = "changelog";
    // Written under `delete` first, so the uncompacted size can be measured; then switched to
    // `compact` with AlterConfigs, as a user turns compaction on for an existing topic.
    let mut configs = compacted_configs("5000");
    configs[0].1 = "delete".to_owned();
    configs.push(("retention.ms", "-1".to_owned()));
    let borrowed: Vec<(&str, &str)> = configs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    create_topic(&broker.bootstrap(), topic, 1, &borrowed).await?;
    let bootstrap = broker.bootstrap();
    let written = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            write_keyed(&bootstrap, topic, 200_000, 10_000, "lz4", 7, 0)
        })
        .await??
    };
    let dir = broker.data_dir().join("changelog-0");
    let bytes_written = log_bytes(&dir);
    let compacted = compacted_configs("5000");
    let compact = compacted.iter().fold(
        rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic(topic)),
        |alter, (key, value)| alter.set(key, value),
    );
    let altered = strom_e2e::kafka::admin(&bootstrap)?
        .alter_configs([&compact], &rdkafka::admin::AdminOptions::new())
        .await?;
    assert!(altered.iter().all(Result::is_ok), "{altered:?}");

    // A reader from the start, again and again while the cleaner works: every read is consistent.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, bootstrap, latest) = (stop.clone(), bootstrap.clone(), written.latest.clone());
        std::thread::spawn(move || -> anyhow::Result<usize> {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let read = read_all(&bootstrap, topic, READ_DEADLINE)?;
                check_consistent(&read, &latest)
                    .map_err(|e| anyhow::anyhow!("read {reads} during cleaning: {e}"))?;
                reads += 1;
            }
            Ok(reads)
        })
    };

    let mut last_seen = String::from("nothing read yet");
    let read = wait_until("the log to be compacted", Duration::from_secs(120), || {
        // Reading 200k records takes a while: only once the files shrank.
        let bytes = log_bytes(&dir);
        if bytes * 4 > bytes_written {
            last_seen = format!("{bytes} of {bytes_written} bytes left");
            return None;
        }
        let read = read_all(&bootstrap, topic, READ_DEADLINE).ok()?;
        let tombstones = read.iter().filter(|r| r.value.is_none()).count();
        last_seen = format!(
            "{bytes} bytes, {} records read, {tombstones} tombstones, consistent: {:?}",
            read.len(),
            check_consistent(&read, &written.latest)
        );
        fully_compacted(&read, &written.latest).then_some(read)
    });
    let read = read.map_err(|e| anyhow::anyhow!("{e}; last seen: {last_seen}"));
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader thread")?;
    let read = read?;

    let live = written.latest.values().filter(|v| v.is_some()).count();
    assert_eq!(read.len(), live, "one record per live key");
    assert!(
        read.first()
            .is_some_and(|r| r.offset >= written.first_offset)
    );
    assert!(read.last().is_some_and(|r| r.offset <= written.last_offset));
    let span = written.last_offset - written.first_offset + 1;
    assert!(
        i64::try_from(read.len())? < span,
        "offsets keep their gaps: {} records over {span} offsets",
        read.len()
    );
    let bytes_after = log_bytes(&dir);
    println!(
        "compaction: 200000 records over 10000 keys, {live} live; log {bytes_written} -> {bytes_after} bytes ({:.1}%); {reads} consistent reads during cleaning",
        bytes_after as f64 * 100.0 / bytes_written as f64
    );
    assert!(
        reads > 0,
        "the reader finished at least one read while cleaning"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_compacts_and_stays_in_its_codec() -> anyhow::Result<()> {
    let broker = cleaning_broker()?;
    // Kafka's attribute codes.
    for (codec, id) in [("gzip", 1u8), ("snappy", 2), ("lz4", 3), ("zstd", 4)] {
        let topic = format!("codec-{codec}");
        create_compacted(&broker, &topic, "0").await?;
        let written = {
            let (bootstrap, topic) = (broker.bootstrap(), topic.clone());
            tokio::task::spawn_blocking(move || {
                write_keyed(&bootstrap, &topic, 20_000, 1_000, codec, u64::from(id), 0)
            })
            .await??
        };
        let dir = broker.data_dir().join(format!("{topic}-0"));
        wait_until(
            &format!("{topic} compacted"),
            Duration::from_secs(60),
            || {
                let read = read_all(&broker.bootstrap(), &topic, READ_DEADLINE).ok()?;
                fully_compacted(&read, &written.latest).then_some(())
            },
        )?;
        let batches = stored_batches(&dir)?;
        let with_records: Vec<_> = batches.iter().filter(|b| b.records > 0).collect();
        assert!(!with_records.is_empty());
        for batch in with_records {
            assert_eq!(
                batch.codec, id,
                "{topic}: the batch at {} is stored with codec {} after cleaning",
                batch.base_offset, batch.codec
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_a_key_are_refused_on_a_compacted_topic() -> anyhow::Result<()> {
    let broker = cleaning_broker()?;
    let topic = "keys-required";
    create_compacted(&broker, topic, "86400000").await?;
    let producer = producer(&broker.bootstrap(), &[("acks", "all"), ("retries", "0")])?;
    let refused = producer
        .send(
            FutureRecord::<(), _>::to(topic).payload("no key"),
            Duration::from_secs(30),
        )
        .await;
    match refused {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord), _)) => {}
        other => panic!("expected INVALID_RECORD, got {other:?}"),
    }
    // Nothing was written: the first keyed record gets offset 0.
    let (_, offset) = send_acked(&producer, topic, "k", "v").await?;
    assert_eq!(offset, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_while_cleaning_keeps_a_complete_log_and_cleans_on() -> anyhow::Result<()> {
    // The cleaner reads and writes at 4 MB/s, so a pass lasts long enough to be interrupted.
    let mut broker = BrokerProcess::start(
        BrokerOptions::default()
            .with("log.cleaner.backoff.ms", "50")
            .with("log.cleaner.io.max.bytes.per.second", "4000000"),
    )?;
    let topic = "interrupted";
    create_compacted(&broker, topic, "0").await?;
    let dir = broker.data_dir().join("interrupted-0");
    let mut latest = strom_e2e::compaction::Latest::new();
    let (mut interrupted, rounds) = (0, 5u64);
    for round in 0..rounds {
        let written = {
            let bootstrap = broker.bootstrap();
            tokio::task::spawn_blocking(move || {
                write_keyed(
                    &bootstrap,
                    topic,
                    30_000,
                    2_000,
                    "none",
                    round,
                    usize::try_from(round)? * 30_000,
                )
            })
            .await??
        };
        latest.extend(written.latest);
        // Kill as soon as the cleaner has written a new segment, or after 10 s regardless.
        let swapping = wait_until("a cleaning pass", Duration::from_secs(10), || {
            std::fs::read_dir(&dir)
                .ok()?
                .flatten()
                .any(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.ends_with(".cleaned") || name.ends_with(".swap")
                })
                .then_some(())
        })
        .is_ok();
        broker.kill9();
        interrupted += usize::from(swapping);
        broker.restart()?;
        let read = read_all(&broker.bootstrap(), topic, READ_DEADLINE)?;
        check_consistent(&read, &latest)
            .map_err(|e| anyhow::anyhow!("after the kill in round {round}: {e}"))?;
    }
    wait_until(
        "cleaning to finish after the kills",
        Duration::from_secs(120),
        || {
            let read = read_all(&broker.bootstrap(), topic, READ_DEADLINE).ok()?;
            fully_compacted(&read, &latest).then_some(())
        },
    )?;
    println!("compaction: {interrupted} of {rounds} kills hit a cleaning pass in progress");
    assert!(interrupted > 0, "at least one kill interrupted a pass");
    Ok(())
}
