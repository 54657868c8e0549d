//! `strom-compaction-bench`: the broker's memory while it compacts a log whose key set does not
//! fit the cleaner's key map (`log.cleaner.dedupe.buffer.size`), so the cleaner works in several
//! passes. Starts a broker on a temporary directory, writes every key twice to a compacted topic
//! with librdkafka, then samples the broker's resident memory until the log has shrunk to about
//! one record per key. Prints the figures; asserts nothing.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use strom_e2e::compaction::log_bytes;
use strom_e2e::observability::http_get;
use strom_e2e::{BrokerOptions, BrokerProcess};

#[derive(Debug, Parser)]
#[command(
    name = "strom-compaction-bench",
    about = "Broker memory while compacting a log larger than the cleaner's key map"
)]
struct Args {
    /// Distinct keys; each is written twice.
    #[arg(long, default_value_t = 2_000_000)]
    keys: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// `log.cleaner.dedupe.buffer.size`, in MiB.
    #[arg(long, default_value_t = 16)]
    dedupe_mib: usize,
    /// Give up waiting for the cleaner after this many seconds.
    #[arg(long, default_value_t = 300)]
    deadline_secs: u64,
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The value of an unlabelled series on the broker's `/metrics`.
fn metric(broker: &BrokerProcess, name: &str) -> Option<f64> {
    let body = http_get(&format!("{}/metrics", broker.admin_url()))
        .ok()?
        .body;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dedupe = args.dedupe_mib * 1024 * 1024;
    let broker = BrokerProcess::start(
        BrokerOptions::default()
            .with("log.cleaner.dedupe.buffer.size", &dedupe.to_string())
            .with("log.cleaner.backoff.ms", "200"),
    )?;
    let pid = broker.pid().context("the broker has no pid")?;
    let topic = "compaction-bench";
    strom_e2e::kafka::create_topic(
        &broker.bootstrap(),
        topic,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "16777216"),
            ("segment.ms", "2000"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    )
    .await?;
    let (idle_rss, _) = memory_kib(pid)?;

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let value = vec![b'v'; args.value_size];
    let started = Instant::now();
    for _ in 0..2 {
        for key in 0..args.keys {
            let key = format!("key-{key:010}");
            loop {
                match producer.send(BaseRecord::to(topic).key(&key).payload(&value).partition(0)) {
                    Ok(()) => break,
                    Err((_, _)) => {
                        producer.poll(Duration::from_millis(5));
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let produced_in = started.elapsed();
    let dir = broker.data_dir().join(format!("{topic}-0"));
    let written = log_bytes(&dir);
    let (loaded_rss, _) = memory_kib(pid)?;

    let started = Instant::now();
    let mut peak_rss = loaded_rss;
    let deadline = Duration::from_secs(args.deadline_secs);
    // Done when about one copy of each key is left (the newest segment may hold a few more).
    while log_bytes(&dir) as f64 > written as f64 * 0.55 {
        if started.elapsed() > deadline {
            bail!(
                "the log shrank only to {} of {written} bytes in {deadline:?}",
                log_bytes(&dir)
            );
        }
        peak_rss = peak_rss.max(memory_kib(pid)?.0);
        std::thread::sleep(Duration::from_millis(20));
    }
    let cleaned_in = started.elapsed();
    let (_, hwm) = memory_kib(pid)?;
    let passes = metric(&broker, "strom_log_cleaner_runs_total").unwrap_or(0.0);
    let utilisation = metric(
        &broker,
        "kafka_log_logcleaner_max_buffer_utilization_percent",
    )
    .unwrap_or(0.0);
    println!(
        "compaction-bench: {} keys x2 of {} B values, {written} bytes written in {produced_in:.1?}, cleaned to {} bytes in {cleaned_in:.1?} over {passes} passes (last map {utilisation:.0}% full)",
        args.keys,
        args.value_size,
        log_bytes(&dir)
    );
    println!(
        "compaction-bench: dedupe buffer {} KiB; broker RSS idle {idle_rss} KiB, after writing {loaded_rss} KiB, peak while cleaning {peak_rss} KiB (+{} KiB), high-water mark {hwm} KiB; load average {}",
        dedupe / 1024,
        peak_rss.saturating_sub(loaded_rss),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    Ok(())
}
