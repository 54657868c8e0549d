//! A replication-factor change by `strom-operator local`: editing the manifest's Topic from
//! RF 2 to RF 3 while an idempotent `acks=all` producer and a consumer run moves every
//! partition to 3 replicas through reassignment, the Topic status shows the target and the
//! progress while it runs, and no acknowledged record is lost or duplicated.

use std::time::Duration;

use strom_admin::{KafkaAdmin, ReplicaAdmin};
use strom_e2e::cluster::eventually;
use strom_e2e::local::{
    FAST_BROKER_CONFIG, LocalOperator, READY_DEADLINE, cluster_manifest, topic,
};
use strom_e2e::workload::{Workload, WorkloadConfig};

const DEADLINE: Duration = Duration::from_secs(60);
const PARTITIONS: i32 = 6;

fn manifest(replication_factor: i32) -> String {
    cluster_manifest(
        3,
        3,
        FAST_BROKER_CONFIG,
        &[],
        &[topic("events", PARTITIONS, replication_factor, 2)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_the_replication_factor_moves_every_partition_to_three_replicas()
-> anyhow::Result<()> {
    let mut operator = LocalOperator::start(&manifest(2))?;
    let bootstrap = tokio::task::block_in_place(|| operator.await_ready(READY_DEADLINE))?;
    eventually("the topic to be ready with RF 2", DEADLINE, || async {
        let status = operator.status("Topic", "events")?;
        (LocalOperator::condition_true(&status, "Ready")
            && status["replicationFactor"].as_i64() == Some(2))
        .then_some(())
    })
    .await?;
    let workload = Workload::start(
        &bootstrap,
        WorkloadConfig::new("events", PARTITIONS).rate(500),
    )?;
    let progress = workload.progress();
    progress.wait_for(0, 1000, DEADLINE).await?;

    operator.apply(&manifest(3))?;
    let changing = eventually("the status to show the change", DEADLINE, || async {
        let status = operator.status("Topic", "events")?;
        (status["targetReplicationFactor"].as_i64() == Some(3) && !status["reassignment"].is_null())
            .then_some(status)
    })
    .await?;
    println!(
        "while changing: replicationFactor {:?} reassignment {:?}",
        changing["replicationFactor"].as_i64(),
        serde_yaml::to_string(&changing["reassignment"])?.replace('\n', " ")
    );
    assert!(
        !LocalOperator::condition_true(&changing, "Ready"),
        "a Topic whose factor is still changing is not Ready"
    );
    eventually("the topic to be ready with RF 3", DEADLINE, || async {
        let status = operator.status("Topic", "events")?;
        (LocalOperator::condition_true(&status, "Ready")
            && status["replicationFactor"].as_i64() == Some(3)
            && status
                .get("targetReplicationFactor")
                .is_none_or(serde_yaml::Value::is_null))
        .then_some(())
    })
    .await?;

    let admin = KafkaAdmin::connect(&bootstrap, Duration::from_secs(10)).await?;
    let partitions = eventually("every partition to have an ISR of 3", DEADLINE, || async {
        let topics = admin
            .describe_topics_partitions(Some(&["events"]))
            .await
            .ok()?;
        let partitions = topics.get("events")?.as_ref().ok()?.clone();
        (partitions.len() == PARTITIONS as usize
            && partitions
                .iter()
                .all(|p| p.replicas.len() == 3 && p.isr.len() == 3))
        .then_some(partitions)
    })
    .await?;
    for p in &partitions {
        println!(
            "partition {} replicas {:?} isr {:?}",
            p.partition, p.replicas, p.isr
        );
    }

    let acked = progress.acknowledged();
    progress.wait_for(acked, 500, DEADLINE).await?;
    let report = workload.finish(&bootstrap, DEADLINE).await?;
    println!("{report}");
    println!(
        "acked {} lost {} duplicated {} longest produce stall {:?}",
        report.acknowledged,
        report.lost(),
        report.duplicated(),
        report.longest_stall
    );
    report.ensure_clean(1500)?;
    operator.stop()?;
    Ok(())
}
