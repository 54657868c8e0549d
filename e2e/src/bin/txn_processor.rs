//! `strom-txn-processor`: a consume-transform-produce service with exactly-once delivery, as
//! stream processors write them. It reads every partition of `--input` under read_committed
//! from the offsets its group committed, copies each record to the same partition of
//! `--output`, and commits the input offsets in the same transaction
//! (`send_offsets_to_transaction`). Any failure exits the process (status 2): whoever runs it
//! restarts it, and the new instance's InitProducerId fences what the old one left open.
//! Tests kill it with SIGKILL mid-transaction; the output must still hold every input record
//! exactly once. A client stuck inside librdkafka (see [`Watchdog`]) exits the process too
//! (status 3), the same way.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use strom_e2e::workload::trace;

/// The timeout of every blocking transactional call.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A librdkafka call that has not returned this long after its start is stuck: every call
/// here is bounded by [`TIMEOUT`] or less. `send_offsets_to_transaction` is the one seen
/// stuck: it waits for good when the cached group coordinator's broker was decommissioned
/// (fenced brokers leave the Metadata response, as in Kafka), because librdkafka never
/// enforces that call's timeout (confluentinc/librdkafka#5511, #5456).
const STALLED_AFTER: Duration = Duration::from_secs(TIMEOUT.as_secs() + 10);

/// How many of the consumer's newest log lines a stuck instance prints before it exits.
const STUCK_TRACE_LINES: usize = 60;

#[derive(Debug, Parser)]
#[command(
    name = "strom-txn-processor",
    about = "Exactly-once copy of one topic to another"
)]
struct Args {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    input: String,
    #[arg(long)]
    output: String,
    /// Partitions of the input (the output has as many).
    #[arg(long)]
    partitions: i32,
    #[arg(long)]
    group: String,
    #[arg(long)]
    transactional_id: String,
    /// Most records per transaction.
    #[arg(long, default_value_t = 500)]
    batch: usize,
}

fn main() {
    if let Err(error) = run(&Args::parse()) {
        eprintln!("strom-txn-processor: {error:#}");
        std::process::exit(2);
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let trace = trace::LogRing::default();
    let watchdog = Watchdog::start(trace.clone())?;
    let consumer: BaseConsumer<trace::LogRing> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", &args.group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        .set("debug", trace::DEBUG_CONTEXTS)
        .set_log_level(RDKafkaLogLevel::Debug)
        .create_with_context(trace)
        .context("creating the consumer")?;
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("transactional.id", &args.transactional_id)
        .set("linger.ms", "5")
        .create()
        .context("creating the producer")?;
    watchdog
        .call("init_transactions", || producer.init_transactions(TIMEOUT))
        .context("init_transactions")?;
    // Assigned, not subscribed: the committed offsets say where to resume (Offset::Stored),
    // and no rebalance waits for a killed instance's session to expire.
    let mut assignment = TopicPartitionList::new();
    for partition in 0..args.partitions {
        assignment.add_partition_offset(&args.input, partition, Offset::Stored)?;
    }
    consumer.assign(&assignment).context("assign")?;
    println!("strom-txn-processor ready");
    loop {
        let mut batch = Vec::with_capacity(args.batch);
        while batch.len() < args.batch {
            match watchdog.call(POLL, || consumer.poll(Duration::from_millis(100))) {
                Some(Ok(message)) => batch.push(message.detach()),
                Some(Err(error)) => return Err(error).context("consuming"),
                None => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        watchdog
            .call("begin_transaction", || producer.begin_transaction())
            .context("begin_transaction")?;
        let mut next_offsets = std::collections::BTreeMap::new();
        for message in &batch {
            let mut record = BaseRecord::to(&args.output).partition(message.partition());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(payload) = message.payload() {
                record = record.payload(payload);
            }
            watchdog
                .call("send", || producer.send(record).map_err(|(error, _)| error))
                .context("producing")?;
            next_offsets.insert(message.partition(), message.offset() + 1);
        }
        let mut next = TopicPartitionList::new();
        for (partition, offset) in next_offsets {
            next.add_partition_offset(&args.input, partition, Offset::Offset(offset))?;
        }
        let metadata = consumer
            .group_metadata()
            .context("the consumer's group metadata")?;
        watchdog
            .call("send_offsets_to_transaction", || {
                producer.send_offsets_to_transaction(&next, &metadata, TIMEOUT)
            })
            .context("send_offsets_to_transaction")?;
        watchdog
            .call("commit_transaction", || {
                producer.commit_transaction(TIMEOUT)
            })
            .context("commit_transaction")?;
    }
}

/// The step name of `consumer.poll`.
const POLL: &str = "poll";

/// Where the main loop is: the librdkafka call it is in (if any), since when, and since when
/// it has been at the same step.
#[derive(Debug, Clone, Copy)]
struct Position {
    step: &'static str,
    step_since: Instant,
    call_started: Option<Instant>,
}

/// A thread that exits the process (status 3, skipping every destructor: closing a stuck
/// librdkafka client waits for work that never finishes) when a client is stuck inside
/// librdkafka. Two signs: a call that has not returned after [`STALLED_AFTER`], and a
/// consumer polled for [`trace::STUCK_AFTER`] that showed no activity at all in that time (its
/// fetcher stopped, see [`trace::STUCK_AFTER`]). The consumer's fetcher rests while its queue
/// is full and nothing polls it, so idleness counts only while polling.
struct Watchdog {
    position: Arc<Mutex<Position>>,
}

impl Watchdog {
    fn start(trace: trace::LogRing) -> anyhow::Result<Watchdog> {
        let position = Arc::new(Mutex::new(Position {
            step: "starting",
            step_since: Instant::now(),
            call_started: None,
        }));
        let watched = Arc::clone(&position);
        std::thread::Builder::new()
            .name("txn-processor-watchdog".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    let Ok(at) = watched.lock().map(|p| *p) else {
                        return;
                    };
                    if let Some(why) = stuck(&at, trace.idle_for(), Instant::now()) {
                        eprintln!("strom-txn-processor: {why}: stuck inside librdkafka; exiting");
                        if at.step == POLL {
                            eprintln!("The consumer's newest log lines:");
                            for line in trace.tail(STUCK_TRACE_LINES) {
                                eprintln!("  {line}");
                            }
                        }
                        std::process::exit(3);
                    }
                }
            })
            .context("starting the watchdog")?;
        Ok(Watchdog { position })
    }

    /// Runs one librdkafka call as `step`.
    fn call<R>(&self, step: &'static str, call: impl FnOnce() -> R) -> R {
        self.set(|p| {
            if p.step != step {
                p.step = step;
                p.step_since = Instant::now();
            }
            p.call_started = Some(Instant::now());
        });
        let result = call();
        self.set(|p| p.call_started = None);
        result
    }

    fn set(&self, change: impl FnOnce(&mut Position)) {
        if let Ok(mut position) = self.position.lock() {
            change(&mut position);
        }
    }
}

/// Why the main loop at `at` is stuck at `now`, if it is, given how long the consumer has
/// shown no activity.
fn stuck(at: &Position, consumer_idle: Duration, now: Instant) -> Option<String> {
    if let Some(started) = at.call_started {
        let running = now.saturating_duration_since(started);
        if running >= STALLED_AFTER {
            return Some(format!("{} has not returned in {running:?}", at.step));
        }
    }
    let idle = consumer_idle.min(now.saturating_duration_since(at.step_since));
    (at.step == POLL && idle >= trace::STUCK_AFTER)
        .then(|| format!("the consumer, polled, has not fetched or asked for metadata in {idle:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// The main loop at `step` for `at_step` before `now`, in a call started `in_call` before
    /// `now`; and `now`.
    fn at(step: &'static str, at_step: Duration, in_call: Option<Duration>) -> (Position, Instant) {
        let now = Instant::now() + 600 * SEC;
        let position = Position {
            step,
            step_since: now - at_step,
            call_started: in_call.map(|running| now - running),
        };
        (position, now)
    }

    #[test]
    fn a_call_that_outlives_every_timeout_is_stuck_and_named() {
        let (position, now) = at(
            "send_offsets_to_transaction",
            STALLED_AFTER,
            Some(STALLED_AFTER),
        );
        let why = stuck(&position, Duration::ZERO, now).expect("stuck");
        assert!(
            why.starts_with("send_offsets_to_transaction has not returned"),
            "{why}"
        );
    }

    #[test]
    fn a_call_within_its_timeout_is_not_stuck() {
        let (position, now) = at("commit_transaction", TIMEOUT, Some(TIMEOUT));
        assert_eq!(stuck(&position, 120 * SEC, now), None);
    }

    #[test]
    fn a_polled_consumer_without_activity_is_stuck() {
        let (position, now) = at(POLL, 20 * SEC, Some(Duration::ZERO));
        let why = stuck(&position, 20 * SEC, now).expect("stuck");
        assert!(why.contains("has not fetched"), "{why}");
    }

    #[test]
    fn a_polled_consumer_that_fetches_is_not_stuck() {
        let (position, now) = at(POLL, 120 * SEC, Some(Duration::ZERO));
        assert_eq!(stuck(&position, SEC, now), None);
    }

    #[test]
    fn consumer_idleness_counts_only_from_when_polling_resumed() {
        // A long commit let the consumer's queue fill and its fetcher rest.
        let (position, now) = at(POLL, SEC, None);
        assert_eq!(stuck(&position, 60 * SEC, now), None);
        let (position, now) = at("commit_transaction", 20 * SEC, Some(20 * SEC));
        assert_eq!(stuck(&position, 60 * SEC, now), None);
    }
}
