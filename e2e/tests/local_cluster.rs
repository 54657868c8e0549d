//! `strom-operator local` starts a three-broker cluster from a manifest file: it prints one
//! ready line with a bootstrap list (the Kafka and controller ports the manifest pins, broker
//! `i` on base + `i`), creates the file's RF 3 / `min.insync.replicas=2` topic,
//! writes the status files, and an idempotent `acks=all` producer and a consumer lose and
//! duplicate nothing on it. SIGTERM stops the operator and every broker it started.

use std::time::Duration;

use strom_e2e::cluster::{eventually, reserve_port_range};
use strom_e2e::local::{
    FAST_BROKER_CONFIG, LocalOperator, READY_DEADLINE, alive, cluster_manifest, topic,
};
use strom_e2e::wait_until;
use strom_e2e::workload::{Workload, WorkloadConfig};

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_cluster_starts_serves_and_stops() -> anyhow::Result<()> {
    // Six free ports: the Kafka ports of brokers 0-2, then their controller ports.
    let kafka = reserve_port_range(6)?;
    let (kafka_base, controller_base) = (kafka.to_string(), (kafka + 3).to_string());
    let manifest = cluster_manifest(
        3,
        3,
        FAST_BROKER_CONFIG,
        &[
            ("strom.io/local-kafka-port", &kafka_base),
            ("strom.io/local-controller-port", &controller_base),
        ],
        &[topic("events", 3, 3, 2)],
    );
    let mut operator = LocalOperator::start(&manifest)?;
    let bootstrap = tokio::task::block_in_place(|| operator.await_ready(READY_DEADLINE))?;
    println!("ready: bootstrap={bootstrap}");
    let pinned: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", kafka + i)).collect();
    assert_eq!(
        bootstrap,
        pinned.join(","),
        "one address per broker, on the pinned ports"
    );
    for id in 0..3 {
        let ports = std::fs::read_to_string(operator.broker_dir(id).join("ports.yaml"))?;
        assert!(
            ports.contains(&format!("controller: {}", kafka + 3 + u16::try_from(id)?)),
            "broker {id}: {ports}"
        );
    }

    let cluster = operator
        .status("Cluster", "local")
        .expect("the cluster status file");
    assert!(
        LocalOperator::condition_true(&cluster, "Ready"),
        "{cluster:?}"
    );
    assert_eq!(cluster["readyReplicas"].as_i64(), Some(3), "{cluster:?}");
    assert_eq!(
        cluster["bootstrapServers"].as_str(),
        Some(bootstrap.as_str())
    );

    let status = eventually("the Topic's status file to say Ready", DEADLINE, || async {
        let status = operator.status("Topic", "events")?;
        LocalOperator::condition_true(&status, "Ready").then_some(status)
    })
    .await?;
    assert_eq!(status["partitions"].as_i64(), Some(3), "{status:?}");
    assert_eq!(status["replicationFactor"].as_i64(), Some(3), "{status:?}");

    let workload = Workload::start(&bootstrap, WorkloadConfig::new("events", 3).rate(1000))?;
    workload.progress().wait_for(0, 3000, DEADLINE).await?;
    let report = workload.finish(&bootstrap, DEADLINE).await?;
    println!("{report}");
    println!(
        "acked {} lost {} duplicated {} longest produce stall {:?}",
        report.acknowledged,
        report.lost(),
        report.duplicated(),
        report.longest_stall
    );
    report.ensure_clean(3000)?;

    let pids: Vec<u32> = (0..3).filter_map(|id| operator.broker_pid(id)).collect();
    assert_eq!(pids.len(), 3, "every broker has its pid recorded");
    tokio::task::block_in_place(|| operator.stop())?;
    wait_until(
        "every broker to have exited",
        Duration::from_secs(5),
        || pids.iter().all(|pid| !alive(*pid)).then_some(()),
    )?;
    Ok(())
}
