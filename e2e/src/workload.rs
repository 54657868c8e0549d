//! A continuous, verified workload: what a Kafka user relies on, measured while faults happen.
//!
//! A producer task (rdkafka `FutureProducer`, idempotent, `acks=all` unless told otherwise)
//! writes records to every partition of a topic at a steady rate. Each payload names the
//! partition it was sent to and a per-partition sequence number, and the producer keeps every
//! acknowledgement (partition, offset, sequence, when). A consumer thread, assigned every
//! partition from the log start, reads everything while it runs. [`Workload::finish`] stops
//! producing, lets that consumer catch up, reads the whole topic once more with a fresh consumer
//! and hands it all to [`check`] and [`vanished`], which say what was lost, duplicated,
//! reordered, or seen by a consumer and later gone. The checkers are pure functions, tested on
//! synthetic data below.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::kafka::base_config;

/// How many examples of each kind of failure a report keeps.
const EXAMPLES: usize = 5;

/// What the workload writes and how.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    pub topic: String,
    pub partitions: i32,
    /// Records per second over all partitions.
    pub rate: u32,
    /// Records sent but not yet acknowledged, at most.
    pub max_in_flight: usize,
    /// Payload size; at least the bytes that encode partition and sequence.
    pub payload_bytes: usize,
    /// Producer settings over the defaults (`acks=all`, `enable.idempotence=true`,
    /// `message.timeout.ms=60000`, `linger.ms=5`).
    pub producer_settings: Vec<(String, String)>,
}

impl WorkloadConfig {
    /// 1000 records/s of 100 bytes over `partitions` partitions of `topic`.
    pub fn new(topic: &str, partitions: i32) -> WorkloadConfig {
        WorkloadConfig {
            topic: topic.to_owned(),
            partitions,
            rate: 1000,
            max_in_flight: 1000,
            payload_bytes: 100,
            producer_settings: Vec::new(),
        }
    }

    /// Adds a producer setting (e.g. `acks`, `message.timeout.ms`).
    pub fn with(mut self, key: &str, value: &str) -> WorkloadConfig {
        self.producer_settings
            .push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn rate(mut self, records_per_second: u32) -> WorkloadConfig {
        self.rate = records_per_second;
        self
    }
}

/// A record the producer had acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub partition: i32,
    pub offset: i64,
    pub sequence: u64,
    /// Since the workload started.
    pub at: Duration,
}

/// A record whose delivery failed (it may or may not be in the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub partition: i32,
    pub sequence: u64,
    pub error: String,
}

/// A record the consumer read; `payload` is `None` when it is not one of the workload's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub payload: Option<(i32, u64)>,
}

/// The payload of record `sequence` of `partition`, padded to `size` bytes.
pub fn encode_payload(partition: i32, sequence: u64, size: usize) -> Vec<u8> {
    let mut payload = format!("strom-workload p={partition} s={sequence} ").into_bytes();
    if payload.len() < size {
        payload.resize(size, b'.');
    }
    payload
}

/// The (partition, sequence) a workload payload encodes.
pub fn decode_payload(payload: &[u8]) -> Option<(i32, u64)> {
    let text = std::str::from_utf8(payload).ok()?;
    let rest = text.strip_prefix("strom-workload p=")?;
    let (partition, rest) = rest.split_once(" s=")?;
    let (sequence, _) = rest.split_once(' ')?;
    Some((partition.parse().ok()?, sequence.parse().ok()?))
}

/// Error counts by kind (the librdkafka error code's name where there is one).
pub type ErrorCounts = BTreeMap<String, u64>;

fn error_kind(error: &KafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => error.to_string(),
    }
}

/// Counts the errors librdkafka reports outside any one delivery (broker connections lost,
/// all brokers down, fatal idempotence errors).
#[derive(Clone, Default)]
struct ErrorRecorder {
    errors: Arc<Mutex<ErrorCounts>>,
}

impl ClientContext for ErrorRecorder {
    fn error(&self, error: KafkaError, _reason: &str) {
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(error_kind(&error)).or_default() += 1;
        }
    }

    fn log(&self, _level: RDKafkaLogLevel, _fac: &str, _message: &str) {}
}

impl ErrorRecorder {
    fn snapshot(&self) -> ErrorCounts {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

/// A live view of the workload's progress, for tests that wait for writes between faults.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    acknowledged: Arc<AtomicU64>,
}

impl Progress {
    /// Records acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Waits until at least `more` records beyond `since` are acknowledged.
    pub async fn wait_for(&self, since: u64, more: u64, deadline: Duration) -> anyhow::Result<()> {
        crate::cluster::eventually(
            &format!("{more} more acknowledged records (after {since})"),
            deadline,
            || async { (self.acknowledged() >= since + more).then_some(()) },
        )
        .await
    }
}

#[derive(Debug, Default)]
struct ProducerLog {
    sent: u64,
    acked: Vec<Acked>,
    failed: Vec<Failed>,
    /// Sends librdkafka refused before queueing (other than a full queue), by kind.
    send_errors: ErrorCounts,
    /// When the producer stopped sending, since the start.
    stopped_at: Duration,
}

#[derive(Debug, Default)]
struct ConsumerLog {
    consumed: Vec<Consumed>,
    errors: ErrorCounts,
    drain_complete: bool,
}

/// A running workload; [`Workload::finish`] ends it and says what happened.
pub struct Workload {
    config: WorkloadConfig,
    stop: watch::Sender<bool>,
    producer: tokio::task::JoinHandle<ProducerLog>,
    client_errors: ErrorRecorder,
    drain: Arc<Mutex<Option<Drain>>>,
    consumer: std::thread::JoinHandle<ConsumerLog>,
    progress: Progress,
    started: Instant,
}

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workload")
            .field("config", &self.config)
            .field("acknowledged", &self.progress.acknowledged())
            .finish_non_exhaustive()
    }
}

/// What the consumer must read before it stops, and until when it may try.
#[derive(Debug, Clone)]
struct Drain {
    targets: BTreeMap<i32, i64>,
    until: Instant,
}

impl Workload {
    /// Starts producing to and consuming from `config.topic` (which must exist) through
    /// `bootstrap`. Call from within a tokio runtime.
    pub fn start(bootstrap: &str, config: WorkloadConfig) -> anyhow::Result<Workload> {
        anyhow::ensure!(config.partitions > 0, "a workload needs partitions");
        let client_errors = ErrorRecorder::default();
        let mut producer_config = base_config(bootstrap);
        producer_config
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "60000")
            .set("linger.ms", "5");
        for (key, value) in &config.producer_settings {
            producer_config.set(key, value);
        }
        let producer: FutureProducer<ErrorRecorder> = producer_config
            .create_with_context(client_errors.clone())
            .context("creating the workload producer")?;

        let consumer = assigned_consumer(bootstrap, &config.topic, config.partitions)?;
        let started = Instant::now();
        let progress = Progress::default();
        let (stop, stopped) = watch::channel(false);
        let producer = tokio::spawn(produce(
            producer,
            config.clone(),
            stopped,
            progress.clone(),
            started,
        ));
        let drain = Arc::new(Mutex::new(None));
        let consumer = {
            let drain = drain.clone();
            std::thread::Builder::new()
                .name("workload-consumer".to_owned())
                .spawn(move || consume(&consumer, &drain))
                .context("starting the consumer thread")?
        };
        Ok(Workload {
            config,
            stop,
            producer,
            client_errors,
            drain,
            consumer,
            progress,
            started,
        })
    }

    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// Stops producing and waits for every outstanding delivery (bounded by the producer's
    /// `message.timeout.ms`); lets the live consumer read up to the last acknowledged offset of
    /// every partition for at most `drain_deadline`; then reads the whole topic again from the
    /// log start through `bootstrap` (the cluster as it is now: restarted brokers listen on new
    /// ports) and checks that final read against the acknowledgements, and the live read
    /// against the final one (records a consumer saw must not vanish or change later).
    pub async fn finish(self, bootstrap: &str, drain_deadline: Duration) -> anyhow::Result<Report> {
        let _ = self.stop.send(true);
        let produced = self.producer.await.context("the producer task")?;
        let mut targets = BTreeMap::new();
        for acked in &produced.acked {
            let target = targets.entry(acked.partition).or_insert(acked.offset);
            *target = (*target).max(acked.offset);
        }
        let drain = Drain {
            targets,
            until: Instant::now() + drain_deadline,
        };
        if let Ok(mut live) = self.drain.lock() {
            *live = Some(drain.clone());
        }
        let consumer = self.consumer;
        let live = tokio::task::spawn_blocking(move || consumer.join())
            .await
            .context("joining the consumer thread")?
            .map_err(|_| anyhow::anyhow!("the consumer thread panicked"))?;
        let reader = assigned_consumer(bootstrap, &self.config.topic, self.config.partitions)?;
        let topic = self.config.topic.clone();
        let partitions = self.config.partitions;
        let until = Instant::now() + drain_deadline;
        let (high_watermarks, consumed) = tokio::task::spawn_blocking(move || {
            // A partition without watermarks (no leader) is not read: the final read is then
            // incomplete and its acknowledged records count as lost.
            let high_watermarks = high_watermarks(&reader, &topic, partitions, until);
            let targets = high_watermarks
                .iter()
                .filter(|(_, (low, high))| high > low)
                .map(|(p, (_, high))| (*p, high - 1))
                .collect();
            let drain = Mutex::new(Some(Drain { targets, until }));
            let mut consumed = consume(&reader, &drain);
            consumed.drain_complete &= i32::try_from(high_watermarks.len()) == Ok(partitions);
            (high_watermarks, consumed)
        })
        .await
        .context("the final read")?;
        let mut verdict = check(&produced.acked, &produced.failed, &consumed.consumed);
        verdict.vanished = vanished(&live.consumed, &consumed.consumed, consumed.drain_complete);
        // The final read reads up to the high watermarks; reaching them is not enough when the
        // log is shorter than what was acknowledged (that shows as lost records).
        let reached_acknowledged = drain.targets.iter().all(|(p, target)| {
            high_watermarks
                .get(p)
                .is_some_and(|(_, high)| high > target)
        });
        let (longest_stall, longest_stall_at) = longest_gap(&produced.acked, produced.stopped_at);
        let mut delivery_errors = ErrorCounts::new();
        for failed in &produced.failed {
            *delivery_errors.entry(failed.error.clone()).or_default() += 1;
        }
        Ok(Report {
            topic: self.config.topic,
            partitions: self.config.partitions,
            duration: self.started.elapsed(),
            produced_for: produced.stopped_at,
            sent: produced.sent,
            acknowledged: produced.acked.len() as u64,
            failed: produced.failed.len() as u64,
            consumed: consumed.consumed.len() as u64,
            drain_complete: consumed.drain_complete && reached_acknowledged,
            high_watermarks: high_watermarks
                .into_iter()
                .map(|(p, (_, high))| (p, high))
                .collect(),
            live_consumed: live.consumed.len() as u64,
            live_drain_complete: live.drain_complete,
            verdict,
            longest_stall,
            longest_stall_at,
            delivery_errors,
            send_errors: produced.send_errors,
            client_errors: self.client_errors.snapshot(),
            consumer_errors: live.errors,
            final_read_errors: consumed.errors,
        })
    }
}

/// A consumer without a group that reads every partition of `topic` from the log start.
fn assigned_consumer(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<BaseConsumer> {
    let mut config = base_config(bootstrap);
    config
        .set("group.id", format!("strom-workload-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A fetch position past the log end is a broker fault to report, never to skip.
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = config.create().context("creating a workload consumer")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer
        .assign(&assignment)
        .context("assigning partitions")?;
    Ok(consumer)
}

async fn produce(
    producer: FutureProducer<ErrorRecorder>,
    config: WorkloadConfig,
    mut stop: watch::Receiver<bool>,
    progress: Progress,
    started: Instant,
) -> ProducerLog {
    let mut log = ProducerLog::default();
    let partitions = usize::try_from(config.partitions).unwrap_or(1);
    let mut sequences = vec![0u64; partitions];
    let mut next = 0usize;
    let mut in_flight = FuturesUnordered::new();
    // Send credit accrues at `rate` and is capped at one window, so that after a stall the
    // producer catches up by at most `max_in_flight` records instead of bursting unboundedly.
    let mut credit = 0f64;
    let mut last_tick = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some((partition, sequence, result)) = in_flight.next(), if !in_flight.is_empty() => {
                record_delivery(&mut log, &progress, started, partition, sequence, result);
            }
            _ = tick.tick() => {
                let now = Instant::now();
                credit = (credit + now.duration_since(last_tick).as_secs_f64() * f64::from(config.rate))
                    .min(config.max_in_flight as f64);
                last_tick = now;
                while credit >= 1.0 && in_flight.len() < config.max_in_flight {
                    let partition = i32::try_from(next).unwrap_or(0);
                    let sequence = sequences[next];
                    let payload = encode_payload(partition, sequence, config.payload_bytes);
                    let record = FutureRecord::<(), [u8]>::to(&config.topic)
                        .partition(partition)
                        .payload(&payload);
                    match producer.send_result(record) {
                        Ok(delivery) => {
                            in_flight.push(async move { (partition, sequence, delivery.await) });
                            sequences[next] += 1;
                            next = (next + 1) % partitions;
                            log.sent += 1;
                            credit -= 1.0;
                        }
                        Err((error, _)) => {
                            // A full local queue is back-pressure, not a fault: send later.
                            if !matches!(
                                error.rdkafka_error_code(),
                                Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                            ) {
                                *log.send_errors.entry(error_kind(&error)).or_default() += 1;
                            }
                            break;
                        }
                    }
                }
            }
        }
    }
    log.stopped_at = started.elapsed();
    while let Some((partition, sequence, result)) = in_flight.next().await {
        record_delivery(&mut log, &progress, started, partition, sequence, result);
    }
    log
}

fn record_delivery(
    log: &mut ProducerLog,
    progress: &Progress,
    started: Instant,
    partition: i32,
    sequence: u64,
    result: Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
) {
    match result {
        Ok(Ok(delivery)) => {
            log.acked.push(Acked {
                partition: delivery.partition,
                offset: delivery.offset,
                sequence,
                at: started.elapsed(),
            });
            progress.acknowledged.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Err((error, _))) => log.failed.push(Failed {
            partition,
            sequence,
            error: error_kind(&error),
        }),
        Err(_) => log.failed.push(Failed {
            partition,
            sequence,
            error: "delivery future dropped".to_owned(),
        }),
    }
}

fn consume(consumer: &BaseConsumer, drain: &Mutex<Option<Drain>>) -> ConsumerLog {
    let mut log = ConsumerLog::default();
    // Next offset to read per partition.
    let mut positions: HashMap<i32, i64> = HashMap::new();
    loop {
        let plan = drain.lock().ok().and_then(|d| d.clone());
        if let Some(plan) = &plan {
            let done = plan
                .targets
                .iter()
                .all(|(p, target)| positions.get(p).is_some_and(|next| next > target));
            if done {
                log.drain_complete = true;
                break;
            }
            if Instant::now() >= plan.until {
                break;
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let partition = message.partition();
                let offset = message.offset();
                let next = positions.entry(partition).or_insert(0);
                *next = (*next).max(offset + 1);
                log.consumed.push(Consumed {
                    partition,
                    offset,
                    payload: message.payload().and_then(decode_payload),
                });
            }
            Some(Err(error)) => *log.errors.entry(error_kind(&error)).or_default() += 1,
            None => {}
        }
    }
    log
}

/// What the consumed log says about the acknowledged records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Acknowledged, never consumed.
    pub lost: u64,
    /// Extra copies: a sequence found at more than one offset.
    pub duplicated: u64,
    /// Places where a partition's sequence went backwards in offset order.
    pub out_of_order: u64,
    /// Acknowledged at one offset, found at another.
    pub offset_mismatches: u64,
    /// One offset read twice with different contents (a consumer saw data that later vanished).
    pub conflicting_offsets: u64,
    /// Records the live consumer read that the final read found changed or missing: a consumer
    /// saw data past the high watermark that was later truncated.
    pub vanished: u64,
    /// Records found in a partition other than the one they were sent to.
    pub misplaced: u64,
    /// Records that are not the workload's.
    pub foreign: u64,
    /// Failed deliveries whose record is in the log anyway (allowed: the outcome was unknown).
    pub failed_but_written: u64,
    /// A few (partition, sequence, acknowledged offset) of lost records.
    pub lost_examples: Vec<(i32, u64, i64)>,
    /// A few (partition, sequence, offsets) of duplicated records.
    pub duplicate_examples: Vec<(i32, u64, Vec<i64>)>,
}

impl Verdict {
    /// Nothing acknowledged was lost, moved, duplicated or reordered.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.offset_mismatches == 0
            && self.conflicting_offsets == 0
            && self.vanished == 0
            && self.misplaced == 0
    }
}

/// Compares what the producer had acknowledged with what the consumer read.
pub fn check(acked: &[Acked], failed: &[Failed], consumed: &[Consumed]) -> Verdict {
    let mut verdict = Verdict::default();
    // Contents per (partition, offset), as first read.
    let mut at_offset: HashMap<(i32, i64), Option<(i32, u64)>> = HashMap::new();
    for record in consumed {
        match at_offset.get(&(record.partition, record.offset)) {
            Some(previous) if *previous != record.payload => verdict.conflicting_offsets += 1,
            Some(_) => {}
            None => {
                at_offset.insert((record.partition, record.offset), record.payload);
            }
        }
    }
    // Offsets per (partition sent to, sequence).
    let mut offsets: HashMap<(i32, u64), BTreeSet<i64>> = HashMap::new();
    // Sequences per consumed partition, in offset order.
    let mut logs: BTreeMap<i32, BTreeMap<i64, u64>> = BTreeMap::new();
    for ((partition, offset), payload) in &at_offset {
        match payload {
            None => verdict.foreign += 1,
            Some((sent_to, sequence)) => {
                if sent_to != partition {
                    verdict.misplaced += 1;
                }
                offsets
                    .entry((*sent_to, *sequence))
                    .or_default()
                    .insert(*offset);
                logs.entry(*partition)
                    .or_default()
                    .insert(*offset, *sequence);
            }
        }
    }
    let mut duplicates: Vec<_> = offsets
        .iter()
        .filter(|(_, found)| found.len() > 1)
        .collect();
    duplicates.sort();
    for ((partition, sequence), found) in duplicates {
        verdict.duplicated += found.len() as u64 - 1;
        if verdict.duplicate_examples.len() < EXAMPLES {
            verdict.duplicate_examples.push((
                *partition,
                *sequence,
                found.iter().copied().collect(),
            ));
        }
    }
    for log in logs.values() {
        let mut last: Option<u64> = None;
        for sequence in log.values() {
            if last.is_some_and(|last| *sequence < last) {
                verdict.out_of_order += 1;
            }
            last = Some(*sequence);
        }
    }
    for record in acked {
        match offsets.get(&(record.partition, record.sequence)) {
            None => {
                verdict.lost += 1;
                if verdict.lost_examples.len() < EXAMPLES {
                    verdict
                        .lost_examples
                        .push((record.partition, record.sequence, record.offset));
                }
            }
            Some(found) if !found.contains(&record.offset) => verdict.offset_mismatches += 1,
            Some(_) => {}
        }
    }
    verdict.failed_but_written = failed
        .iter()
        .filter(|f| offsets.contains_key(&(f.partition, f.sequence)))
        .count() as u64;
    verdict
}

/// Records of `live` that `last` (a later read of the same partitions) has with other
/// contents, or lacks: when `last` read everything up to the high watermarks (`last_complete`),
/// any record it lacks is gone; otherwise only those below the last offset it reached.
pub fn vanished(live: &[Consumed], last: &[Consumed], last_complete: bool) -> u64 {
    let mut contents: HashMap<(i32, i64), Option<(i32, u64)>> = HashMap::new();
    let mut reached: HashMap<i32, i64> = HashMap::new();
    for record in last {
        contents.insert((record.partition, record.offset), record.payload);
        let end = reached.entry(record.partition).or_insert(record.offset);
        *end = (*end).max(record.offset);
    }
    live.iter()
        .filter(|r| match contents.get(&(r.partition, r.offset)) {
            Some(payload) => *payload != r.payload,
            None => last_complete || reached.get(&r.partition).is_some_and(|end| *end > r.offset),
        })
        .count() as u64
}

/// Low and high watermark of every partition that answers before `until`.
fn high_watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
    until: Instant,
) -> BTreeMap<i32, (i64, i64)> {
    let mut out = BTreeMap::new();
    for partition in 0..partitions {
        loop {
            match consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)) {
                Ok(found) => {
                    out.insert(partition, found);
                    break;
                }
                Err(_) if Instant::now() >= until => break,
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    out
}

/// The longest time without an acknowledgement between the start, each acknowledgement and
/// `stopped_at`, and when it began.
pub fn longest_gap(acked: &[Acked], stopped_at: Duration) -> (Duration, Duration) {
    let mut times: Vec<Duration> = acked.iter().map(|a| a.at.min(stopped_at)).collect();
    times.push(Duration::ZERO);
    times.push(stopped_at);
    times.sort_unstable();
    times
        .windows(2)
        .map(|w| (w[1] - w[0], w[0]))
        .max()
        .unwrap_or_default()
}

/// Everything the workload observed, printed as one block.
#[derive(Debug, Clone)]
pub struct Report {
    pub topic: String,
    pub partitions: i32,
    pub duration: Duration,
    pub produced_for: Duration,
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub consumed: u64,
    /// The final read reached every partition's last acknowledged offset before its deadline.
    pub drain_complete: bool,
    /// High watermark of every partition when the final read began.
    pub high_watermarks: BTreeMap<i32, i64>,
    /// Records the live consumer read while the workload ran.
    pub live_consumed: u64,
    pub live_drain_complete: bool,
    pub verdict: Verdict,
    /// Longest time without an acknowledgement while producing, and when it began.
    pub longest_stall: Duration,
    pub longest_stall_at: Duration,
    /// Failed deliveries by error kind.
    pub delivery_errors: ErrorCounts,
    /// Sends refused before queueing, by kind.
    pub send_errors: ErrorCounts,
    /// Errors librdkafka reported outside deliveries (connections, brokers down), by kind.
    pub client_errors: ErrorCounts,
    /// Errors of the live consumer and of the final read, by kind.
    pub consumer_errors: ErrorCounts,
    pub final_read_errors: ErrorCounts,
}

impl Report {
    pub fn lost(&self) -> u64 {
        self.verdict.lost
    }

    pub fn duplicated(&self) -> u64 {
        self.verdict.duplicated
    }

    pub fn out_of_order(&self) -> u64 {
        self.verdict.out_of_order
    }

    /// Fails, with the whole report, unless at least `min_acknowledged` records were
    /// acknowledged, both the live consumer and the final read reached them all, and nothing
    /// was lost, moved, duplicated, reordered or seen and then gone.
    pub fn ensure_clean(&self, min_acknowledged: u64) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.acknowledged >= min_acknowledged,
            "only {} records acknowledged, expected at least {min_acknowledged}\n{self}",
            self.acknowledged
        );
        anyhow::ensure!(
            self.verdict.is_clean(),
            "acknowledged records were lost, moved, duplicated or reordered\n{self}"
        );
        anyhow::ensure!(
            self.drain_complete,
            "the final read did not reach the last acknowledged offsets\n{self}"
        );
        // Failover must not stop a consumer: it never reads past the high watermark, so a new
        // leader never answers it OFFSET_OUT_OF_RANGE.
        anyhow::ensure!(
            self.live_drain_complete,
            "the live consumer did not reach the last acknowledged offsets\n{self}"
        );
        Ok(())
    }
}

fn counts(counts: &ErrorCounts) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{kind} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.verdict;
        writeln!(
            f,
            "workload report: topic {} ({} partitions), produced for {:.1?}, total {:.1?}",
            self.topic, self.partitions, self.produced_for, self.duration
        )?;
        writeln!(f, "  sent                {}", self.sent)?;
        writeln!(f, "  acknowledged        {}", self.acknowledged)?;
        writeln!(f, "  failed deliveries   {}", self.failed)?;
        let drained = |complete| if complete { "complete" } else { "INCOMPLETE" };
        writeln!(
            f,
            "  consumed            {} in the final read ({}), {} live ({})",
            self.consumed,
            drained(self.drain_complete),
            self.live_consumed,
            drained(self.live_drain_complete)
        )?;
        writeln!(f, "  high watermarks     {:?}", self.high_watermarks)?;
        writeln!(f, "  lost                {}", v.lost)?;
        writeln!(f, "  duplicated          {}", v.duplicated)?;
        writeln!(f, "  out of order        {}", v.out_of_order)?;
        writeln!(f, "  offset mismatches   {}", v.offset_mismatches)?;
        writeln!(f, "  conflicting offsets {}", v.conflicting_offsets)?;
        writeln!(f, "  vanished after read {}", v.vanished)?;
        writeln!(f, "  misplaced / foreign {} / {}", v.misplaced, v.foreign)?;
        writeln!(f, "  failed but written  {}", v.failed_but_written)?;
        writeln!(
            f,
            "  longest stall       {:.2?} (from {:.2?})",
            self.longest_stall, self.longest_stall_at
        )?;
        writeln!(f, "  delivery errors     {}", counts(&self.delivery_errors))?;
        writeln!(f, "  send errors         {}", counts(&self.send_errors))?;
        writeln!(f, "  client errors       {}", counts(&self.client_errors))?;
        writeln!(f, "  consumer errors     {}", counts(&self.consumer_errors))?;
        write!(
            f,
            "  final read errors   {}",
            counts(&self.final_read_errors)
        )?;
        if !v.lost_examples.is_empty() {
            write!(
                f,
                "\n  lost (partition, sequence, acked offset): {:?}",
                v.lost_examples
            )?;
        }
        if !v.duplicate_examples.is_empty() {
            write!(
                f,
                "\n  duplicated (partition, sequence, offsets): {:?}",
                v.duplicate_examples
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked(partition: i32, offset: i64, sequence: u64) -> Acked {
        Acked {
            partition,
            offset,
            sequence,
            at: Duration::from_millis(offset.unsigned_abs()),
        }
    }

    fn read(partition: i32, offset: i64, sequence: u64) -> Consumed {
        Consumed {
            partition,
            offset,
            payload: Some((partition, sequence)),
        }
    }

    /// Two partitions of three records each, all acknowledged and all read back.
    fn clean() -> (Vec<Acked>, Vec<Consumed>) {
        let mut a = Vec::new();
        let mut c = Vec::new();
        for p in 0..2 {
            for s in 0..3u64 {
                a.push(acked(p, s as i64, s));
                c.push(read(p, s as i64, s));
            }
        }
        (a, c)
    }

    #[test]
    fn payloads_round_trip_and_foreign_ones_are_recognised() {
        let payload = encode_payload(5, 123_456, 100);
        assert_eq!(payload.len(), 100);
        assert_eq!(decode_payload(&payload), Some((5, 123_456)));
        assert_eq!(decode_payload(&encode_payload(0, 7, 0)), Some((0, 7)));
        assert_eq!(decode_payload(b"something else"), None);
        assert_eq!(decode_payload(b"strom-workload p=x s=1 "), None);
    }

    #[test]
    fn a_clean_run_is_clean() {
        let (a, c) = clean();
        let verdict = check(&a, &[], &c);
        assert!(verdict.is_clean(), "{verdict:?}");
        assert_eq!(verdict, Verdict::default());
    }

    #[test]
    fn an_acknowledged_record_never_read_is_lost() {
        let (a, mut c) = clean();
        c.retain(|r| !(r.partition == 1 && r.offset == 1));
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.lost, 1);
        assert_eq!(verdict.lost_examples, vec![(1, 1, 1)]);
        assert!(!verdict.is_clean());
    }

    #[test]
    fn a_record_at_two_offsets_is_duplicated() {
        let (a, mut c) = clean();
        c.push(read(0, 3, 1));
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.duplicated, 1);
        assert_eq!(verdict.duplicate_examples, vec![(0, 1, vec![1, 3])]);
        // The copy also makes the sequence go backwards: 0 1 2 1.
        assert_eq!(verdict.out_of_order, 1);
        assert_eq!(verdict.lost, 0);
        assert!(!verdict.is_clean());
    }

    #[test]
    fn one_offset_read_twice_alike_is_no_fault() {
        let (a, mut c) = clean();
        c.push(read(0, 1, 1));
        assert!(check(&a, &[], &c).is_clean());
    }

    #[test]
    fn one_offset_read_twice_with_different_contents_conflicts() {
        let (a, mut c) = clean();
        c.push(read(0, 2, 9));
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.conflicting_offsets, 1);
        assert!(!verdict.is_clean());
    }

    #[test]
    fn swapped_records_are_out_of_order() {
        let (a, mut c) = clean();
        for r in &mut c {
            if r.partition == 0 && r.offset < 2 {
                r.offset = 1 - r.offset;
            }
        }
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.out_of_order, 1);
        assert_eq!(
            verdict.offset_mismatches, 2,
            "both were acknowledged elsewhere"
        );
        assert!(!verdict.is_clean());
    }

    #[test]
    fn a_record_in_the_wrong_partition_is_misplaced_and_lost_from_its_own() {
        let (a, mut c) = clean();
        c.retain(|r| !(r.partition == 1 && r.offset == 2));
        c.push(Consumed {
            partition: 0,
            offset: 3,
            payload: Some((1, 2)),
        });
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.misplaced, 1);
        assert_eq!(verdict.offset_mismatches, 1);
        assert!(!verdict.is_clean());
    }

    #[test]
    fn failed_records_may_or_may_not_be_written() {
        let (a, mut c) = clean();
        let failed = vec![
            Failed {
                partition: 0,
                sequence: 3,
                error: "MessageTimedOut".to_owned(),
            },
            Failed {
                partition: 0,
                sequence: 4,
                error: "MessageTimedOut".to_owned(),
            },
        ];
        c.push(read(0, 3, 3));
        let verdict = check(&a, &failed, &c);
        assert_eq!(verdict.failed_but_written, 1);
        assert!(verdict.is_clean());
    }

    #[test]
    fn foreign_records_are_counted_not_blamed() {
        let (a, mut c) = clean();
        c.push(Consumed {
            partition: 0,
            offset: 3,
            payload: None,
        });
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.foreign, 1);
        assert!(verdict.is_clean());
    }

    #[test]
    fn records_a_consumer_saw_must_not_vanish_later() {
        let (_, live) = clean();
        assert_eq!(vanished(&live, &live, true), 0);
        // The final read has other contents at partition 0 offset 2 and lacks partition 1
        // offset 1 although it read offset 2.
        let mut last = live.clone();
        last.retain(|r| !(r.partition == 1 && r.offset == 1));
        for r in &mut last {
            if r.partition == 0 && r.offset == 2 {
                r.payload = Some((0, 7));
            }
        }
        assert_eq!(vanished(&live, &last, true), 2);
        assert_eq!(vanished(&live, &last, false), 2);
        // A final read that stopped early does not blame what it never reached; one that read
        // up to the high watermarks does: those records are gone.
        let short: Vec<Consumed> = live.iter().copied().filter(|r| r.offset == 0).collect();
        assert_eq!(vanished(&live, &short, false), 0);
        assert_eq!(vanished(&live, &short, true), 4);
    }

    #[test]
    fn the_longest_stall_counts_the_start_and_the_stop() {
        let at = |ms| Acked {
            partition: 0,
            offset: 0,
            sequence: 0,
            at: Duration::from_millis(ms),
        };
        let ms = Duration::from_millis;
        assert_eq!(
            longest_gap(&[at(100), at(150), at(900), at(1000)], ms(1100)),
            (ms(750), ms(150))
        );
        assert_eq!(longest_gap(&[at(10)], ms(5000)), (ms(4990), ms(10)));
        assert_eq!(longest_gap(&[], ms(3000)), (ms(3000), ms(0)));
    }

    #[test]
    fn the_report_names_every_figure() {
        let (a, c) = clean();
        let report = Report {
            topic: "t".to_owned(),
            partitions: 2,
            duration: Duration::from_secs(2),
            produced_for: Duration::from_secs(1),
            sent: 6,
            acknowledged: 6,
            failed: 0,
            consumed: 6,
            drain_complete: true,
            high_watermarks: [(0, 3), (1, 3)].into(),
            live_consumed: 6,
            live_drain_complete: true,
            verdict: check(&a, &[], &c),
            longest_stall: Duration::from_millis(500),
            longest_stall_at: Duration::ZERO,
            delivery_errors: ErrorCounts::new(),
            send_errors: ErrorCounts::new(),
            client_errors: [("AllBrokersDown".to_owned(), 2)].into(),
            consumer_errors: ErrorCounts::new(),
            final_read_errors: ErrorCounts::new(),
        };
        let text = report.to_string();
        for figure in [
            "acknowledged        6",
            "lost                0",
            "duplicated          0",
            "out of order        0",
            "longest stall",
            "AllBrokersDown x2",
        ] {
            assert!(text.contains(figure), "{figure:?} in\n{text}");
        }
        assert!(report.ensure_clean(6).is_ok());
        assert!(report.ensure_clean(7).is_err());
    }
}
