//! Poison record batches — a valid CRC over records that are not what the header says — are
//! refused as Kafka refuses them (`INVALID_RECORD` naming the record, KIP-467;
//! `CORRUPT_MESSAGE`; `INVALID_TIMESTAMP`), and nothing of them is stored: the log end offset
//! does not move, no segment is rolled, earlier acknowledged records stay readable by real
//! clients (librdkafka, kcat, confluent-kafka, kafka-python), other connections keep being
//! served, and an idempotent producer's sequence is not advanced by a refused batch.
//!
//! And on read: a bad batch already in a segment (written by an older version, or damaged on
//! disk) is answered with `CORRUPT_MESSAGE` at its offset instead of being served to clients
//! that cannot parse it, while the data before and after it stays readable.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse,
    InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use strom_e2e::kafka::{assigned_consumer, consume, create_topic, producer};
use strom_e2e::wire::{call, encode_batch, reseal_batch};
use strom_e2e::{BrokerOptions, BrokerProcess, tool};
use tokio::net::TcpStream;

const INVALID_RECORD: i16 = 87;
const CORRUPT_MESSAGE: i16 = 2;
const INVALID_TIMESTAMP: i16 = 32;
/// Size of a v2 batch header; records follow it.
const HEADER: usize = 61;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn record(value: &str, timestamp: i64, producer: Option<(i64, i16, i32)>) -> Record {
    let (producer_id, producer_epoch, sequence) = producer.unwrap_or((-1, -1, -1));
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence,
        timestamp,
        key: Some(Bytes::from_static(b"key")),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Default::default(),
    }
}

fn one_record_batch(value: &str) -> anyhow::Result<Vec<u8>> {
    Ok(encode_batch(&[record(value, now_ms(), None)])?.to_vec())
}

/// `batch` claiming `count` records (and the matching lastOffsetDelta), resealed.
fn claiming(mut batch: Vec<u8>, count: i32) -> Bytes {
    batch[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    batch[57..61].copy_from_slice(&count.to_be_bytes());
    reseal_batch(&mut batch);
    batch.into()
}

/// `batch`'s header over other record bytes, resealed.
fn with_records(batch: &[u8], records: &[u8], attributes: Option<i16>) -> Bytes {
    let mut out = batch[..HEADER].to_vec();
    out.extend_from_slice(records);
    if let Some(attributes) = attributes {
        out[21..23].copy_from_slice(&attributes.to_be_bytes());
    }
    reseal_batch(&mut out);
    out.into()
}

struct Poison {
    name: &'static str,
    batch: Bytes,
    code: i16,
    /// The record KIP-467's `record_errors` must name, when the fault is in one record.
    record: Option<i32>,
}

fn poisons() -> anyhow::Result<Vec<Poison>> {
    let good = one_record_batch("poison")?;
    let good_records = good[HEADER..].to_vec();
    // A record whose key claims 2^30 bytes: length, attributes, timestamp delta, offset delta,
    // key length varint (zigzag 2^31 = 0x80 0x80 0x80 0x80 0x08), then 4 bytes.
    let huge_key = [
        0x18, 0x00, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x08, b'k', b'e', b'y', b'!',
    ];
    let random20 = [
        0x8f, 0x12, 0xa7, 0x33, 0x01, 0xfe, 0x44, 0x90, 0x07, 0x7d, 0xc2, 0x19, 0x5a, 0xe1, 0x00,
        0x3c, 0x88, 0x6b, 0x2f, 0xd4,
    ];
    Ok(vec![
        Poison {
            name: "a key claiming 2^30 bytes",
            batch: with_records(&good, &huge_key, None),
            code: INVALID_RECORD,
            record: Some(0),
        },
        Poison {
            name: "20 random bytes as a record",
            batch: with_records(&good, &random20, None),
            code: INVALID_RECORD,
            record: Some(0),
        },
        Poison {
            name: "recordCount 5 holding 1 record",
            batch: claiming(good.clone(), 5),
            code: INVALID_RECORD,
            record: Some(1),
        },
        Poison {
            name: "the gzip flag on garbage",
            batch: with_records(&good, b"definitely not a gzip stream", Some(1)),
            code: CORRUPT_MESSAGE,
            record: None,
        },
        Poison {
            name: "codec 7",
            batch: with_records(&good, &good_records, Some(7)),
            code: INVALID_RECORD,
            record: None,
        },
        Poison {
            name: "a timestamp of 10^16",
            batch: encode_batch(&[record("future", 10_000_000_000_000_000, None)])?,
            code: INVALID_TIMESTAMP,
            record: Some(0),
        },
        Poison {
            name: "recordCount 2^31-1",
            batch: claiming(good.clone(), i32::MAX),
            code: INVALID_RECORD,
            record: Some(1),
        },
    ])
}

async fn produce_raw(
    stream: &mut TcpStream,
    topic: &str,
    records: Bytes,
) -> anyhow::Result<PartitionProduceResponse> {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    let response: ProduceResponse = call(stream, ApiKey::Produce, 9, &request).await?;
    Ok(response.responses[0].partition_responses[0].clone())
}

async fn log_end_offset(stream: &mut TcpStream, topic: &str) -> anyhow::Result<i64> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ]),
        ]);
    let response: ListOffsetsResponse = call(stream, ApiKey::ListOffsets, 5, &request).await?;
    let partition = &response.topics[0].partitions[0];
    anyhow::ensure!(
        partition.error_code == 0,
        "ListOffsets error {}",
        partition.error_code
    );
    Ok(partition.offset)
}

async fn assert_served(healthy: &mut TcpStream) -> anyhow::Result<()> {
    let response: ApiVersionsResponse = call(
        healthy,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name("strom-e2e".into())
            .with_client_software_version("1".into()),
    )
    .await?;
    anyhow::ensure!(
        response.error_code == 0,
        "ApiVersions error {}",
        response.error_code
    );
    Ok(())
}

fn segment_files(broker: &BrokerProcess, topic: &str) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut logs: Vec<_> = std::fs::read_dir(broker.data_dir().join(format!("{topic}-0")))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    Ok(logs)
}

/// Values of every record of partition 0 read by kcat, confluent-kafka and kafka-python.
fn other_clients_read(bootstrap: &str, topic: &str, count: usize) -> anyhow::Result<()> {
    let kcat = tool("kcat")?;
    let output = Command::new(&kcat)
        .args([
            "-b",
            bootstrap,
            "-t",
            topic,
            "-p",
            "0",
            "-C",
            "-e",
            "-o",
            "beginning",
        ])
        .args(["-f", "%s\n"])
        .output()?;
    let lines: Vec<String> = String::from_utf8(output.stdout)?
        .lines()
        .map(str::to_string)
        .collect();
    anyhow::ensure!(
        output.status.success() && lines.len() == count,
        "kcat read {} of {count}: {:?} {}",
        lines.len(),
        lines,
        String::from_utf8_lossy(&output.stderr)
    );
    let script = r#"
import sys
from confluent_kafka import Consumer, TopicPartition
from kafka import KafkaConsumer
from kafka.structs import TopicPartition as KTopicPartition
bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "poison-ck", "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, 0, 0)])
values = []
while len(values) < count:
    msg = consumer.poll(10)
    if msg is None or msg.error():
        break
    values.append(msg.value().decode())
print("confluent-kafka " + "|".join(values))
consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10000)
consumer.assign([KTopicPartition(topic, 0)])
consumer.seek_to_beginning()
values = []
for message in consumer:
    values.append(message.value.decode())
    if len(values) == count:
        break
print("kafka-python " + "|".join(values))
"#;
    let output = Command::new("python3")
        .args(["-c", script, bootstrap, topic, &count.to_string()])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let joined = lines.join("|");
    for client in ["confluent-kafka", "kafka-python"] {
        anyhow::ensure!(
            stdout.lines().any(|l| l == format!("{client} {joined}")),
            "{client} did not read the {count} records kcat read:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_batches_are_refused_and_nothing_is_stored() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let topic = "poison";
    create_topic(&broker.bootstrap(), topic, 1, &[]).await?;
    let mut healthy = TcpStream::connect(broker.bootstrap()).await?;
    assert_served(&mut healthy).await?;

    let client = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let mut expected: Vec<String> = Vec::new();
    for i in 0..20 {
        let value = format!("before-{i}");
        client
            .send(
                FutureRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
        expected.push(value);
    }

    let mut attacker = TcpStream::connect(broker.bootstrap()).await?;
    assert_eq!(log_end_offset(&mut attacker, topic).await?, 20);
    for poison in poisons()? {
        let response = produce_raw(&mut attacker, topic, poison.batch.clone()).await?;
        assert_eq!(response.error_code, poison.code, "{}", poison.name);
        assert_eq!(response.base_offset, -1, "{}", poison.name);
        let indexes: Vec<i32> = response
            .record_errors
            .iter()
            .map(|e| e.batch_index)
            .collect();
        assert_eq!(
            indexes,
            poison.record.into_iter().collect::<Vec<_>>(),
            "{}: record_errors {:?}",
            poison.name,
            response.record_errors
        );
        assert!(
            response.error_message.is_some(),
            "{}: an error message",
            poison.name
        );
        assert_eq!(
            log_end_offset(&mut attacker, topic).await?,
            20,
            "{}: nothing stored",
            poison.name
        );
        assert_served(&mut healthy).await?;
    }

    // An 80-byte batch claiming 2^31-1 records, 20 times: no offset moves, no segment rolls.
    let huge = claiming(one_record_batch("huge")?, i32::MAX);
    for _ in 0..20 {
        let response = produce_raw(&mut attacker, topic, huge.clone()).await?;
        assert_eq!(response.error_code, INVALID_RECORD);
    }
    assert_eq!(log_end_offset(&mut attacker, topic).await?, 20);
    assert_eq!(segment_files(&broker, topic)?.len(), 1, "no segment rolled");

    // An idempotent producer's refused batch does not advance its sequence: the next valid
    // batch with sequence 0 is accepted as the first.
    let init: InitProducerIdResponse = call(
        &mut attacker,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60000),
    )
    .await?;
    let pid = init.producer_id.0;
    let idempotent = encode_batch(&[record("idempotent", now_ms(), Some((pid, 0, 0)))])?;
    let response = produce_raw(&mut attacker, topic, claiming(idempotent.to_vec(), 5)).await?;
    assert_eq!(response.error_code, INVALID_RECORD);
    let response = produce_raw(&mut attacker, topic, idempotent).await?;
    assert_eq!((response.error_code, response.base_offset), (0, 20));
    expected.push("idempotent".to_string());

    let consumer = assigned_consumer(&broker.bootstrap(), topic, 1)?;
    let messages = consume(&consumer, expected.len(), Duration::from_secs(30))?;
    let values: Vec<String> = messages
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(values, expected, "every acknowledged record, in order");
    let offsets: Vec<i64> = messages.iter().map(|m| m.offset()).collect();
    assert_eq!(offsets, (0..21).collect::<Vec<i64>>());
    other_clients_read(&broker.bootstrap(), topic, expected.len())?;
    assert_served(&mut healthy).await?;
    Ok(())
}

async fn fetch_code_and_bytes(
    stream: &mut TcpStream,
    topic: &str,
    offset: i64,
) -> anyhow::Result<(i16, Bytes)> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let response: FetchResponse = call(stream, ApiKey::Fetch, 12, &request).await?;
    let partition = &response.responses[0].partitions[0];
    Ok((
        partition.error_code,
        partition.records.clone().unwrap_or_default(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_batch_in_a_segment_is_reported_not_served() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start(BrokerOptions::default())?;
    let topic = "stored-poison";
    create_topic(&broker.bootstrap(), topic, 1, &[]).await?;
    let client = producer(&broker.bootstrap(), &[("acks", "all")])?;
    for i in 0..10 {
        client
            .send(
                FutureRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(&format!("before-{i}")),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
    }
    drop(client);
    broker.stop()?;

    // What an older version stored without looking at the records: a batch at offsets 10..=14
    // whose CRC is valid but which holds one record.
    let segment = segment_files(&broker, topic)?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no segment"))?;
    let mut poison = claiming(one_record_batch("poison")?, 5).to_vec();
    poison[..8].copy_from_slice(&10i64.to_be_bytes());
    let mut file = std::fs::OpenOptions::new().append(true).open(&segment)?;
    std::io::Write::write_all(&mut file, &poison)?;
    drop(file);
    broker.restart()?;

    let mut stream = TcpStream::connect(broker.bootstrap()).await?;
    assert_eq!(log_end_offset(&mut stream, topic).await?, 15);
    let client = producer(&broker.bootstrap(), &[("acks", "all")])?;
    client
        .send(
            FutureRecord::<(), _>::to(topic)
                .partition(0)
                .payload("after"),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;

    // From the start: the ten good records, and the read stops before the bad batch.
    let (code, records) = fetch_code_and_bytes(&mut stream, topic, 0).await?;
    assert_eq!(code, 0);
    let last_base = {
        let mut position = 0;
        let mut last = -1;
        while position + HEADER <= records.len() {
            last = i64::from_be_bytes(records[position..position + 8].try_into()?);
            position +=
                12 + i32::from_be_bytes(records[position + 8..position + 12].try_into()?) as usize;
        }
        last
    };
    assert!(last_base < 10, "the bad batch at 10 is not served");
    // At the bad batch: CORRUPT_MESSAGE for that partition and offset, not bytes no client
    // can parse.
    for offset in [10, 12] {
        let (code, records) = fetch_code_and_bytes(&mut stream, topic, offset).await?;
        assert_eq!(
            (code, records.len()),
            (CORRUPT_MESSAGE, 0),
            "offset {offset}"
        );
    }
    // Past it, the log is served again.
    let (code, records) = fetch_code_and_bytes(&mut stream, topic, 15).await?;
    assert_eq!(code, 0);
    assert!(!records.is_empty());

    // librdkafka reads the ten records, then reports the error at offset 10; a consumer that
    // seeks past the damage reads on.
    let consumer = assigned_consumer(&broker.bootstrap(), topic, 1)?;
    let messages = consume(&consumer, 10, Duration::from_secs(30))?;
    let values: Vec<String> = messages
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(
        values,
        (0..10).map(|i| format!("before-{i}")).collect::<Vec<_>>()
    );
    let error = strom_e2e::wait_until(
        "the consumer error at offset 10",
        Duration::from_secs(30),
        || match consumer.poll(Duration::from_millis(200)) {
            Some(Err(error)) => Some(error.to_string()),
            _ => None,
        },
    )?;
    // librdkafka names Kafka's error 2 (CORRUPT_MESSAGE) "Broker: Invalid message".
    assert!(error.contains("Broker: Invalid message"), "{error}");
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(topic, 0, rdkafka::Offset::Offset(15))?;
    consumer.assign(&list)?;
    let after = consume(&consumer, 1, Duration::from_secs(30))?;
    assert_eq!(after[0].payload(), Some(&b"after"[..]));
    assert_eq!(after[0].offset(), 15);

    let metrics = metrics_text(&broker)?;
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "kafka_server_brokertopicmetrics_failedfetchrequests_total{topic=\"stored-poison\"}"
        ) && !l.ends_with(" 0")),
        "failed fetches are counted:\n{metrics}"
    );
    Ok(())
}

/// The broker's `/metrics` text.
fn metrics_text(broker: &BrokerProcess) -> anyhow::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(broker.admin_addr())?;
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n",
        broker.admin_addr()
    )?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}
