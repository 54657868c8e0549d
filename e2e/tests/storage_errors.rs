//! A partition whose log cannot be opened (a failing disk, no file descriptors left) is reported
//! as what it is — KAFKA_STORAGE_ERROR and offline — to CreateTopics, Metadata and Produce,
//! never as a success with a leader; other partitions keep being served.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureRecord;
use strom_e2e::kafka::{admin, assigned_consumer, consume, create_topic, producer};
use strom_e2e::wire::{call, encode_batch};
use strom_e2e::{BrokerOptions, BrokerProcess};
use tokio::net::TcpStream;

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

fn one_record() -> anyhow::Result<Bytes> {
    encode_batch(&[Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_cannot_open_is_a_storage_error_not_a_success() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "healthy", 1, &[]).await?;
    // A file where the partition directory must go: its log cannot be created.
    std::fs::write(broker.data_dir().join("blocked-1"), b"not a directory")?;

    let admin = admin(&bootstrap)?;
    let topic = NewTopic::new("blocked", 2, TopicReplication::Fixed(1));
    let results = admin.create_topics([&topic], &AdminOptions::new()).await?;
    assert_eq!(
        results[0],
        Err(("blocked".to_string(), RDKafkaErrorCode::KafkaStorageError)),
        "CreateTopics must not report success"
    );

    let mut stream = TcpStream::connect(&bootstrap).await?;
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name("blocked"))),
    ]));
    let metadata: MetadataResponse = call(&mut stream, ApiKey::Metadata, 12, &request).await?;
    let partitions = &metadata.topics[0].partitions;
    let p0 = partitions
        .iter()
        .find(|p| p.partition_index == 0)
        .expect("p0");
    let p1 = partitions
        .iter()
        .find(|p| p.partition_index == 1)
        .expect("p1");
    assert_eq!(p0.error_code, 0);
    assert_eq!(p0.leader_id.0, 0);
    assert_eq!(p1.error_code, ResponseError::KafkaStorageError.code());
    assert_eq!(p1.leader_id.0, -1, "no usable leader");
    assert_eq!(
        p1.offline_replicas.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![0]
    );

    let produce = |partition: i32| -> anyhow::Result<ProduceRequest> {
        Ok(ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name("blocked"))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(one_record()?)),
                    ]),
            ]))
    };
    let response: ProduceResponse = call(&mut stream, ApiKey::Produce, 9, &produce(1)?).await?;
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        ResponseError::KafkaStorageError.code()
    );
    let response: ProduceResponse = call(&mut stream, ApiKey::Produce, 9, &produce(0)?).await?;
    let ok = &response.responses[0].partition_responses[0];
    assert_eq!(
        (ok.error_code, ok.base_offset),
        (0, 0),
        "the healthy partition is served"
    );

    // Other topics are untouched: a real client produces and reads back.
    let producer = producer(&bootstrap, &[("acks", "all")])?;
    for i in 0..10 {
        producer
            .send(
                FutureRecord::<(), _>::to("healthy").payload(&format!("m{i}")),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
    }
    let consumer = assigned_consumer(&bootstrap, "healthy", 1)?;
    let messages = consume(&consumer, 10, Duration::from_secs(30))?;
    let payloads: Vec<String> = messages
        .iter()
        .map(|m| {
            String::from_utf8_lossy(rdkafka::Message::payload(m).unwrap_or_default()).into_owned()
        })
        .collect();
    assert_eq!(
        payloads,
        (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    Ok(())
}
