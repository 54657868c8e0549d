//! The Cluster planner: from what the spec asks ([`Desired`]), what the workload and the admin
//! API report ([`Observed`]) and the operation recorded in the status, the one next action.
//!
//! Pure and deterministic: no I/O, time only through `now`. Each pass runs at most one action
//! and records in the returned operation what the next pass needs to go on (the broker being
//! restarted and since when, the brokers done, the step), so an operator restarted between two
//! passes resumes where it was. Concerns, each in its own file:
//! - [`roll`]: rolling restarts onto the desired revision, one broker at a time;
//! - [`rebalance`]: starting brokers (provisioning, scale-up) and spreading replicas onto them;
//! - [`drain`]: scale-down, which moves every replica off the brokers to remove before stopping
//!   them, and its revert when `spec.replicas` goes up again;
//! - [`dynamic`]: the broker configs applied without a restart.
//!
//! Dynamic configs are applied whenever they differ, beside any operation. Otherwise an
//! operation in progress goes on before another starts; with none, starting brokers comes
//! first, then a roll, then a scale-down. A scale-down the plan refuses is reported as a
//! blocker on every plan while the spec asks for it, and the other operations go on.

mod drain;
mod dynamic;
mod rebalance;
mod roll;

pub use roll::RESTART_TIMEOUT_SECONDS;

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use strom_admin::TopicPartition;
use strom_crds::cluster::{OperationKind, OperationStatus};

use super::action::{Action, Blocker, Plan};
use super::desired::Desired;
use super::observed::{AdminState, Observed, PartitionView, WorkloadBroker, WorkloadState};

/// Step: a broker was restarted and has not come back yet.
pub const STEP_RESTARTING: &str = "Restarting";
/// Step: a restarted broker runs again and is catching up (metadata, ISR).
pub const STEP_AWAITING_CATCH_UP: &str = "AwaitingCatchUp";
/// Step: the operation waits for what its message names before its next action.
pub const STEP_BLOCKED: &str = "Blocked";
/// Step: brokers were asked for and are not all ready, registered and unfenced yet.
pub const STEP_AWAITING_BROKERS: &str = "AwaitingBrokers";
/// Step: the workload was set to a new broker count.
pub const STEP_SCALING: &str = "Scaling";
/// Step: a batch of partition moves runs.
pub const STEP_REASSIGNING: &str = "Reassigning";
/// Step: the replication throttles of a finished batch are being removed.
pub const STEP_CLEARING_THROTTLES: &str = "ClearingThrottles";
/// Step: the brokers to remove hold no replica in the metadata; their disks are not empty yet.
pub const STEP_AWAITING_DRAIN: &str = "AwaitingDrain";
/// Step: the reassignments of a drain are being cancelled (`spec.replicas` went up again).
pub const STEP_CANCELLING_DRAIN: &str = "CancellingDrain";
/// Step: a preferred-leader election was asked for; the operation ends with it.
pub const STEP_ELECTING_LEADERS: &str = "ElectingLeaders";

/// The next action for a Cluster. `previous` is the operation the status records
/// (`status.operation`); the returned plan's operation replaces it.
pub fn plan(
    desired: &Desired,
    observed: &Observed,
    previous: Option<&OperationStatus>,
    now: Time,
) -> Plan {
    if desired.paused {
        return Plan {
            action: if previous.is_some() {
                Action::Wait
            } else {
                Action::Idle
            },
            operation: previous.cloned(),
            blockers: Vec::new(),
        };
    }
    let Some(admin) = &observed.admin else {
        return rebalance::without_admin(desired, &observed.workload, previous, &now);
    };
    let ctx = Ctx {
        desired,
        workload: &observed.workload,
        admin,
        now: &now,
    };

    let refusal = drain::refusal(&ctx);
    let blockers: Vec<Blocker> = refusal
        .iter()
        .map(|message| Blocker::ScaleDownRefused {
            message: message.clone(),
        })
        .collect();
    let with_blockers = |mut plan: Plan, blockers: Vec<Blocker>| {
        plan.blockers.extend(blockers);
        plan
    };

    let mut previous = previous;
    match drain::revert(&ctx, previous) {
        drain::Revert::Plan(plan) => return with_blockers(*plan, blockers),
        drain::Revert::Over => previous = None,
        drain::Revert::NotReverted => {}
    }
    if let Some(plan) = dynamic::plan(&ctx, previous) {
        return with_blockers(plan, blockers);
    }

    let order = match previous.map(|op| op.kind) {
        Some(OperationKind::RollingUpgrade) => [Concern::Roll, Concern::Grow, Concern::Shrink],
        Some(OperationKind::ScaleDown) => [Concern::Shrink, Concern::Grow, Concern::Roll],
        _ => [Concern::Grow, Concern::Roll, Concern::Shrink],
    };
    for concern in order {
        let own = previous.filter(|op| concern.owns(op.kind));
        let plan = match concern {
            Concern::Roll => roll::plan(&ctx, own),
            Concern::Grow => rebalance::plan(&ctx, own),
            Concern::Shrink => drain::plan(&ctx, own, refusal.is_some()),
        };
        if let Some(plan) = plan {
            return with_blockers(plan, blockers);
        }
    }
    Plan {
        action: if blockers.is_empty() {
            Action::Idle
        } else {
            Action::Wait
        },
        operation: None,
        blockers,
    }
}

/// What one pass reads.
struct Ctx<'a> {
    desired: &'a Desired,
    workload: &'a WorkloadState,
    admin: &'a AdminState,
    now: &'a Time,
}

#[derive(Clone, Copy)]
enum Concern {
    Roll,
    Grow,
    Shrink,
}

impl Concern {
    fn owns(self, kind: OperationKind) -> bool {
        match self {
            Self::Roll => kind == OperationKind::RollingUpgrade,
            Self::Grow => matches!(
                kind,
                OperationKind::Provisioning | OperationKind::ScaleUp | OperationKind::Rebalance
            ),
            Self::Shrink => kind == OperationKind::ScaleDown,
        }
    }
}

impl Ctx<'_> {
    /// The brokers the workload runs, `0..replicas` (not the ones a scale-down is stopping).
    fn members(&self) -> impl Iterator<Item = &WorkloadBroker> {
        self.workload
            .brokers
            .iter()
            .filter(|b| b.id < self.workload.replicas)
    }

    fn broker(&self, id: i32) -> Option<&WorkloadBroker> {
        self.workload.brokers.iter().find(|b| b.id == id)
    }

    /// Registered with the controller and unfenced (so caught up on the metadata log).
    fn registered(&self, id: i32) -> bool {
        self.admin.brokers.iter().any(|b| b.id == id && !b.fenced)
    }

    /// Serving: running, ready, not being restarted, registered and unfenced.
    fn serving(&self, id: i32) -> bool {
        self.broker(id)
            .is_some_and(|b| b.ready && !b.restarting && !b.crash_looping)
            && self.registered(id)
    }

    fn reassigning(&self) -> Vec<&PartitionView> {
        self.admin
            .partitions
            .iter()
            .filter(|p| p.reassigning())
            .collect()
    }

    fn throttle(&self) -> Option<i64> {
        let rate = self.desired.policy.throttle_bytes_per_second;
        (rate > 0).then_some(rate)
    }
}

/// The operation of `kind`, going on from `previous` when it is of the same kind, else a new one
/// started now.
fn continued(
    kind: OperationKind,
    previous: Option<&OperationStatus>,
    now: &Time,
) -> OperationStatus {
    match previous {
        Some(op) if op.kind == kind => op.clone(),
        _ => OperationStatus {
            kind,
            started_at: now.clone(),
            completed_steps: 0,
            total_steps: 0,
            message: None,
            broker: None,
            step: None,
            step_started_at: None,
            attempts: 0,
            done: Vec::new(),
            revision: None,
        },
    }
}

/// Sets the step of `op`; its start time is kept while the step and its broker stay the same.
fn set_step(op: &mut OperationStatus, step: &str, broker: Option<i32>, now: &Time) {
    if op.step.as_deref() != Some(step) || op.broker != broker || op.step_started_at.is_none() {
        op.step_started_at = Some(now.clone());
    }
    op.step = Some(step.to_owned());
    op.broker = broker;
}

fn wait(operation: OperationStatus) -> Plan {
    Plan {
        action: Action::Wait,
        operation: Some(operation),
        blockers: Vec::new(),
    }
}

fn act(action: Action, operation: OperationStatus) -> Plan {
    Plan {
        action,
        operation: Some(operation),
        blockers: Vec::new(),
    }
}

/// Partitions whose leader is not their preferred replica while that replica is in sync (an
/// election could make it leader), outside reassignments.
fn elections(admin: &AdminState) -> Vec<TopicPartition> {
    admin
        .partitions
        .iter()
        .filter(|p| !p.reassigning())
        .filter(|p| {
            p.replicas
                .first()
                .is_some_and(|&preferred| p.leader != Some(preferred) && p.isr.contains(&preferred))
        })
        .map(|p| p.partition.clone())
        .collect()
}

/// Ends an operation with a preferred-leader election, once: `None` when it was asked for
/// already or nothing needs one.
fn elect_once(ctx: &Ctx<'_>, mut op: OperationStatus) -> Option<Plan> {
    if op.step.as_deref() == Some(STEP_ELECTING_LEADERS) {
        return None;
    }
    let partitions = elections(ctx.admin);
    if partitions.is_empty() {
        return None;
    }
    set_step(&mut op, STEP_ELECTING_LEADERS, None, ctx.now);
    op.message = Some(format!(
        "electing preferred leaders of {} partition(s): {}",
        partitions.len(),
        list(&partitions, 5)
    ));
    Some(act(Action::ElectPreferred { partitions }, op))
}

/// Up to `limit` items, comma-separated, with a count of the rest.
fn list<T: std::fmt::Display>(items: &[T], limit: usize) -> String {
    let mut out = items
        .iter()
        .take(limit)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > limit {
        out.push_str(&format!(" and {} more", items.len() - limit));
    }
    out
}

fn topics_of(partitions: &[&PartitionView]) -> Vec<String> {
    partitions
        .iter()
        .map(|p| p.partition.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
