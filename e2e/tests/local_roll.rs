//! A rolling restart by `strom-operator local`: a broker config change that needs a restart
//! restarts each of the three brokers exactly once, the active controller last, while an
//! idempotent `acks=all` producer and a consumer run on an RF 3 / `min.insync.replicas=2`
//! topic: nothing lost, nothing duplicated, and the producer never told NOT_ENOUGH_REPLICAS.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use strom_e2e::cluster::eventually;
use strom_e2e::local::{
    FAST_BROKER_CONFIG, LocalOperator, READY_DEADLINE, cluster_manifest, topic,
};
use strom_e2e::workload::{Workload, WorkloadConfig};

const DEADLINE: Duration = Duration::from_secs(60);
const ROLL_DEADLINE: Duration = Duration::from_secs(90);

fn manifest(extra: &[(&str, &str)]) -> String {
    let mut config: Vec<(&str, &str)> = FAST_BROKER_CONFIG.to_vec();
    config.extend_from_slice(extra);
    cluster_manifest(3, 3, &config, &[], &[topic("events", 3, 3, 2)])
}

/// The operation a status reports, `None` once it is gone.
fn operation(status: &serde_yaml::Value) -> Option<&serde_yaml::Value> {
    status.get("operation").filter(|op| !op.is_null())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_rolls_each_broker_once_controller_last_and_loses_nothing()
-> anyhow::Result<()> {
    let mut operator = LocalOperator::start(&manifest(&[]))?;
    let bootstrap = tokio::task::block_in_place(|| operator.await_ready(READY_DEADLINE))?;
    eventually("the topic to be ready", DEADLINE, || async {
        let status = operator.status("Topic", "events")?;
        LocalOperator::condition_true(&status, "Ready").then_some(())
    })
    .await?;
    let before: BTreeMap<i32, u32> = (0..3)
        .filter_map(|id| Some((id, operator.broker_pid(id)?)))
        .collect();
    let status = operator.status("Cluster", "local").expect("cluster status");
    let controller = status["controllerId"].as_i64().expect("a controller");
    let old_revision = status["brokers"][0]["version"].as_str().map(str::to_owned);

    let workload = Workload::start(&bootstrap, WorkloadConfig::new("events", 3).rate(500))?;
    let progress = workload.progress();
    progress.wait_for(0, 1000, DEADLINE).await?;

    // log.retention.check.interval.ms is read at start only: changing it needs a restart.
    operator.apply(&manifest(&[("log.retention.check.interval.ms", "290000")]))?;

    // Each broker's pid, in the order they changed, until the roll is over.
    let mut restarts: Vec<i32> = Vec::new();
    let mut current = before.clone();
    let end = Instant::now() + ROLL_DEADLINE;
    loop {
        for id in 0..3 {
            if let Some(pid) = operator.broker_pid(id)
                && current.get(&id) != Some(&pid)
            {
                current.insert(id, pid);
                restarts.push(id);
                println!("broker {id} restarted (pid {pid})");
            }
        }
        let finished = operator.status("Cluster", "local").is_some_and(|s| {
            operation(&s).is_none()
                && LocalOperator::condition_true(&s, "Ready")
                && s["brokers"].as_sequence().is_some_and(|b| {
                    b.iter()
                        .all(|b| b["version"].as_str() != old_revision.as_deref())
                })
        });
        if finished {
            break;
        }
        anyhow::ensure!(
            Instant::now() < end,
            "the roll did not finish within {ROLL_DEADLINE:?}; restarts so far {restarts:?}; status {:?}",
            operator.status("Cluster", "local")
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let acked_during_roll = progress.acknowledged();
    progress.wait_for(acked_during_roll, 500, DEADLINE).await?;
    let report = workload.finish(&bootstrap, DEADLINE).await?;
    println!("{report}");
    println!(
        "restart order {restarts:?} (controller was {controller}); acked {} lost {} duplicated {} longest produce stall {:?}",
        report.acknowledged,
        report.lost(),
        report.duplicated(),
        report.longest_stall
    );

    let mut sorted = restarts.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [0, 1, 2],
        "each broker restarted exactly once: {restarts:?}"
    );
    assert_eq!(
        restarts.last().map(|id| i64::from(*id)),
        Some(controller),
        "the active controller goes last: {restarts:?}"
    );
    report.ensure_clean(1500)?;
    let not_enough = [
        &report.delivery_errors,
        &report.send_errors,
        &report.client_errors,
    ]
    .iter()
    .flat_map(|errors| errors.keys())
    .filter(|kind| kind.contains("NotEnoughReplicas"))
    .count();
    assert_eq!(
        not_enough, 0,
        "the producer saw NOT_ENOUGH_REPLICAS\n{report}"
    );
    Ok(())
}
