//! A diverged follower is truncated: a leader whose followers are cut off (SIGSTOP) appends
//! records with `acks=1` that it cannot replicate, then is itself stopped and loses leadership
//! to a follower that never saw them. When it returns it is a follower: its unacknowledged tail
//! is truncated (through OffsetForLeaderEpoch) and replaced by the new leader's records, and the
//! segment files of all three replicas are byte-identical.
//!
//! A fetch the leader answered before a follower's SIGSTOP took effect may still sit in that
//! follower's socket and be applied when it continues, so the new leader may hold the first
//! few records of the tail, as it would in Kafka. The test accepts such a prefix and checks
//! that every replica ends with exactly the new leader's log: the prefix kept everywhere, the
//! rest of the tail gone everywhere.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::producer::FutureRecord;
use strom_e2e::cluster::Cluster;
use strom_e2e::kafka::{assigned_consumer, consume, create_replicated_topic, producer};
use strom_e2e::replicas::{
    await_healthy, await_identical_logs, await_partitions_on, fast_replication, partitions_in,
    segment_bytes,
};

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "diverged";

/// Produces `values` to partition 0 with `acks` and returns the acknowledged offsets.
async fn produce(bootstrap: &str, acks: &str, values: &[String]) -> anyhow::Result<Vec<i64>> {
    let idempotent = if acks == "all" { "true" } else { "false" };
    let producer = producer(
        bootstrap,
        &[
            ("acks", acks),
            ("enable.idempotence", idempotent),
            ("message.timeout.ms", "20000"),
        ],
    )?;
    let mut offsets = Vec::new();
    for value in values {
        let delivery = producer
            .send_result(FutureRecord::<(), _>::to(TOPIC).partition(0).payload(value))
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
        let delivered = delivery
            .await?
            .map_err(|(e, _)| anyhow::anyhow!("acks={acks} delivery of {value}: {e}"))?;
        assert_eq!(delivered.partition, 0);
        offsets.push(delivered.offset);
    }
    Ok(offsets)
}

fn values(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i:04}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diverged_tail_is_truncated_and_replicas_end_byte_identical() -> anyhow::Result<()> {
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3, 0, fast_replication)).await??;
    cluster.await_controller(DEADLINE).await?;
    create_replicated_topic(
        &cluster.bootstrap(),
        TOPIC,
        1,
        3,
        &[("min.insync.replicas", "2")],
    )
    .await?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;

    let committed = values("committed", 100);
    let first = produce(&cluster.bootstrap(), "all", &committed).await?;
    assert_eq!(first, (0..100).collect::<Vec<i64>>());
    let state = partitions_in(&cluster, TOPIC).await?[&0].clone();
    let old_leader = usize::try_from(state.leader)?;
    let followers: Vec<usize> = (0..3).filter(|id| *id != old_leader).collect();
    println!(
        "leader {old_leader} at epoch {}, followers {followers:?}",
        state.leader_epoch
    );

    // The followers stop fetching; the leader alone appends the diverged tail.
    for f in &followers {
        cluster.broker(*f).signal("STOP")?;
    }
    let diverged = values("diverged", 50);
    let tail = produce(&cluster.broker(old_leader).bootstrap(), "1", &diverged).await;
    // Then the leader stops too, and the followers return without ever seeing the tail.
    cluster.broker(old_leader).signal("STOP")?;
    for f in &followers {
        cluster.broker(*f).signal("CONT")?;
    }
    let tail = tail?;
    assert_eq!(
        tail,
        (100..150).collect::<Vec<i64>>(),
        "the old leader appended the tail"
    );

    let moved = await_partitions_on(
        &cluster,
        &followers,
        TOPIC,
        "a follower to lead with a higher leader epoch",
        DEADLINE,
        |found| {
            found.get(&0).is_some_and(|p| {
                p.leader >= 0 && p.leader != state.leader && p.leader_epoch > state.leader_epoch
            })
        },
    )
    .await?[&0]
        .clone();
    println!(
        "broker {} leads at epoch {}",
        moved.leader, moved.leader_epoch
    );
    let survivors = followers
        .iter()
        .map(|f| cluster.broker(*f).bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let after = values("after", 100);
    let second = produce(&survivors, "all", &after).await?;
    // How much of the tail reached the new leader before its fetcher stopped.
    let kept = usize::try_from(second[0] - 100)?;
    assert!(
        kept < diverged.len(),
        "the old leader held records no follower had"
    );
    assert_eq!(
        second,
        (100 + kept as i64..200 + kept as i64).collect::<Vec<i64>>(),
        "the new leader writes right after what it held of the tail"
    );
    println!(
        "the new leader held {kept} of the {} tail records",
        diverged.len()
    );

    cluster.broker(old_leader).signal("CONT")?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
    let sizes = await_identical_logs(&cluster, TOPIC, DEADLINE).await?;
    println!(
        "replicas of {TOPIC}-0 byte-identical over {} bytes",
        sizes[&0]
    );
    let (_, old_bytes) = segment_bytes(cluster.broker(old_leader).data_dir(), TOPIC, 0)?;
    for (i, value) in diverged.iter().enumerate() {
        let present = old_bytes
            .windows(value.len())
            .any(|w| w == value.as_bytes());
        assert_eq!(
            present,
            i < kept,
            "{value}: only the part of the tail the new leader held survives"
        );
    }

    let expected: Vec<String> = committed
        .into_iter()
        .chain(diverged.into_iter().take(kept))
        .chain(after)
        .collect();
    let reader = assigned_consumer(&cluster.bootstrap(), TOPIC, 1)?;
    let read = tokio::task::block_in_place(|| consume(&reader, expected.len(), DEADLINE))?;
    let read: Vec<String> = read
        .iter()
        .filter_map(|m| Some(String::from_utf8_lossy(m.payload()?).into_owned()))
        .collect();
    assert_eq!(
        read, expected,
        "every acknowledged record, once, in order, nothing else"
    );
    Ok(())
}
