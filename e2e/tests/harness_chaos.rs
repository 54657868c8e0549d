//! The crash schedule of the replication tests, proven on the metadata quorum and single-replica
//! partitions: every step kills the broker it names (the active controller or a partition
//! leader), brings it back, and ends with the cluster whole again.

use std::time::Duration;

use strom_e2e::chaos::{self, ChaosConfig, Downtime, Target};
use strom_e2e::cluster::{Cluster, fast_sessions};
use strom_e2e::kafka::create_topic;
use strom_e2e::replicas::{await_healthy, leaders};

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_step_crashes_its_target_and_waits_until_the_cluster_is_whole() -> anyhow::Result<()> {
    let mut cluster = tokio::task::spawn_blocking(|| Cluster::start(3, 0, fast_sessions)).await??;
    cluster.await_controller(DEADLINE).await?;
    create_topic(&cluster.broker(0).bootstrap(), "chaos", 6, &[]).await?;
    await_healthy(&cluster, Some("chaos"), DEADLINE).await?;

    // The active controller, waiting for a new one each time.
    let controllers = ChaosConfig {
        controller_share: 1.0,
        failover_share: 1.0,
        seed: 1,
        ..ChaosConfig::new("chaos", 6, 3)?
    };
    // Partition leaders: a single replica has no successor, so these steps pause instead.
    let leaders_config = ChaosConfig {
        controller_share: 0.0,
        failover_share: 0.0,
        seed: 2,
        ..ChaosConfig::new("chaos", 6, 3)?
    };
    for config in [controllers, leaders_config] {
        let planned = chaos::plan(&config);
        let pids: Vec<Option<u32>> = cluster.brokers().iter().map(|b| b.pid()).collect();
        let before = leaders(&cluster, "chaos").await?;
        let report = chaos::run(&mut cluster, &config).await?;
        println!("{report}");
        assert_eq!(report.kills(), 3);
        for (record, step) in report.steps.iter().zip(&planned) {
            assert_eq!(record.step, *step, "steps run as planned");
            assert_ne!(
                cluster.broker(record.victim).pid(),
                pids[record.victim],
                "broker {} was restarted",
                record.victim
            );
            match step.downtime {
                Downtime::UntilFailover => assert!(record.failover.is_some()),
                Downtime::Pause(pause) => assert!(record.down_for >= pause),
            }
        }
        if let Some(first) = report.steps.first()
            && let Target::PartitionLeader(partition) = first.step.target
        {
            assert_eq!(
                i32::try_from(first.victim)?,
                before[&partition],
                "the first step hit the leader of partition {partition}"
            );
        }
        assert_eq!(cluster.running(), vec![0, 1, 2]);
        await_healthy(&cluster, Some("chaos"), DEADLINE).await?;
    }
    Ok(())
}
