//! Consumer groups with unmodified clients: members of one group split a topic's partitions,
//! partitions of a member that leaves or dies move to the others, nothing is lost, committed
//! offsets are where a restarted consumer resumes (also across broker restarts and kill -9), and
//! cooperative-sticky rebalances never revoke a partition that stays.
//!
//! Members are librdkafka consumers (the `rdkafka` crate) polled on their own threads, plus
//! Python processes on confluent-kafka or kafka-python ([`strom_e2e::group_members`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use strom_e2e::group_members::{
    Partitions, PythonMember, SESSION_TIMEOUT_MS, Shared, lock, received, split_evenly,
};
use strom_e2e::kafka::{create_topic, produce_keyed, producer};
use strom_e2e::{BrokerOptions, BrokerProcess, wait_until};

/// Long enough for any rebalance here on a loaded machine; never a measure of speed.
const DEADLINE: Duration = Duration::from_secs(90);

fn partitions_of(tpl: &TopicPartitionList) -> Partitions {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

/// Records every rebalance callback of a librdkafka consumer.
struct RecordingContext {
    observed: Shared,
}

impl ClientContext for RecordingContext {}

impl ConsumerContext for RecordingContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            lock(&self.observed).revoked.push(partitions_of(tpl));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut observed = lock(&self.observed);
        match rebalance {
            Rebalance::Assign(tpl) => observed.assigned.push(partitions_of(tpl)),
            Rebalance::Revoke(_) => {}
            Rebalance::Error(error) => observed.errors.push(error.to_string()),
        }
        // After the callback librdkafka has applied the (incremental or eager) change.
        if let Ok(current) = consumer.assignment() {
            observed.assignment = partitions_of(&current);
        }
    }
}

fn consumer_config(bootstrap: &str, group: &str, settings: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
        .set("heartbeat.interval.ms", "1000")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        .set("fetch.wait.max.ms", "100")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("log_level", "4");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config
}

/// A librdkafka group member polled on its own thread until closed (close = LeaveGroup).
struct RustMember {
    observed: Shared,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl RustMember {
    fn start(
        bootstrap: &str,
        group: &str,
        topic: &str,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let observed = Shared::default();
        let context = RecordingContext {
            observed: Arc::clone(&observed),
        };
        let consumer: BaseConsumer<RecordingContext> = consumer_config(bootstrap, group, settings)
            .create_with_context(context)
            .context("creating a group consumer")?;
        consumer.subscribe(&[topic]).context("subscribing")?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (observed, stop) = (Arc::clone(&observed), Arc::clone(&stop));
            move || -> anyhow::Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    match consumer.poll(Duration::from_millis(100)) {
                        Some(Ok(message)) => {
                            let value =
                                String::from_utf8_lossy(message.payload().unwrap_or_default())
                                    .into_owned();
                            lock(&observed).records.push((
                                message.partition(),
                                message.offset(),
                                value,
                            ));
                        }
                        Some(Err(error)) => lock(&observed).errors.push(error.to_string()),
                        None => {}
                    }
                }
                // Dropping the consumer closes it: librdkafka sends LeaveGroup.
                drop(consumer);
                Ok(())
            }
        });
        Ok(Self {
            observed,
            stop,
            thread: Some(thread),
        })
    }

    fn close(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("consumer thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for RustMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn wait_all_received(
    what: &str,
    members: &[&Shared],
    expected: &[(i32, i64)],
) -> anyhow::Result<()> {
    wait_until(what, DEADLINE, || {
        let got = received(members);
        expected.iter().all(|r| got.contains(r)).then_some(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_split_partitions_and_take_over_from_leavers_and_the_dead() -> anyhow::Result<()> {
    const TOPIC: &str = "groups-six";
    const GROUP: &str = "six-way";
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 6, &[]).await?;
    let producer = producer(&bootstrap, &[("acks", "all")])?;
    let mut expected = produce_keyed(&producer, TOPIC, "first", 600).await?;

    let a = RustMember::start(&bootstrap, GROUP, TOPIC, &[("client.id", "rust-a")])?;
    let b = RustMember::start(&bootstrap, GROUP, TOPIC, &[("client.id", "rust-b")])?;
    let mut python = PythonMember::start(&bootstrap, GROUP, TOPIC, "confluent-kafka")?;

    // Three members, six partitions: disjoint sets covering all six, two each (range).
    let split = wait_until("three members sharing six partitions", DEADLINE, || {
        split_evenly(&[&a.observed, &b.observed, &python.observed], 6)
    })?;
    assert!(
        split.iter().all(|s| s.len() == 2),
        "range assigns 2 partitions each: {split:?}"
    );
    wait_all_received(
        "every record by the three members",
        &[&a.observed, &b.observed, &python.observed],
        &expected,
    )?;

    // The Python member dies without LeaveGroup: its partitions move once its session expires.
    python.kill9()?;
    wait_until(
        "two members taking over the dead member's partitions",
        DEADLINE,
        || split_evenly(&[&a.observed, &b.observed], 6),
    )?;
    let more = produce_keyed(&producer, TOPIC, "after-crash", 300).await?;
    wait_all_received(
        "records produced after the crash",
        &[&a.observed, &b.observed],
        &more,
    )?;
    expected.extend(more);

    // b leaves cleanly: a gets everything.
    let b_observed = Arc::clone(&b.observed);
    b.close()?;
    wait_until(
        "the last member owning all six partitions",
        DEADLINE,
        || split_evenly(&[&a.observed], 6),
    )?;
    let last = produce_keyed(&producer, TOPIC, "after-leave", 300).await?;
    wait_all_received("records produced after the leave", &[&a.observed], &last)?;
    expected.extend(last);

    // Nothing produced was missed by the group as a whole.
    let everyone = [&a.observed, &b_observed, &python.observed];
    let got = received(&everyone);
    let missing: Vec<_> = expected.iter().filter(|r| !got.contains(r)).collect();
    assert!(missing.is_empty(), "records never consumed: {missing:?}");
    let errors = lock(&a.observed).errors.clone();
    assert!(errors.is_empty(), "consumer errors: {errors:?}");
    a.close()?;
    Ok(())
}

/// Consumes with a plain (manually committing) member until it has the records at `until`
/// (partition → log end offset); returns (partition → offsets in order).
fn consume_until(
    consumer: &BaseConsumer,
    until: &BTreeMap<i32, i64>,
    start: &BTreeMap<i32, i64>,
) -> anyhow::Result<BTreeMap<i32, Vec<i64>>> {
    let mut got: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut failure = None;
    wait_until("consuming up to the log end", DEADLINE, || {
        // Drain what is buffered before checking.
        while let Some(result) = consumer.poll(Duration::from_millis(50)) {
            match result {
                Ok(message) => got
                    .entry(message.partition())
                    .or_default()
                    .push(message.offset()),
                Err(error) => {
                    failure = Some(error.to_string());
                    return Some(());
                }
            }
        }
        until
            .iter()
            .all(|(p, end)| {
                let first = start.get(p).copied().unwrap_or(0);
                *end <= first
                    || got
                        .get(p)
                        .and_then(|o| o.last())
                        .is_some_and(|last| *last + 1 >= *end)
            })
            .then_some(())
    })?;
    if let Some(error) = failure {
        anyhow::bail!("consumer error: {error}");
    }
    Ok(got)
}

fn manual_consumer(bootstrap: &str, group: &str, topic: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer =
        consumer_config(bootstrap, group, &[("enable.auto.commit", "false")])
            .create()
            .context("creating a consumer")?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Commits `positions` (partition → next offset) with a metadata string per partition.
fn commit(
    consumer: &BaseConsumer,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
) -> anyhow::Result<()> {
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in positions {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*offset))?;
        if let Some(mut element) = tpl.find_partition(topic, *p) {
            element.set_metadata(format!("checkpoint-{p}-{offset}"));
        }
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .context("committing offsets")
}

/// A new member of `group` resumes exactly at `committed`: per partition it receives
/// committed..end in order, nothing before, nothing twice. Returns its consumer.
fn assert_resumes(
    bootstrap: &str,
    group: &str,
    topic: &str,
    committed: &BTreeMap<i32, i64>,
    end: &BTreeMap<i32, i64>,
) -> anyhow::Result<BaseConsumer> {
    let consumer = manual_consumer(bootstrap, group, topic)?;
    let got = consume_until(&consumer, end, committed)?;
    for (p, end) in end {
        let start = committed.get(p).copied().unwrap_or(0);
        let expected: Vec<i64> = (start..*end).collect();
        assert_eq!(
            got.get(p).cloned().unwrap_or_default(),
            expected,
            "partition {p} resumed at {start}"
        );
    }
    // The committed metadata strings come back as committed.
    let mut tpl = TopicPartitionList::new();
    for p in committed.keys() {
        tpl.add_partition(topic, *p);
    }
    let fetched = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    for element in fetched.elements() {
        let offset = committed[&element.partition()];
        assert_eq!(element.offset(), Offset::Offset(offset));
        assert_eq!(
            element.metadata(),
            format!("checkpoint-{}-{offset}", element.partition())
        );
    }
    Ok(consumer)
}

fn log_end(
    acked: &[(i32, i64)],
    partitions: i32,
    previous: &BTreeMap<i32, i64>,
) -> BTreeMap<i32, i64> {
    (0..partitions)
        .map(|p| {
            let end = acked
                .iter()
                .filter(|(q, _)| *q == p)
                .map(|(_, o)| o + 1)
                .max();
            (
                p,
                end.unwrap_or_else(|| previous.get(&p).copied().unwrap_or(0)),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_consumer_resumes_at_committed_offsets_across_broker_restarts()
-> anyhow::Result<()> {
    const TOPIC: &str = "resume";
    const GROUP: &str = "resumer";
    const PARTITIONS: i32 = 3;
    let mut broker = BrokerProcess::start(BrokerOptions::default())?;
    create_topic(&broker.bootstrap(), TOPIC, PARTITIONS, &[]).await?;
    let acked = produce_keyed(
        &producer(&broker.bootstrap(), &[("acks", "all")])?,
        TOPIC,
        "a",
        300,
    )
    .await?;
    let end = log_end(&acked, PARTITIONS, &BTreeMap::new());

    // The first consumer reads part of the topic and commits exactly what it read.
    let first = manual_consumer(&broker.bootstrap(), GROUP, TOPIC)?;
    let mut read: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    wait_until("reading 150 records", DEADLINE, || {
        while count < 150 {
            let Some(result) = first.poll(Duration::from_millis(50)) else {
                break;
            };
            let message = result.expect("no consumer error");
            read.insert(message.partition(), message.offset() + 1);
            count += 1;
        }
        (count >= 150).then_some(())
    })?;
    commit(&first, TOPIC, &read)?;
    drop(first);

    // A new member resumes at the committed offsets and reads the rest exactly once.
    let second = assert_resumes(&broker.bootstrap(), GROUP, TOPIC, &read, &end)?;
    commit(&second, TOPIC, &end)?;
    drop(second);

    // Clean broker restart: offsets are loaded back from __consumer_offsets.
    broker.restart()?;
    let acked = produce_keyed(
        &producer(&broker.bootstrap(), &[("acks", "all")])?,
        TOPIC,
        "b",
        60,
    )
    .await?;
    let end2 = log_end(&acked, PARTITIONS, &end);
    let third = assert_resumes(&broker.bootstrap(), GROUP, TOPIC, &end, &end2)?;
    commit(&third, TOPIC, &end2)?;
    drop(third);

    // Crash: kill -9 and start again.
    broker.kill9();
    broker.restart()?;
    let acked = produce_keyed(
        &producer(&broker.bootstrap(), &[("acks", "all")])?,
        TOPIC,
        "c",
        30,
    )
    .await?;
    let end3 = log_end(&acked, PARTITIONS, &end2);
    drop(assert_resumes(
        &broker.bootstrap(),
        GROUP,
        TOPIC,
        &end2,
        &end3,
    )?);
    broker.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_moves_only_the_partitions_that_change_owner() -> anyhow::Result<()> {
    const TOPIC: &str = "sticky";
    const GROUP: &str = "cooperative";
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 6, &[]).await?;
    let producer = producer(&bootstrap, &[("acks", "all")])?;
    let sticky = [("partition.assignment.strategy", "cooperative-sticky")];

    let a = RustMember::start(&bootstrap, GROUP, TOPIC, &sticky)?;
    wait_until("the first member owning all six", DEADLINE, || {
        split_evenly(&[&a.observed], 6)
    })?;
    let first = produce_keyed(&producer, TOPIC, "one", 120).await?;
    wait_all_received("records before the second member", &[&a.observed], &first)?;

    let b = RustMember::start(&bootstrap, GROUP, TOPIC, &sticky)?;
    let split = wait_until("two members with three partitions each", DEADLINE, || {
        split_evenly(&[&a.observed, &b.observed], 6).filter(|s| s.iter().all(|p| p.len() == 3))
    })?;
    let (kept, moved) = (split[0].clone(), split[1].clone());
    {
        let observed = lock(&a.observed);
        let revoked: Partitions = observed.revoked.iter().flatten().copied().collect();
        assert_eq!(revoked, moved, "a gave up exactly the partitions b took");
        assert!(
            observed.revoked.iter().all(|r| r.is_disjoint(&kept)),
            "kept partitions were never revoked: {:?}",
            observed.revoked
        );
        assert!(observed.errors.is_empty(), "errors: {:?}", observed.errors);
    }
    let second = produce_keyed(&producer, TOPIC, "two", 120).await?;
    wait_all_received(
        "records with two members",
        &[&a.observed, &b.observed],
        &second,
    )?;

    // b leaves: a is given b's partitions incrementally, revoking nothing of its own.
    let revocations_before = lock(&a.observed).revoked.len();
    b.close()?;
    wait_until(
        "the remaining member owning all six again",
        DEADLINE,
        || split_evenly(&[&a.observed], 6),
    )?;
    {
        let observed = lock(&a.observed);
        let later: Vec<&Partitions> = observed.revoked[revocations_before..]
            .iter()
            .filter(|r| !r.is_empty())
            .collect();
        assert!(
            later.is_empty(),
            "a member that only gains partitions revokes none: {later:?}"
        );
        assert!(
            observed.assigned.contains(&moved),
            "b's partitions came back as one increment: {:?}",
            observed.assigned
        );
    }
    let third = produce_keyed(&producer, TOPIC, "three", 120).await?;
    wait_all_received("records after the leave", &[&a.observed], &third)?;
    a.close()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_and_librdkafka_members_share_a_group() -> anyhow::Result<()> {
    const TOPIC: &str = "mixed-clients";
    const GROUP: &str = "mixed";
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, TOPIC, 4, &[]).await?;
    let producer = producer(&bootstrap, &[("acks", "all")])?;
    let first = produce_keyed(&producer, TOPIC, "first", 200).await?;

    let rust = RustMember::start(&bootstrap, GROUP, TOPIC, &[("client.id", "rust-mixed")])?;
    let mut python = PythonMember::start(&bootstrap, GROUP, TOPIC, "kafka-python")?;
    let split = wait_until(
        "librdkafka and kafka-python sharing four partitions",
        DEADLINE,
        || split_evenly(&[&rust.observed, &python.observed], 4),
    )?;
    assert!(
        split.iter().all(|s| s.len() == 2),
        "range assigns 2 each: {split:?}"
    );
    wait_all_received(
        "every record by the two clients",
        &[&rust.observed, &python.observed],
        &first,
    )?;

    // kafka-python leaves cleanly: librdkafka takes over its partitions.
    python.terminate()?;
    wait_until("librdkafka owning all four", DEADLINE, || {
        split_evenly(&[&rust.observed], 4)
    })?;
    let more = produce_keyed(&producer, TOPIC, "after-leave", 100).await?;
    wait_all_received("records after kafka-python left", &[&rust.observed], &more)?;
    let errors = lock(&python.observed).errors.clone();
    assert!(errors.is_empty(), "kafka-python errors: {errors:?}");
    rust.close()?;
    Ok(())
}
