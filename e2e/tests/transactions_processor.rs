//! Consume-transform-produce under crashes: `strom-txn-processor` copies `input` to `output`
//! in transactions that also commit its input offsets. It is killed with SIGKILL a bounded
//! number of times mid-run and restarted, then the broker itself is killed and restarted
//! under it; at the end `output` read under read_committed holds every input record exactly
//! once, in input order per partition.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use rdkafka::producer::{FutureRecord, Producer};
use strom_e2e::cluster::{eventually, reserve_port};
use strom_e2e::kafka::{create_topic, producer};
use strom_e2e::transactions::{isolated_consumer, latest_offset, read_exactly};
use strom_e2e::{BrokerOptions, BrokerProcess, sibling_binary};

const RECORDS: usize = 50_000;
const PARTITIONS: i32 = 3;
const PROCESSOR_KILLS: usize = 3;
const DEADLINE: Duration = Duration::from_secs(120);

fn start_processor(bootstrap: &str) -> anyhow::Result<Child> {
    let binary = sibling_binary("STROM_TXN_PROCESSOR_BIN", "strom-txn-processor")?;
    Command::new(binary)
        .args([
            "--bootstrap",
            bootstrap,
            "--input",
            "input",
            "--output",
            "output",
        ])
        .args(["--partitions", &PARTITIONS.to_string()])
        .args(["--group", "processor", "--transactional-id", "processor-0"])
        .stdout(Stdio::null())
        .spawn()
        .context("starting strom-txn-processor")
}

/// How far the committed output reaches (the read_committed end offsets of `output`, summed;
/// markers take offsets too, so this only measures progress).
async fn output_stable(bootstrap: &str) -> i64 {
    let mut total = 0;
    for partition in 0..PARTITIONS {
        total += latest_offset(bootstrap, "output", partition, 1)
            .await
            .unwrap_or(0);
    }
    total
}

/// Input records the processor's group has committed as processed (its committed offsets of
/// `input`, summed; the input holds no transaction markers, so offsets count records).
fn committed_input(bootstrap: &str) -> anyhow::Result<i64> {
    let mut config = strom_e2e::kafka::base_config(bootstrap);
    config
        .set("group.id", "processor")
        .set("isolation.level", "read_committed");
    let reader: rdkafka::consumer::BaseConsumer = config.create()?;
    let mut list = rdkafka::TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition("input", partition);
    }
    let committed =
        rdkafka::consumer::Consumer::committed_offsets(&reader, list, Duration::from_secs(10))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| e.offset().to_raw())
        .filter(|o| *o > 0)
        .sum())
}

/// Restarts the processor whenever it exited on its own (it exits on any failure).
fn keep_running(processor: &Mutex<Child>, bootstrap: &str) -> anyhow::Result<()> {
    let mut processor = processor.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    if processor.try_wait()?.is_some() {
        *processor = start_processor(bootstrap)?;
    }
    Ok(())
}

/// Waits until `output` holds at least `target` committed records, keeping the processor up.
async fn wait_for_output(
    processor: &Mutex<Child>,
    bootstrap: &str,
    target: i64,
) -> anyhow::Result<()> {
    eventually(
        &format!("{target} committed output records"),
        DEADLINE,
        || async move {
            keep_running(processor, bootstrap).ok()?;
            (output_stable(bootstrap).await >= target).then_some(())
        },
    )
    .await
}

/// Kills the processor with SIGKILL; with `restart`, starts a new instance.
fn kill(processor: &Mutex<Child>, bootstrap: &str, restart: bool) -> anyhow::Result<()> {
    let mut processor = processor.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    processor.kill()?;
    processor.wait()?;
    if restart {
        *processor = start_processor(bootstrap)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_record_reaches_the_output_exactly_once_across_crashes() -> anyhow::Result<()> {
    // The broker comes back on the same address after its crash, so the processor's bootstrap
    // stays valid.
    let kafka_port = reserve_port()?;
    let mut broker = BrokerProcess::start(BrokerOptions {
        kafka_listen: Some(format!("127.0.0.1:{kafka_port}")),
        ..BrokerOptions::default()
    })?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "input", PARTITIONS, &[]).await?;
    create_topic(&bootstrap, "output", PARTITIONS, &[]).await?;
    let input = producer(
        &bootstrap,
        &[("enable.idempotence", "true"), ("linger.ms", "20")],
    )?;
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let value = format!("in-{i}");
        let partition = i32::try_from(i)? % PARTITIONS;
        deliveries.push(
            input
                .send_result(
                    FutureRecord::to("input")
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

    let processor = Mutex::new(start_processor(&bootstrap)?);
    let step = i64::try_from(RECORDS)? / 8;
    let mut target = 0;
    for round in 0..PROCESSOR_KILLS {
        // Let it commit some more, then kill it wherever it is (often mid-transaction).
        target += step;
        wait_for_output(&processor, &bootstrap, target)
            .await
            .with_context(|| format!("before kill {round}"))?;
        kill(&processor, &bootstrap, true)?;
    }
    // The broker dies under the running processor, and comes back.
    target += step;
    wait_for_output(&processor, &bootstrap, target).await?;
    tokio::task::block_in_place(|| {
        broker.kill9();
        broker.restart()
    })?;
    // Done when the group committed every input offset (the output's offsets count markers
    // too, so they cannot tell).
    let records = i64::try_from(RECORDS)?;
    eventually("every input record processed", DEADLINE, || async {
        keep_running(&processor, &bootstrap).ok()?;
        let bootstrap = bootstrap.clone();
        let committed = tokio::task::spawn_blocking(move || committed_input(&bootstrap))
            .await
            .ok()?
            .ok()?;
        (committed >= records).then_some(())
    })
    .await?;
    kill(&processor, &bootstrap, false)?;

    let reader = isolated_consumer(
        &bootstrap,
        "read_committed",
        &[("output", 0), ("output", 1), ("output", 2)],
    )?;
    let read = tokio::task::block_in_place(|| {
        read_exactly(&reader, RECORDS, Duration::from_secs(2), DEADLINE)
    })?;
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for ((_, partition), records) in &read {
        let mut last = None;
        for (_, value) in records {
            let i: usize = value
                .strip_prefix("in-")
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("an output record that no input had: {value}"))?;
            assert_eq!(
                i32::try_from(i)? % PARTITIONS,
                *partition,
                "{value} kept its partition"
            );
            assert!(
                last < Some(i),
                "output-{partition} keeps input order: {value} after {last:?}"
            );
            last = Some(i);
            *seen.entry(i).or_default() += 1;
        }
    }
    let duplicated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "records written twice: {duplicated:?}"
    );
    assert_eq!(seen.len(), RECORDS, "every input record is in the output");
    Ok(())
}
