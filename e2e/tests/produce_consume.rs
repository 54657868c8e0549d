//! 100,000 keyed records over 6 partitions, once per compression codec, through librdkafka:
//! every record comes back, in order per partition, at contiguous offsets, with its key, value,
//! headers and timestamp intact — and the batches sit on disk compressed as the client sent them.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use strom_e2e::kafka::{assigned_consumer, by_partition, consume, create_topic, producer};
use strom_e2e::{BrokerOptions, BrokerProcess};

const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 6;

/// (librdkafka codec name, Kafka attribute bits for it)
const CODECS: &[(&str, u8)] = &[
    ("none", 0),
    ("gzip", 1),
    ("snappy", 2),
    ("lz4", 3),
    ("zstd", 4),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_100k_keyed_records() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    for &(codec, attribute) in CODECS {
        round_trip(&broker, codec, attribute).await?;
    }
    Ok(())
}

struct Sent {
    key: String,
    value: String,
    timestamp: i64,
}

async fn round_trip(broker: &BrokerProcess, codec: &str, attribute: u8) -> anyhow::Result<()> {
    let topic = format!("round-trip-{codec}");
    create_topic(&broker.bootstrap(), &topic, PARTITIONS, &[]).await?;
    let producer = producer(
        &broker.bootstrap(),
        &[("compression.type", codec), ("acks", "all")],
    )?;

    let base_ts = 1_700_000_000_000i64;
    let mut deliveries = Vec::with_capacity(RECORDS);
    let mut sent = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let key = format!("key-{}", i % 1000);
        // Repetitive values so every codec actually compresses.
        let value = format!("value-{i:08}-{}", "abcdefgh".repeat(8));
        let timestamp = base_ts + i as i64;
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "index",
                value: Some(&i.to_string()),
            })
            .insert(Header {
                key: "codec",
                value: Some(codec),
            });
        let mut record = FutureRecord::to(&topic)
            .key(&key)
            .payload(&value)
            .timestamp(timestamp)
            .headers(headers);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                // Local queue full: let deliveries drain, then retry the same record.
                Err((_, returned)) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        sent.push(Sent {
            key,
            value,
            timestamp,
        });
    }
    // (partition, offset) of every record, from the broker's acknowledgements.
    let mut acked: Vec<(i32, i64)> = Vec::with_capacity(RECORDS);
    for delivery in deliveries {
        let delivery = delivery
            .await
            .map_err(|_| anyhow::anyhow!("delivery future cancelled"))?
            .map_err(|(error, _)| anyhow::anyhow!("{codec}: delivery failed: {error}"))?;
        acked.push((delivery.partition, delivery.offset));
    }

    // Offsets per partition are contiguous from 0 and follow the send order.
    let mut per_partition: HashMap<i32, Vec<(i64, usize)>> = HashMap::new();
    for (index, &(partition, offset)) in acked.iter().enumerate() {
        per_partition
            .entry(partition)
            .or_default()
            .push((offset, index));
    }
    assert_eq!(
        per_partition.len(),
        PARTITIONS as usize,
        "{codec}: keys spread over all partitions"
    );
    for (partition, list) in &mut per_partition {
        let offsets: Vec<i64> = list.iter().map(|(o, _)| *o).collect();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, expected,
            "{codec}: partition {partition} acknowledged offsets in send order"
        );
    }

    let consumer = assigned_consumer(&broker.bootstrap(), &topic, PARTITIONS)?;
    let messages = consume(&consumer, RECORDS, Duration::from_secs(120))?;
    let consumed = by_partition(messages);
    let mut total = 0;
    for (partition, list) in &per_partition {
        let got = consumed.get(partition).ok_or_else(|| {
            anyhow::anyhow!("{codec}: nothing consumed from partition {partition}")
        })?;
        assert_eq!(
            got.len(),
            list.len(),
            "{codec}: partition {partition} record count"
        );
        for (message, &(offset, index)) in got.iter().zip(list.iter()) {
            let expected = &sent[index];
            assert_eq!(message.offset(), offset, "{codec}: offset");
            assert_eq!(
                message.key(),
                Some(expected.key.as_bytes()),
                "{codec}: key at {offset}"
            );
            assert_eq!(
                message.payload(),
                Some(expected.value.as_bytes()),
                "{codec}: value at {offset}"
            );
            assert_eq!(
                message.timestamp().to_millis(),
                Some(expected.timestamp),
                "{codec}: timestamp at {offset}"
            );
            let headers = message
                .headers()
                .ok_or_else(|| anyhow::anyhow!("{codec}: headers missing"))?;
            let pairs: Vec<(String, Vec<u8>)> = headers
                .iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect();
            assert_eq!(
                pairs,
                vec![
                    ("index".to_string(), index.to_string().into_bytes()),
                    ("codec".to_string(), codec.as_bytes().to_vec()),
                ],
                "{codec}: headers at {offset}"
            );
            total += 1;
        }
    }
    assert_eq!(total, RECORDS);

    // The broker stored the client's batches as they came: compressed with the client's codec
    // (librdkafka sends a batch uncompressed when compressing would not shrink it).
    let log = broker
        .data_dir()
        .join(format!("{topic}-0"))
        .join("00000000000000000000.log");
    let bytes = std::fs::read(&log)?;
    let mut position = 0;
    let mut codecs = Vec::new();
    while position + 61 <= bytes.len() {
        let length = i32::from_be_bytes(bytes[position + 8..position + 12].try_into()?) as usize;
        let attributes = u16::from_be_bytes([bytes[position + 21], bytes[position + 22]]);
        codecs.push((attributes & 0x7) as u8);
        position += 12 + length;
    }
    assert!(
        codecs.contains(&attribute),
        "{codec}: some batch on disk uses the client's codec: {codecs:?}"
    );
    assert!(
        codecs.iter().all(|c| *c == attribute || *c == 0),
        "{codec}: no batch was recompressed: {codecs:?}"
    );
    Ok(())
}
