//! Follower fetches that must be refused, and leave the partition unharmed: a Fetch naming a
//! `replica_id` of a broker that is not a replica (NOT_LEADER_OR_FOLLOWER), a stale leader epoch
//! (FENCED_LEADER_EPOCH) and a leader epoch from the future (UNKNOWN_LEADER_EPOCH), from a
//! follower's id and from a consumer's (KIP-320). Afterwards the ISR, the high watermark and
//! `acks=all` writes are as before.

use std::time::Duration;

use anyhow::Context;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_e2e::cluster::Cluster;
use strom_e2e::kafka::create_assigned_topic;
use strom_e2e::replicas::{
    PartitionState, await_healthy, await_partitions, fast_replication, partitions_in, produce_raw,
};

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "guarded";
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

/// Fetch v12 of partition 0 from offset 0 as `replica_id` with `current_leader_epoch`; returns
/// the partition's (error code, high watermark).
async fn fetch(
    bootstrap: &str,
    replica_id: i32,
    current_leader_epoch: i32,
) -> anyhow::Result<(i16, i64)> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(replica_id))
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(current_leader_epoch)
                        .with_fetch_offset(0)
                        .with_last_fetched_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let mut stream = tokio::net::TcpStream::connect(bootstrap).await?;
    let response: FetchResponse =
        strom_e2e::wire::call(&mut stream, ApiKey::Fetch, 12, &request).await?;
    let p = response
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .context("one partition in the response")?;
    Ok((p.error_code, p.high_watermark))
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_follower_fetches_are_refused_and_the_partition_is_unharmed() -> anyhow::Result<()> {
    let mut cluster =
        tokio::task::spawn_blocking(|| Cluster::start(4, 0, fast_replication)).await??;
    cluster.await_controller(DEADLINE).await?;
    create_assigned_topic(
        &cluster.bootstrap(),
        TOPIC,
        &[&[0, 1, 2]],
        &[("min.insync.replicas", "2")],
    )
    .await?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
    // A leader change, so that there is an older epoch to be stale with.
    let first = partitions_in(&cluster, TOPIC).await?[&0].clone();
    let first_leader = usize::try_from(first.leader)?;
    cluster.broker_mut(first_leader).kill9();
    await_partitions(&cluster, TOPIC, "a new leader", DEADLINE, |f| {
        f.get(&0)
            .is_some_and(|p| p.leader >= 0 && p.leader != first.leader)
    })
    .await?;
    tokio::task::block_in_place(|| cluster.broker_mut(first_leader).restart())?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
    let state: PartitionState = partitions_in(&cluster, TOPIC).await?[&0].clone();
    let leader = cluster.broker(usize::try_from(state.leader)?).bootstrap();
    let follower = *state
        .replicas
        .iter()
        .find(|r| **r != state.leader)
        .context("a follower")?;
    let answer = produce_raw(&leader, TOPIC, 0, -1, 10_000, &values("before", 10)).await?;
    assert_eq!(
        answer.map(|a| a.0),
        Some(0),
        "acks=all works before: {answer:?}"
    );
    let (_, high_before) = fetch(&leader, -1, state.leader_epoch).await?;
    assert_eq!(high_before, 10);

    let cases = [
        (
            "a broker that is not a replica",
            3,
            state.leader_epoch,
            NOT_LEADER_OR_FOLLOWER,
        ),
        (
            "a follower with a stale epoch",
            follower,
            state.leader_epoch - 1,
            FENCED_LEADER_EPOCH,
        ),
        (
            "a follower with a future epoch",
            follower,
            state.leader_epoch + 1,
            UNKNOWN_LEADER_EPOCH,
        ),
        (
            "a consumer with a stale epoch",
            -1,
            state.leader_epoch - 1,
            FENCED_LEADER_EPOCH,
        ),
    ];
    for (what, replica_id, epoch, expected) in cases {
        let (code, _) = fetch(&leader, replica_id, epoch).await?;
        println!("Fetch from {what} (replica_id {replica_id}, epoch {epoch}): error {code}");
        assert_eq!(code, expected, "Fetch from {what}");
    }

    let after = partitions_in(&cluster, TOPIC).await?[&0].clone();
    assert_eq!(after, state, "leader, epoch, replicas and ISR unchanged");
    let (code, high_after) = fetch(&leader, -1, state.leader_epoch).await?;
    assert_eq!(
        (code, high_after),
        (0, high_before),
        "the high watermark is unchanged"
    );
    let answer = produce_raw(&leader, TOPIC, 0, -1, 10_000, &values("after", 10)).await?;
    assert_eq!(answer, Some((0, 10)), "acks=all works after");
    Ok(())
}
