//! Properties of the planner over random clusters, ISR states and specs: what a plan may never
//! do, and that re-planning from its own output repeats or waits.

use std::collections::BTreeMap;

use proptest::prelude::*;
use strom_admin::TopicPartition;

use super::fixture::{NEW, OLD, Simulator, admin, at, cluster, desired, refresh_log_dirs};
use super::roll::awaits_restart;
use super::*;
use crate::day2::action::Action;
use crate::day2::observed::{Observed, PartitionView};

/// A small deterministic generator, so one proptest seed describes a whole cluster.
struct Picker(u64);

impl Picker {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn distinct(&mut self, count: usize, n: i32) -> Vec<i32> {
        let mut ids: Vec<i32> = (0..n).collect();
        let mut out = Vec::new();
        while out.len() < count && !ids.is_empty() {
            out.push(ids.remove(self.below(ids.len())));
        }
        out
    }
}

/// What a random cluster may look like.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Degrade it: ISR gaps, brokers down, fenced, restarting, crash-looping, missing log dirs.
    degraded: bool,
    /// Smallest replication factor of a topic.
    min_rf: usize,
}

fn random_world(seed: u64, shape: Shape) -> (Desired, Observed) {
    let mut pick = Picker(seed | 1);
    let n = 3 + i32::try_from(pick.below(5)).unwrap_or(0);
    let racks = pick.below(4);
    let mut observed = cluster(n, NEW);
    for b in &mut observed.workload.brokers {
        if pick.chance(50) {
            b.revision = Some(OLD.to_owned());
        }
        if shape.degraded {
            b.ready = !pick.chance(15);
            b.crash_looping = !b.ready && pick.chance(40);
            b.restarting = pick.chance(5);
        }
    }
    let voters = if pick.chance(70) { 3 } else { 1 };
    let state = admin(&mut observed);
    state.controller =
        Some(i32::try_from(pick.below(usize::try_from(voters).unwrap_or(1))).unwrap_or(0));
    for b in &mut state.brokers {
        b.rack =
            (racks > 0).then(|| format!("zone-{}", usize::try_from(b.id).unwrap_or(0) % racks));
        if shape.degraded {
            b.fenced = pick.chance(10);
        }
    }
    for t in 0..1 + pick.below(4) {
        let partitions = 1 + pick.below(6);
        let rf = (shape.min_rf + pick.below(4 - shape.min_rf)).min(usize::try_from(n).unwrap_or(3));
        let min_isr = if shape.degraded {
            1 + i32::try_from(pick.below(3)).unwrap_or(0)
        } else {
            1 + i32::try_from(pick.below(rf.saturating_sub(1).max(1))).unwrap_or(0)
        };
        for index in 0..partitions {
            let replicas = pick.distinct(rf, n);
            let mut isr: Vec<i32> = replicas.clone();
            if shape.degraded {
                isr.retain(|_| !pick.chance(25));
            }
            state.partitions.push(PartitionView {
                partition: TopicPartition::new(format!("t{t}"), i32::try_from(index).unwrap_or(0)),
                leader: isr.first().copied(),
                replicas,
                isr,
                min_insync_replicas: min_isr,
                adding: Vec::new(),
                removing: Vec::new(),
            });
        }
    }
    state
        .partitions
        .sort_by(|a, b| a.partition.cmp(&b.partition));
    refresh_log_dirs(state);
    if shape.degraded && pick.chance(20) {
        let id = i32::try_from(pick.below(usize::try_from(n).unwrap_or(1))).unwrap_or(0);
        state.log_dirs.remove(&id);
    }

    let mut target = desired(n);
    target.voters = voters;
    target.replicas = (n + i32::try_from(pick.below(5)).unwrap_or(2) - 2).clamp(voters, 7);
    target.policy.allow_unavailable_partitions = pick.chance(30);
    target.policy.max_concurrent_moves = 1 + i32::try_from(pick.below(5)).unwrap_or(0);
    (target, observed)
}

/// Every count within one of their mean.
fn within_one_of_mean(counts: &[usize]) -> bool {
    let total: usize = counts.iter().sum();
    let n = counts.len();
    counts.iter().all(|&c| (c * n).abs_diff(total) <= n)
}

fn rf(p: &PartitionView) -> i32 {
    i32::try_from(p.target_replicas().len()).unwrap_or(i32::MAX)
}

/// What no plan may ever do, given what it observed.
fn check(desired: &Desired, observed: &Observed, plan: &Plan) -> Result<(), TestCaseError> {
    let Some(state) = &observed.admin else {
        return Ok(());
    };
    match &plan.action {
        Action::Restart { broker } => {
            let b = *broker;
            for p in state.partitions.iter().filter(|p| p.replicas.contains(&b)) {
                if rf(p) <= 1 || rf(p) < p.min_insync_replicas {
                    prop_assert!(
                        desired.policy.allow_unavailable_partitions,
                        "restarted {b} hosting unavailable {p:?}"
                    );
                } else if p.isr.contains(&b) {
                    let left = i32::try_from(p.isr.len()).unwrap_or(0) - 1;
                    prop_assert!(
                        left >= p.min_insync_replicas,
                        "restarting {b} leaves {p:?} below min ISR"
                    );
                }
            }
            for other in observed.workload.brokers.iter().filter(|o| o.id != b) {
                prop_assert!(
                    !other.restarting,
                    "restart of {b} while {} restarts",
                    other.id
                );
                if state.controller == Some(b) {
                    prop_assert!(
                        !awaits_restart(other, &desired.revision, &[]),
                        "controller {b} restarted before {}",
                        other.id
                    );
                }
            }
            prop_assert!(state.partitions.iter().all(|p| !p.reassigning()));
        }
        Action::Scale { replicas } if *replicas < observed.workload.replicas => {
            prop_assert!(*replicas >= desired.voters);
            for id in *replicas..observed.workload.replicas {
                for p in &state.partitions {
                    prop_assert!(
                        !p.replicas.contains(&id)
                            && !p.adding.contains(&id)
                            && p.leader != Some(id),
                        "broker {id} removed while it hosts {p:?}"
                    );
                }
                prop_assert_eq!(state.log_dirs.get(&id).map(BTreeMap::len), Some(0));
            }
            prop_assert!(state.partitions.iter().all(|p| rf(p) <= *replicas));
        }
        _ => {}
    }
    Ok(())
}

/// Re-planning from the same observation and the plan's own operation repeats the action, or
/// for an action done once, does not repeat it.
fn check_idempotent(
    desired: &Desired,
    observed: &Observed,
    first: &Plan,
    now: i64,
) -> Result<Plan, TestCaseError> {
    let again = plan(desired, observed, first.operation.as_ref(), at(now));
    check(desired, observed, &again)?;
    match &first.action {
        Action::Restart { .. } => {
            prop_assert_eq!(
                &again.action,
                &Action::Wait,
                "a recorded restart is not repeated"
            )
        }
        Action::ElectPreferred { .. }
        | Action::ClearThrottles
        | Action::CancelReassignments { .. } => {
            prop_assert_ne!(
                &again.action,
                &first.action,
                "a recorded one-shot action is not repeated"
            )
        }
        Action::Reassign { .. } => prop_assert!(
            again.action == first.action || again.action == Action::ClearThrottles,
            "{:?} then {:?}",
            first.action,
            again.action
        ),
        _ => prop_assert_eq!(&again.action, &first.action),
    }
    Ok(again)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn no_plan_breaks_availability_and_replanning_is_idempotent(seed in any::<u64>(), degraded in any::<bool>()) {
        let (desired, observed) = random_world(seed, Shape { degraded, min_rf: 1 });
        let first = plan(&desired, &observed, None, at(0));
        check(&desired, &observed, &first)?;
        let second = check_idempotent(&desired, &observed, &first, 0)?;
        if matches!(second.action, Action::Wait | Action::Idle) {
            let third = plan(&desired, &observed, second.operation.as_ref(), at(0));
            prop_assert_eq!(third.action, second.action);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whole operations on a simulated cluster whose brokers freeze now and then (out of the
    /// ISR, not ready, for a few passes): every pass is checked against what it observed, and
    /// the operation ends with the spec met.
    #[test]
    fn operations_complete_safely_one_broker_at_a_time(
        seed in any::<u64>(),
        faults in prop::collection::vec((0usize..60, 0i32..7, 1u32..6), 0..4),
    ) {
        let (desired, observed) = random_world(seed, Shape { degraded: false, min_rf: 2 });
        let n = observed.workload.replicas;
        let controller = observed.admin.as_ref().and_then(|a| a.controller);
        let old: Vec<i32> = observed
            .workload
            .brokers
            .iter()
            .filter(|b| b.revision.as_deref() == Some(OLD))
            .map(|b| b.id)
            .collect();
        let max_rf = observed.admin.as_ref().map_or(0, |a| a.partitions.iter().map(rf).max().unwrap_or(0));
        let refused = desired.replicas < observed.workload.replicas && max_rf > desired.replicas;
        let mut sim = Simulator::new(observed, desired.clone());
        let mut idle = false;
        for pass in 0..600 {
            for &(at_pass, broker, ticks) in &faults {
                if at_pass == pass {
                    sim.freeze(broker, ticks);
                }
            }
            let before = sim.observed.clone();
            let previous = sim.clone();
            let plan = sim.step();
            check(&desired, &before, &plan)?;
            if let Action::Restart { broker } = plan.action {
                prop_assert!(
                    previous.settled_but(broker),
                    "a restart of {} while another broker has not caught up: {:?}",
                    broker,
                    previous
                );
            }
            check_idempotent(&desired, &before, &plan, sim.second)?;
            let settled_refusal = refused && plan.action == Action::Wait && plan.operation.is_none();
            if plan.action == Action::Idle || settled_refusal {
                idle = true;
                break;
            }
            sim.tick();
        }
        prop_assert!(idle, "no end after 600 passes: {:?}", sim.operation);
        // Brokers frozen near the end thaw and catch up.
        for _ in 0..8 {
            sim.tick();
        }
        let mut restarted = sim.restarts.clone();
        restarted.sort_unstable();
        prop_assert_eq!(&restarted, &old, "each old broker restarted exactly once");
        if let Some(c) = controller.filter(|c| old.contains(c)) {
            prop_assert_eq!(sim.restarts.last(), Some(&c), "the active controller goes last");
        }
        prop_assert!(sim.observed.workload.brokers.iter().all(|b| b.revision.as_deref() == Some(NEW)));
        let state = sim.observed.admin.clone().unwrap_or_default();
        if !refused {
            prop_assert_eq!(sim.observed.workload.replicas, desired.replicas);
            prop_assert!(state.partitions.iter().all(|p| p.replicas.iter().all(|&id| id < desired.replicas)));
        }
        prop_assert!(state.partitions.iter().all(|p| p.isr.len() == p.replicas.len()), "all in sync at the end");
        let resized = desired.replicas != n && !refused;
        // A freeze moves leaderships, which only the next operation restores.
        if resized && faults.is_empty() && state.brokers.iter().all(|b| b.rack.is_none()) {
            let ids: Vec<i32> = (0..desired.replicas).collect();
            let replicas: Vec<usize> = ids
                .iter()
                .map(|id| state.partitions.iter().filter(|p| p.replicas.contains(id)).count())
                .collect();
            let leaders: Vec<usize> = ids
                .iter()
                .map(|id| state.partitions.iter().filter(|p| p.leader == Some(*id)).count())
                .collect();
            prop_assert!(within_one_of_mean(&replicas), "replicas per broker {:?}", replicas);
            prop_assert!(within_one_of_mean(&leaders), "leaders per broker {:?}", leaders);
        }
    }
}
