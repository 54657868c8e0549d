//! Exactly-once with the reference client (librdkafka through the `rdkafka` crate) on one
//! broker: committed and aborted transactions across two topics, read_committed versus
//! read_uncommitted reads, the last stable offset in ListOffsets, zombie fencing, and the
//! coordinator aborting a transaction left open past its timeout; and transactions of
//! confluent-kafka and kafka-python (Python) and kafkajs.

use std::time::Duration;

use anyhow::Context;
use rdkafka::producer::Producer;
use strom_e2e::cluster::eventually;
use strom_e2e::kafka::create_topic;
use strom_e2e::observability::http_get;
use strom_e2e::transactions::{
    TXN_TIMEOUT, isolated_consumer, latest_offset, read_exactly, send, transactional_producer,
};
use strom_e2e::{BrokerOptions, BrokerProcess, repo_root};

const DEADLINE: Duration = Duration::from_secs(30);
const QUIET: Duration = Duration::from_millis(1500);
const READ_UNCOMMITTED: i8 = 0;
const READ_COMMITTED: i8 = 1;

/// `kafka_server_replicamanager_last_stable_offset_lag` of `topic`-`partition` on `broker`.
fn stable_offset_lag(broker: &BrokerProcess, topic: &str, partition: i32) -> anyhow::Result<i64> {
    let metrics = http_get(&format!("{}/metrics", broker.admin_url()))?.body;
    let series = format!(
        "kafka_server_replicamanager_last_stable_offset_lag{{partition=\"{partition}\",topic=\"{topic}\"}} "
    );
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .and_then(|value| value.trim().parse().ok())
        .with_context(|| format!("no {series}in the broker's metrics"))
}

fn broker() -> anyhow::Result<BrokerProcess> {
    BrokerProcess::start(BrokerOptions::default().with(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "200",
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_sees_exactly_the_committed_transactions_in_order() -> anyhow::Result<()> {
    let broker = broker()?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "tx-a", 2, &[]).await?;
    create_topic(&bootstrap, "tx-b", 1, &[]).await?;
    let partitions = [("tx-a", 0), ("tx-a", 1), ("tx-b", 0)];

    let producer = tokio::task::block_in_place(|| {
        transactional_producer(&bootstrap, "e2e-commit-abort", &[])
    })?;
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        for txn in 0..20 {
            producer.begin_transaction()?;
            for (topic, partition) in partitions {
                send(
                    &producer,
                    topic,
                    partition,
                    &format!("t{txn}-{topic}-{partition}"),
                )?;
            }
            if txn % 2 == 0 {
                producer.commit_transaction(TXN_TIMEOUT)?;
            } else {
                // Flushed first: librdkafka drops records an abort finds still queued, and
                // these must reach the log to be aborted there.
                producer.flush(TXN_TIMEOUT)?;
                producer.abort_transaction(TXN_TIMEOUT)?;
            }
        }
        Ok(())
    })?;

    // Each transaction took one data offset and one marker offset on every partition.
    for (topic, partition) in partitions {
        assert_eq!(
            latest_offset(&bootstrap, topic, partition, READ_UNCOMMITTED).await?,
            40
        );
        assert_eq!(
            latest_offset(&bootstrap, topic, partition, READ_COMMITTED).await?,
            40
        );
    }

    let committed = isolated_consumer(&bootstrap, "read_committed", &partitions)?;
    let read = tokio::task::block_in_place(|| read_exactly(&committed, 30, QUIET, DEADLINE))?;
    for (topic, partition) in partitions {
        let got = &read[&(topic.to_string(), partition)];
        let expected: Vec<(i64, String)> = (0..20)
            .step_by(2)
            .map(|txn| (txn * 2, format!("t{txn}-{topic}-{partition}")))
            .collect();
        assert_eq!(got, &expected, "{topic}-{partition} under read_committed");
    }
    let uncommitted = isolated_consumer(&bootstrap, "read_uncommitted", &partitions)?;
    let read = tokio::task::block_in_place(|| read_exactly(&uncommitted, 60, QUIET, DEADLINE))?;
    for (topic, partition) in partitions {
        let values: Vec<String> = read[&(topic.to_string(), partition)]
            .iter()
            .map(|(_, v)| v.clone())
            .collect();
        let expected: Vec<String> = (0..20)
            .map(|txn| format!("t{txn}-{topic}-{partition}"))
            .collect();
        assert_eq!(
            values, expected,
            "{topic}-{partition} under read_uncommitted"
        );
    }

    // An open transaction holds the last stable offset at its first record; the high
    // watermark moves on. Committing it releases the LSO past its marker.
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        producer.begin_transaction()?;
        send(&producer, "tx-a", 0, "open")?;
        producer.flush(TXN_TIMEOUT)?;
        Ok(())
    })?;
    eventually(
        "the open transaction's record below the high watermark",
        DEADLINE,
        || async {
            let high = latest_offset(&bootstrap, "tx-a", 0, READ_UNCOMMITTED)
                .await
                .ok()?;
            (high == 41).then_some(())
        },
    )
    .await?;
    assert_eq!(
        latest_offset(&bootstrap, "tx-a", 0, READ_COMMITTED).await?,
        40
    );
    // The lag metric says the same: one offset read_committed consumers cannot read yet.
    assert_eq!(stable_offset_lag(&broker, "tx-a", 0)?, 1);
    tokio::task::block_in_place(|| producer.commit_transaction(TXN_TIMEOUT))?;
    assert_eq!(
        latest_offset(&bootstrap, "tx-a", 0, READ_COMMITTED).await?,
        42
    );
    assert_eq!(stable_offset_lag(&broker, "tx-a", 0)?, 0);
    let metrics = http_get(&format!("{}/metrics", broker.admin_url()))?.body;
    let counted = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
    };
    assert_eq!(counted("strom_transactions_committed_total "), Some(11));
    assert_eq!(counted("strom_transactions_aborted_total "), Some(10));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_id_fences_the_first() -> anyhow::Result<()> {
    let broker = broker()?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "tx-fence", 1, &[]).await?;

    let zombie =
        tokio::task::block_in_place(|| transactional_producer(&bootstrap, "e2e-fence", &[]))?;
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        zombie.begin_transaction()?;
        send(&zombie, "tx-fence", 0, "zombie-1")?;
        zombie.flush(TXN_TIMEOUT)?;
        Ok(())
    })?;
    // The new instance's InitProducerId bumps the epoch and aborts the zombie's transaction.
    let fresh =
        tokio::task::block_in_place(|| transactional_producer(&bootstrap, "e2e-fence", &[]))?;
    let zombie_commit = tokio::task::block_in_place(|| {
        let _ = send(&zombie, "tx-fence", 0, "zombie-2");
        zombie.commit_transaction(TXN_TIMEOUT)
    });
    let error = zombie_commit.expect_err("the fenced producer cannot commit");
    assert!(
        error.to_string().to_lowercase().contains("fence"),
        "the zombie learns it was fenced: {error}"
    );
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        fresh.begin_transaction()?;
        send(&fresh, "tx-fence", 0, "fresh")?;
        fresh.commit_transaction(TXN_TIMEOUT)?;
        Ok(())
    })?;

    let committed = isolated_consumer(&bootstrap, "read_committed", &[("tx-fence", 0)])?;
    let read = tokio::task::block_in_place(|| read_exactly(&committed, 1, QUIET, DEADLINE))?;
    let values: Vec<&str> = read[&("tx-fence".to_string(), 0)]
        .iter()
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(values, ["fresh"], "none of the zombie's records is visible");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_open_past_its_timeout_is_aborted_by_the_coordinator() -> anyhow::Result<()> {
    let broker = broker()?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "tx-timeout", 1, &[]).await?;

    let producer = tokio::task::block_in_place(|| {
        transactional_producer(
            &bootstrap,
            "e2e-timeout",
            &[
                ("transaction.timeout.ms", "3000"),
                ("socket.timeout.ms", "3000"),
                ("message.timeout.ms", "3000"),
            ],
        )
    })?;
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        producer.begin_transaction()?;
        for i in 0..5 {
            send(&producer, "tx-timeout", 0, &format!("abandoned-{i}"))?;
        }
        producer.flush(TXN_TIMEOUT)?;
        Ok(())
    })?;
    assert_eq!(
        latest_offset(&bootstrap, "tx-timeout", 0, READ_COMMITTED).await?,
        0
    );
    // The coordinator's abort marker (offset 5) releases the last stable offset.
    eventually("the timed-out transaction aborted", DEADLINE, || async {
        let stable = latest_offset(&bootstrap, "tx-timeout", 0, READ_COMMITTED)
            .await
            .ok()?;
        (stable == 6).then_some(())
    })
    .await?;
    let committed = isolated_consumer(&bootstrap, "read_committed", &[("tx-timeout", 0)])?;
    let read = tokio::task::block_in_place(|| read_exactly(&committed, 0, QUIET, DEADLINE))?;
    assert!(
        read.is_empty(),
        "no record of the aborted transaction is visible: {read:?}"
    );
    let commit = tokio::task::block_in_place(|| producer.commit_transaction(TXN_TIMEOUT));
    assert!(
        commit.is_err(),
        "the producer whose transaction timed out cannot commit it"
    );
    Ok(())
}

/// Runs `program` with `args`, failing with its output unless it exits 0; returns its stdout.
fn run_client(
    program: &str,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &std::path::Path)],
) -> anyhow::Result<String> {
    let mut command = std::process::Command::new(program);
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command
        .output()
        .with_context(|| format!("running {program}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "{program} failed (run e2e/install-tools.sh if a module is missing):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_kafka_and_kafka_python_commit_and_abort() -> anyhow::Result<()> {
    let broker = broker()?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "py-a", 2, &[]).await?;
    create_topic(&bootstrap, "py-b", 1, &[]).await?;
    let script = repo_root().join("e2e/scripts/python_transactions.py");
    let stdout = tokio::task::block_in_place(|| {
        run_client(
            "python3",
            &[
                script.as_os_str(),
                bootstrap.as_ref(),
                "py-a".as_ref(),
                "py-b".as_ref(),
            ],
            &[],
        )
    })?;
    assert!(
        stdout.contains("read_committed records=30 exact_in_order=True"),
        "{stdout}"
    );
    assert!(
        stdout.contains("read_uncommitted records=60 exact_in_order=True"),
        "{stdout}"
    );
    assert!(
        stdout.contains("kafka-python read_committed=['kp-c0', 'kp-c1', 'kp-c2'] exact=True"),
        "{stdout}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkajs_transactions_commit_and_abort() -> anyhow::Result<()> {
    let modules = repo_root().join("e2e/.tools/node/node_modules");
    anyhow::ensure!(
        modules.join("kafkajs").is_dir(),
        "kafkajs is not installed: run e2e/install-tools.sh"
    );
    let broker = broker()?;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "js-txn", 1, &[]).await?;
    let script = repo_root().join("e2e/scripts/kafkajs_transactions.js");
    let stdout = tokio::task::block_in_place(|| {
        run_client(
            "node",
            &[script.as_os_str(), bootstrap.as_ref(), "js-txn".as_ref()],
            &[("NODE_PATH", modules.as_path())],
        )
    })?;
    assert!(
        stdout.contains("kafkajs committed=3 aborted_seen=0 in_order=true"),
        "{stdout}"
    );
    Ok(())
}
