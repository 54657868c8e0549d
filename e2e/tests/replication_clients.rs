//! Other clients than the reference one survive a leader crash of a replicated topic: kcat
//! (Debian's, librdkafka 2.0.2), confluent-kafka, kafka-python and kafkajs each produce with
//! `acks=all` to partition 0 of a 3-broker RF 3 topic while its leader is killed (`kill -9`)
//! and restarted; every record is delivered, and the partition holds each exactly once, in
//! order.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use strom_e2e::cluster::Cluster;
use strom_e2e::kafka::{assigned_consumer, consume, create_replicated_topic};
use strom_e2e::replicas::{await_healthy, await_partitions, fast_replication, partitions_in};
use strom_e2e::{repo_root, tool, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "clients";
const COUNT: usize = 300;
/// Records the partition holds before the leader is killed.
const BEFORE_KILL: i64 = 50;

fn expected(prefix: &str) -> Vec<String> {
    (0..COUNT).map(|i| format!("{prefix}-{i:05}")).collect()
}

async fn cluster() -> anyhow::Result<Cluster> {
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3, 0, fast_replication)).await??;
    cluster.await_controller(DEADLINE).await?;
    create_replicated_topic(
        &cluster.bootstrap(),
        TOPIC,
        1,
        3,
        &[("min.insync.replicas", "2")],
    )
    .await?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
    Ok(cluster)
}

fn high_watermark(consumer: &BaseConsumer) -> Option<i64> {
    consumer
        .fetch_watermarks(TOPIC, 0, Duration::from_secs(2))
        .ok()
        .map(|(_, high)| high)
}

/// Runs `client` (already producing to `cluster`), kills the partition's leader once it holds
/// [`BEFORE_KILL`] records, restarts it after the failover, and checks what the client wrote.
async fn survive_leader_kill(
    mut cluster: Cluster,
    name: &str,
    mut client: Child,
    prefix: &str,
) -> anyhow::Result<()> {
    let watcher = assigned_consumer(&cluster.bootstrap(), TOPIC, 1)?;
    tokio::task::block_in_place(|| {
        wait_until(
            &format!("{name} to write {BEFORE_KILL} records"),
            DEADLINE,
            || high_watermark(&watcher).filter(|h| *h >= BEFORE_KILL),
        )
    })?;
    let before = partitions_in(&cluster, TOPIC).await?[&0].clone();
    let leader = usize::try_from(before.leader)?;
    cluster.broker_mut(leader).kill9();
    let killed = Instant::now();
    await_partitions(&cluster, TOPIC, "a new leader", DEADLINE, |found| {
        found
            .get(&0)
            .is_some_and(|p| p.leader >= 0 && p.leader != before.leader)
    })
    .await?;
    let failover = killed.elapsed();
    tokio::task::block_in_place(|| cluster.broker_mut(leader).restart())?;

    let output = tokio::task::block_in_place(|| {
        let end = Instant::now() + Duration::from_secs(90);
        loop {
            if client.try_wait()?.is_some() {
                break anyhow::Ok(client.wait_with_output()?);
            }
            if Instant::now() > end {
                let _ = client.kill();
                anyhow::bail!("{name} did not finish within 90 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{name}: leader {leader} killed, new leader after {failover:?}; {stdout}");
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );

    let reader = assigned_consumer(&cluster.bootstrap(), TOPIC, 1)?;
    let read = tokio::task::block_in_place(|| consume(&reader, COUNT, DEADLINE))?;
    let values: Vec<String> = read
        .iter()
        .filter_map(|m| Some(String::from_utf8_lossy(m.payload()?).into_owned()))
        .collect();
    assert_eq!(
        values,
        expected(prefix),
        "{name}: every record once, in order"
    );
    let end = tokio::task::block_in_place(|| high_watermark(&reader)).context("a watermark")?;
    assert_eq!(
        end,
        i64::try_from(COUNT)?,
        "{name}: nothing else in the partition"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_survives_a_leader_kill() -> anyhow::Result<()> {
    let kcat = tool("kcat")?;
    let cluster = cluster().await?;
    let mut client = Command::new(&kcat)
        .args(["-b", &cluster.bootstrap(), "-t", TOPIC, "-p", "0", "-P"])
        .args(["-X", "acks=all", "-X", "enable.idempotence=true"])
        .args(["-X", "message.timeout.ms=60000"])
        .args(["-X", "topic.metadata.refresh.interval.ms=1000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = client.stdin.take().context("kcat stdin")?;
    // kcat reads lines as they come: the writer paces them so the kill lands mid-stream.
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for line in expected("kcat") {
            writeln!(stdin, "{line}")?;
            stdin.flush()?;
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    });
    let result = survive_leader_kill(cluster, "kcat", client, "kcat").await;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the kcat writer panicked"))??;
    result
}

fn python_client(cluster: &Cluster, client: &str) -> anyhow::Result<Child> {
    Command::new("python3")
        .arg(repo_root().join("e2e/scripts/replicated_producer.py"))
        .args([client, &cluster.bootstrap(), TOPIC, &COUNT.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("python3 (run e2e/install-tools.sh)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_kafka_survives_a_leader_kill() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let client = python_client(&cluster, "confluent-kafka")?;
    survive_leader_kill(cluster, "confluent-kafka", client, "confluent-kafka").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_survives_a_leader_kill() -> anyhow::Result<()> {
    let cluster = cluster().await?;
    let client = python_client(&cluster, "kafka-python")?;
    survive_leader_kill(cluster, "kafka-python", client, "kafka-python").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafkajs_survives_a_leader_kill() -> anyhow::Result<()> {
    let modules = repo_root().join("e2e/.tools/node/node_modules");
    anyhow::ensure!(
        modules.join("kafkajs").is_dir(),
        "kafkajs is not installed: run e2e/install-tools.sh"
    );
    let cluster = cluster().await?;
    let client = Command::new("node")
        .arg(repo_root().join("e2e/scripts/kafkajs_producer.js"))
        .args([&cluster.bootstrap(), TOPIC, &COUNT.to_string()])
        .env("NODE_PATH", &modules)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("node")?;
    survive_leader_kill(cluster, "kafkajs", client, "kafkajs").await
}
