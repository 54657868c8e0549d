//! Running `strom-txn-processor` (the exactly-once consume-transform-produce service) in tests:
//! the input it copies, the process (restarted whenever it exits on a failure), how far its
//! group has committed, and the check that the output holds every input record exactly once.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureRecord, Producer};

use crate::cluster::eventually;
use crate::kafka::{base_config, producer};
use crate::sibling_binary;

/// The topic the processor reads.
pub const INPUT: &str = "input";
/// The topic the processor writes.
pub const OUTPUT: &str = "output";
/// The processor's consumer group.
pub const GROUP: &str = "processor";
/// The processor's transactional id.
pub const TRANSACTIONAL_ID: &str = "processor-0";

/// Produces `records` values `in-{i}` to `INPUT`, record `i` on partition `i % partitions`,
/// idempotently, and waits for every acknowledgement.
pub async fn produce_input(bootstrap: &str, records: usize, partitions: i32) -> anyhow::Result<()> {
    let input = producer(
        bootstrap,
        &[("enable.idempotence", "true"), ("linger.ms", "20")],
    )?;
    let mut deliveries = Vec::with_capacity(records);
    for i in 0..records {
        let value = format!("in-{i}");
        let partition = i32::try_from(i)? % partitions;
        deliveries.push(
            input
                .send_result(
                    FutureRecord::to(INPUT)
                        .partition(partition)
                        .key(&value)
                        .payload(&value),
                )
                .map_err(|(error, _)| anyhow::anyhow!("queueing input: {error}"))?,
        );
    }
    for delivery in deliveries {
        delivery
            .await
            .context("delivery dropped")?
            .map_err(|(error, _)| anyhow::anyhow!("input not acknowledged: {error}"))?;
    }
    input.flush(Duration::from_secs(30))?;
    Ok(())
}

/// Input records the processor's group has committed as processed: its committed offsets of
/// `INPUT`, summed (the input holds no transaction markers, so offsets count records).
pub fn committed_input(bootstrap: &str, partitions: i32) -> anyhow::Result<i64> {
    let mut config = base_config(bootstrap);
    config
        .set("group.id", GROUP)
        .set("isolation.level", "read_committed");
    let reader: BaseConsumer = config.create()?;
    let mut list = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(INPUT, partition);
    }
    let committed = reader.committed_offsets(list, Duration::from_secs(5))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| e.offset().to_raw())
        .filter(|o| *o > 0)
        .sum())
}

/// The processor process, restarted whenever it exited on its own (it exits on any failure).
#[derive(Debug)]
pub struct Processor {
    child: Mutex<Child>,
    bootstrap: String,
    partitions: i32,
    batch: usize,
    restarts: Mutex<usize>,
}

impl Processor {
    /// Starts it over `partitions` partitions with at most `batch` records per transaction.
    pub fn start(bootstrap: &str, partitions: i32, batch: usize) -> anyhow::Result<Self> {
        Ok(Self {
            child: Mutex::new(spawn(bootstrap, partitions, batch)?),
            bootstrap: bootstrap.to_owned(),
            partitions,
            batch,
            restarts: Mutex::new(0),
        })
    }

    /// Starts a new instance if the current one exited.
    pub fn keep_running(&self) -> anyhow::Result<()> {
        let mut child = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        if child.try_wait()?.is_some() {
            *child = spawn(&self.bootstrap, self.partitions, self.batch)?;
            *self
                .restarts
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))? += 1;
        }
        Ok(())
    }

    /// Waits until the group committed at least `target` input records, keeping it up.
    pub async fn wait_for(&self, target: i64, deadline: Duration) -> anyhow::Result<()> {
        eventually(
            &format!("{target} input records processed"),
            deadline,
            || async {
                self.keep_running().ok()?;
                let (bootstrap, partitions) = (self.bootstrap.clone(), self.partitions);
                let committed =
                    tokio::task::spawn_blocking(move || committed_input(&bootstrap, partitions))
                        .await
                        .ok()?
                        .ok()?;
                (committed >= target).then_some(())
            },
        )
        .await
    }

    /// Kills the current instance with SIGKILL (wherever it is, often mid-transaction); with
    /// `restart`, starts a new one.
    pub fn kill(&self, restart: bool) -> anyhow::Result<()> {
        let mut child = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        child.kill()?;
        child.wait()?;
        if restart {
            *child = spawn(&self.bootstrap, self.partitions, self.batch)?;
        }
        Ok(())
    }

    /// Instances started because the previous one exited on its own.
    pub fn restarts(&self) -> usize {
        self.restarts.lock().map(|r| *r).unwrap_or_default()
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        if let Ok(child) = self.child.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(bootstrap: &str, partitions: i32, batch: usize) -> anyhow::Result<Child> {
    let binary = sibling_binary("STROM_TXN_PROCESSOR_BIN", "strom-txn-processor")?;
    Command::new(binary)
        .args([
            "--bootstrap",
            bootstrap,
            "--input",
            INPUT,
            "--output",
            OUTPUT,
        ])
        .args(["--partitions", &partitions.to_string()])
        .args(["--group", GROUP, "--transactional-id", TRANSACTIONAL_ID])
        .args(["--batch", &batch.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .context("starting strom-txn-processor")
}

/// Checks the output read under read_committed (values by partition, in offset order): every
/// input record `in-{i}` of `produce_input` exactly once, on its own partition, in input order.
pub fn check_exactly_once(
    output: &BTreeMap<i32, Vec<String>>,
    records: usize,
    partitions: i32,
) -> anyhow::Result<()> {
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for (partition, values) in output {
        let mut last = None;
        for value in values {
            let i: usize = value
                .strip_prefix("in-")
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("an output record that no input had: {value}"))?;
            anyhow::ensure!(
                i32::try_from(i)? % partitions == *partition,
                "{value} left its partition for output-{partition}"
            );
            anyhow::ensure!(
                last < Some(i),
                "output-{partition} breaks input order: {value} after {last:?}"
            );
            last = Some(i);
            *seen.entry(i).or_default() += 1;
        }
    }
    let duplicated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    anyhow::ensure!(
        duplicated.is_empty(),
        "records written twice: {duplicated:?}"
    );
    anyhow::ensure!(
        seen.len() == records,
        "{} of {records} input records are in the output",
        seen.len()
    );
    Ok(())
}
