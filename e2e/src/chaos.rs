//! A bounded random fault schedule over a [`Cluster`]: each step crashes one broker with
//! `kill -9` (the leader of a random partition of a topic, or the active controller), waits,
//! restarts it and waits until the cluster is whole again before the next step, so at most one
//! broker is ever down.
//!
//! The schedule is drawn from a seeded RNG; the seed is printed and `STROM_CHAOS_SEED` replays
//! it. Which broker a step hits depends on the cluster's state at that moment (who leads what),
//! so a replay repeats the same choices, not necessarily the same victims.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cluster::{Cluster, describe_cluster, eventually};
use crate::replicas::{await_healthy, partitions};
use crate::workload::Progress;

/// Environment variable that replays a schedule.
pub const SEED_VAR: &str = "STROM_CHAOS_SEED";

/// Whom a step crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The leader of this partition of the topic.
    PartitionLeader(i32),
    /// The active controller.
    Controller,
}

/// How long a crashed broker stays down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downtime {
    /// Until the cluster has moved on without it: another broker leads the partition, or
    /// another controller is active.
    UntilFailover,
    /// A fixed pause, often shorter than failover takes: the broker returns before (or while)
    /// the cluster reacts.
    Pause(Duration),
}

/// One planned step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub target: Target,
    pub downtime: Downtime,
}

/// The schedule's parameters.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub topic: String,
    pub partitions: i32,
    pub steps: usize,
    pub seed: u64,
    /// Share of steps that hit the active controller.
    pub controller_share: f64,
    /// Share of steps that wait for failover instead of a pause.
    pub failover_share: f64,
    /// Longest pause of a [`Downtime::Pause`] step.
    pub max_pause: Duration,
    /// Bound on each wait (failover, restart, recovery).
    pub deadline: Duration,
    /// When set, each step also waits until the workload acknowledged this many more records
    /// after the cluster recovered, so faults never land on an idle producer.
    pub progress: Option<(Progress, u64)>,
}

impl ChaosConfig {
    /// `steps` steps over `partitions` partitions of `topic`, seeded from `STROM_CHAOS_SEED` or
    /// at random.
    pub fn new(topic: &str, partitions: i32, steps: usize) -> anyhow::Result<ChaosConfig> {
        let seed = match std::env::var(SEED_VAR) {
            Ok(value) => value
                .parse()
                .with_context(|| format!("{SEED_VAR}={value} is not a u64"))?,
            Err(_) => rand::rng().random(),
        };
        Ok(ChaosConfig {
            topic: topic.to_owned(),
            partitions,
            steps,
            seed,
            controller_share: 0.3,
            failover_share: 0.5,
            max_pause: Duration::from_millis(1500),
            deadline: Duration::from_secs(30),
            progress: None,
        })
    }

    /// Waits for `records` more acknowledged records of the workload after each step.
    pub fn with_progress(mut self, progress: Progress, records: u64) -> ChaosConfig {
        self.progress = Some((progress, records));
        self
    }
}

/// The steps a seed draws: the same seed gives the same steps.
pub fn plan(config: &ChaosConfig) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let max_pause = u64::try_from(config.max_pause.as_millis()).unwrap_or(u64::MAX);
    (0..config.steps)
        .map(|_| {
            let target = if rng.random_bool(config.controller_share) {
                Target::Controller
            } else {
                Target::PartitionLeader(rng.random_range(0..config.partitions.max(1)))
            };
            let downtime = if rng.random_bool(config.failover_share) {
                Downtime::UntilFailover
            } else {
                Downtime::Pause(Duration::from_millis(rng.random_range(0..=max_pause)))
            };
            Step { target, downtime }
        })
        .collect()
}

/// What one step did.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub step: Step,
    pub victim: usize,
    /// Time from the kill until the cluster moved on, for [`Downtime::UntilFailover`] steps.
    pub failover: Option<Duration>,
    /// Time the broker was down.
    pub down_for: Duration,
    /// Time from the restart until the cluster was whole again.
    pub recovered_in: Duration,
}

/// The whole schedule as it ran.
#[derive(Debug, Clone)]
pub struct ChaosReport {
    pub seed: u64,
    pub steps: Vec<StepRecord>,
}

impl ChaosReport {
    /// Steps that crashed a broker (all of them: every step is one `kill -9`).
    pub fn kills(&self) -> usize {
        self.steps.len()
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chaos report: {} kill -9 steps, seed {} (replay with {SEED_VAR}={})",
            self.steps.len(),
            self.seed,
            self.seed
        )?;
        for (i, s) in self.steps.iter().enumerate() {
            let target = match s.step.target {
                Target::Controller => "controller".to_owned(),
                Target::PartitionLeader(p) => format!("leader of partition {p}"),
            };
            let failover = s
                .failover
                .map(|d| format!(", failover {d:.2?}"))
                .unwrap_or_default();
            write!(
                f,
                "\n  step {i:>2}: kill -9 broker {} ({target}), down {:.2?}{failover}, whole again {:.2?} after restart",
                s.victim, s.down_for, s.recovered_in
            )?;
        }
        Ok(())
    }
}

/// Runs the schedule of `config` over `cluster`. Every broker must be running at the start;
/// each step ends with the cluster whole (see [`await_healthy`]). Fails at the first wait that
/// passes its deadline, saying which.
pub async fn run(cluster: &mut Cluster, config: &ChaosConfig) -> anyhow::Result<ChaosReport> {
    println!(
        "chaos: {} steps, seed {} (replay with {SEED_VAR}={})",
        config.steps, config.seed, config.seed
    );
    let mut report = ChaosReport {
        seed: config.seed,
        steps: Vec::new(),
    };
    for (index, step) in plan(config).into_iter().enumerate() {
        let record = run_step(cluster, config, step)
            .await
            .with_context(|| format!("chaos step {index} ({step:?}), seed {}", config.seed))?;
        println!(
            "chaos: step {index}: broker {} down {:.2?}, whole {:.2?} after restart",
            record.victim, record.down_for, record.recovered_in
        );
        report.steps.push(record);
    }
    Ok(report)
}

async fn run_step(
    cluster: &mut Cluster,
    config: &ChaosConfig,
    step: Step,
) -> anyhow::Result<StepRecord> {
    let acknowledged = config.progress.as_ref().map(|(p, _)| p.acknowledged());
    let victim = match step.target {
        Target::Controller => usize::try_from(cluster.await_controller(config.deadline).await?)?,
        Target::PartitionLeader(partition) => {
            usize::try_from(leader_of(cluster, &config.topic, partition, config.deadline).await?)?
        }
    };
    let killed = Instant::now();
    cluster.broker_mut(victim).kill9();
    let failover = match step.downtime {
        Downtime::Pause(pause) => {
            tokio::time::sleep(pause).await;
            None
        }
        Downtime::UntilFailover => {
            await_moved_on(cluster, config, step.target, victim).await?;
            Some(killed.elapsed())
        }
    };
    let down_for = killed.elapsed();
    tokio::task::block_in_place(|| cluster.broker_mut(victim).restart())
        .with_context(|| format!("restarting broker {victim}"))?;
    println!(
        "chaos: {} broker {victim} killed {down_for:.2?} ago, restarted at {}",
        crate::workload::trace::clock(),
        cluster.broker(victim).bootstrap()
    );
    let restarted = Instant::now();
    await_healthy(cluster, Some(&config.topic), config.deadline).await?;
    let recovered_in = restarted.elapsed();
    if let (Some((progress, more)), Some(since)) = (&config.progress, acknowledged) {
        progress.wait_for(since, *more, config.deadline).await?;
    }
    Ok(StepRecord {
        step,
        victim,
        failover,
        down_for,
        recovered_in,
    })
}

/// The current leader of `partition`, once one is known.
async fn leader_of(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    deadline: Duration,
) -> anyhow::Result<i32> {
    eventually(
        &format!("a leader of {topic}-{partition}"),
        deadline,
        || async {
            for id in cluster.running() {
                if let Ok(found) = partitions(&cluster.broker(id).bootstrap(), topic).await
                    && let Some(state) = found.get(&partition)
                    && state.leader >= 0
                {
                    return Some(state.leader);
                }
            }
            None
        },
    )
    .await
}

/// Waits until every running broker shows the cluster moved on from `victim`.
async fn await_moved_on(
    cluster: &Cluster,
    config: &ChaosConfig,
    target: Target,
    victim: usize,
) -> anyhow::Result<()> {
    let victim = i32::try_from(victim)?;
    match target {
        Target::Controller => {
            eventually(
                &format!("every survivor to agree on a controller other than broker {victim}"),
                config.deadline,
                || async {
                    let mut agreed = None;
                    for id in cluster.running() {
                        let view = describe_cluster(&cluster.broker(id).bootstrap())
                            .await
                            .ok()?;
                        if view.controller_id < 0
                            || view.controller_id == victim
                            || agreed.is_some_and(|a| a != view.controller_id)
                        {
                            return None;
                        }
                        agreed = Some(view.controller_id);
                    }
                    agreed.map(|_| ())
                },
            )
            .await
        }
        Target::PartitionLeader(partition) => {
            eventually(
                &format!(
                    "a leader of {}-{partition} other than broker {victim}",
                    config.topic
                ),
                config.deadline,
                || async {
                    for id in cluster.running() {
                        let found = partitions(&cluster.broker(id).bootstrap(), &config.topic)
                            .await
                            .ok()?;
                        let leader = found.get(&partition)?.leader;
                        if leader < 0 || leader == victim {
                            return None;
                        }
                    }
                    Some(())
                },
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> ChaosConfig {
        ChaosConfig {
            topic: "t".to_owned(),
            partitions: 6,
            steps: 200,
            seed,
            controller_share: 0.3,
            failover_share: 0.5,
            max_pause: Duration::from_millis(1500),
            deadline: Duration::from_secs(30),
            progress: None,
        }
    }

    #[test]
    fn a_seed_replays_the_same_schedule() {
        assert_eq!(plan(&config(42)), plan(&config(42)));
        assert_ne!(plan(&config(42)), plan(&config(43)));
    }

    #[test]
    fn schedules_mix_targets_and_downtimes_within_bounds() {
        let steps = plan(&config(7));
        assert_eq!(steps.len(), 200);
        let controller = steps
            .iter()
            .filter(|s| s.target == Target::Controller)
            .count();
        assert!((20..120).contains(&controller), "{controller} of 200");
        let mut partitions = std::collections::BTreeSet::new();
        for step in &steps {
            match step.target {
                Target::PartitionLeader(p) => {
                    assert!((0..6).contains(&p));
                    partitions.insert(p);
                }
                Target::Controller => {}
            }
            if let Downtime::Pause(pause) = step.downtime {
                assert!(pause <= Duration::from_millis(1500));
            }
        }
        assert_eq!(partitions.len(), 6, "every partition's leader is hit");
        assert!(steps.iter().any(|s| s.downtime == Downtime::UntilFailover));
        assert!(
            steps
                .iter()
                .any(|s| matches!(s.downtime, Downtime::Pause(_)))
        );
    }
}
