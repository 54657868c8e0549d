//! A small Fetch cannot ask for a huge response: the request's `max_bytes` (negative included)
//! and every `partition_max_bytes` are capped by the broker's `fetch.max.bytes`, and a partition
//! named many times in one request is served once (Kafka keeps one entry per partition: the
//! first position, the last fields).

use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use rdkafka::producer::FutureRecord;
use strom_e2e::kafka::{create_topic, producer};
use strom_e2e::wire::call;
use strom_e2e::{BrokerOptions, BrokerProcess};
use tokio::net::TcpStream;

const CAP: usize = 1 << 20;

fn partition(offset: i64, max_bytes: i32) -> FetchPartition {
    FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(max_bytes)
}

fn topic(name: &str, partitions: Vec<FetchPartition>) -> FetchTopic {
    FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_string(name.to_string())))
        .with_partitions(partitions)
}

fn fetch(max_bytes: i32, topics: Vec<FetchTopic>) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_topics(topics)
}

/// Base offsets of the batches in a partition's records.
fn base_offsets(records: &[u8]) -> Vec<i64> {
    let mut out = Vec::new();
    let mut position = 0;
    while position + 12 <= records.len() {
        let base = i64::from_be_bytes(records[position..position + 8].try_into().expect("8"));
        let length =
            i32::from_be_bytes(records[position + 8..position + 12].try_into().expect("4"));
        out.push(base);
        position += 12 + length as usize;
    }
    out
}

fn records_bytes(response: &FetchResponse) -> usize {
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_fetches_cannot_ask_for_huge_responses() -> anyhow::Result<()> {
    let broker =
        BrokerProcess::start(BrokerOptions::default().with("fetch.max.bytes", &CAP.to_string()))?;
    create_topic(&broker.bootstrap(), "amplified", 1, &[]).await?;
    // 40 batches of one 64,000-byte record each: 2.5 MB in the partition.
    let producer = producer(&broker.bootstrap(), &[("acks", "all"), ("linger.ms", "0")])?;
    let value = vec![b'a'; 64_000];
    for _ in 0..40 {
        producer
            .send(
                FutureRecord::<(), _>::to("amplified").payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
    }
    let mut stream = TcpStream::connect(broker.bootstrap()).await?;

    // The partition 100 times, no total limit, no partition limit: about 3 KB of request.
    let amplifying = fetch(
        -1,
        vec![topic("amplified", vec![partition(0, i32::MAX); 100])],
    );
    let request_size = amplifying.compute_size(12)?;
    assert!(request_size < 4096, "{request_size} bytes");
    let response: FetchResponse = call(&mut stream, ApiKey::Fetch, 12, &amplifying).await?;
    let partitions: Vec<_> = response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .collect();
    assert_eq!(partitions.len(), 1, "the repeated partition is served once");
    assert_eq!(partitions[0].error_code, 0);
    // A negative max_bytes counts as 0: the first batch only (KIP-74: the consumer progresses).
    assert_eq!(
        base_offsets(partitions[0].records.as_deref().unwrap_or_default()),
        vec![0]
    );

    // An unbounded max_bytes is capped by fetch.max.bytes: whole batches up to the cap.
    let greedy = fetch(
        i32::MAX,
        vec![topic("amplified", vec![partition(0, i32::MAX); 100])],
    );
    let response: FetchResponse = call(&mut stream, ApiKey::Fetch, 12, &greedy).await?;
    let total = records_bytes(&response);
    println!("{request_size}-byte request, fetch.max.bytes={CAP}: {total} bytes of records");
    assert!(
        total <= CAP,
        "{total} bytes of records exceed fetch.max.bytes"
    );
    assert!(
        total > CAP / 2,
        "the cap, not less, bounds the answer: {total}"
    );
    let offsets = base_offsets(
        response.responses[0].partitions[0]
            .records
            .as_deref()
            .unwrap_or_default(),
    );
    assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());

    // The same partition under two topic entries, at offsets 0 then 5: one entry, the first
    // position, the last fetch offset.
    let twice = fetch(
        i32::MAX,
        vec![
            topic("amplified", vec![partition(0, 100_000)]),
            topic("amplified", vec![partition(5, 100_000)]),
        ],
    );
    let response: FetchResponse = call(&mut stream, ApiKey::Fetch, 12, &twice).await?;
    assert_eq!(response.responses.len(), 1);
    assert_eq!(response.responses[0].partitions.len(), 1);
    assert_eq!(
        base_offsets(
            response.responses[0].partitions[0]
                .records
                .as_deref()
                .unwrap_or_default()
        ),
        vec![5]
    );
    Ok(())
}
