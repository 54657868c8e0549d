//! Rolling restarts onto the desired revision, one broker at a time. A broker whose volume's
//! filesystem grows only on a restart (its claim reports `FileSystemResizePending`) is restarted
//! by the same roll, once per operation, even when it runs the desired revision.
//!
//! Order: brokers that are not ready or crash-looping first (they serve nothing), then the
//! brokers that are not controller voters, then the voters, the active controller last. A broker
//! goes only when every partition it hosts keeps `min.insync.replicas` in-sync replicas without
//! it, no reassignment runs, every other broker serves and no partition is under-replicated on
//! another broker. After its restart the roll waits until it runs the desired revision, is
//! ready, registered, unfenced and back in the ISR of each of its partitions, with no partition
//! under-replicated; a broker that does not run again within [`RESTART_TIMEOUT_SECONDS`] is
//! restarted again, up to `maxRestartAttempts` times, then reported. A restart again that stays
//! blocked (a partition it hosts, or the PodDisruptionBudget refusing the eviction) uses up an
//! attempt per [`RESTART_TIMEOUT_SECONDS`] it waits, so such a broker is reported too.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use strom_admin::TopicPartition;
use strom_crds::cluster::{OperationKind, OperationStatus};

use super::{
    Ctx, STEP_AWAITING_CATCH_UP, STEP_BLOCKED, STEP_RESTARTING, act, continued, elect_once, list,
    set_step, topics_of, wait,
};
use crate::day2::action::{Action, Blocker, Plan};
use crate::day2::observed::{PartitionView, WorkloadBroker};

/// Time a restarted broker gets to run again (ready, registered, unfenced) before it is
/// restarted once more.
pub const RESTART_TIMEOUT_SECONDS: i64 = 300;

pub(super) fn plan(ctx: &Ctx<'_>, previous: Option<&OperationStatus>) -> Option<Plan> {
    let desired = ctx.desired;
    let mut op = continued(OperationKind::RollingUpgrade, previous, ctx.now);
    // The broker in flight is awaited on the revision it was restarted onto, even when the
    // target changed since.
    let restarted_onto = op.revision.clone();
    if let Some(plan) = in_step(ctx, &mut op, restarted_onto.as_deref()) {
        return Some(plan);
    }
    if op.revision.as_deref() != Some(desired.revision.as_str()) {
        // The target changed (or a roll starts): brokers done before run an older revision.
        op.done.clear();
        op.revision = Some(desired.revision.clone());
    }

    // A broker restarted in this operation is not restarted again for its filesystem resize:
    // the restart was its chance, and a driver slow to clear the condition must not make the
    // roll restart it twice.
    let mut pending: Vec<&WorkloadBroker> = ctx
        .members()
        .filter(|b| awaits_restart(b, &desired.revision, &op.done))
        .collect();
    if pending.is_empty() {
        // Nothing to restart: a roll that ran ends with a preferred-leader election.
        previous?;
        op.total_steps = i32::try_from(op.done.len()).unwrap_or(i32::MAX);
        op.completed_steps = op.total_steps;
        return elect_once(ctx, op);
    }
    pending.sort_by_key(|b| (order(ctx, b), b.id));
    op.completed_steps = i32::try_from(op.done.len()).unwrap_or(i32::MAX);
    op.total_steps = i32::try_from(op.done.len() + pending.len()).unwrap_or(i32::MAX);
    let candidate = pending[0].id;

    op.attempts = 0;
    // The partitions that block come first in the message: they are what a person can act on.
    let blockers = restart_blockers(ctx, candidate);
    let mut why: Vec<String> = Vec::new();
    if !blockers.is_empty() {
        why.push(blocked_message(ctx, candidate, &blockers));
    }
    why.extend(not_now(ctx, candidate, &op.done));
    if !why.is_empty() {
        set_step(&mut op, STEP_BLOCKED, Some(candidate), ctx.now);
        op.message = Some(why.join("; "));
        let mut plan = wait(op);
        plan.blockers = blockers;
        return Some(plan);
    }
    Some(restart(ctx, op, candidate))
}

/// Whether this roll is still to restart `broker`: it runs an older revision than
/// `revision`, or its filesystem resize is pending and it was not restarted in this operation
/// (one of `done`).
pub(super) fn awaits_restart(broker: &WorkloadBroker, revision: &str, done: &[i32]) -> bool {
    runs_old_revision(broker, revision) || (broker.resize_pending && !done.contains(&broker.id))
}

/// Whether `broker` runs another revision than `revision`. One that runs but reports none (it
/// was started before revisions were recorded) is restarted too; one without a revision that is
/// not ready is still starting.
fn runs_old_revision(broker: &WorkloadBroker, revision: &str) -> bool {
    match &broker.revision {
        Some(r) => r != revision,
        None => broker.ready,
    }
}

/// Why `broker` is restarted, for the operation's message.
fn restart_purpose(ctx: &Ctx<'_>, broker: i32) -> String {
    let revision = &ctx.desired.revision;
    match ctx.broker(broker) {
        Some(b) if b.resize_pending && !runs_old_revision(b, revision) => {
            "to finish growing its volume's filesystem (its claim reports \
             FileSystemResizePending)"
                .to_owned()
        }
        _ => format!("onto revision {revision}"),
    }
}

/// The restart order class of `broker`: lower goes first.
fn order(ctx: &Ctx<'_>, broker: &WorkloadBroker) -> u8 {
    if ctx.admin.controller == Some(broker.id) {
        3
    } else if !broker.ready || broker.crash_looping {
        0
    } else if broker.id >= ctx.desired.voters {
        1
    } else {
        2
    }
}

/// Goes on with the broker the recorded step restarted: `Some` while the roll waits for it (or
/// restarts it again), `None` once it is back (it joins `done`) or when no broker is in a step.
fn in_step(ctx: &Ctx<'_>, op: &mut OperationStatus, restarted_onto: Option<&str>) -> Option<Plan> {
    let broker = op.broker?;
    let step = op.step.clone()?;
    // A restart again that is blocked (a partition it hosts, or a refused eviction) stays this
    // broker's step, so its attempts are not forgotten.
    let blocked_again = step == STEP_BLOCKED && op.attempts > 0;
    if step != STEP_RESTARTING && step != STEP_AWAITING_CATCH_UP && !blocked_again {
        return None;
    }
    let revision = ctx.desired.revision.as_str();
    let state = ctx.broker(broker);
    let new_revision = state
        .and_then(|b| b.revision.as_deref())
        .is_some_and(|r| r == revision || Some(r) == restarted_onto);
    let lagging = lagging(ctx, broker, &op.done);

    if new_revision && ctx.serving(broker) {
        if lagging.is_empty() {
            if state.and_then(|b| b.revision.as_deref()) == Some(revision)
                && !op.done.contains(&broker)
            {
                op.done.push(broker);
                op.done.sort_unstable();
            }
            op.broker = None;
            op.step = None;
            op.step_started_at = None;
            op.attempts = 0;
            return None;
        }
        set_step(op, STEP_AWAITING_CATCH_UP, Some(broker), ctx.now);
        op.message = Some(format!(
            "broker {broker} runs again; waiting until it is back in every ISR and no partition \
             is under-replicated: {}",
            list(&lagging, 5)
        ));
        return Some(wait(op.clone()));
    }

    let since = op
        .step_started_at
        .clone()
        .unwrap_or_else(|| op.started_at.clone());
    let overdue = seconds_between(&since, ctx.now) >= RESTART_TIMEOUT_SECONDS;
    let max = ctx.desired.policy.max_restart_attempts;
    if blocked_again {
        // Each restart deadline spent blocked uses up an attempt, so a broker that stays down
        // while its restart is refused is reported like one whose restarts did not help.
        if overdue && op.attempts < max {
            op.attempts += 1;
            op.step_started_at = Some(ctx.now.clone());
        }
        if op.attempts >= max {
            return Some(exhausted(op, broker));
        }
        return Some(restart(ctx, op.clone(), broker));
    }
    if !overdue {
        op.message = Some(format!(
            "waiting for broker {broker} to run revision {revision}, be ready, registered and \
             unfenced (restart attempt {} of {})",
            op.attempts, ctx.desired.policy.max_restart_attempts
        ));
        return Some(wait(op.clone()));
    }
    if op.attempts >= max {
        return Some(exhausted(op, broker));
    }
    Some(restart(ctx, op.clone(), broker))
}

/// Waits at `broker`, whose restart attempts are used up, and reports it.
fn exhausted(op: &mut OperationStatus, broker: i32) -> Plan {
    let blocked = op.step.as_deref() == Some(STEP_BLOCKED);
    op.message = Some(format!(
        "broker {broker} did not come back after {} restart attempt(s){}",
        op.attempts,
        if blocked {
            ", the last ones blocked past the restart deadline"
        } else {
            ""
        }
    ));
    let mut plan = wait(op.clone());
    plan.blockers.push(Blocker::RestartsExhausted { broker });
    plan
}

/// Restarts `broker` if the partitions it hosts allow it, else waits and says which block.
fn restart(ctx: &Ctx<'_>, mut op: OperationStatus, broker: i32) -> Plan {
    let blockers = restart_blockers(ctx, broker);
    if !blockers.is_empty() {
        set_step(&mut op, STEP_BLOCKED, Some(broker), ctx.now);
        let mut message = blocked_message(ctx, broker, &blockers);
        if op.attempts > 0 {
            message.push_str(&format!(
                " (broker {broker} did not come back after {} of {} restart attempt(s))",
                op.attempts, ctx.desired.policy.max_restart_attempts
            ));
        }
        op.message = Some(message);
        let mut plan = wait(op);
        plan.blockers = blockers;
        return plan;
    }
    op.attempts += 1;
    op.step = Some(STEP_RESTARTING.to_owned());
    op.broker = Some(broker);
    op.step_started_at = Some(ctx.now.clone());
    op.message = Some(format!(
        "restarting broker {broker} {} (attempt {} of {})",
        restart_purpose(ctx, broker),
        op.attempts,
        ctx.desired.policy.max_restart_attempts
    ));
    act(Action::Restart { broker }, op)
}

/// Why no broker may be restarted now: a reassignment runs, another broker is being restarted
/// or does not serve, or a partition is short of an in-sync replica on another broker.
fn not_now(ctx: &Ctx<'_>, candidate: i32, done: &[i32]) -> Vec<String> {
    let mut why = Vec::new();
    let moving = ctx.reassigning();
    if !moving.is_empty() {
        why.push(format!(
            "waiting for the reassignment of {} partition(s) to finish before restarting broker \
             {candidate}",
            moving.len()
        ));
    }
    let others: Vec<i32> = ctx
        .members()
        .filter(|b| b.id != candidate)
        .filter(|b| {
            b.restarting || (!awaits_restart(b, &ctx.desired.revision, done) && !ctx.serving(b.id))
        })
        .map(|b| b.id)
        .collect();
    if !others.is_empty() {
        why.push(format!(
            "waiting for broker(s) {} to be ready, registered and unfenced before restarting \
             broker {candidate}",
            list(&others, 10)
        ));
    }
    let short = under_replicated(ctx, candidate, done);
    if !short.is_empty() {
        why.push(format!(
            "waiting for under-replicated partition(s) {} to catch up before restarting broker \
             {candidate}",
            list(&short, 5)
        ));
    }
    why
}

/// Partitions short of an in-sync replica on a broker other than `broker`, leaving out brokers
/// that are down and still to be restarted (the roll restarts them in turn; waiting for them to
/// catch up first would wait forever).
fn under_replicated(ctx: &Ctx<'_>, broker: i32, done: &[i32]) -> Vec<TopicPartition> {
    let awaiting_restart = |id: i32| {
        ctx.broker(id)
            .is_some_and(|b| awaits_restart(b, &ctx.desired.revision, done) && !ctx.serving(id))
    };
    ctx.admin
        .partitions
        .iter()
        .filter(|p| {
            p.target_replicas()
                .iter()
                .any(|&r| r != broker && !p.isr.contains(&r) && !awaiting_restart(r))
        })
        .map(|p| p.partition.clone())
        .collect()
}

/// What keeps `broker` from restarting now: partitions that would drop below
/// `min.insync.replicas` without it, and topics that no restart keeps available (replication
/// factor 1 or below `min.insync.replicas`) unless the policy allows them to go unavailable.
pub(super) fn restart_blockers(ctx: &Ctx<'_>, broker: i32) -> Vec<Blocker> {
    let allow = ctx.desired.policy.allow_unavailable_partitions;
    let mut under = Vec::new();
    let mut unavailable: Vec<&PartitionView> = Vec::new();
    for p in ctx
        .admin
        .partitions
        .iter()
        .filter(|p| p.replicas.contains(&broker))
    {
        let rf = i32::try_from(p.target_replicas().len()).unwrap_or(i32::MAX);
        if rf <= 1 || rf < p.min_insync_replicas {
            if !allow {
                unavailable.push(p);
            }
            continue;
        }
        let isr_without = p.isr.iter().filter(|&&r| r != broker).count();
        if p.isr.contains(&broker)
            && i32::try_from(isr_without).unwrap_or(i32::MAX) < p.min_insync_replicas
        {
            under.push(p.partition.clone());
        }
    }
    let mut blockers = Vec::new();
    if !unavailable.is_empty() {
        blockers.push(Blocker::UnavailableTopics {
            topics: topics_of(&unavailable),
        });
    }
    if !under.is_empty() {
        blockers.push(Blocker::UnderMinIsr {
            broker,
            partitions: under,
        });
    }
    blockers
}

fn blocked_message(ctx: &Ctx<'_>, broker: i32, blockers: &[Blocker]) -> String {
    let mut parts = Vec::new();
    for blocker in blockers {
        match blocker {
            Blocker::UnderMinIsr { partitions, .. } => {
                let first = partitions
                    .first()
                    .and_then(|tp| ctx.admin.partitions.iter().find(|p| &p.partition == tp));
                let detail = first.map_or_else(String::new, |p| {
                    format!(
                        " ({} has ISR {:?}, min.insync.replicas={})",
                        p.partition, p.isr, p.min_insync_replicas
                    )
                });
                parts.push(format!(
                    "restarting broker {broker} would leave {} below min.insync.replicas{detail}",
                    list(partitions, 5)
                ));
            }
            Blocker::UnavailableTopics { topics } => parts.push(format!(
                "restarting broker {broker} would make topic(s) {} unavailable (replication \
                 factor 1 or below min.insync.replicas; spec.operations.\
                 allowUnavailablePartitions allows it)",
                list(topics, 5)
            )),
            Blocker::ScaleDownRefused { .. } | Blocker::RestartsExhausted { .. } => {}
        }
    }
    parts.join("; ")
}

/// The partitions that keep a restarted `broker` from counting as caught up: the ones hosting
/// it whose ISR lacks it, and the ones under-replicated on another broker (the next restart
/// must not take a replica from a partition still short of one).
fn lagging(ctx: &Ctx<'_>, broker: i32, done: &[i32]) -> Vec<TopicPartition> {
    let mut lagging: Vec<TopicPartition> = ctx
        .admin
        .partitions
        .iter()
        .filter(|p| p.replicas.contains(&broker) && !p.isr.contains(&broker))
        .map(|p| p.partition.clone())
        .collect();
    lagging.extend(under_replicated(ctx, broker, done));
    lagging.sort();
    lagging.dedup();
    lagging
}

fn seconds_between(from: &Time, to: &Time) -> i64 {
    to.0.as_second() - from.0.as_second()
}
