//! `strom-txn-processor`: a consume-transform-produce service with exactly-once delivery, as
//! stream processors write them. It reads every partition of `--input` under read_committed
//! from the offsets its group committed, copies each record to the same partition of
//! `--output`, and commits the input offsets in the same transaction
//! (`send_offsets_to_transaction`). Any failure exits the process (status 2): whoever runs it
//! restarts it, and the new instance's InitProducerId fences what the old one left open.
//! Tests kill it with SIGKILL mid-transaction; the output must still hold every input record
//! exactly once.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

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
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", &args.group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        .create()
        .context("creating the consumer")?;
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("transactional.id", &args.transactional_id)
        .set("linger.ms", "5")
        .create()
        .context("creating the producer")?;
    producer
        .init_transactions(TIMEOUT)
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
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => batch.push(message.detach()),
                Some(Err(error)) => return Err(error).context("consuming"),
                None => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        producer.begin_transaction().context("begin_transaction")?;
        let mut next_offsets = std::collections::BTreeMap::new();
        for message in &batch {
            let mut record = BaseRecord::to(&args.output).partition(message.partition());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(payload) = message.payload() {
                record = record.payload(payload);
            }
            producer
                .send(record)
                .map_err(|(error, _)| error)
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
        producer
            .send_offsets_to_transaction(&next, &metadata, TIMEOUT)
            .context("send_offsets_to_transaction")?;
        producer
            .commit_transaction(TIMEOUT)
            .context("commit_transaction")?;
    }
}
