//! `strom-txn-bench`: transactional produce throughput through librdkafka at 1, 10 and 100
//! records per transaction, next to the idempotent producer's, against any Kafka-compatible
//! broker (`--bootstrap`) or a local `strom-broker` it starts itself (`--local`). Each run
//! writes to a fresh single-partition topic; a transaction is begin, its records, commit (the
//! commit waits for the coordinator's PrepareCommit, as every client does). Prints figures;
//! asserts nothing about speed.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use strom_e2e::kafka::create_topic;

const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Parser)]
#[command(
    name = "strom-txn-bench",
    about = "Transactional produce throughput (librdkafka)"
)]
struct Args {
    /// Bootstrap address of the broker to measure.
    #[arg(long, conflicts_with = "local")]
    bootstrap: Option<String>,
    /// Start a local strom-broker (next to this binary) on a temporary directory.
    #[arg(long)]
    local: bool,
    /// Records per run (each transaction size writes this many, rounded to whole transactions).
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Transactions per run at most (bounds the runs of small transactions).
    #[arg(long, default_value_t = 5_000)]
    max_transactions: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// Records per transaction to measure.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 10, 100])]
    per_transaction: Vec<usize>,
}

fn producer(
    bootstrap: &str,
    transactional_id: Option<&str>,
) -> anyhow::Result<BaseProducer<DefaultProducerContext>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("retry.backoff.ms", "5");
    if let Some(id) = transactional_id {
        config.set("transactional.id", id);
    }
    let producer: BaseProducer<DefaultProducerContext> =
        config.create().context("creating the producer")?;
    if transactional_id.is_some() {
        producer.init_transactions(TIMEOUT)?;
    }
    Ok(producer)
}

fn send(
    producer: &BaseProducer<DefaultProducerContext>,
    topic: &str,
    value: &[u8],
) -> anyhow::Result<()> {
    let mut record = BaseRecord::<(), [u8]>::to(topic)
        .partition(0)
        .payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                back,
            )) => {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((error, _)) => bail!("queueing a record: {error}"),
        }
    }
}

/// Serves delivery reports until every queued record is acknowledged. The rdkafka crate's
/// flush (which its commit runs first) polls in 100 ms steps; polling in 1 ms steps here keeps
/// that wait out of the figures (the C client, as confluent-kafka uses it, has no such step).
fn drain(producer: &BaseProducer<DefaultProducerContext>) {
    while producer.in_flight_count() > 0 {
        producer.poll(Duration::from_millis(1));
    }
}

/// One run: `records` records, in transactions of `per_transaction` (none: idempotent only).
/// Returns (seconds, records written, transactions).
fn run(
    bootstrap: &str,
    topic: &str,
    records: usize,
    per_transaction: Option<usize>,
    value: &[u8],
) -> anyhow::Result<(f64, usize, usize)> {
    let id = per_transaction.map(|n| format!("strom-txn-bench-{}-{n}", std::process::id()));
    let producer = producer(bootstrap, id.as_deref())?;
    let started = Instant::now();
    let mut written = 0;
    let mut transactions = 0;
    match per_transaction {
        None => {
            for _ in 0..records {
                send(&producer, topic, value)?;
            }
            drain(&producer);
            producer.flush(TIMEOUT)?;
            written = records;
        }
        Some(size) => {
            while written + size <= records {
                producer.begin_transaction()?;
                for _ in 0..size {
                    send(&producer, topic, value)?;
                }
                drain(&producer);
                producer.commit_transaction(TIMEOUT)?;
                written += size;
                transactions += 1;
            }
        }
    }
    Ok((started.elapsed().as_secs_f64(), written, transactions))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut local = None;
    let bootstrap = match (&args.bootstrap, args.local) {
        (Some(bootstrap), _) => bootstrap.clone(),
        (None, true) => {
            let broker = strom_e2e::BrokerProcess::start(strom_e2e::BrokerOptions::default())?;
            let bootstrap = broker.bootstrap();
            local = Some(broker);
            bootstrap
        }
        (None, false) => bail!("pass --bootstrap HOST:PORT or --local"),
    };
    let value = vec![b'x'; args.record_size];
    println!(
        "strom-txn-bench: {} B records, 1 partition, acks=all (idempotent), load average {}",
        args.record_size,
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );
    let mut modes: Vec<Option<usize>> = vec![None];
    modes.extend(args.per_transaction.iter().map(|n| Some(*n)));
    for (i, mode) in modes.into_iter().enumerate() {
        let topic = format!("txn-bench-{}-{i}", std::process::id());
        create_topic(&bootstrap, &topic, 1, &[]).await?;
        let records = match mode {
            None => args.records,
            Some(size) => args.records.min(size.saturating_mul(args.max_transactions)),
        };
        let value = value.clone();
        let bootstrap_run = bootstrap.clone();
        let (secs, written, transactions) =
            tokio::task::spawn_blocking(move || run(&bootstrap_run, &topic, records, mode, &value))
                .await??;
        let mb = (written * args.record_size) as f64 / 1e6;
        let label = match mode {
            None => "idempotent, no transactions".to_string(),
            Some(size) => format!("{size} records per transaction"),
        };
        let per_txn = if transactions > 0 {
            format!(
                ", {:.0} transactions/s, {:.2} ms per transaction",
                transactions as f64 / secs,
                secs * 1000.0 / transactions as f64
            )
        } else {
            String::new()
        };
        println!(
            "{label:>30}: {written} records in {secs:.2} s = {:.0} records/s, {:.1} MB/s{per_txn}",
            written as f64 / secs,
            mb / secs
        );
    }
    drop(local);
    Ok(())
}
