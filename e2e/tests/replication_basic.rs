//! The basics of partition replication on three real brokers: every replica of an RF 3
//! partition holds the same bytes as its leader, killing a leader loses no acknowledged record,
//! and the restarted broker rejoins every ISR. (Bad follower fetches: replication_bad_input.rs.)

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use strom_e2e::cluster::{Cluster, eventually, fast_sessions, metadata, metric};
use strom_e2e::kafka::{admin, assigned_consumer, by_partition, consume, producer};

const DEADLINE: Duration = Duration::from_secs(60);
const PARTITIONS: i32 = 3;

fn start() -> anyhow::Result<Cluster> {
    Cluster::start(3, 0, |id, options| {
        fast_sessions(id, options)
            .with("replica.lag.time.max.ms", "2000")
            .with("replica.fetch.backoff.ms", "100")
    })
}

async fn create_rf3(bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let admin = admin(bootstrap)?;
    let new = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(3))
        .set("min.insync.replicas", "2");
    for result in admin.create_topics([&new], &AdminOptions::new()).await? {
        result.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e:?}"))?;
    }
    Ok(())
}

/// Leader and ISR of every partition of `topic`, as the first broker of `bootstrap` (a
/// comma-separated list) reports them.
async fn leaders(bootstrap: &str, topic: &str) -> anyhow::Result<BTreeMap<i32, (i32, Vec<i32>)>> {
    let first = bootstrap.split(',').next().unwrap_or(bootstrap);
    let response = metadata(first).await?;
    let t = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
        .context("topic in metadata")?;
    Ok(t.partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                (p.leader_id.0, p.isr_nodes.iter().map(|b| b.0).collect()),
            )
        })
        .collect())
}

/// Produces `count` records per partition with acks=all and returns their payloads by
/// partition, in order.
async fn produce(
    bootstrap: &str,
    topic: &str,
    from: usize,
    count: usize,
) -> anyhow::Result<BTreeMap<i32, Vec<String>>> {
    let producer = producer(
        bootstrap,
        &[("acks", "all"), ("enable.idempotence", "true")],
    )?;
    let mut sent: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for i in from..from + count {
        for partition in 0..PARTITIONS {
            let payload = format!("p{partition}-r{i}");
            producer
                .send(
                    FutureRecord::<(), _>::to(topic)
                        .partition(partition)
                        .payload(&payload),
                    Timeout::After(DEADLINE),
                )
                .await
                .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
            sent.entry(partition).or_default().push(payload);
        }
    }
    Ok(sent)
}

/// The bytes of every `.log` segment of a partition directory, concatenated in order.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_hold_the_leaders_bytes_and_a_killed_leader_loses_nothing() -> anyhow::Result<()> {
    let mut cluster = start()?;
    cluster.await_controller(DEADLINE).await?;
    let topic = "replicated";
    create_rf3(&cluster.bootstrap(), topic).await?;
    let bootstrap = cluster.bootstrap();
    eventually("every partition to have a full ISR", DEADLINE, || async {
        let l = leaders(&bootstrap, topic).await.ok()?;
        (l.len() == PARTITIONS as usize && l.values().all(|(_, isr)| isr.len() == 3)).then_some(())
    })
    .await?;

    let mut sent = produce(&bootstrap, topic, 0, 200).await?;

    // Every replica's log holds the same bytes as the leader's, once the followers caught up.
    for partition in 0..PARTITIONS {
        let dirs: Vec<_> = cluster
            .brokers()
            .iter()
            .map(|b| b.data_dir().join(format!("{topic}-{partition}")))
            .collect();
        eventually("followers to hold the leader's bytes", DEADLINE, || async {
            let logs: Vec<Vec<u8>> = dirs
                .iter()
                .map(|d| log_bytes(d).ok())
                .collect::<Option<_>>()?;
            (!logs[0].is_empty() && logs.iter().all(|l| *l == logs[0])).then_some(())
        })
        .await?;
    }

    // Kill the leader of partition 0; a new leader is elected from the ISR.
    let before = leaders(&bootstrap, topic).await?;
    let (old_leader, _) = before[&0];
    cluster.broker_mut(old_leader as usize).kill9();
    let bootstrap = cluster.bootstrap();
    eventually("a new leader for partition 0", DEADLINE, || async {
        let l = leaders(&bootstrap, topic).await.ok()?;
        let (leader, _) = l.get(&0)?;
        (*leader >= 0 && *leader != old_leader).then_some(())
    })
    .await?;
    for (partition, more) in produce(&bootstrap, topic, 200, 100).await? {
        sent.entry(partition).or_default().extend(more);
    }

    // Everything acknowledged is there, once, in order.
    let consumer = assigned_consumer(&bootstrap, topic, PARTITIONS)?;
    let total: usize = sent.values().map(Vec::len).sum();
    let got = by_partition(consume(&consumer, total, DEADLINE)?);
    for (partition, payloads) in &sent {
        let read: Vec<String> = got
            .get(partition)
            .map(|m| {
                m.iter()
                    .map(|m| {
                        String::from_utf8_lossy(rdkafka::Message::payload(m).unwrap_or_default())
                            .into_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(&read, payloads, "partition {partition}");
    }

    // The killed broker returns, catches up and rejoins every ISR.
    cluster.broker_mut(old_leader as usize).restart()?;
    let bootstrap = cluster.bootstrap();
    eventually(
        "the restarted broker back in every ISR",
        DEADLINE,
        || async {
            let l = leaders(&bootstrap, topic).await.ok()?;
            l.values().all(|(_, isr)| isr.len() == 3).then_some(())
        },
    )
    .await?;
    eventually(
        "no under-replicated partition on any broker",
        DEADLINE,
        || async {
            let sum: f64 = cluster
                .brokers()
                .iter()
                .map(|b| metric(b, "kafka_server_replicamanager_underreplicatedpartitions").ok())
                .sum::<Option<f64>>()?;
            (sum == 0.0).then_some(())
        },
    )
    .await?;
    Ok(())
}
