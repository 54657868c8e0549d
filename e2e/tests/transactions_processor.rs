//! Consume-transform-produce under crashes: `strom-txn-processor` copies `input` to `output`
//! in transactions that also commit its input offsets. It is killed with SIGKILL a bounded
//! number of times mid-run and restarted, then the broker itself is killed and restarted
//! under it; at the end `output` read under read_committed holds every input record exactly
//! once, in input order per partition.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use strom_e2e::cluster::reserve_port;
use strom_e2e::kafka::create_topic;
use strom_e2e::processor::{INPUT, OUTPUT, Processor, check_exactly_once, produce_input};
use strom_e2e::transactions::{isolated_consumer, read_exactly};
use strom_e2e::{BrokerOptions, BrokerProcess};

const RECORDS: usize = 50_000;
const PARTITIONS: i32 = 3;
const PROCESSOR_KILLS: i64 = 3;
const BATCH: usize = 500;
const DEADLINE: Duration = Duration::from_secs(120);

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
    create_topic(&bootstrap, INPUT, PARTITIONS, &[]).await?;
    create_topic(&bootstrap, OUTPUT, PARTITIONS, &[]).await?;
    produce_input(&bootstrap, RECORDS, PARTITIONS).await?;

    let processor = Processor::start(&bootstrap, PARTITIONS, BATCH)?;
    let step = i64::try_from(RECORDS)? / 8;
    for round in 1..=PROCESSOR_KILLS {
        // Let it commit some more, then kill it wherever it is (often mid-transaction).
        processor
            .wait_for(round * step, DEADLINE)
            .await
            .with_context(|| format!("before kill {round}"))?;
        processor.kill(true)?;
    }
    // The broker dies under the running processor, and comes back.
    processor
        .wait_for((PROCESSOR_KILLS + 1) * step, DEADLINE)
        .await?;
    tokio::task::block_in_place(|| {
        broker.kill9();
        broker.restart()
    })?;
    processor
        .wait_for(i64::try_from(RECORDS)?, DEADLINE)
        .await
        .context("every input record processed")?;
    processor.kill(false)?;

    let reader = isolated_consumer(
        &bootstrap,
        "read_committed",
        &[(OUTPUT, 0), (OUTPUT, 1), (OUTPUT, 2)],
    )?;
    let read = tokio::task::block_in_place(|| {
        read_exactly(&reader, RECORDS, Duration::from_secs(2), DEADLINE)
    })?;
    let output: BTreeMap<i32, Vec<String>> = read
        .into_iter()
        .map(|((_, partition), records)| (partition, records.into_iter().map(|(_, v)| v).collect()))
        .collect();
    check_exactly_once(&output, RECORDS, PARTITIONS)
}
