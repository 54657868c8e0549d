//! Consumer groups across a coordinator failover: three confluent-kafka members of one group
//! consume a replicated topic and auto-commit while the broker leading the group's
//! `__consumer_offsets` partition is killed (`kill -9`). The members find the new coordinator
//! and go on consuming; no committed offset goes back; the group resumes at its committed
//! offsets (a record is consumed again after the failover only from a committed offset on);
//! in the end every produced record was consumed and the committed offsets are the log end
//! offsets.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::{FutureProducer, Producer};
use strom_e2e::cluster::{Cluster, eventually};
use strom_e2e::coordinators::{self, agreed_coordinator, kafka_partition_for};
use strom_e2e::group_members::{PythonMember, Shared, lock, received, split_evenly};
use strom_e2e::kafka::{create_replicated_topic, produce_keyed, producer, send_acked};
use strom_e2e::replicas::{await_healthy, fast_replication, partitions_in};
use strom_e2e::wait_until;
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "group-failover";
const PARTITIONS: i32 = 6;
const GROUP: &str = "failover-group";
const OFFSETS_TOPIC: &str = "__consumer_offsets";
const OFFSETS_PARTITIONS: i32 = 3;
/// How long one request to one broker may take (a killed broker refuses at once).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// OffsetFetch v7 of `group`'s committed offsets of `topic` from `bootstrap`: partition →
/// committed offset (-1 where none), or the first error code the coordinator answered.
async fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
) -> anyhow::Result<Result<BTreeMap<i32, i64>, i16>> {
    let call = async {
        let mut stream = TcpStream::connect(bootstrap).await?;
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partition_indexes((0..PARTITIONS).collect()),
            ]));
        let response: OffsetFetchResponse =
            strom_e2e::wire::call(&mut stream, ApiKey::OffsetFetch, 7, &request).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(REQUEST_TIMEOUT, call)
        .await
        .with_context(|| format!("OffsetFetch to {bootstrap} timed out"))??;
    if response.error_code != 0 {
        return Ok(Err(response.error_code));
    }
    let mut offsets = BTreeMap::new();
    for partition in response.topics.iter().flat_map(|t| &t.partitions) {
        if partition.error_code != 0 {
            return Ok(Err(partition.error_code));
        }
        offsets.insert(partition.partition_index, partition.committed_offset);
    }
    Ok(Ok(offsets))
}

/// The group's committed offsets as its current coordinator answers them, once it does.
async fn await_committed(
    cluster: &Cluster,
    what: &str,
    accept: impl Fn(&BTreeMap<i32, i64>) -> bool,
) -> anyhow::Result<(i32, BTreeMap<i32, i64>)> {
    let last = std::sync::Mutex::new(String::new());
    eventually(what, DEADLINE, || async {
        let coordinator = agreed_coordinator(cluster, coordinators::GROUP, GROUP).await?;
        let bootstrap = cluster
            .broker(usize::try_from(coordinator).ok()?)
            .bootstrap();
        let answer = committed_offsets(&bootstrap, GROUP, TOPIC).await;
        let accepted = matches!(&answer, Ok(Ok(offsets)) if accept(offsets));
        if let Ok(mut last) = last.lock() {
            *last = format!("coordinator {coordinator}: {answer:?}");
        }
        match answer {
            Ok(Ok(offsets)) if accepted => Some((coordinator, offsets)),
            _ => None,
        }
    })
    .await
    .with_context(|| {
        format!(
            "last answer: {}",
            last.lock().map(|l| l.clone()).unwrap_or_default()
        )
    })
}

/// Records produced in the background, one every 10 ms with up to 100 unacknowledged, so
/// partitions whose leader lives go on receiving records while another partition fails over.
struct BackgroundProducer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<(i32, i64)>>>,
}

impl BackgroundProducer {
    fn start(producer: FutureProducer) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = Arc::clone(&stop);
            async move {
                let producer = &producer;
                let mut acked = Vec::new();
                let mut in_flight = FuturesUnordered::new();
                let mut pace = tokio::time::interval(Duration::from_millis(10));
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    tokio::select! {
                        _ = pace.tick(), if in_flight.len() < 100 => {
                            let record = format!("during-{n}");
                            in_flight.push(async move {
                                send_acked(producer, TOPIC, &record, &record).await
                            });
                            n += 1;
                        }
                        Some(done) = in_flight.next() => acked.push(done?),
                    }
                }
                while let Some(done) = in_flight.next().await {
                    acked.push(done?);
                }
                Ok(acked)
            }
        });
        Self { stop, task }
    }

    async fn finish(self) -> anyhow::Result<Vec<(i32, i64)>> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.context("the background producer")?
    }
}

/// Per partition, one past the last of `acked`.
fn ends_of(acked: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for (p, o) in acked {
        let end = ends.entry(*p).or_insert(0);
        *end = (*end).max(o + 1);
    }
    ends
}

/// How often each (partition, offset) was received by any of `members`.
fn receipts(members: &[&Shared]) -> HashMap<(i32, i64), usize> {
    let mut counts = HashMap::new();
    for member in members {
        for (p, o, _) in &lock(member).records {
            *counts.entry((*p, *o)).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_follow_the_coordinator_across_a_leader_kill_and_lose_no_commit()
-> anyhow::Result<()> {
    let mut cluster = tokio::task::spawn_blocking(|| {
        Cluster::start(3, 0, |id, options| {
            fast_replication(id, options).with(
                "offsets.topic.num.partitions",
                &OFFSETS_PARTITIONS.to_string(),
            )
        })
    })
    .await??;
    cluster.await_controller(DEADLINE).await?;
    create_replicated_topic(
        &cluster.bootstrap(),
        TOPIC,
        PARTITIONS,
        3,
        &[("min.insync.replicas", "2")],
    )
    .await?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
    let bootstrap = cluster.bootstrap();
    let producer = producer(
        &bootstrap,
        &[("acks", "all"), ("enable.idempotence", "true")],
    )?;
    let mut acked = produce_keyed(&producer, TOPIC, "before", 600).await?;
    let before_end = ends_of(&acked);
    anyhow::ensure!(
        before_end.len() == usize::try_from(PARTITIONS)?,
        "600 keyed records cover every partition: {before_end:?}"
    );

    let mut members = (0..3)
        .map(|_| PythonMember::start(&bootstrap, GROUP, TOPIC, "confluent-kafka"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let observed: Vec<Shared> = members.iter().map(|m| Arc::clone(&m.observed)).collect();
    let shared: Vec<&Shared> = observed.iter().collect();
    let split = tokio::task::block_in_place(|| {
        wait_until("three members sharing six partitions", DEADLINE, || {
            split_evenly(&shared, PARTITIONS)
        })
    })?;
    let background = BackgroundProducer::start(producer.clone());

    // The group has committed at least every record produced before it started.
    let (coordinator, before_kill) =
        await_committed(&cluster, "commits covering the first records", |offsets| {
            before_end
                .iter()
                .all(|(p, end)| offsets.get(p).is_some_and(|c| c >= end))
        })
        .await?;
    await_healthy(&cluster, Some(OFFSETS_TOPIC), DEADLINE).await?;
    let offsets_partition = kafka_partition_for(GROUP, OFFSETS_PARTITIONS);
    let offsets_layout = partitions_in(&cluster, OFFSETS_TOPIC).await?;
    let offsets_state = offsets_layout
        .get(&offsets_partition)
        .with_context(|| format!("{OFFSETS_TOPIC}-{offsets_partition} in {offsets_layout:?}"))?;
    assert_eq!(
        offsets_state.leader, coordinator,
        "the coordinator leads {OFFSETS_TOPIC}-{offsets_partition}: {offsets_state:?}"
    );
    assert_eq!(
        offsets_state.replicas.len(),
        3,
        "{OFFSETS_TOPIC} is replicated on the three brokers: {offsets_state:?}"
    );
    println!(
        "group {GROUP} (split {split:?}) is coordinated by broker {coordinator}, leader of \
         {OFFSETS_TOPIC}-{offsets_partition} {offsets_state:?}; committed before the kill: \
         {before_kill:?}"
    );

    let records_at_kill: Vec<usize> = observed.iter().map(|o| lock(o).records.len()).collect();
    let killed = usize::try_from(coordinator)?;
    cluster.broker_mut(killed).kill9();
    let kill_time = Instant::now();
    let new_coordinator = eventually("a new coordinator", DEADLINE, || async {
        agreed_coordinator(&cluster, coordinators::GROUP, GROUP)
            .await
            .filter(|c| *c != coordinator)
    })
    .await?;
    let moved_after = kill_time.elapsed();
    let consumed_meanwhile: usize = observed
        .iter()
        .zip(&records_at_kill)
        .map(|(o, at_kill)| lock(o).records.len() - at_kill)
        .sum();
    let offsets_leader = partitions_in(&cluster, OFFSETS_TOPIC).await?[&offsets_partition].leader;
    assert_eq!(
        offsets_leader, new_coordinator,
        "the new coordinator leads {OFFSETS_TOPIC}-{offsets_partition}"
    );

    // Nothing committed is lost: the new coordinator answers at least what the old one did.
    let (_, after_kill) =
        await_committed(&cluster, "committed offsets after the failover", |_| true).await?;
    let readable_after = kill_time.elapsed();
    for (p, before) in &before_kill {
        let after = after_kill.get(p).copied().unwrap_or(-1);
        assert!(
            after >= *before,
            "partition {p}: committed {before} before the kill, {after} after it"
        );
    }
    println!(
        "broker {coordinator} killed: broker {new_coordinator} coordinates after {moved_after:.2?} \
         ({consumed_meanwhile} records consumed meanwhile), answers committed offsets after \
         {readable_after:.2?}: {after_kill:?}"
    );

    // A rebalance on the new coordinator: one member dies without a LeaveGroup; once its
    // session expires the other two take its partitions and resume where it had committed.
    let mut victim = members.pop().context("three members")?;
    let victim_partitions = lock(&victim.observed).assignment.clone();
    victim.kill9()?;
    let survivors: Vec<&Shared> = shared[..2].to_vec();
    let survivor_records: Vec<usize> = survivors.iter().map(|o| lock(o).records.len()).collect();
    let (_, victim_committed) =
        await_committed(&cluster, "committed offsets after a member died", |_| true).await?;
    let resplit = tokio::task::block_in_place(|| {
        wait_until("two members sharing six partitions", DEADLINE, || {
            split_evenly(&survivors, PARTITIONS)
        })
    })?;

    // The group goes on: what is produced after the failover is consumed and committed.
    let after = produce_keyed(&producer, TOPIC, "after", 300).await?;
    acked.extend(background.finish().await?);
    acked.extend(after);
    tokio::task::block_in_place(|| {
        wait_until(
            "every produced record consumed by the group",
            DEADLINE,
            || {
                let got = received(&shared);
                acked.iter().all(|r| got.contains(r)).then_some(())
            },
        )
    })?;
    let mut log_end = BTreeMap::new();
    for p in 0..PARTITIONS {
        let (_, high) = tokio::task::block_in_place(|| {
            producer
                .client()
                .fetch_watermarks(TOPIC, p, Duration::from_secs(10))
        })
        .with_context(|| format!("the high watermark of {TOPIC}-{p}"))?;
        log_end.insert(p, high);
    }
    let ends = ends_of(&acked);
    assert!(
        ends.iter().all(|(p, end)| log_end.get(p) == Some(end)),
        "the logs hold exactly what was acknowledged: log end {log_end:?}, acknowledged up to \
         {ends:?}"
    );
    let got = received(&shared);
    let missing: Vec<(i32, i64)> = log_end
        .iter()
        .flat_map(|(p, end)| (0..*end).map(move |o| (*p, o)))
        .filter(|r| !got.contains(r))
        .collect();
    assert!(missing.is_empty(), "records never consumed: {missing:?}");
    let (final_coordinator, final_committed) = await_committed(
        &cluster,
        "committed offsets at the log end offsets",
        |offsets| *offsets == log_end,
    )
    .await?;

    // At least once: records consumed twice after the failover start at a committed offset.
    let counts = receipts(&shared);
    let twice = counts.values().filter(|n| **n > 1).count();
    let mut redelivered: BTreeMap<i32, i64> = BTreeMap::new();
    for (o, at_kill) in observed.iter().zip(&records_at_kill) {
        for (p, offset, _) in &lock(o).records[*at_kill..] {
            if counts[&(*p, *offset)] > 1 {
                let first = redelivered.entry(*p).or_insert(*offset);
                *first = (*first).min(*offset);
            }
        }
    }
    for (p, first) in &redelivered {
        assert!(
            *first >= before_kill[p],
            "partition {p} was consumed again from offset {first}, before its committed \
             offset {} at the kill",
            before_kill[p]
        );
    }
    // The partitions of the dead member resumed at (or after) what it had committed, and not
    // past what it had received.
    let victim_last: BTreeMap<i32, i64> =
        lock(&victim.observed)
            .records
            .iter()
            .fold(BTreeMap::new(), |mut last, (p, o, _)| {
                let l = last.entry(*p).or_insert(-1);
                *l = (*l).max(*o);
                last
            });
    let mut resumed_at = BTreeMap::new();
    for (o, from) in survivors.iter().zip(&survivor_records) {
        for (p, offset, _) in &lock(o).records[*from..] {
            if victim_partitions.contains(p) {
                let first = resumed_at.entry(*p).or_insert(*offset);
                *first = (*first).min(*offset);
            }
        }
    }
    for p in &victim_partitions {
        let committed = victim_committed[p];
        let first = resumed_at.get(p).copied();
        let last = victim_last.get(p).copied().unwrap_or(-1);
        assert!(
            first.is_some_and(|f| f >= committed && f <= last + 1),
            "partition {p} of the dead member: committed {committed}, it had received up to \
             {last}, the new owner started at {first:?}"
        );
    }
    println!(
        "member killed with {victim_partitions:?} (committed {victim_committed:?}, received up to \
         {victim_last:?}); the others ({resplit:?}) resumed them at {resumed_at:?}"
    );
    anyhow::ensure!(victim.exited()?.is_some(), "the killed member is gone");
    for (i, member) in members.iter_mut().enumerate() {
        assert_eq!(member.exited()?, None, "member {i} still runs");
        let seen = lock(&member.observed);
        assert!(
            seen.fatal_errors.is_empty(),
            "member {i}: fatal errors {:?}",
            seen.fatal_errors
        );
        println!(
            "member {i}: {} records, {} retriable errors, {} failed commits",
            seen.records.len(),
            seen.errors.len(),
            seen.failed_commits.len()
        );
    }
    println!(
        "{} records produced, all consumed; {twice} consumed more than once (first redelivered \
         offset per partition after the kill: {redelivered:?}); committed at broker \
         {final_coordinator}: {final_committed:?}",
        acked.len()
    );

    for member in &mut members {
        member.terminate()?;
    }
    tokio::task::block_in_place(|| cluster.broker_mut(killed).restart())?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
    Ok(())
}
