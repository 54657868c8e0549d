//! Scale-down: drain the brokers to remove, then stop them.
//!
//! Lowering `spec.replicas` moves every replica off brokers `spec.replicas..` (to the balanced
//! target over the remaining brokers, in throttled batches), waits until the metadata shows
//! them without replica or leadership and DescribeLogDirs shows their disks without partition,
//! and only then lowers the workload; the remaining brokers are balanced after. Refused while the remaining brokers are fewer than a
//! topic's replication factor or the removal would take a controller voter. Raising
//! `spec.replicas` during a drain cancels its moves in progress.

use std::collections::BTreeMap;

use strom_admin::TopicPartition;
use strom_crds::cluster::{OperationKind, OperationStatus};

use super::rebalance::{Batch, reassign};
use super::{
    Ctx, STEP_AWAITING_DRAIN, STEP_CANCELLING_DRAIN, STEP_SCALING, act, continued, elect_once,
    list, set_step, wait,
};
use crate::day2::action::{Action, Plan};
use crate::day2::observed::PartitionView;

/// Why the scale-down `spec.replicas` asks for is refused, if it is.
pub(super) fn refusal(ctx: &Ctx<'_>) -> Option<String> {
    let remaining = ctx.desired.replicas;
    if remaining >= ctx.workload.replicas {
        return None;
    }
    if remaining < ctx.desired.voters {
        return Some(format!(
            "spec.replicas={remaining} would remove controller voter(s) {}..{}: the voters are \
             brokers 0..{}",
            remaining,
            ctx.desired.voters - 1,
            ctx.desired.voters
        ));
    }
    let mut rf: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &ctx.admin.partitions {
        let entry = rf.entry(p.partition.topic.as_str()).or_insert(0);
        *entry = (*entry).max(p.target_replicas().len());
    }
    let too_wide: Vec<String> = rf
        .into_iter()
        .filter(|&(_, factor)| i32::try_from(factor).unwrap_or(i32::MAX) > remaining)
        .map(|(topic, factor)| format!("{topic} (replication factor {factor})"))
        .collect();
    (!too_wide.is_empty()).then(|| {
        format!(
            "spec.replicas={remaining} leaves fewer brokers than the replication factor of {}",
            list(&too_wide, 5)
        )
    })
}

/// What a raised `spec.replicas` does to a drain recorded in the status.
pub(super) enum Revert {
    /// Cancel its moves, or wait for the cancellation.
    Plan(Box<Plan>),
    /// The drain is over: no move of it is left.
    Over,
    /// No drain was reverted.
    NotReverted,
}

pub(super) fn revert(ctx: &Ctx<'_>, previous: Option<&OperationStatus>) -> Revert {
    let Some(op) = previous.filter(|op| op.kind == OperationKind::ScaleDown) else {
        return Revert::NotReverted;
    };
    let Some(first_removed) = op.broker else {
        return Revert::NotReverted;
    };
    if ctx.desired.replicas <= first_removed {
        return Revert::NotReverted;
    }
    let moving: Vec<TopicPartition> = ctx
        .admin
        .partitions
        .iter()
        .filter(|p| p.removing.iter().any(|&id| id >= first_removed))
        .map(|p| p.partition.clone())
        .collect();
    if moving.is_empty() {
        return Revert::Over;
    }
    let mut op = op.clone();
    let recorded = op.step.as_deref() == Some(STEP_CANCELLING_DRAIN);
    set_step(&mut op, STEP_CANCELLING_DRAIN, Some(first_removed), ctx.now);
    op.message = Some(format!(
        "spec.replicas went up to {}: cancelling the drain's moves of {}",
        ctx.desired.replicas,
        list(&moving, 5)
    ));
    if recorded {
        return Revert::Plan(Box::new(wait(op)));
    }
    Revert::Plan(Box::new(act(
        Action::CancelReassignments { partitions: moving },
        op,
    )))
}

pub(super) fn plan(
    ctx: &Ctx<'_>,
    previous: Option<&OperationStatus>,
    refused: bool,
) -> Option<Plan> {
    let remaining = ctx.desired.replicas;
    if remaining >= ctx.workload.replicas {
        // A drain that lowered the workload balances what the remaining brokers hold (the
        // drain moved only the partitions it had to), then elects preferred leaders.
        let op = previous?.clone();
        let brokers: Vec<i32> = (0..ctx.workload.replicas).collect();
        return match reassign(ctx, op, &brokers, |_| true, "balance the remaining brokers") {
            Batch::Plan(plan) => Some(plan),
            Batch::Done(op) => elect_once(ctx, op),
        };
    }
    if refused {
        return None;
    }
    let removed: Vec<i32> = (remaining..ctx.workload.replicas).collect();
    let brokers: Vec<i32> = (0..remaining).collect();
    let mut op = continued(OperationKind::ScaleDown, previous, ctx.now);
    op.broker = Some(remaining);

    let touches = |p: &PartitionView| {
        p.replicas
            .iter()
            .chain(&p.adding)
            .chain(p.leader.iter())
            .any(|id| removed.contains(id))
    };
    let mut op = match reassign(
        ctx,
        op,
        &brokers,
        |p| touches(p),
        &format!("drain broker(s) {}", list(&removed, 10)),
    ) {
        Batch::Plan(plan) => return Some(plan),
        Batch::Done(op) => op,
    };

    let not_empty: Vec<String> = removed
        .iter()
        .filter_map(|&id| {
            let in_metadata = ctx.admin.partitions.iter().any(|p| {
                p.replicas.contains(&id) || p.adding.contains(&id) || p.leader == Some(id)
            });
            match ctx.admin.log_dirs.get(&id) {
                _ if in_metadata => Some(format!("broker {id} still hosts replicas")),
                None => Some(format!("broker {id} did not report its log dirs")),
                Some(dirs) if !dirs.is_empty() => Some(format!(
                    "broker {id} still holds {} partition(s) on disk",
                    dirs.len()
                )),
                Some(_) => None,
            }
        })
        .collect();
    op.total_steps = i32::try_from(removed.len()).unwrap_or(i32::MAX);
    op.completed_steps = i32::try_from(removed.len() - not_empty.len()).unwrap_or(i32::MAX);
    if !not_empty.is_empty() {
        set_step(&mut op, STEP_AWAITING_DRAIN, Some(remaining), ctx.now);
        op.message = Some(format!("waiting for the drain: {}", not_empty.join("; ")));
        return Some(wait(op));
    }
    set_step(&mut op, STEP_SCALING, Some(remaining), ctx.now);
    op.done = removed.clone();
    op.message = Some(format!(
        "broker(s) {} drained: stopping them (spec.replicas={remaining})",
        list(&removed, 10)
    ));
    Some(act(
        Action::Scale {
            replicas: remaining,
        },
        op,
    ))
}
