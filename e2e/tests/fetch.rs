//! Fetch semantics a consumer relies on, exercised with exact requests: long polling wakes on an
//! append, `min_bytes` is honoured, `partition_max_bytes` and `max_bytes` bound the answer but
//! the first batch always comes back whole (KIP-74), an offset past the end is
//! OFFSET_OUT_OF_RANGE, and topic ids (v13+) resolve.

use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;
use strom_e2e::kafka::{create_topic, producer};
use strom_e2e::wire::call;
use strom_e2e::{BrokerOptions, BrokerProcess};
use tokio::net::TcpStream;

fn fetch_request(
    topic: &str,
    offset: i64,
    partition_max: i32,
    max_bytes: i32,
    min_bytes: i32,
    max_wait_ms: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(partition_max),
                ]),
        ])
}

/// (base offset, batch size) of every batch in a fetch answer.
fn batches(records: &[u8]) -> Vec<(i64, usize)> {
    let mut out = Vec::new();
    let mut position = 0;
    while position + 12 <= records.len() {
        let base = i64::from_be_bytes(records[position..position + 8].try_into().expect("8 bytes"));
        let length = i32::from_be_bytes(
            records[position + 8..position + 12]
                .try_into()
                .expect("4 bytes"),
        ) as usize;
        out.push((base, 12 + length));
        position += 12 + length;
    }
    out
}

async fn produce(bootstrap: &str, topic: &str, count: usize, size: usize) -> anyhow::Result<()> {
    let producer = producer(bootstrap, &[("acks", "all"), ("linger.ms", "0")])?;
    let value = "z".repeat(size);
    for _ in 0..count {
        producer
            .send(
                FutureRecord::<(), _>::to(topic).payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_limits_long_polling_and_errors() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    create_topic(&broker.bootstrap(), "fetched", 1, &[]).await?;
    // Ten batches of one 1000-byte record each.
    produce(&broker.bootstrap(), "fetched", 10, 1000).await?;
    let mut stream = TcpStream::connect(broker.bootstrap()).await?;

    // Everything.
    let all: FetchResponse = call(
        &mut stream,
        ApiKey::Fetch,
        12,
        &fetch_request("fetched", 0, 1 << 20, 1 << 20, 1, 0),
    )
    .await?;
    let partition = &all.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert_eq!(partition.high_watermark, 10);
    let all_batches = batches(partition.records.as_deref().unwrap_or_default());
    assert_eq!(
        all_batches.iter().map(|b| b.0).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    let batch_size = all_batches[0].1;

    // partition_max_bytes bounds the answer to whole batches...
    let three: FetchResponse = call(
        &mut stream,
        ApiKey::Fetch,
        12,
        &fetch_request("fetched", 0, (batch_size * 3 + 10) as i32, 1 << 20, 1, 0),
    )
    .await?;
    let got = batches(
        three.responses[0].partitions[0]
            .records
            .as_deref()
            .unwrap_or_default(),
    );
    assert_eq!(got.iter().map(|b| b.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    // ...and so does max_bytes...
    let two: FetchResponse = call(
        &mut stream,
        ApiKey::Fetch,
        12,
        &fetch_request("fetched", 4, 1 << 20, (batch_size * 2 + 1) as i32, 1, 0),
    )
    .await?;
    let got = batches(
        two.responses[0].partitions[0]
            .records
            .as_deref()
            .unwrap_or_default(),
    );
    assert_eq!(got.iter().map(|b| b.0).collect::<Vec<_>>(), vec![4, 5]);
    // ...but a first batch larger than both still comes back whole (KIP-74).
    let tiny: FetchResponse = call(
        &mut stream,
        ApiKey::Fetch,
        12,
        &fetch_request("fetched", 7, 10, 10, 1, 0),
    )
    .await?;
    let got = batches(
        tiny.responses[0].partitions[0]
            .records
            .as_deref()
            .unwrap_or_default(),
    );
    assert_eq!(got, vec![(7, batch_size)]);

    // Past the end: OFFSET_OUT_OF_RANGE with the current bounds.
    let past: FetchResponse = call(
        &mut stream,
        ApiKey::Fetch,
        12,
        &fetch_request("fetched", 11, 1 << 20, 1 << 20, 1, 0),
    )
    .await?;
    assert_eq!(past.responses[0].partitions[0].error_code, 1);
    assert_eq!(past.responses[0].partitions[0].high_watermark, 10);

    // An unknown topic.
    let unknown: FetchResponse = call(
        &mut stream,
        ApiKey::Fetch,
        12,
        &fetch_request("no-such-topic", 0, 1 << 20, 1 << 20, 1, 0),
    )
    .await?;
    assert_eq!(unknown.responses[0].partitions[0].error_code, 3);

    // Topic ids (v13+): resolve the id through Metadata, fetch by id.
    let metadata: MetadataResponse = call(
        &mut stream,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("fetched")))),
        ])),
    )
    .await?;
    let topic_id = metadata.topics[0].topic_id;
    let mut by_id = fetch_request("", 9, 1 << 20, 1 << 20, 1, 0);
    by_id.topics[0].topic_id = topic_id;
    let answer: FetchResponse = call(&mut stream, ApiKey::Fetch, 13, &by_id).await?;
    assert_eq!(answer.responses[0].topic_id, topic_id);
    let got = batches(
        answer.responses[0].partitions[0]
            .records
            .as_deref()
            .unwrap_or_default(),
    );
    assert_eq!(got.iter().map(|b| b.0).collect::<Vec<_>>(), vec![9]);

    // Long polling: a fetch at the end with min_bytes=1 and a minute of max_wait returns as soon
    // as a record is appended — the test's own deadline is far shorter than the wait.
    let bootstrap = broker.bootstrap();
    let waiting = tokio::spawn(async move {
        let mut stream = TcpStream::connect(bootstrap).await?;
        call::<_, FetchResponse>(
            &mut stream,
            ApiKey::Fetch,
            12,
            &fetch_request("fetched", 10, 1 << 20, 1 << 20, 1, 60_000),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "nothing to return yet: the fetch waits"
    );
    produce(&broker.bootstrap(), "fetched", 1, 100).await?;
    let woke = tokio::time::timeout(Duration::from_secs(20), waiting).await???;
    let got = batches(
        woke.responses[0].partitions[0]
            .records
            .as_deref()
            .unwrap_or_default(),
    );
    assert_eq!(
        got.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![10],
        "the append woke the fetch"
    );

    // min_bytes larger than what is there: the fetch waits for max_wait and returns what exists.
    let patient: FetchResponse = call(
        &mut stream,
        ApiKey::Fetch,
        12,
        &fetch_request("fetched", 10, 1 << 20, 1 << 20, 1 << 20, 200),
    )
    .await?;
    let got = batches(
        patient.responses[0].partitions[0]
            .records
            .as_deref()
            .unwrap_or_default(),
    );
    assert_eq!(got.iter().map(|b| b.0).collect::<Vec<_>>(), vec![10]);
    Ok(())
}
