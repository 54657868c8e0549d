//! No acknowledged record is lost while brokers crash: 3 brokers (all voters), a topic of 6
//! partitions with replication factor 3 and `min.insync.replicas=2`, an idempotent `acks=all`
//! producer and a consumer running throughout, and a seeded random schedule of 20 `kill -9` and
//! restarts of partition leaders and the active controller, one broker down at a time. Every
//! acknowledged record is consumed exactly once, in order per partition.

use std::time::Duration;

use strom_e2e::chaos::{self, ChaosConfig};
use strom_e2e::cluster::Cluster;
use strom_e2e::replicas::{fast_replication, replicated_workload};

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "crashes";
const PARTITIONS: i32 = 6;
const STEPS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_under_twenty_crashes() -> anyhow::Result<()> {
    let mut cluster =
        tokio::task::spawn_blocking(|| Cluster::start(3, 0, fast_replication)).await??;
    cluster.await_controller(DEADLINE).await?;
    let workload =
        replicated_workload(&cluster, &cluster.bootstrap(), TOPIC, PARTITIONS, DEADLINE).await?;
    // Writes flow before the first fault (replicated_workload waited for them) and between
    // any two.
    let config =
        ChaosConfig::new(TOPIC, PARTITIONS, STEPS)?.with_progress(workload.progress(), 200);
    let chaos = chaos::run(&mut cluster, &config).await;
    if let Err(error) = &chaos {
        println!("chaos failed: {error:#}");
    }
    let report = workload.finish(&cluster.bootstrap(), DEADLINE).await;
    if let Ok(report) = &report {
        println!("{report}");
    }
    let chaos = chaos?;
    let report = report?;
    println!("{chaos}");
    println!(
        "records acknowledged {}, lost {}, duplicated {}, out of order {}, longest produce stall {:.2?}",
        report.acknowledged,
        report.lost(),
        report.duplicated(),
        report.out_of_order(),
        report.longest_stall
    );
    assert_eq!(chaos.kills(), STEPS);
    assert_eq!(report.lost(), 0, "{report}");
    assert_eq!(report.duplicated(), 0, "{report}");
    assert_eq!(report.out_of_order(), 0, "{report}");
    report.ensure_clean(STEPS as u64 * 200)?;
    Ok(())
}
