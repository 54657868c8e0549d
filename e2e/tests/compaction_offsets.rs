//! `__consumer_offsets` is compacted: a million offset commits to a few partitions leave a log
//! of a few segments, and after a restart every group reads back its latest commit.

use std::time::Duration;

use anyhow::Context;

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_e2e::compaction::log_bytes;
use strom_e2e::kafka::create_topic;
use strom_e2e::wire::call;
use strom_e2e::{BrokerOptions, BrokerProcess, wait_until};
use tokio::net::TcpStream;

const GROUPS: usize = 4;
/// Offsets committed per request, one per partition of the committed topic.
const PARTITIONS: i32 = 10;
/// Commit requests per group: GROUPS * REQUESTS * PARTITIONS = 1,000,000 commits.
const REQUESTS: i64 = 25_000;
const TOPIC: &str = "committed";

fn group(g: usize) -> String {
    format!("offsets-group-{g}")
}

/// The offset committed for `partition` in request `n`.
fn offset(n: i64, partition: i32) -> i64 {
    n * 100 + i64::from(partition)
}

async fn commit_all(bootstrap: String, group: String) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(&bootstrap).await?;
    stream.set_nodelay(true)?;
    let found: FindCoordinatorResponse = call(
        &mut stream,
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(group.clone()))
            .with_key_type(0),
    )
    .await?;
    anyhow::ensure!(
        found.error_code == 0,
        "FindCoordinator: {}",
        found.error_code
    );
    for n in 0..REQUESTS {
        let partitions = (0..PARTITIONS)
            .map(|p| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(offset(n, p))
                    .with_committed_leader_epoch(-1)
            })
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.clone())))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                    .with_partitions(partitions),
            ]);
        let response: OffsetCommitResponse =
            call(&mut stream, ApiKey::OffsetCommit, 8, &request).await?;
        for topic in &response.topics {
            for partition in &topic.partitions {
                anyhow::ensure!(
                    partition.error_code == 0,
                    "commit {n} of {group}: error {}",
                    partition.error_code
                );
            }
        }
    }
    Ok(())
}

async fn committed(bootstrap: &str, group: &str) -> anyhow::Result<Vec<i64>> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_indexes((0..PARTITIONS).collect()),
        ]));
    let response: OffsetFetchResponse = call(&mut stream, ApiKey::OffsetFetch, 7, &request).await?;
    anyhow::ensure!(
        response.error_code == 0,
        "OffsetFetch: {}",
        response.error_code
    );
    let mut out: Vec<(i32, i64)> = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    out.sort_unstable();
    Ok(out.into_iter().map(|(_, o)| o).collect())
}

/// Bytes of every `__consumer_offsets` partition's `.log` files.
fn offsets_log_bytes(broker: &BrokerProcess) -> u64 {
    std::fs::read_dir(broker.data_dir())
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("__consumer_offsets-")
                })
                .map(|e| log_bytes(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_offsets_stay_bounded_under_a_million_commits() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start(
        BrokerOptions::default()
            .with("offsets.topic.num.partitions", "3")
            .with("offsets.topic.replication.factor", "1")
            .with("offsets.topic.segment.bytes", "1048576")
            .with("log.cleaner.backoff.ms", "100"),
    )?;
    create_topic(&broker.bootstrap(), TOPIC, PARTITIONS, &[]).await?;
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..GROUPS)
        .map(|g| tokio::spawn(commit_all(broker.bootstrap(), group(g))))
        .collect();
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    let commits = GROUPS as i64 * REQUESTS * i64::from(PARTITIONS);
    let expected: Vec<i64> = (0..PARTITIONS).map(|p| offset(REQUESTS - 1, p)).collect();

    // Compaction brings the offsets log down to about its active segments: 3 partitions of at
    // most 1 MiB each plus the cleaned remainder (a few hundred keys).
    let bound = 4 * 1024 * 1024;
    let bytes = wait_until(
        "the offsets log to be compacted",
        Duration::from_secs(120),
        || {
            let bytes = offsets_log_bytes(&broker);
            (bytes < bound).then_some(bytes)
        },
    )?;
    println!(
        "compaction: {commits} offset commits in {elapsed:?} ({:.0}/s); __consumer_offsets holds {bytes} bytes of log",
        commits as f64 / elapsed.as_secs_f64()
    );
    for g in 0..GROUPS {
        assert_eq!(committed(&broker.bootstrap(), &group(g)).await?, expected);
    }

    broker.restart()?;
    for g in 0..GROUPS {
        let group = group(g);
        // Group state loads in the background after a restart.
        let offsets = {
            let bootstrap = broker.bootstrap();
            let mut last = None;
            for _ in 0..200 {
                match committed(&bootstrap, &group).await {
                    Ok(offsets) => {
                        last = Some(offsets);
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            last
        };
        assert_eq!(
            offsets.as_deref(),
            Some(expected.as_slice()),
            "{group} after a restart"
        );
    }
    assert!(offsets_log_bytes(&broker) < bound);
    Ok(())
}

/// The `cleanup.policy` DescribeConfigs reports for `__consumer_offsets`.
async fn offsets_policy(
    admin: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
) -> Option<String> {
    let resource = rdkafka::admin::ResourceSpecifier::Topic("__consumer_offsets");
    let described = admin
        .describe_configs([&resource], &rdkafka::admin::AdminOptions::new())
        .await
        .ok()?;
    let config = described.into_iter().next()?.ok()?;
    config.get("cleanup.policy")?.value.clone()
}

/// A `__consumer_offsets` left with `cleanup.policy=delete` (as brokers created it before
/// compaction existed) is made compacted when the broker starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offsets_topic_from_before_compaction_is_made_compacted_at_start() -> anyhow::Result<()>
{
    let mut broker = BrokerProcess::start(
        BrokerOptions::default()
            .with("offsets.topic.num.partitions", "1")
            .with("offsets.topic.replication.factor", "1"),
    )?;
    create_topic(&broker.bootstrap(), TOPIC, 1, &[]).await?;
    // FindCoordinator creates the topic.
    let mut stream = TcpStream::connect(broker.bootstrap()).await?;
    let _: FindCoordinatorResponse = call(
        &mut stream,
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default()
            .with_key(StrBytes::from_static_str("old-group"))
            .with_key_type(0),
    )
    .await?;
    let admin = strom_e2e::kafka::admin(&broker.bootstrap())?;
    strom_e2e::cluster::eventually("the offsets topic", Duration::from_secs(30), || {
        offsets_policy(&admin)
    })
    .await?;
    assert_eq!(offsets_policy(&admin).await.as_deref(), Some("compact"));
    let old = rdkafka::admin::AlterConfig::new(rdkafka::admin::ResourceSpecifier::Topic(
        "__consumer_offsets",
    ))
    .set("cleanup.policy", "delete")
    .set("retention.ms", "-1");
    admin
        .alter_configs([&old], &rdkafka::admin::AdminOptions::new())
        .await?
        .into_iter()
        .next()
        .context("no result")?
        .map_err(|(_, e)| anyhow::anyhow!("{e:?}"))?;
    // The change is committed when AlterConfigs answers; the broker's image follows it.
    strom_e2e::cluster::eventually(
        "__consumer_offsets reported with cleanup.policy=delete",
        Duration::from_secs(10),
        || async { (offsets_policy(&admin).await.as_deref() == Some("delete")).then_some(()) },
    )
    .await?;
    // Metadata changes while the broker runs leave the policy an operator set as it is; only
    // a start makes the topic compacted again.
    create_topic(&broker.bootstrap(), "after-the-change", 1, &[]).await?;
    assert_eq!(offsets_policy(&admin).await.as_deref(), Some("delete"));

    broker.restart()?;
    let admin = strom_e2e::kafka::admin(&broker.bootstrap())?;
    strom_e2e::cluster::eventually(
        "the offsets topic to be compacted",
        Duration::from_secs(30),
        || async { (offsets_policy(&admin).await.as_deref() == Some("compact")).then_some(()) },
    )
    .await?;
    Ok(())
}
