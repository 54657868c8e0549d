//! Transactions on a three-broker cluster, `__transaction_state` replicated three ways and the
//! data topics with replication factor 3, each partition led by another broker: a transaction
//! spanning partitions of every broker commits or aborts on all of them (the coordinator
//! writes the markers of partitions led elsewhere through WriteTxnMarkers), and so does the
//! coordinator's abort of a transaction left open past its timeout; read_committed and the
//! last stable offset of every leader agree. `strom-txn-processor` copies a topic
//! exactly once while the broker coordinating its transactions, then the leader of an output
//! partition, is killed with SIGKILL and restarted under it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::producer::Producer;
use strom_e2e::cluster::{Cluster, eventually};
use strom_e2e::coordinators::{TRANSACTION, agreed_coordinator, kafka_partition_for};
use strom_e2e::kafka::create_assigned_topic;
use strom_e2e::processor::{Processor, TRANSACTIONAL_ID, check_exactly_once, produce_input};
use strom_e2e::replicas::{await_healthy, await_partitions, fast_replication, partitions_in};
use strom_e2e::transactions::{
    TXN_TIMEOUT, isolated_consumer, latest_offset, read_exactly, send, transactional_producer,
};

const DEADLINE: Duration = Duration::from_secs(60);

/// The two tests run three brokers each; one at a time keeps them from starving each other of
/// the machine's cores (a processor starved during a failover stalls past the deadlines).
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const QUIET: Duration = Duration::from_millis(1500);
const READ_UNCOMMITTED: i8 = 0;
const READ_COMMITTED: i8 = 1;
const TXN_STATE_TOPIC: &str = "__transaction_state";
/// Replicas of each partition, the first its leader: every broker leads some partitions.
const SPREAD: [&[i32]; 3] = [&[0, 1, 2], &[1, 2, 0], &[2, 0, 1]];

/// Three brokers (voters), failing over within seconds, with `topics` created as [`SPREAD`]
/// with `min.insync.replicas=2` and fully replicated.
async fn cluster_with(topics: &[&str]) -> anyhow::Result<Cluster> {
    let cluster = tokio::task::spawn_blocking(|| {
        Cluster::start(3, 0, |id, options| {
            fast_replication(id, options).with(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                "200",
            )
        })
    })
    .await??;
    cluster.await_controller(DEADLINE).await?;
    for topic in topics {
        create_assigned_topic(
            &cluster.bootstrap(),
            topic,
            &SPREAD,
            &[("min.insync.replicas", "2")],
        )
        .await?;
        await_healthy(&cluster, Some(topic), DEADLINE).await?;
    }
    Ok(cluster)
}

/// The bootstrap address of the broker leading `topic`-`partition`.
async fn leader_of(cluster: &Cluster, topic: &str, partition: i32) -> anyhow::Result<String> {
    let layout = partitions_in(cluster, topic).await?;
    let leader = layout
        .get(&partition)
        .with_context(|| format!("{topic}-{partition} in {layout:?}"))?
        .leader;
    let broker = usize::try_from(leader).with_context(|| format!("{topic}-{partition} led"))?;
    Ok(cluster.broker(broker).bootstrap())
}

/// Waits until the leader of every partition of `topic` answers `high` at read_uncommitted
/// and `stable` at read_committed.
async fn await_offsets(
    cluster: &Cluster,
    topic: &str,
    high: i64,
    stable: i64,
) -> anyhow::Result<()> {
    for partition in 0..i32::try_from(SPREAD.len())? {
        let last = Mutex::new(String::new());
        eventually(
            &format!("{topic}-{partition}: high watermark {high}, last stable offset {stable}"),
            DEADLINE,
            || async {
                let leader = leader_of(cluster, topic, partition).await.ok()?;
                let seen = (
                    latest_offset(&leader, topic, partition, READ_UNCOMMITTED)
                        .await
                        .ok()?,
                    latest_offset(&leader, topic, partition, READ_COMMITTED)
                        .await
                        .ok()?,
                );
                if let Ok(mut last) = last.lock() {
                    *last = format!("{seen:?} from {leader}");
                }
                (seen == (high, stable)).then_some(())
            },
        )
        .await
        .with_context(|| format!("last seen (high, stable): {:?}", last.lock()))?;
    }
    Ok(())
}

/// The values of `topic`'s partitions read at `isolation` from the beginning, with offsets.
fn read_all(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
    count: usize,
) -> anyhow::Result<BTreeMap<i32, Vec<(i64, String)>>> {
    let partitions: Vec<(&str, i32)> = (0..i32::try_from(SPREAD.len())?)
        .map(|p| (topic, p))
        .collect();
    let consumer = isolated_consumer(bootstrap, isolation, &partitions)?;
    let read = read_exactly(&consumer, count, QUIET, DEADLINE)?;
    Ok(read
        .into_iter()
        .map(|((_, p), values)| (p, values))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_across_every_broker_commits_or_aborts_on_all_its_partitions()
-> anyhow::Result<()> {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    const TOPIC: &str = "txn-spread";
    let cluster = cluster_with(&[TOPIC]).await?;
    let leaders: Vec<i32> = partitions_in(&cluster, TOPIC)
        .await?
        .values()
        .map(|p| p.leader)
        .collect();
    assert_eq!(leaders, vec![0, 1, 2], "each broker leads one partition");
    let bootstrap = cluster.bootstrap();
    let producer =
        tokio::task::block_in_place(|| transactional_producer(&bootstrap, "e2e-cluster-txn", &[]))?;
    let partitions = 0..i32::try_from(SPREAD.len())?;
    let send_all = |txn: &str| -> anyhow::Result<()> {
        for partition in partitions.clone() {
            for n in 0..2 {
                send(
                    &producer,
                    TOPIC,
                    partition,
                    &format!("{txn}-{partition}-{n}"),
                )?;
            }
        }
        Ok(())
    };

    // Committed: two records on every partition (offsets 0, 1), its marker at 2.
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        producer.begin_transaction()?;
        send_all("committed")?;
        producer.commit_transaction(TXN_TIMEOUT)?;
        Ok(())
    })?;
    await_offsets(&cluster, TOPIC, 3, 3).await?;
    let committed =
        tokio::task::block_in_place(|| read_all(&bootstrap, TOPIC, "read_committed", 6))?;
    let uncommitted =
        tokio::task::block_in_place(|| read_all(&bootstrap, TOPIC, "read_uncommitted", 6))?;
    for partition in partitions.clone() {
        let expected: Vec<(i64, String)> = (0..2)
            .map(|n| (n, format!("committed-{partition}-{n}")))
            .collect();
        assert_eq!(committed.get(&partition), Some(&expected), "read_committed");
        assert_eq!(
            uncommitted.get(&partition),
            Some(&expected),
            "read_uncommitted"
        );
    }

    // Open: its records (3, 4) are below every high watermark, and every last stable offset
    // stays at its first record until the abort marker (5) is written.
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        producer.begin_transaction()?;
        send_all("aborted")?;
        producer.flush(TXN_TIMEOUT)?;
        Ok(())
    })?;
    await_offsets(&cluster, TOPIC, 5, 3).await?;
    tokio::task::block_in_place(|| producer.abort_transaction(TXN_TIMEOUT))?;
    await_offsets(&cluster, TOPIC, 6, 6).await?;
    // A later committed transaction (6, 7; marker 8) is read past the aborted one.
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        producer.begin_transaction()?;
        send_all("later")?;
        producer.commit_transaction(TXN_TIMEOUT)?;
        Ok(())
    })?;
    await_offsets(&cluster, TOPIC, 9, 9).await?;

    // Abandoned: another producer leaves its transaction (9, 10) open past its timeout; the
    // coordinator aborts it on every partition (marker 11).
    let abandoned = tokio::task::block_in_place(|| {
        transactional_producer(
            &bootstrap,
            "e2e-cluster-abandoned",
            &[
                ("transaction.timeout.ms", "3000"),
                ("socket.timeout.ms", "3000"),
                ("message.timeout.ms", "3000"),
            ],
        )
    })?;
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        abandoned.begin_transaction()?;
        for partition in partitions.clone() {
            for n in 0..2 {
                send(
                    &abandoned,
                    TOPIC,
                    partition,
                    &format!("abandoned-{partition}-{n}"),
                )?;
            }
        }
        abandoned.flush(TXN_TIMEOUT)?;
        Ok(())
    })?;
    await_offsets(&cluster, TOPIC, 12, 12)
        .await
        .context("the coordinator aborts the timed-out transaction everywhere")?;

    let committed =
        tokio::task::block_in_place(|| read_all(&bootstrap, TOPIC, "read_committed", 12))?;
    let uncommitted =
        tokio::task::block_in_place(|| read_all(&bootstrap, TOPIC, "read_uncommitted", 24))?;
    for partition in partitions {
        let value = |txn: &str, n: i64| format!("{txn}-{partition}-{n}");
        let expected: Vec<(i64, String)> = vec![
            (0, value("committed", 0)),
            (1, value("committed", 1)),
            (6, value("later", 0)),
            (7, value("later", 1)),
        ];
        assert_eq!(
            committed.get(&partition),
            Some(&expected),
            "read_committed of {TOPIC}-{partition} skips the aborted and abandoned records"
        );
        let expected: Vec<(i64, String)> = [
            (0, "committed"),
            (3, "aborted"),
            (6, "later"),
            (9, "abandoned"),
        ]
        .into_iter()
        .flat_map(|(base, txn)| (0..2).map(move |n| (base + n, value(txn, n))))
        .collect();
        assert_eq!(
            uncommitted.get(&partition),
            Some(&expected),
            "read_uncommitted of {TOPIC}-{partition} reads every data record"
        );
    }
    Ok(())
}

const RECORDS: usize = 20_000;
const PARTITIONS: i32 = 3;
/// Records per processor transaction: small, so the run spans the failovers.
const PROCESSOR_BATCH: usize = 100;
/// How long the processor may take to reach each target.
const PROCESSING_DEADLINE: Duration = Duration::from_secs(120);

/// Kills broker `victim` with SIGKILL, waits until every partition of `moved` it led has
/// another leader and a running broker coordinates processor-0, lets the processor reach `target` input records without it, restarts it and
/// waits until the cluster is whole again.
async fn fail_over(
    cluster: &mut Cluster,
    processor: &Processor,
    victim: usize,
    moved: &str,
    target: i64,
) -> anyhow::Result<()> {
    cluster.broker_mut(victim).kill9();
    let victim_id = i32::try_from(victim)?;
    await_partitions(
        cluster,
        moved,
        &format!("{moved} led by brokers other than {victim}"),
        DEADLINE,
        |layout| {
            layout
                .values()
                .all(|p| p.leader >= 0 && p.leader != victim_id)
        },
    )
    .await?;
    let coordinator = eventually("a running coordinator of processor-0", DEADLINE, || {
        agreed_coordinator(cluster, TRANSACTION, TRANSACTIONAL_ID)
    })
    .await?;
    assert_ne!(
        coordinator, victim_id,
        "a killed broker coordinates nothing"
    );
    processor
        .wait_for(target, PROCESSING_DEADLINE)
        .await
        .with_context(|| format!("processing while broker {victim} is down"))?;
    tokio::task::block_in_place(|| cluster.broker_mut(victim).restart())?;
    for topic in ["input", "output", TXN_STATE_TOPIC] {
        await_healthy(cluster, Some(topic), DEADLINE).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_copies_exactly_once_across_coordinator_and_output_leader_kills()
-> anyhow::Result<()> {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut cluster = cluster_with(&["input", "output"]).await?;
    let bootstrap = cluster.bootstrap();
    produce_input(&bootstrap, RECORDS, PARTITIONS).await?;

    let processor = Processor::start(&bootstrap, PARTITIONS, PROCESSOR_BATCH)?;
    let step = i64::try_from(RECORDS)? / 5;
    processor
        .wait_for(step, PROCESSING_DEADLINE)
        .await
        .context("before any kill")?;
    await_healthy(&cluster, Some(TXN_STATE_TOPIC), DEADLINE).await?;

    // The broker coordinating processor-0 leads its __transaction_state partition; it dies
    // under the running processor, another replica takes the partition and the transactions.
    let coordinator = eventually("the coordinator of processor-0", DEADLINE, || {
        agreed_coordinator(&cluster, TRANSACTION, TRANSACTIONAL_ID)
    })
    .await?;
    let state_layout = partitions_in(&cluster, TXN_STATE_TOPIC).await?;
    let state_partition = kafka_partition_for(TRANSACTIONAL_ID, i32::try_from(state_layout.len())?);
    let state = &state_layout[&state_partition];
    assert_eq!(
        state.leader, coordinator,
        "the coordinator leads {TXN_STATE_TOPIC}-{state_partition}: {state:?}"
    );
    assert_eq!(state.replicas.len(), 3, "{TXN_STATE_TOPIC} has 3 replicas");
    let killed_at = Instant::now();
    fail_over(
        &mut cluster,
        &processor,
        usize::try_from(coordinator)?,
        TXN_STATE_TOPIC,
        2 * step,
    )
    .await
    .context("killing the transaction coordinator")?;
    println!(
        "coordinator {coordinator} ({TXN_STATE_TOPIC}-{state_partition}) killed and back \
         after {:.2?}",
        killed_at.elapsed()
    );
    processor.wait_for(3 * step, PROCESSING_DEADLINE).await?;

    // Now the leader of an output partition (not the coordinator's, where one exists).
    let coordinator = eventually("the coordinator of processor-0", DEADLINE, || {
        agreed_coordinator(&cluster, TRANSACTION, TRANSACTIONAL_ID)
    })
    .await?;
    let output_layout = partitions_in(&cluster, "output").await?;
    let victim = output_layout
        .values()
        .map(|p| p.leader)
        .find(|l| *l != coordinator)
        .unwrap_or(coordinator);
    let killed_at = Instant::now();
    fail_over(
        &mut cluster,
        &processor,
        usize::try_from(victim)?,
        "output",
        4 * step,
    )
    .await
    .context("killing an output partition leader")?;
    println!(
        "output leader {victim} (coordinator {coordinator}) killed and back after {:.2?}",
        killed_at.elapsed()
    );
    processor
        .wait_for(i64::try_from(RECORDS)?, PROCESSING_DEADLINE)
        .await
        .context("every input record processed")?;
    processor.kill(false)?;
    println!(
        "processed {RECORDS} records in {:.2?}, the processor exited and was restarted {} times",
        started.elapsed(),
        processor.restarts()
    );

    let read =
        tokio::task::block_in_place(|| read_all(&bootstrap, "output", "read_committed", RECORDS))?;
    let output: BTreeMap<i32, Vec<String>> = read
        .into_iter()
        .map(|(partition, records)| (partition, records.into_iter().map(|(_, v)| v).collect()))
        .collect();
    check_exactly_once(&output, RECORDS, PARTITIONS)?;
    Ok(())
}
