//! A full disk under the metadata log is fatal to the broker process, as in KRaft: the request
//! that meets it gets KAFKA_STORAGE_ERROR, the process exits with a failure status and says why
//! on stderr (so a supervisor restarts it), a start on the still-full disk fails the same clear
//! way, and once space is freed the restarted broker has every earlier topic and record and
//! takes new ones. The metadata directory is a small tmpfs in a private mount namespace; the
//! data logs stay on the ordinary disk.

use std::time::Duration;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_e2e::kafka::{assigned_consumer, consume, create_topic, produce_keyed, producer};
use strom_e2e::small_fs::SmallFs;
use strom_e2e::wire::call;
use strom_e2e::{BrokerOptions, BrokerProcess};
use tokio::net::TcpStream;

/// KAFKA_STORAGE_ERROR.
const STORAGE_ERROR: i16 = 56;
const RECORDS: usize = 20;

async fn create_topic_code(bootstrap: &str, name: &str) -> anyhow::Result<i16> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]);
    let response: CreateTopicsResponse =
        call(&mut stream, ApiKey::CreateTopics, 7, &request).await?;
    Ok(response.topics[0].error_code)
}

fn read_values(bootstrap: &str, topic: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let consumer = assigned_consumer(bootstrap, topic, 1)?;
    let messages = consume(&consumer, count, Duration::from_secs(30))?;
    Ok(messages
        .iter()
        .map(|m| {
            String::from_utf8_lossy(rdkafka::Message::payload(m).unwrap_or_default()).into_owned()
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_metadata_disk_stops_the_broker_and_a_restart_recovers() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let data_dir = root.path().join("data");
    let small = SmallFs::mount(&data_dir.join("__cluster_metadata-0"), 1024 * 1024)?;
    let stderr = root.path().join("broker.stderr");
    let mut broker = BrokerProcess::start(BrokerOptions {
        data_dir: Some(data_dir.clone()),
        launcher: small.launcher(),
        stderr_file: Some(stderr.clone()),
        ..BrokerOptions::default()
    })?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kept", 1, &[]).await?;
    let first = producer(&bootstrap, &[("acks", "all")])?;
    let acked = produce_keyed(&first, "kept", "v", RECORDS).await?;
    assert_eq!(
        acked,
        (0..RECORDS as i64).map(|o| (0, o)).collect::<Vec<_>>()
    );
    drop(first);

    let filled = small.fill()?;
    assert!(filled > 0, "the small file system had room left");
    assert_eq!(
        create_topic_code(&bootstrap, "refused").await?,
        STORAGE_ERROR,
        "the request that meets the full disk is told so"
    );
    let status = broker.wait_for_exit(Duration::from_secs(60))?;
    assert_eq!(
        status.code(),
        Some(1),
        "a failure status, not a crash: {status}"
    );
    let said = std::fs::read_to_string(&stderr)?;
    assert!(
        said.contains("metadata log cannot be written") && said.contains("No space left"),
        "stderr says why:\n{said}"
    );

    // A supervisor restarting it before the disk is fixed gets the same clear refusal.
    let restarted = BrokerProcess::start(broker.options().clone());
    assert!(restarted.is_err(), "a start on a full metadata disk fails");
    let said = std::fs::read_to_string(&stderr)?;
    let last = said.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("strom-broker:") && last.contains("No space left"),
        "the last line says why the start failed: {last}"
    );

    small.free()?;
    let broker = BrokerProcess::start(broker.options().clone())?;
    let bootstrap = broker.bootstrap();
    let expected: Vec<String> = (0..RECORDS).map(|i| format!("v-{i}")).collect();
    let values = tokio::task::block_in_place(|| read_values(&bootstrap, "kept", RECORDS))?;
    assert_eq!(values, expected, "every acknowledged record survives");
    assert_eq!(create_topic_code(&bootstrap, "later").await?, 0);
    let after = producer(&bootstrap, &[("acks", "all")])?;
    let acked = produce_keyed(&after, "kept", "w", 1).await?;
    assert_eq!(
        acked,
        vec![(0, RECORDS as i64)],
        "the log continues where it was"
    );
    Ok(())
}
