//! Durability across restarts: every acknowledged record is readable at the same offset after a
//! clean stop and after `kill -9`, and a segment whose tail was cut mid-batch recovers to its
//! last whole batch, with appends continuing right after it.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use strom_e2e::kafka::{assigned_consumer, by_partition, consume, create_topic, producer};
use strom_e2e::{BrokerOptions, BrokerProcess};

const PARTITIONS: i32 = 3;

/// Produces `count` records with acks=all; returns (partition, offset, value) of each.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    tag: &str,
    count: usize,
) -> anyhow::Result<Vec<(i32, i64, String)>> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let value = format!("{tag}-{i}");
        let key = format!("k{}", i % 17);
        let delivery = producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(error, _)| anyhow::anyhow!("produce failed: {error}"))?;
        out.push((delivery.partition, delivery.offset, value));
    }
    Ok(out)
}

/// Reads the whole topic and checks every expected record is at its offset, nothing else there.
fn assert_readable(
    broker: &BrokerProcess,
    topic: &str,
    expected: &[(i32, i64, String)],
) -> anyhow::Result<()> {
    let consumer = assigned_consumer(&broker.bootstrap(), topic, PARTITIONS)?;
    let messages = by_partition(consume(&consumer, expected.len(), Duration::from_secs(60))?);
    for (partition, offset, value) in expected {
        let list = messages
            .get(partition)
            .ok_or_else(|| anyhow::anyhow!("partition {partition} is empty"))?;
        let message = list
            .iter()
            .find(|m| m.offset() == *offset)
            .ok_or_else(|| anyhow::anyhow!("{partition}@{offset} is missing"))?;
        assert_eq!(
            message.payload(),
            Some(value.as_bytes()),
            "{partition}@{offset}"
        );
    }
    let total: usize = messages.values().map(Vec::len).sum();
    assert_eq!(
        total,
        expected.len(),
        "no record beyond the acknowledged ones"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_clean_stop_and_kill_9() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start(BrokerOptions::default())?;
    let topic = "durable";
    create_topic(&broker.bootstrap(), topic, PARTITIONS, &[]).await?;

    let first = {
        let producer = producer(&broker.bootstrap(), &[("acks", "all")])?;
        produce(&producer, topic, "before-stop", 300).await?
    };
    broker.stop()?;
    broker.restart()?;
    assert_readable(&broker, topic, &first)?;

    let mut all = first;
    {
        let producer = producer(&broker.bootstrap(), &[("acks", "all")])?;
        all.extend(produce(&producer, topic, "before-kill", 300).await?);
    }
    broker.kill9();
    broker.restart()?;
    assert_readable(&broker, topic, &all)?;

    // Appends continue at the next offsets after the crash.
    let producer = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let after = produce(&producer, topic, "after-kill", 30).await?;
    for (partition, offset, _) in &after {
        let before_max = all
            .iter()
            .filter(|(p, _, _)| p == partition)
            .map(|(_, o, _)| *o)
            .max()
            .unwrap_or(-1);
        assert!(
            *offset > before_max,
            "{partition}@{offset} reuses an offset"
        );
    }
    all.extend(after);
    assert_readable(&broker, topic, &all)?;
    broker.stop()?;
    Ok(())
}

/// (base offset, file position) of every batch in a segment file.
fn batch_starts(log: &[u8]) -> Vec<(i64, usize)> {
    let mut out = Vec::new();
    let mut position = 0;
    while position + 12 <= log.len() {
        let base = i64::from_be_bytes(log[position..position + 8].try_into().expect("8 bytes"));
        let length = i32::from_be_bytes(
            log[position + 8..position + 12]
                .try_into()
                .expect("4 bytes"),
        );
        out.push((base, position));
        position += 12 + length as usize;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_recovers_to_the_last_whole_batch() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start(BrokerOptions::default())?;
    let topic = "torn";
    create_topic(&broker.bootstrap(), topic, 1, &[]).await?;
    let produced = {
        // One record per batch, so the cut removes exactly the last record.
        let producer = producer(&broker.bootstrap(), &[("acks", "all"), ("linger.ms", "0")])?;
        let mut out = Vec::new();
        for i in 0..20 {
            let value = format!("record-{i}");
            let offset = producer
                .send(
                    FutureRecord::<(), _>::to(topic).payload(&value),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(error, _)| anyhow::anyhow!("produce failed: {error}"))?
                .offset;
            out.push((offset, value));
        }
        out
    };
    broker.stop()?;

    let log_path = broker.data_dir().join("torn-0/00000000000000000000.log");
    let bytes = std::fs::read(&log_path)?;
    let starts = batch_starts(&bytes);
    let &(last_base, last_position) = starts.last().ok_or_else(|| anyhow::anyhow!("no batches"))?;
    // Cut the last batch in the middle of its header+records.
    let cut = last_position + (bytes.len() - last_position) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log_path)?
        .set_len(cut as u64)?;

    broker.restart()?;
    let survivors: Vec<(i32, i64, String)> = produced
        .iter()
        .filter(|(offset, _)| *offset < last_base)
        .map(|(offset, value)| (0, *offset, value.clone()))
        .collect();
    assert_eq!(
        survivors.len(),
        produced.len() - 1,
        "exactly the torn batch is gone"
    );
    let consumer = assigned_consumer(&broker.bootstrap(), topic, 1)?;
    let messages = consume(&consumer, survivors.len(), Duration::from_secs(60))?;
    let got: Vec<(i64, Vec<u8>)> = messages
        .iter()
        .map(|m| (m.offset(), m.payload().unwrap_or_default().to_vec()))
        .collect();
    let want: Vec<(i64, Vec<u8>)> = survivors
        .iter()
        .map(|(_, o, v)| (*o, v.as_bytes().to_vec()))
        .collect();
    assert_eq!(got, want);

    // The next append takes the torn batch's offset: the log end is the last whole batch's end.
    let producer = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let offset = producer
        .send(
            FutureRecord::<(), _>::to(topic).payload("after-recovery"),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(error, _)| anyhow::anyhow!("produce failed: {error}"))?
        .offset;
    assert_eq!(offset, last_base);
    broker.stop()?;
    Ok(())
}
