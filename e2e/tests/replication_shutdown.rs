//! Controlled shutdown under load: SIGTERM to a broker that leads partitions moves every one of
//! its leaderships to another replica while it is still running, then it exits cleanly; the
//! idempotent `acks=all` producer sees no failed delivery (only retriable errors, retried), and
//! nothing is lost. Two rounds: a broker that is not the controller, then the controller.
//! Between rounds the restarted broker gets its preferred leaderships back (auto leader
//! rebalance, checked every second here), so whichever broker is the controller in round two
//! leads partitions when it gets its SIGTERM.

use std::time::{Duration, Instant};

use anyhow::Context;
use strom_e2e::cluster::{Cluster, eventually};
use strom_e2e::replicas::{
    await_healthy, fast_replication, partitions, partitions_in, replicated_workload,
};

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "shutdown";
const PARTITIONS: i32 = 6;

/// Whether process `pid` still runs (exists and is not a zombie waiting to be reaped).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_moves_leaderships_before_exit_and_the_producer_sees_no_failure()
-> anyhow::Result<()> {
    let mut cluster = tokio::task::spawn_blocking(|| {
        Cluster::start(3, 0, |id, options| {
            fast_replication(id, options).with("leader.imbalance.check.interval.seconds", "1")
        })
    })
    .await??;
    cluster.await_controller(DEADLINE).await?;
    let workload =
        replicated_workload(&cluster, &cluster.bootstrap(), TOPIC, PARTITIONS, DEADLINE).await?;
    let progress = workload.progress();

    for round in 0..2 {
        let controller = cluster.await_controller(DEADLINE).await?;
        let layout = partitions_in(&cluster, TOPIC).await?;
        let target = if round == 0 {
            layout
                .values()
                .map(|p| p.leader)
                .find(|l| *l != controller)
                .context("a leader that is not the controller")?
        } else {
            controller
        };
        let led: Vec<i32> = layout
            .iter()
            .filter(|(_, p)| p.leader == target)
            .map(|(partition, _)| *partition)
            .collect();
        anyhow::ensure!(!led.is_empty(), "broker {target} leads nothing: {layout:?}");
        let id = usize::try_from(target)?;
        let witness = cluster
            .broker((0..3).find(|b| *b != id).context("another broker")?)
            .bootstrap();
        let pid = cluster.broker(id).pid().context("a running broker")?;

        let sent = Instant::now();
        cluster.broker(id).signal("TERM")?;
        // Watch Metadata from another broker for as long as the process lives.
        let mut moved_while_running = None;
        while alive(pid) && sent.elapsed() < DEADLINE {
            if let Ok(Ok(found)) =
                tokio::time::timeout(Duration::from_secs(1), partitions(&witness, TOPIC)).await
                && led.iter().all(|p| {
                    found
                        .get(p)
                        .is_some_and(|s| s.leader >= 0 && s.leader != target)
                })
                && alive(pid)
            {
                moved_while_running.get_or_insert(sent.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let exited_after = sent.elapsed();
        tokio::task::block_in_place(|| cluster.broker_mut(id).stop())
            .with_context(|| format!("broker {target} exits cleanly after SIGTERM"))?;
        println!(
            "round {round}: SIGTERM to broker {target} (leader of {led:?}, controller {controller}): \
             leaderships moved after {moved_while_running:?}, exited after {exited_after:?}"
        );
        let moved = moved_while_running.with_context(|| {
            format!(
                "Metadata never showed partitions {led:?} led by another broker while broker \
                 {target} was still running (it exited after {exited_after:?})"
            )
        })?;
        assert!(moved <= exited_after);

        progress
            .wait_for(progress.acknowledged(), 300, DEADLINE)
            .await?;
        tokio::task::block_in_place(|| cluster.broker_mut(id).restart())?;
        await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
        eventually(
            "every partition led by its preferred replica again",
            DEADLINE,
            || async {
                let layout = partitions_in(&cluster, TOPIC).await.ok()?;
                layout
                    .values()
                    .all(|p| p.replicas.first() == Some(&p.leader))
                    .then_some(())
            },
        )
        .await?;
        progress
            .wait_for(progress.acknowledged(), 300, DEADLINE)
            .await?;
    }

    let report = workload.finish(&cluster.bootstrap(), DEADLINE).await?;
    println!("{report}");
    println!(
        "longest produce stall across two controlled shutdowns: {:.2?}",
        report.longest_stall
    );
    assert_eq!(
        report.failed, 0,
        "no delivery failed: the producer saw only retriable errors\n{report}"
    );
    assert!(
        report.send_errors.is_empty(),
        "no send was refused\n{report}"
    );
    assert_eq!(report.lost(), 0, "{report}");
    assert_eq!(report.duplicated(), 0, "{report}");
    assert_eq!(report.out_of_order(), 0, "{report}");
    report.ensure_clean(1500)?;
    Ok(())
}
