//! A continuous, verified workload: what a Kafka user relies on, measured while faults happen.
//!
//! A producer task (rdkafka `FutureProducer`, idempotent, `acks=all` unless told otherwise)
//! writes records to every partition of a topic at a steady rate. Each payload names the
//! partition it was sent to and a per-partition sequence number, and the producer keeps every
//! acknowledgement (partition, offset, sequence, when). A consumer thread, assigned every
//! partition from the log start, reads everything while it runs. [`Workload::finish`] stops
//! producing, lets that consumer catch up, reads the whole topic once more with a fresh consumer
//! and hands it all to [`check()`] and [`vanished`], which say what was lost, duplicated,
//! reordered, or seen by a consumer and later gone.
//!
//! Layout: this file runs the workload; [`mod@check`] holds the checkers (pure functions, tested
//! on synthetic data); [`report`] the [`Report`] that prints every figure in one block.

use std::collections::{BTreeMap, HashMap};
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

pub mod check;
pub mod report;
pub mod trace;

pub use check::{Acked, Consumed, Failed, Verdict, check, longest_gap, vanished};
pub use report::Report;

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
    /// The next offset to read per partition, when the consumer stopped.
    positions: BTreeMap<i32, i64>,
    /// Live consumers replaced because librdkafka stopped working in them.
    restarts: u32,
}

/// A running workload; [`Workload::finish`] ends it and says what happened.
pub struct Workload {
    config: WorkloadConfig,
    stop: watch::Sender<bool>,
    producer: tokio::task::JoinHandle<ProducerLog>,
    client_errors: ErrorRecorder,
    live_trace: trace::LogRing,
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

        let live_trace = trace::LogRing::default();
        let live = LiveConsumer {
            bootstrap: bootstrap.to_owned(),
            topic: config.topic.clone(),
            partitions: config.partitions,
            trace: live_trace.clone(),
        };
        let consumer = live.create(&BTreeMap::new())?;
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
                .spawn(move || live.run(consumer, &drain))
                .context("starting the consumer thread")?
        };
        Ok(Workload {
            config,
            stop,
            producer,
            client_errors,
            live_trace,
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
    /// ports when not pinned) and checks that final read against the acknowledgements, and the live read
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
        let reader = assigned_consumer(
            bootstrap,
            &self.config.topic,
            self.config.partitions,
            trace::LogRing::default(),
            None,
            &BTreeMap::new(),
        )?;
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
            let mut consumed = ConsumerLog::default();
            consume(&reader, &drain, &mut consumed, None);
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
            live_positions: live.positions,
            live_restarts: live.restarts,
            live_trace: if live.drain_complete {
                Vec::new()
            } else {
                self.live_trace.tail(LIVE_TRACE_LINES)
            },
            targets: drain.targets,
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

/// How many of the live consumer's newest log lines a report holds when it fell short.
const LIVE_TRACE_LINES: usize = 400;

/// Live consumers replaced at most, before the live read counts as failed.
const MAX_RESTARTS: u32 = 3;

/// The live consumer: a consumer without a group on every partition of `topic`, logging
/// into `trace`, replaced by a new one from the same positions when librdkafka gets stuck.
struct LiveConsumer {
    bootstrap: String,
    topic: String,
    partitions: i32,
    trace: trace::LogRing,
}

impl LiveConsumer {
    fn create(&self, from: &BTreeMap<i32, i64>) -> anyhow::Result<BaseConsumer<trace::LogRing>> {
        self.trace.mark_active();
        assigned_consumer(
            &self.bootstrap,
            &self.topic,
            self.partitions,
            self.trace.clone(),
            Some(trace::DEBUG_CONTEXTS),
            from,
        )
    }

    /// Reads until `drain` is met or its deadline passes, replacing a stuck consumer.
    fn run(
        &self,
        mut consumer: BaseConsumer<trace::LogRing>,
        drain: &Mutex<Option<Drain>>,
    ) -> ConsumerLog {
        let mut log = ConsumerLog::default();
        loop {
            let stuck = consume(&consumer, drain, &mut log, Some(&self.trace));
            // Dropping a librdkafka consumer closes it and waits for the close to finish,
            // which never ends in a stuck one; the close happens on a thread of its own that
            // nothing joins.
            let _ = std::thread::Builder::new()
                .name("workload-consumer-close".to_owned())
                .spawn(move || drop(consumer));
            if !stuck || log.restarts >= MAX_RESTARTS {
                return log;
            }
            log.restarts += 1;
            match self.create(&log.positions) {
                Ok(next) => consumer = next,
                Err(error) => {
                    *log.errors.entry(format!("restart: {error:#}")).or_default() += 1;
                    return log;
                }
            }
        }
    }
}

/// A consumer without a group that reads every partition of `topic` from `from` (the log
/// start where it has no position), logging the librdkafka `debug` contexts given into
/// `trace`.
fn assigned_consumer(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    trace: trace::LogRing,
    debug: Option<&str>,
    from: &BTreeMap<i32, i64>,
) -> anyhow::Result<BaseConsumer<trace::LogRing>> {
    let mut config = base_config(bootstrap);
    if let Some(contexts) = debug {
        config
            .set("debug", contexts)
            .set_log_level(RDKafkaLogLevel::Debug);
    }
    config
        .set("group.id", format!("strom-workload-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A fetch position past the log end is a broker fault to report, never to skip.
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer<trace::LogRing> = config
        .create_with_context(trace)
        .context("creating a workload consumer")?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        let offset = from
            .get(&partition)
            .map_or(Offset::Beginning, |next| Offset::Offset(*next));
        assignment.add_partition_offset(topic, partition, offset)?;
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

/// Reads into `log` until `drain` is met or its deadline passes; with `stuck` (the consumer's
/// trace), also stops when the consumer showed no activity for [`trace::STUCK_AFTER`] while
/// records are still to be read, and then says so.
fn consume(
    consumer: &BaseConsumer<trace::LogRing>,
    drain: &Mutex<Option<Drain>>,
    log: &mut ConsumerLog,
    stuck: Option<&trace::LogRing>,
) -> bool {
    // Next offset to read per partition.
    let mut positions: HashMap<i32, i64> =
        log.positions.iter().map(|(p, next)| (*p, *next)).collect();
    let mut stopped_stuck = false;
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
        if stuck.is_some_and(|trace| trace.idle_for() >= trace::STUCK_AFTER) {
            stopped_stuck = true;
            break;
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
    log.positions = positions.into_iter().collect();
    stopped_stuck
}

/// Low and high watermark of every partition that answers before `until`.
fn high_watermarks(
    consumer: &BaseConsumer<trace::LogRing>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_foreign_ones_are_recognised() {
        let payload = encode_payload(5, 123_456, 100);
        assert_eq!(payload.len(), 100);
        assert_eq!(decode_payload(&payload), Some((5, 123_456)));
        assert_eq!(decode_payload(&encode_payload(0, 7, 0)), Some((0, 7)));
        assert_eq!(decode_payload(b"something else"), None);
        assert_eq!(decode_payload(b"strom-workload p=x s=1 "), None);
    }
}
