//! Starting brokers (provisioning, scale-up) and spreading replicas onto them.
//!
//! The workload is set to `spec.replicas`; once every broker is ready, registered and unfenced,
//! the replicas move to the balanced target ([`assignment::balanced`]) in batches of at most
//! `maxConcurrentMoves` partitions, throttled; the throttles go when a batch is done; a
//! preferred-leader election ends the operation. A cluster where a broker hosts nothing while
//! the balanced target would give it replicas (brokers added outside the planner) is rebalanced
//! the same way.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use strom_admin::TopicPartition;
use strom_crds::cluster::{OperationKind, OperationStatus};

use super::{
    Ctx, STEP_AWAITING_BROKERS, STEP_CLEARING_THROTTLES, STEP_REASSIGNING, STEP_SCALING, act,
    continued, elect_once, list, set_step, wait,
};
use crate::day2::action::{Action, Plan};
use crate::day2::assignment;
use crate::day2::desired::Desired;
use crate::day2::observed::{PartitionView, WorkloadState};

pub(super) fn plan(ctx: &Ctx<'_>, previous: Option<&OperationStatus>) -> Option<Plan> {
    if ctx.workload.replicas < ctx.desired.replicas {
        return Some(scale_up(ctx.desired, ctx.workload, previous, ctx.now));
    }
    let op = match previous {
        Some(op) => op.clone(),
        None => {
            if !new_brokers_empty(ctx) {
                return None;
            }
            continued(OperationKind::Rebalance, None, ctx.now)
        }
    };
    // Brokers a scale-down asked to remove take no replica.
    let brokers: Vec<i32> = (0..ctx.workload.replicas.min(ctx.desired.replicas)).collect();
    let waiting: Vec<i32> = brokers
        .iter()
        .copied()
        .filter(|&id| !ctx.serving(id))
        .collect();
    if !waiting.is_empty() {
        let mut op = op;
        set_step(&mut op, STEP_AWAITING_BROKERS, None, ctx.now);
        op.total_steps = ctx.workload.replicas;
        op.completed_steps = ctx.workload.replicas - i32::try_from(waiting.len()).unwrap_or(0);
        op.message = Some(format!(
            "waiting for broker(s) {} to be ready, registered and unfenced",
            list(&waiting, 10)
        ));
        return Some(wait(op));
    }
    match reassign(ctx, op, &brokers, |_| true, "balance replicas and leaders") {
        Batch::Plan(plan) => Some(plan),
        Batch::Done(op) => elect_once(ctx, op),
    }
}

/// Without the admin API only starting missing brokers may proceed.
pub(super) fn without_admin(
    desired: &Desired,
    workload: &WorkloadState,
    previous: Option<&OperationStatus>,
    now: &Time,
) -> Plan {
    if workload.replicas < desired.replicas {
        return scale_up(desired, workload, previous, now);
    }
    let operation = previous.cloned().map(|mut op| {
        op.message = Some("waiting for a broker to answer the Kafka admin API".to_owned());
        op
    });
    Plan {
        action: Action::Wait,
        operation,
        blockers: Vec::new(),
    }
}

fn scale_up(
    desired: &Desired,
    workload: &WorkloadState,
    previous: Option<&OperationStatus>,
    now: &Time,
) -> Plan {
    let grows = |kind| {
        matches!(
            kind,
            OperationKind::Provisioning | OperationKind::ScaleUp | OperationKind::Rebalance
        )
    };
    let kind = match previous.map(|op| op.kind) {
        Some(kind) if grows(kind) && kind != OperationKind::Rebalance => kind,
        _ if workload.replicas == 0 || !workload.brokers.iter().any(|b| b.ready) => {
            OperationKind::Provisioning
        }
        _ => OperationKind::ScaleUp,
    };
    let mut op = continued(kind, previous.filter(|op| grows(op.kind)), now);
    set_step(&mut op, STEP_SCALING, None, now);
    op.total_steps = desired.replicas;
    op.completed_steps = workload.replicas;
    op.message = Some(format!(
        "starting broker(s) {}..{} (spec.replicas={})",
        workload.replicas,
        desired.replicas - 1,
        desired.replicas
    ));
    act(
        Action::Scale {
            replicas: desired.replicas,
        },
        op,
    )
}

/// Whether a serving broker hosts no replica while the balanced target gives it some: brokers
/// were added without the planner starting them.
fn new_brokers_empty(ctx: &Ctx<'_>) -> bool {
    let brokers: Vec<i32> = (0..ctx.workload.replicas).collect();
    if ctx.desired.replicas < ctx.workload.replicas
        || !ctx.reassigning().is_empty()
        || !brokers.iter().all(|&id| ctx.serving(id))
    {
        return false;
    }
    let hosts = |id: i32| {
        ctx.admin
            .partitions
            .iter()
            .any(|p| p.replicas.contains(&id))
    };
    let empty: Vec<i32> = brokers.iter().copied().filter(|&id| !hosts(id)).collect();
    if empty.is_empty() {
        return false;
    }
    let target = assignment::balanced(&ctx.admin.partitions, &ctx.admin.brokers, &brokers);
    target
        .values()
        .any(|r| r.iter().any(|id| empty.contains(id)))
}

/// What one batch step of moves yields.
pub(super) enum Batch {
    /// The action to run (a batch, clearing its throttles, waiting for it).
    Plan(Plan),
    /// No move is left; the operation goes on from here.
    Done(OperationStatus),
}

/// The next step towards the balanced target over `brokers` for the partitions `selected`
/// keeps: wait for moves in progress, clear the throttles of a finished batch, start the next
/// batch.
pub(super) fn reassign(
    ctx: &Ctx<'_>,
    mut op: OperationStatus,
    brokers: &[i32],
    selected: impl Fn(&PartitionView) -> bool,
    purpose: &str,
) -> Batch {
    let moving = ctx.reassigning();
    let remaining = moves(ctx, brokers, &selected);
    let broker = op.broker;
    let in_batches = matches!(
        op.step.as_deref(),
        Some(STEP_REASSIGNING | STEP_CLEARING_THROTTLES)
    );
    if !in_batches || remaining.len() > usize::try_from(op.total_steps).unwrap_or(0) {
        op.total_steps = i32::try_from(remaining.len() + moving.len()).unwrap_or(i32::MAX);
    }
    op.completed_steps = op
        .total_steps
        .saturating_sub(i32::try_from(remaining.len() + moving.len()).unwrap_or(i32::MAX))
        .max(0);

    if !moving.is_empty() {
        set_step(&mut op, STEP_REASSIGNING, broker, ctx.now);
        let names: Vec<&TopicPartition> = moving.iter().map(|p| &p.partition).collect();
        op.message = Some(format!(
            "{} partition(s) moving to {purpose}: {}",
            moving.len(),
            list(&names, 5)
        ));
        return Batch::Plan(wait(op));
    }
    if op.step.as_deref() == Some(STEP_REASSIGNING) && ctx.throttle().is_some() {
        set_step(&mut op, STEP_CLEARING_THROTTLES, broker, ctx.now);
        op.message = Some("a batch of moves finished: removing its replication throttles".into());
        return Batch::Plan(act(Action::ClearThrottles, op));
    }
    if remaining.is_empty() {
        return Batch::Done(op);
    }
    let batch: BTreeMap<TopicPartition, Vec<i32>> = remaining
        .into_iter()
        .take(usize::try_from(ctx.desired.policy.max_concurrent_moves.max(1)).unwrap_or(1))
        .collect();
    set_step(&mut op, STEP_REASSIGNING, broker, ctx.now);
    let names: Vec<&TopicPartition> = batch.keys().collect();
    op.message = Some(format!(
        "moving {} partition(s) to {purpose}: {}",
        batch.len(),
        list(&names, 5)
    ));
    Batch::Plan(act(
        Action::Reassign {
            moves: batch,
            throttle: ctx.throttle(),
        },
        op,
    ))
}

/// The partitions `selected` keeps whose balanced target over `brokers` differs from their
/// replicas, in partition order.
fn moves(
    ctx: &Ctx<'_>,
    brokers: &[i32],
    selected: &impl Fn(&PartitionView) -> bool,
) -> Vec<(TopicPartition, Vec<i32>)> {
    let target = assignment::balanced(&ctx.admin.partitions, &ctx.admin.brokers, brokers);
    ctx.admin
        .partitions
        .iter()
        .filter(|p| selected(p))
        .filter_map(|p| {
            let replicas = target.get(&p.partition)?;
            (replicas != &p.target_replicas()).then(|| (p.partition.clone(), replicas.clone()))
        })
        .collect()
}
