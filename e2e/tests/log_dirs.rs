//! DescribeLogDirs against a real broker, through the operator's admin client (`strom-admin`):
//! each hosted partition's size is the bytes of its segment files on disk, so an operator can
//! tell what a broker holds.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};
use bytes::Bytes;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, ProduceRequest, ProduceResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use strom_admin::{BrokerAdmin, KafkaAdmin, LogDir, ReplicaAdmin, ResponseError, TopicPartition};
use strom_e2e::wire::{call, encode_batch};
use strom_e2e::{BrokerOptions, BrokerProcess};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(15);
const TOPIC: &str = "sized";

/// One batch of `count` records of `value_len` bytes each, as a client would send it.
fn batch(count: usize, value_len: usize) -> anyhow::Result<Bytes> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).unwrap_or(0),
            sequence: -1,
            timestamp: now,
            key: None,
            value: Some(Bytes::from(vec![b'x'; value_len])),
            headers: Default::default(),
        })
        .collect();
    encode_batch(&records)
}

/// Produces `records` to partition `partition` with acks=all; until the new topic's leader is
/// in place the broker answers with a retriable error, so those are retried within a deadline.
async fn produce(stream: &mut TcpStream, partition: i32, records: Bytes) -> anyhow::Result<()> {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ]);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let response: ProduceResponse = call(stream, ApiKey::Produce, 9, &request).await?;
        let code = response.responses[0].partition_responses[0].error_code;
        if code == 0 {
            return Ok(());
        }
        let retriable = ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable());
        ensure!(
            retriable && tokio::time::Instant::now() < deadline,
            "produce to {TOPIC}-{partition} failed with {code}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The bytes of the `.log` segment files in a partition's directory.
fn segment_bytes(partition_dir: &Path) -> anyhow::Result<(u64, usize)> {
    let mut bytes = 0;
    let mut segments = 0;
    for entry in std::fs::read_dir(partition_dir)
        .with_context(|| format!("reading {}", partition_dir.display()))?
    {
        let entry = entry?;
        if entry.path().extension().is_some_and(|e| e == "log") {
            bytes += entry.metadata()?.len();
            segments += 1;
        }
    }
    Ok((bytes, segments))
}

/// Replica sizes by partition of [`TOPIC`] in `dirs`.
fn sizes(dirs: &[LogDir]) -> BTreeMap<i32, i64> {
    dirs.iter()
        .flat_map(|d| &d.replicas)
        .filter(|r| r.partition.topic == TOPIC)
        .map(|r| (r.partition.partition, r.size_bytes))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_dirs_report_the_bytes_on_disk_of_each_partition() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let admin = KafkaAdmin::connect(&broker.bootstrap(), TIMEOUT).await?;
    // Small segments, so partition 0 spans several of them.
    let configs = BTreeMap::from([("segment.bytes".to_owned(), "4096".to_owned())]);
    admin.create_topic(TOPIC, 3, 1, &configs).await?;

    // Partition 0: 12 batches of ~1 KiB; partition 1: one small batch; partition 2: nothing.
    let mut stream = TcpStream::connect(broker.bootstrap()).await?;
    let mut produced = BTreeMap::from([(0, 0_u64), (1, 0), (2, 0)]);
    for _ in 0..12 {
        let records = batch(4, 256)?;
        *produced.entry(0).or_default() += records.len() as u64;
        produce(&mut stream, 0, records).await?;
    }
    let records = batch(3, 10)?;
    *produced.entry(1).or_default() += records.len() as u64;
    produce(&mut stream, 1, records).await?;

    let dirs = admin.describe_log_dirs(0, None).await?;
    ensure!(dirs.len() == 1, "one log dir: {dirs:?}");
    let dir = &dirs[0];
    let data_dir = std::path::absolute(broker.data_dir())?;
    assert_eq!(
        Path::new(&dir.path),
        data_dir,
        "the data directory, absolute"
    );
    assert_eq!(dir.error, None);
    let (total, usable) = (
        dir.total_bytes.context("v4 reports the volume size")?,
        dir.usable_bytes.context("v4 reports the bytes left")?,
    );
    ensure!(
        total > 0 && (0..=total).contains(&usable),
        "{total} {usable}"
    );
    assert!(
        dir.replicas
            .iter()
            .all(|r| !r.is_future && r.offset_lag == 0)
    );

    let reported = sizes(&dirs);
    assert_eq!(reported.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
    for (partition, size) in &reported {
        let (on_disk, segments) = segment_bytes(&data_dir.join(format!("{TOPIC}-{partition}")))?;
        assert_eq!(
            u64::try_from(*size)?,
            on_disk,
            "{TOPIC}-{partition}: the reported size is the bytes of its segment files"
        );
        // Batches are stored as they came: the log holds exactly the bytes produced.
        assert_eq!(on_disk, produced[partition], "{TOPIC}-{partition}");
        if *partition == 0 {
            ensure!(segments > 1, "partition 0 spans {segments} segment(s)");
        }
    }
    assert!(reported[&0] > 0 && reported[&1] > 0);
    assert_eq!(reported[&2], 0);

    // Asking about some partitions: those hosted, and not the unknown ones.
    let dirs = admin
        .describe_log_dirs(
            0,
            Some(&[
                TopicPartition::new(TOPIC, 1),
                TopicPartition::new(TOPIC, 7),
                TopicPartition::new("missing", 0),
            ]),
        )
        .await?;
    assert_eq!(sizes(&dirs), BTreeMap::from([(1, reported[&1])]));
    assert_eq!(dirs.iter().map(|d| d.replicas.len()).sum::<usize>(), 1);

    // The oldest version the broker advertises: the same sizes, no volume fields.
    let request = DescribeLogDirsRequest::default().with_topics(Some(vec![
        DescribableLogDirTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![0]),
    ]));
    let response: DescribeLogDirsResponse =
        call(&mut stream, ApiKey::DescribeLogDirs, 1, &request).await?;
    assert_eq!(response.results.len(), 1);
    let topics = &response.results[0].topics;
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].partitions.len(), 1);
    assert_eq!(topics[0].partitions[0].partition_size, reported[&0]);
    Ok(())
}
