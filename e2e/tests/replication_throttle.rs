//! Replication throttles (KIP-73) on three real brokers, set the way
//! `kafka-reassign-partitions --throttle` sets them: a partition of ~20 MB moves from broker 0
//! to brokers 0 and 1 while broker 0 may send at most 2 MiB/s to followers of the throttled
//! replica (leader throttle), or broker 1 may fetch at most 2 MiB/s of it (follower throttle);
//! the new replica grows no faster than that, and once the throttle is removed the
//! reassignment completes with the new replica holding the leader's bytes.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::FutureRecord;
use strom_e2e::cluster::{Cluster, eventually, fast_sessions, metadata};
use strom_e2e::kafka::{admin, producer};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(60);
const TOPIC: &str = "moving";
const MIB: u64 = 1024 * 1024;
/// The leader throttle on broker 0, bytes per second.
const RATE: u64 = 2 * MIB;
/// The most one follower fetch of one partition carries (`replica.fetch.max.bytes`, plus a
/// batch that exceeds it).
const ONE_FETCH: u64 = MIB + 64 * 1024;
const RECORDS: usize = 20_000;
const RECORD_BYTES: usize = 1000;
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

async fn call<Req, Resp>(
    bootstrap: &str,
    api: ApiKey,
    version: i16,
    request: &Req,
) -> anyhow::Result<Resp>
where
    Req: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion,
    Resp: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::HeaderVersion,
{
    let mut stream = TcpStream::connect(bootstrap).await?;
    strom_e2e::wire::call(&mut stream, api, version, request).await
}

/// One IncrementalAlterConfigs resource: `(name, Some(value))` sets, `(name, None)` deletes.
async fn alter_configs(
    bootstrap: &str,
    resource_type: i8,
    resource_name: &str,
    configs: &[(&str, Option<&str>)],
) -> anyhow::Result<()> {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(str_bytes(resource_name))
            .with_configs(
                configs
                    .iter()
                    .map(|(name, value)| {
                        AlterableConfig::default()
                            .with_name(str_bytes(name))
                            .with_config_operation(if value.is_some() { 0 } else { 1 })
                            .with_value(value.map(str_bytes))
                    })
                    .collect(),
            ),
    ]);
    let response: IncrementalAlterConfigsResponse =
        call(bootstrap, ApiKey::IncrementalAlterConfigs, 0, &request).await?;
    for r in &response.responses {
        anyhow::ensure!(
            r.error_code == 0,
            "altering {resource_name}: error {} {:?}",
            r.error_code,
            r.error_message
        );
    }
    Ok(())
}

/// The error code and message IncrementalAlterConfigs answers for one topic config.
async fn alter_topic_config_error(
    bootstrap: &str,
    name: &str,
    value: &str,
) -> anyhow::Result<(i16, String)> {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(str_bytes(TOPIC))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(str_bytes(name))
                    .with_config_operation(0)
                    .with_value(Some(str_bytes(value))),
            ]),
    ]);
    let response: IncrementalAlterConfigsResponse =
        call(bootstrap, ApiKey::IncrementalAlterConfigs, 0, &request).await?;
    let r = response
        .responses
        .first()
        .context("one resource answered")?;
    Ok((
        r.error_code,
        r.error_message
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    ))
}

/// The `.log` segments of a partition directory, concatenated in order.
fn log_bytes(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    let mut bytes = Vec::new();
    for segment in segments {
        bytes.extend(std::fs::read(&segment)?);
    }
    Ok(bytes)
}

/// Replicas and ISR of partition 0 of [`TOPIC`], as `bootstrap` reports them.
async fn replicas_and_isr(bootstrap: &str) -> anyhow::Result<(Vec<i32>, Vec<i32>)> {
    let response = metadata(bootstrap).await?;
    let topic = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == TOPIC))
        .context("topic in metadata")?;
    let p = topic
        .partitions
        .iter()
        .find(|p| p.partition_index == 0)
        .context("partition 0")?;
    let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
    isr.sort_unstable();
    Ok((p.replica_nodes.iter().map(|b| b.0).collect(), isr))
}

async fn reassignments_in_progress(bootstrap: &str) -> anyhow::Result<usize> {
    let response: ListPartitionReassignmentsResponse = call(
        bootstrap,
        ApiKey::ListPartitionReassignments,
        0,
        &ListPartitionReassignmentsRequest::default().with_topics(None),
    )
    .await?;
    anyhow::ensure!(response.error_code == 0, "error {}", response.error_code);
    Ok(response.topics.iter().map(|t| t.partitions.len()).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_reassignment_copies_at_the_leader_rate_and_completes_once_unthrottled()
-> anyhow::Result<()> {
    throttled_reassignment(0, "leader.replication.throttled.rate", false).await
}

/// `kafka-configs --entity-type brokers --entity-default`: the rate set once for every broker
/// throttles the leader, is described as a cluster-wide default on the default resource and on
/// the broker, and deleting it from the default resource lets the reassignment complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_wide_default_rate_throttles_a_reassignment_until_deleted() -> anyhow::Result<()>
{
    throttled_reassignment(0, "leader.replication.throttled.rate", true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_reassignment_copies_at_the_follower_rate_and_completes_once_unthrottled()
-> anyhow::Result<()> {
    throttled_reassignment(1, "follower.replication.throttled.rate", false).await
}

/// Moves [`TOPIC`] from broker 0 to brokers 0 and 1 with `rate_key` set to [`RATE`] on
/// `throttled` (0, the leader, or 1, the new follower), or on every broker when `cluster_wide`
/// (the BROKER resource named "").
async fn throttled_reassignment(
    throttled: usize,
    rate_key: &str,
    cluster_wide: bool,
) -> anyhow::Result<()> {
    let cluster = Cluster::start(3, 0, |id, options| {
        fast_sessions(id, options).with("replica.fetch.backoff.ms", "100")
    })?;
    cluster.await_controller(DEADLINE).await?;
    let bootstrap = cluster.bootstrap();
    let broker0 = cluster.broker(0).bootstrap();

    let new = NewTopic::new(TOPIC, 1, TopicReplication::Variable(&[&[0]]));
    for result in admin(&bootstrap)?
        .create_topics([&new], &AdminOptions::new())
        .await?
    {
        result.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e:?}"))?;
    }
    let producer = producer(&bootstrap, &[("acks", "1")])?;
    let payload = vec![b'x'; RECORD_BYTES];
    let mut sends = Vec::with_capacity(RECORDS);
    for _ in 0..RECORDS {
        let record = FutureRecord::<(), _>::to(TOPIC)
            .partition(0)
            .payload(&payload);
        match producer.send_result(record) {
            Ok(delivery) => sends.push(delivery),
            Err((error, _)) => anyhow::bail!("enqueueing a record: {error}"),
        }
    }
    for delivery in futures::future::join_all(sends).await {
        delivery
            .context("delivery dropped")?
            .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
    }
    let leader_dir = cluster.broker(0).data_dir().join(format!("{TOPIC}-0"));
    let total = strom_e2e::compaction::log_bytes(&leader_dir);
    anyhow::ensure!(total >= 20_000_000, "the leader holds {total} bytes");

    // A replica list that does not parse is refused and names the expected form.
    let (code, message) =
        alter_topic_config_error(&broker0, "leader.replication.throttled.replicas", "0-0").await?;
    assert_eq!(code, 40, "{message}");
    assert!(message.contains("[partitionId]:[brokerId]"), "{message}");

    // As the reassignment tool does: the rate on the broker, the existing replica as leader
    // throttled, the moving replica as follower throttled.
    let throttled_id = throttled.to_string();
    let rate_resource = if cluster_wide {
        ""
    } else {
        throttled_id.as_str()
    };
    alter_configs(
        &broker0,
        RESOURCE_BROKER,
        rate_resource,
        &[(rate_key, Some(&RATE.to_string()))],
    )
    .await?;
    alter_configs(
        &broker0,
        RESOURCE_TOPIC,
        TOPIC,
        &[
            ("leader.replication.throttled.replicas", Some("0:0")),
            ("follower.replication.throttled.replicas", Some("0:1")),
        ],
    )
    .await?;
    // The throttled broker reports the dynamic value once its image holds it, as its own
    // (DYNAMIC_BROKER_CONFIG) or inherited from the cluster-wide default
    // (DYNAMIC_DEFAULT_BROKER_CONFIG), and so does the default resource.
    let source = if cluster_wide { 4 } else { 2 };
    let mut described_names = vec![throttled_id.clone()];
    if cluster_wide {
        described_names.push(String::new());
    }
    let throttled_bootstrap = cluster.broker(throttled).bootstrap();
    for name in &described_names {
        let describe = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_BROKER)
                .with_resource_name(str_bytes(name))
                .with_configuration_keys(Some(vec![str_bytes(rate_key)])),
        ]);
        eventually("the rate to be described as dynamic", DEADLINE, || async {
            let described: DescribeConfigsResponse =
                call(&throttled_bootstrap, ApiKey::DescribeConfigs, 1, &describe)
                    .await
                    .ok()?;
            let result = described.results.first()?;
            let entry = result.configs.first()?.clone();
            let value = entry.value.as_ref().map(ToString::to_string);
            (result.error_code == 0
                && result.configs.len() == 1
                && entry.name.as_str() == rate_key
                && value == Some(RATE.to_string())
                && entry.config_source == source)
                .then_some(())
        })
        .await?;
    }

    let started = Instant::now();
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            ReassignableTopic::default()
                .with_name(TopicName(str_bytes(TOPIC)))
                .with_partitions(vec![
                    ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(Some(vec![BrokerId(0), BrokerId(1)])),
                ]),
        ]);
    let response: AlterPartitionReassignmentsResponse =
        call(&broker0, ApiKey::AlterPartitionReassignments, 0, &request).await?;
    anyhow::ensure!(
        response.error_code == 0,
        "AlterPartitionReassignments: {}",
        response.error_code
    );
    for topic in &response.responses {
        for p in &topic.partitions {
            anyhow::ensure!(p.error_code == 0, "reassigning: {:?}", p.error_message);
        }
    }

    // The copy proceeds, but never faster than the rate allows: at most RATE per second
    // since the request (one second at least: the quota measures a first burst over a whole
    // window), plus the fetch that found the quota still unspent. No assertion on how fast:
    // the bound grows with the time measured.
    let follower_dir = cluster.broker(1).data_dir().join(format!("{TOPIC}-0"));
    let mut samples = Vec::new();
    loop {
        let size = strom_e2e::compaction::log_bytes(&follower_dir);
        let elapsed = started.elapsed().as_secs_f64();
        let allowed = RATE as f64 * elapsed.max(1.0) + ONE_FETCH as f64;
        assert!(
            (size as f64) <= allowed,
            "broker 1 holds {size} bytes {elapsed:.2} s after the reassignment began; the \
             throttle allows {allowed:.0}"
        );
        samples.push((elapsed, size));
        if elapsed >= 4.0 && size >= 2 * MIB {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < DEADLINE,
            "the throttled copy made no progress: {samples:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (elapsed, size) = samples[samples.len() - 1];
    println!(
        "{rate_key} {RATE} B/s on broker {throttled}: broker 1 holds {size} of {total} bytes after {elapsed:.2} s \
         ({:.0} B/s)",
        size as f64 / elapsed
    );
    assert!(size < total, "the copy finished despite the throttle");
    assert_eq!(reassignments_in_progress(&broker0).await?, 1);

    // Without the rate the replica catches up and the reassignment completes.
    alter_configs(
        &broker0,
        RESOURCE_BROKER,
        rate_resource,
        &[(rate_key, None)],
    )
    .await?;
    eventually("the reassignment to complete", DEADLINE, || async {
        let done = reassignments_in_progress(&broker0).await.ok()? == 0;
        let (replicas, isr) = replicas_and_isr(&broker0).await.ok()?;
        (done && replicas == vec![0, 1] && isr == vec![0, 1]).then_some(())
    })
    .await?;
    assert_eq!(
        log_bytes(&follower_dir)?,
        log_bytes(&leader_dir)?,
        "the new replica holds the leader's bytes"
    );
    Ok(())
}
