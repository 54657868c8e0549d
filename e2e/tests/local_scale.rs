//! Scaling by `strom-operator local`, while an idempotent `acks=all` producer and a consumer
//! run on an RF 3 / `min.insync.replicas=2` topic: 3 → 5 brokers spreads replicas and leaders
//! evenly (each broker within ±1 of the mean); 5 → 3 drains the two brokers first, survives
//! the operator being killed with SIGKILL mid-drain (the next one adopts the running brokers
//! and resumes), and leaves the removed brokers' directories without a partition.

use std::collections::BTreeMap;
use std::time::Duration;

use strom_admin::{KafkaAdmin, ReplicaAdmin};
use strom_e2e::cluster::eventually;
use strom_e2e::local::{
    FAST_BROKER_CONFIG, LocalOperator, READY_DEADLINE, alive, cluster_manifest, topic,
};
use strom_e2e::workload::{Report, Workload, WorkloadConfig};

const DEADLINE: Duration = Duration::from_secs(60);
const SCALE_DEADLINE: Duration = Duration::from_secs(90);
const PARTITIONS: i32 = 6;

/// The two tests run five brokers each; one at a time keeps them from starving each other of
/// the machine's cores (a starved producer stalls past the deadlines).
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn manifest(replicas: i32) -> String {
    cluster_manifest(
        replicas,
        3,
        FAST_BROKER_CONFIG,
        &[],
        &[topic("events", PARTITIONS, 3, 2)],
    )
}

async fn start(replicas: i32) -> anyhow::Result<(LocalOperator, String)> {
    let mut operator = LocalOperator::start(&manifest(replicas))?;
    let bootstrap = tokio::task::block_in_place(|| operator.await_ready(READY_DEADLINE))?;
    eventually("the topic to be ready", DEADLINE, || async {
        let status = operator.status("Topic", "events")?;
        LocalOperator::condition_true(&status, "Ready").then_some(())
    })
    .await?;
    Ok((operator, bootstrap))
}

/// Waits until the Cluster status says Ready with `replicas` ready brokers and no operation.
async fn await_settled(operator: &LocalOperator, replicas: i64) -> anyhow::Result<()> {
    eventually(
        &format!("the cluster to settle on {replicas} brokers"),
        SCALE_DEADLINE,
        || async {
            let status = operator.status("Cluster", "local")?;
            (LocalOperator::condition_true(&status, "Ready")
                && status
                    .get("operation")
                    .is_none_or(serde_yaml::Value::is_null)
                && status["readyReplicas"].as_i64() == Some(replicas))
            .then_some(())
        },
    )
    .await
}

fn print(report: &Report) {
    println!("{report}");
    println!(
        "acked {} lost {} duplicated {} longest produce stall {:?}",
        report.acknowledged,
        report.lost(),
        report.duplicated(),
        report.longest_stall
    );
}

/// Per broker, the replicas and the leaderships it has of every partition of the cluster.
async fn spread(bootstrap: &str) -> anyhow::Result<(BTreeMap<i32, usize>, BTreeMap<i32, usize>)> {
    let admin = KafkaAdmin::connect(bootstrap, Duration::from_secs(10)).await?;
    let topics = admin.describe_topics_partitions(None).await?;
    let mut replicas = BTreeMap::new();
    let mut leaders = BTreeMap::new();
    for partitions in topics.into_values() {
        for p in partitions? {
            for broker in &p.replicas {
                *replicas.entry(*broker).or_insert(0) += 1;
            }
            if let Some(leader) = p.leader {
                *leaders.entry(leader).or_insert(0) += 1;
            }
        }
    }
    Ok((replicas, leaders))
}

/// Whether every one of `brokers` has a count within ±1 of the mean.
fn balanced(counts: &BTreeMap<i32, usize>, brokers: &[i32]) -> bool {
    let values: Vec<f64> = brokers
        .iter()
        .map(|b| counts.get(b).copied().unwrap_or(0) as f64)
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    values.iter().all(|v| (v - mean).abs() <= 1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_up_to_five_brokers_spreads_replicas_and_leaders_evenly() -> anyhow::Result<()> {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (operator, bootstrap) = start(3).await?;
    let workload = Workload::start(
        &bootstrap,
        WorkloadConfig::new("events", PARTITIONS).rate(500),
    )?;
    let progress = workload.progress();
    progress.wait_for(0, 1000, DEADLINE).await?;

    operator.apply(&manifest(5))?;
    await_settled(&operator, 5).await?;
    let acked = progress.acknowledged();
    progress.wait_for(acked, 500, DEADLINE).await?;
    let report = workload.finish(&bootstrap, DEADLINE).await?;
    print(&report);
    report.ensure_clean(1500)?;

    let five = operator
        .status("Cluster", "local")
        .and_then(|s| s["bootstrapServers"].as_str().map(str::to_owned))
        .expect("a bootstrap list");
    let (replicas, leaders) = spread(&five).await?;
    println!("replicas per broker {replicas:?}, leaders per broker {leaders:?}");
    let brokers = [0, 1, 2, 3, 4];
    assert!(
        balanced(&replicas, &brokers),
        "replicas per broker {replicas:?}"
    );
    assert!(
        balanced(&leaders, &brokers),
        "leaders per broker {leaders:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_down_drains_first_and_resumes_after_the_operator_is_killed() -> anyhow::Result<()>
{
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (mut operator, bootstrap) = start(5).await?;
    let pids: BTreeMap<i32, u32> = (0..5)
        .filter_map(|id| Some((id, operator.broker_pid(id)?)))
        .collect();
    let remaining = bootstrap.split(',').take(3).collect::<Vec<_>>().join(",");
    let workload = Workload::start(
        &remaining,
        WorkloadConfig::new("events", PARTITIONS).rate(500),
    )?;
    let progress = workload.progress();
    progress.wait_for(0, 1000, DEADLINE).await?;

    operator.apply(&manifest(3))?;
    let step = eventually("the drain to be under way", SCALE_DEADLINE, || async {
        let status = operator.status("Cluster", "local")?;
        let op = status.get("operation")?;
        (op["kind"].as_str() == Some("ScaleDown"))
            .then(|| op["step"].as_str().unwrap_or_default().to_owned())
    })
    .await?;
    println!("killing the operator mid-drain (step {step})");
    operator.kill9();
    for (id, pid) in &pids {
        assert!(alive(*pid), "broker {id} outlives the operator");
    }
    operator.restart()?;
    await_settled(&operator, 3).await?;
    for id in 0..3 {
        assert_eq!(
            operator.broker_pid(id),
            pids.get(&id).copied(),
            "broker {id} was adopted, not restarted"
        );
    }
    for id in [3, 4] {
        assert!(!alive(pids[&id]), "broker {id} is stopped");
        let data = operator.broker_dir(id).join("data");
        let held: Vec<String> = std::fs::read_dir(&data)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("events-"))
            .collect();
        assert!(held.is_empty(), "broker {id} still holds {held:?}");
    }

    let acked = progress.acknowledged();
    progress.wait_for(acked, 500, DEADLINE).await?;
    let report = workload.finish(&remaining, DEADLINE).await?;
    print(&report);
    report.ensure_clean(1500)?;
    Ok(())
}
