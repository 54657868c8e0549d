//! The planner's scenarios, each as an operator would see it pass after pass.

use std::collections::BTreeMap;

use strom_admin::TopicPartition;
use strom_crds::cluster::{OperationKind, OperationStatus};

use super::fixture::{
    NEW, OLD, Simulator, add_topic, admin, at, cluster, desired, partition, refresh_log_dirs,
};
use super::roll::RESTART_TIMEOUT_SECONDS;
use super::*;
use crate::day2::action::{Action, Blocker};
use crate::day2::observed::Observed;

fn tp(topic: &str, index: i32) -> TopicPartition {
    TopicPartition::new(topic, index)
}

/// A cluster of `n` brokers on the old revision with topic `orders` (RF 3, min ISR 2).
fn old_cluster(n: i32, controller: i32) -> Observed {
    let mut observed = cluster(n, OLD);
    admin(&mut observed).controller = Some(controller);
    let ids: Vec<i32> = (0..n).collect();
    add_topic(&mut observed, "orders", 6, 3, 2, &ids);
    observed
}

fn restart_of(plan: &Plan) -> Option<i32> {
    match plan.action {
        Action::Restart { broker } => Some(broker),
        _ => None,
    }
}

#[test]
fn a_roll_restarts_non_voters_then_voters_and_the_active_controller_last() {
    let mut sim = Simulator::new(old_cluster(5, 1), desired(5));
    let plans = sim.run(100);
    assert_eq!(sim.restarts, vec![3, 4, 0, 2, 1]);
    assert_eq!(plans.last().map(|p| &p.action), Some(&Action::Idle));
    assert!(
        sim.observed
            .workload
            .brokers
            .iter()
            .all(|b| b.revision.as_deref() == Some(NEW))
    );
    assert_eq!(sim.operation, None);
}

#[test]
fn the_roll_records_its_progress_and_resumes_from_the_status() {
    let observed = old_cluster(3, 2);
    let first = plan(&desired(3), &observed, None, at(0));
    assert_eq!(first.action, Action::Restart { broker: 0 });
    let op = first.operation.clone().expect("operation");
    assert_eq!(op.kind, OperationKind::RollingUpgrade);
    assert_eq!(op.broker, Some(0));
    assert_eq!(op.step.as_deref(), Some(STEP_RESTARTING));
    assert_eq!(op.attempts, 1);
    assert_eq!((op.completed_steps, op.total_steps), (0, 3));
    assert_eq!(op.revision.as_deref(), Some(NEW));

    // The status goes through the API server (JSON) and an operator restart.
    let stored: OperationStatus =
        serde_json::from_value(serde_json::to_value(&op).expect("json")).expect("status");
    let again = plan(&desired(3), &observed, Some(&stored), at(30));
    assert_eq!(again.action, Action::Wait, "the restart is not repeated");
    assert_eq!(
        again.operation.as_ref().map(|o| o.started_at.clone()),
        Some(at(0))
    );
}

#[test]
fn a_crash_looping_broker_is_restarted_first() {
    let mut observed = old_cluster(3, 0);
    observed.workload.brokers[2].ready = false;
    observed.workload.brokers[2].crash_looping = true;
    for p in &mut admin(&mut observed).partitions {
        p.isr.retain(|&id| id != 2);
    }
    let first = plan(&desired(3), &observed, None, at(0));
    assert_eq!(restart_of(&first), Some(2));
}

#[test]
fn a_restart_waits_while_a_partition_would_drop_below_min_isr() {
    let mut observed = old_cluster(3, 2);
    // Broker 1 fell behind on orders-0: restarting broker 0 leaves only broker 2 in sync.
    partition(&mut observed, "orders", 0).isr = vec![0, 2];
    let blocked = plan(&desired(3), &observed, None, at(0));
    assert_eq!(blocked.action, Action::Wait);
    assert_eq!(
        blocked.blockers,
        vec![Blocker::UnderMinIsr {
            broker: 0,
            partitions: vec![tp("orders", 0)],
        }]
    );
    let op = blocked.operation.expect("operation");
    assert_eq!(op.step.as_deref(), Some(STEP_BLOCKED));
    let message = op.message.expect("message");
    assert!(message.contains("orders-0"), "{message}");

    // Broker 1 catches up: the roll goes on.
    partition(&mut observed, "orders", 0).isr = vec![0, 1, 2];
    let next = plan(&desired(3), &observed, None, at(10));
    assert_eq!(restart_of(&next), Some(0));
}

#[test]
fn topics_that_no_restart_keeps_available_block_unless_the_policy_allows_them() {
    let mut observed = old_cluster(3, 2);
    add_topic(&mut observed, "scratch", 1, 1, 1, &[0]);
    add_topic(&mut observed, "strict", 1, 2, 3, &[0, 1]);
    let blocked = plan(&desired(3), &observed, None, at(0));
    assert_eq!(blocked.action, Action::Wait);
    assert_eq!(
        blocked.blockers,
        vec![Blocker::UnavailableTopics {
            topics: vec!["scratch".to_owned(), "strict".to_owned()],
        }]
    );

    let mut allowing = desired(3);
    allowing.policy.allow_unavailable_partitions = true;
    let next = plan(&allowing, &observed, None, at(0));
    assert_eq!(restart_of(&next), Some(0));
}

#[test]
fn a_restarted_broker_must_be_back_in_every_isr_before_the_next_one() {
    let mut observed = old_cluster(3, 2);
    let first = plan(&desired(3), &observed, None, at(0));
    assert_eq!(restart_of(&first), Some(0));
    // Broker 0 runs the new revision, ready and registered, but not yet in orders-0's ISR.
    observed.workload.brokers[0].revision = Some(NEW.to_owned());
    partition(&mut observed, "orders", 0).isr = vec![1, 2];
    let catching_up = plan(&desired(3), &observed, first.operation.as_ref(), at(20));
    assert_eq!(catching_up.action, Action::Wait);
    let op = catching_up.operation.clone().expect("operation");
    assert_eq!(op.step.as_deref(), Some(STEP_AWAITING_CATCH_UP));
    assert!(
        op.message
            .as_deref()
            .is_some_and(|m| m.contains("orders-0"))
    );

    partition(&mut observed, "orders", 0).isr = vec![0, 1, 2];
    let next = plan(
        &desired(3),
        &observed,
        catching_up.operation.as_ref(),
        at(30),
    );
    assert_eq!(restart_of(&next), Some(1));
    let op = next.operation.expect("operation");
    assert_eq!(op.done, vec![0]);
    assert_eq!((op.completed_steps, op.total_steps), (1, 3));
}

#[test]
fn a_broker_that_does_not_come_back_is_restarted_again_then_reported() {
    let mut observed = old_cluster(3, 2);
    let mut policy_desired = desired(3);
    policy_desired.policy.max_restart_attempts = 2;
    let first = plan(&policy_desired, &observed, None, at(0));
    assert_eq!(restart_of(&first), Some(0));
    observed.workload.brokers[0].ready = false;
    observed.workload.brokers[0].crash_looping = true;

    let before = plan(
        &policy_desired,
        &observed,
        first.operation.as_ref(),
        at(RESTART_TIMEOUT_SECONDS - 1),
    );
    assert_eq!(before.action, Action::Wait);
    let second = plan(
        &policy_desired,
        &observed,
        before.operation.as_ref(),
        at(RESTART_TIMEOUT_SECONDS),
    );
    assert_eq!(restart_of(&second), Some(0));
    assert_eq!(second.operation.as_ref().map(|o| o.attempts), Some(2));

    let exhausted = plan(
        &policy_desired,
        &observed,
        second.operation.as_ref(),
        at(3 * RESTART_TIMEOUT_SECONDS),
    );
    assert_eq!(exhausted.action, Action::Wait);
    assert_eq!(
        exhausted.blockers,
        vec![Blocker::RestartsExhausted { broker: 0 }]
    );
}

/// A crash-looping broker 0, restarted once at `at(0)` under a policy of two attempts, and that
/// first plan.
fn restarted_once_and_down() -> (Observed, Desired, Plan) {
    let mut observed = old_cluster(3, 2);
    let mut two_attempts = desired(3);
    two_attempts.policy.max_restart_attempts = 2;
    let first = plan(&two_attempts, &observed, None, at(0));
    assert_eq!(restart_of(&first), Some(0));
    observed.workload.brokers[0].ready = false;
    observed.workload.brokers[0].crash_looping = true;
    (observed, two_attempts, first)
}

fn exhausted(plan: &Plan) -> bool {
    plan.blockers
        .contains(&Blocker::RestartsExhausted { broker: 0 })
}

#[test]
fn a_restart_again_that_stays_blocked_uses_up_the_attempts_and_is_reported() {
    let (mut observed, two_attempts, first) = restarted_once_and_down();
    // A topic with its only replica on broker 0 appears: restarting it again would make the
    // topic unavailable, so the restart again is blocked.
    add_topic(&mut observed, "scratch", 1, 1, 1, &[0]);
    let blocked = plan(
        &two_attempts,
        &observed,
        first.operation.as_ref(),
        at(RESTART_TIMEOUT_SECONDS),
    );
    assert_eq!(blocked.action, Action::Wait);
    assert!(
        blocked
            .blockers
            .iter()
            .any(|b| matches!(b, Blocker::UnavailableTopics { .. })),
        "{:?}",
        blocked.blockers
    );
    assert!(!exhausted(&blocked));
    let op = blocked.operation.clone().expect("operation");
    assert_eq!(
        (op.step.as_deref(), op.broker),
        (Some(STEP_BLOCKED), Some(0))
    );

    let waiting = plan(
        &two_attempts,
        &observed,
        blocked.operation.as_ref(),
        at(2 * RESTART_TIMEOUT_SECONDS - 1),
    );
    assert_eq!(waiting.action, Action::Wait);
    assert!(!exhausted(&waiting), "{:?}", waiting.blockers);

    // Blocked for a whole restart deadline: the second attempt is used up.
    let reported = plan(
        &two_attempts,
        &observed,
        waiting.operation.as_ref(),
        at(2 * RESTART_TIMEOUT_SECONDS),
    );
    assert_eq!(reported.action, Action::Wait);
    assert!(exhausted(&reported), "{:?}", reported.blockers);
    // It stays reported, and nothing is restarted, even once the topic is gone.
    admin(&mut observed)
        .partitions
        .retain(|p| p.partition.topic != "scratch");
    let later = plan(
        &two_attempts,
        &observed,
        reported.operation.as_ref(),
        at(5 * RESTART_TIMEOUT_SECONDS),
    );
    assert_eq!(later.action, Action::Wait);
    assert!(exhausted(&later), "{:?}", later.blockers);
}

#[test]
fn a_restart_again_the_disruption_budget_keeps_refusing_ends_reported() {
    use crate::cluster::operation::refused_restart;
    let (observed, two_attempts, first) = restarted_once_and_down();
    let mut previous = first.operation.clone();
    let mut reported_at = None;
    // One pass a minute; each eviction is refused and recorded as the Kubernetes pass does.
    for minute in 5..30 {
        let now = at(minute * 60);
        let next = plan(&two_attempts, &observed, previous.as_ref(), now.clone());
        if exhausted(&next) {
            reported_at = Some(minute);
            break;
        }
        previous = match next.action {
            Action::Restart { broker } => {
                assert_eq!(broker, 0);
                let planned = next.operation.as_ref().expect("operation");
                Some(refused_restart(
                    previous.as_ref(),
                    planned,
                    "refused".to_owned(),
                    now,
                ))
            }
            _ => next.operation,
        };
        let op = previous.as_ref().expect("operation");
        assert_eq!(op.attempts, 1, "a refused eviction is no attempt: {op:?}");
    }
    // Refused from minute 5 on, blocked past the deadline at minute 10.
    assert_eq!(reported_at, Some(10));
}

#[test]
fn brokers_whose_filesystem_resize_waits_for_a_restart_are_rolled_one_at_a_time_controller_last() {
    let mut observed = cluster(3, NEW);
    admin(&mut observed).controller = Some(1);
    add_topic(&mut observed, "orders", 6, 3, 2, &[0, 1, 2]);
    for b in &mut observed.workload.brokers {
        b.resize_pending = true;
    }
    let first = plan(&desired(3), &observed, None, at(0));
    assert_eq!(restart_of(&first), Some(0));
    let op = first.operation.clone().expect("operation");
    assert_eq!(op.kind, OperationKind::RollingUpgrade);
    let message = op.message.expect("message");
    assert!(message.contains("FileSystemResizePending"), "{message}");

    // The simulator brings a restarted broker back with its filesystem grown.
    let mut sim = Simulator::new(observed, desired(3));
    let plans = sim.run(100);
    assert_eq!(sim.restarts, vec![0, 2, 1], "one each, the controller last");
    assert_eq!(plans.last().map(|p| &p.action), Some(&Action::Idle));
    assert!(
        sim.observed
            .workload
            .brokers
            .iter()
            .all(|b| !b.resize_pending)
    );
}

#[test]
fn a_resize_restart_waits_like_a_roll_and_a_slow_condition_restarts_nothing_twice() {
    let mut observed = cluster(3, NEW);
    admin(&mut observed).controller = Some(2);
    add_topic(&mut observed, "orders", 6, 3, 2, &[0, 1, 2]);
    observed.workload.brokers[0].resize_pending = true;
    observed.workload.brokers[1].resize_pending = true;
    // Broker 1 fell behind on orders-0: restarting broker 0 would leave one in-sync replica.
    partition(&mut observed, "orders", 0).isr = vec![0, 2];
    let blocked = plan(&desired(3), &observed, None, at(0));
    assert_eq!(blocked.action, Action::Wait);
    assert!(
        blocked
            .blockers
            .iter()
            .any(|b| matches!(b, Blocker::UnderMinIsr { broker: 0, .. })),
        "{:?}",
        blocked.blockers
    );
    partition(&mut observed, "orders", 0).isr = vec![0, 1, 2];
    let restarted = plan(&desired(3), &observed, blocked.operation.as_ref(), at(10));
    assert_eq!(restart_of(&restarted), Some(0));

    // Broker 0 is back while its claim still reports the condition: it counts as done, and
    // only broker 1 is restarted next.
    let back = plan(&desired(3), &observed, restarted.operation.as_ref(), at(40));
    assert_eq!(restart_of(&back), Some(1));
    assert_eq!(
        back.operation.as_ref().map(|o| o.done.clone()),
        Some(vec![0])
    );
    let done = plan(&desired(3), &observed, back.operation.as_ref(), at(70));
    assert_ne!(restart_of(&done), Some(0), "{done:?}");
    assert_ne!(restart_of(&done), Some(1), "{done:?}");

    // Once the conditions are gone a settled cluster is idle.
    for b in &mut observed.workload.brokers {
        b.resize_pending = false;
    }
    assert_eq!(
        plan(&desired(3), &observed, None, at(100)).action,
        Action::Idle
    );
}

#[test]
fn a_new_revision_during_a_roll_starts_over_after_the_broker_in_flight() {
    let mut sim = Simulator::new(old_cluster(3, 2), desired(3));
    sim.step();
    sim.tick();
    sim.tick();
    sim.step();
    assert_eq!(sim.restarts, vec![0, 1]);
    sim.desired.revision = "rev-newer".to_owned();
    sim.run(100);
    assert_eq!(sim.restarts, vec![0, 1, 0, 1, 2]);
    assert!(
        sim.observed
            .workload
            .brokers
            .iter()
            .all(|b| b.revision.as_deref() == Some("rev-newer"))
    );
}

#[test]
fn paused_plans_change_nothing() {
    let observed = old_cluster(3, 2);
    let mut paused = desired(4);
    paused.paused = true;
    let idle = plan(&paused, &observed, None, at(0));
    assert_eq!(idle.action, Action::Idle);
    assert_eq!(idle.operation, None);

    let running = plan(&desired(3), &observed, None, at(0));
    let waiting = plan(&paused, &observed, running.operation.as_ref(), at(10));
    assert_eq!(waiting.action, Action::Wait);
    assert_eq!(waiting.operation, running.operation);
}

#[test]
fn without_the_admin_api_only_missing_brokers_are_started() {
    let mut observed = old_cluster(3, 2);
    observed.admin = None;
    let roll = plan(&desired(3), &observed, None, at(0));
    assert_eq!(roll.action, Action::Wait);
    let grow = plan(&desired(5), &observed, None, at(0));
    assert_eq!(grow.action, Action::Scale { replicas: 5 });
    let shrink = plan(&desired(2), &observed, None, at(0));
    assert_eq!(shrink.action, Action::Wait);

    let mut empty = Observed::default();
    empty.workload.replicas = 0;
    let first = plan(&desired(3), &empty, None, at(0));
    assert_eq!(first.action, Action::Scale { replicas: 3 });
    assert_eq!(
        first.operation.map(|o| o.kind),
        Some(OperationKind::Provisioning)
    );
}

#[test]
fn scale_up_starts_brokers_then_balances_them_in_throttled_batches_then_elects() {
    let mut observed = cluster(3, NEW);
    add_topic(&mut observed, "orders", 12, 3, 2, &[0, 1, 2]);
    let mut target = desired(5);
    target.policy.max_concurrent_moves = 4;
    let mut sim = Simulator::new(observed, target);
    let plans = sim.run(100);

    assert_eq!(plans[0].action, Action::Scale { replicas: 5 });
    assert_eq!(
        plans[0].operation.as_ref().map(|o| o.kind),
        Some(OperationKind::ScaleUp)
    );
    let batches: Vec<&BTreeMap<TopicPartition, Vec<i32>>> = plans
        .iter()
        .filter_map(|p| match &p.action {
            Action::Reassign { moves, throttle } => {
                assert_eq!(*throttle, Some(50 * 1024 * 1024));
                Some(moves)
            }
            _ => None,
        })
        .collect();
    assert!(!batches.is_empty());
    assert!(batches.iter().all(|b| b.len() <= 4));
    // 36 replicas over 5 brokers: the two new ones take 7 each, and nothing else moves.
    let moved: usize = batches.iter().map(|b| b.len()).sum();
    assert!(moved >= 4, "{moved} partitions moved");
    let done = plans
        .iter()
        .rev()
        .find_map(|p| {
            p.operation
                .as_ref()
                .filter(|o| o.step.as_deref() == Some(STEP_CLEARING_THROTTLES))
        })
        .expect("a finished batch");
    assert_eq!(done.completed_steps, done.total_steps);
    let clears = plans
        .iter()
        .filter(|p| p.action == Action::ClearThrottles)
        .count();
    assert_eq!(clears, batches.len(), "each batch's throttles are cleared");
    assert!(
        plans
            .iter()
            .any(|p| matches!(p.action, Action::ElectPreferred { .. }))
            || super::elections(admin(&mut sim.observed)).is_empty()
    );
    assert_eq!(plans.last().map(|p| &p.action), Some(&Action::Idle));

    let state = admin(&mut sim.observed);
    for id in 0..5 {
        let replicas = state
            .partitions
            .iter()
            .filter(|p| p.replicas.contains(&id))
            .count();
        let leaders = state
            .partitions
            .iter()
            .filter(|p| p.leader == Some(id))
            .count();
        // 36 replicas over 5 brokers: 7 or 8 each; 12 leaders: 2 or 3 each.
        assert!(
            (7..=8).contains(&replicas),
            "broker {id}: {replicas} replicas"
        );
        assert!((2..=3).contains(&leaders), "broker {id}: {leaders} leaders");
    }
}

#[test]
fn scale_down_drains_the_removed_brokers_before_stopping_them() {
    let mut observed = cluster(5, NEW);
    add_topic(&mut observed, "orders", 10, 3, 2, &[0, 1, 2, 3, 4]);
    let mut sim = Simulator::new(observed, desired(3));
    let mut plans = Vec::new();
    for _ in 0..100 {
        let before = sim.observed.clone();
        let plan = sim.step();
        if let Action::Scale { replicas } = plan.action {
            let state = before.admin.as_ref().expect("admin");
            for id in replicas..5 {
                assert!(state.partitions.iter().all(|p| !p.replicas.contains(&id)));
                assert_eq!(state.log_dirs.get(&id).map(BTreeMap::len), Some(0));
            }
        }
        let idle = plan.action == Action::Idle;
        plans.push(plan);
        if idle {
            break;
        }
        sim.tick();
    }
    let scale_at = plans
        .iter()
        .position(|p| p.action == Action::Scale { replicas: 3 })
        .expect("the workload is lowered");
    assert!(
        plans[..scale_at]
            .iter()
            .any(|p| matches!(p.action, Action::Reassign { .. }))
    );
    assert_eq!(sim.observed.workload.replicas, 3);
    let state = admin(&mut sim.observed);
    assert!(state.partitions.iter().all(|p| p.replicas.len() == 3));
    assert!(
        state
            .partitions
            .iter()
            .all(|p| p.replicas.iter().all(|&id| id < 3))
    );
    assert_eq!(plans.last().map(|p| &p.action), Some(&Action::Idle));
}

#[test]
fn a_topic_created_on_the_removed_brokers_during_a_drain_is_drained_too() {
    let mut observed = cluster(5, NEW);
    add_topic(&mut observed, "orders", 10, 3, 2, &[0, 1, 2, 3, 4]);
    let mut sim = Simulator::new(observed, desired(3));
    let mut created = false;
    for _ in 0..100 {
        let before = sim.observed.clone();
        let plan = sim.step();
        if let Action::Scale { replicas: 3 } = plan.action {
            assert!(created, "the topic came while the drain ran");
            let state = before.admin.as_ref().expect("admin");
            assert!(
                state
                    .partitions
                    .iter()
                    .all(|p| p.replicas.iter().all(|&id| id < 3)),
                "nothing is left on brokers 3 and 4 when they stop"
            );
        }
        if plan.action == Action::Idle {
            break;
        }
        sim.tick();
        // Once the drain's first batch is done, a Topic pass creates a topic whose replicas
        // the brokers placed on the brokers being removed.
        if !created && matches!(plan.action, Action::Reassign { .. }) {
            add_topic(&mut sim.observed, "late", 2, 2, 1, &[3, 4]);
            created = true;
        }
    }
    assert_eq!(sim.observed.workload.replicas, 3);
    let state = admin(&mut sim.observed);
    let late: Vec<&Vec<i32>> = state
        .partitions
        .iter()
        .filter(|p| p.partition.topic == "late")
        .map(|p| &p.replicas)
        .collect();
    assert_eq!(late.len(), 2);
    assert!(
        late.iter()
            .all(|r| r.len() == 2 && r.iter().all(|&id| id < 3)),
        "{late:?}"
    );
}

#[test]
fn the_drain_waits_for_the_removed_brokers_disks() {
    let mut observed = cluster(4, NEW);
    add_topic(&mut observed, "orders", 3, 3, 2, &[0, 1, 2]);
    // Broker 3 hosts nothing in the metadata but its disk still lists a partition.
    admin(&mut observed)
        .log_dirs
        .insert(3, BTreeMap::from([(tp("orders", 0), 10)]));
    let waiting = plan(&desired(3), &observed, None, at(0));
    assert_eq!(waiting.action, Action::Wait);
    let op = waiting.operation.expect("operation");
    assert_eq!(op.kind, OperationKind::ScaleDown);
    assert_eq!(op.step.as_deref(), Some(STEP_AWAITING_DRAIN));
    // A broker that does not answer DescribeLogDirs is not known to be empty.
    admin(&mut observed).log_dirs.remove(&3);
    let unknown = plan(&desired(3), &observed, None, at(0));
    assert_eq!(unknown.action, Action::Wait);

    refresh_log_dirs(admin(&mut observed));
    admin(&mut observed).log_dirs.insert(3, BTreeMap::new());
    let scale = plan(&desired(3), &observed, None, at(0));
    assert_eq!(scale.action, Action::Scale { replicas: 3 });
}

#[test]
fn scale_down_is_refused_below_a_replication_factor_or_into_the_voters() {
    let mut observed = cluster(3, NEW);
    add_topic(&mut observed, "orders", 3, 3, 2, &[0, 1, 2]);
    let mut narrow = desired(2);
    narrow.voters = 1;
    let refused = plan(&narrow, &observed, None, at(0));
    assert_eq!(refused.action, Action::Wait);
    assert!(matches!(
        refused.blockers.as_slice(),
        [Blocker::ScaleDownRefused { message }] if message.contains("orders")
    ));

    let mut voters = desired(2);
    voters.voters = 3;
    let refused = plan(&voters, &cluster(3, NEW), None, at(0));
    assert!(matches!(
        refused.blockers.as_slice(),
        [Blocker::ScaleDownRefused { message }] if message.contains("voter")
    ));
    assert_eq!(refused.action, Action::Wait);
}

#[test]
fn raising_replicas_during_a_drain_cancels_its_moves() {
    let mut observed = cluster(5, NEW);
    add_topic(&mut observed, "orders", 10, 3, 2, &[0, 1, 2, 3, 4]);
    let mut sim = Simulator::new(observed, desired(3));
    let first = sim.step();
    assert!(matches!(first.action, Action::Reassign { .. }));
    // The moves are in progress (no tick) when spec.replicas goes back to 5.
    sim.desired = desired(5);
    let cancel = sim.step();
    let Action::CancelReassignments { partitions } = &cancel.action else {
        panic!("expected a cancellation, got {:?}", cancel.action);
    };
    assert!(!partitions.is_empty());
    assert!(cancel.blockers.is_empty());
    let plans = sim.run(50);
    assert_eq!(plans.last().map(|p| &p.action), Some(&Action::Idle));
    assert_eq!(sim.observed.workload.replicas, 5);
    assert!(
        !plans
            .iter()
            .any(|p| matches!(p.action, Action::Scale { replicas } if replicas < 5))
    );
}

#[test]
fn dynamic_configs_are_applied_without_a_restart() {
    let mut observed = cluster(3, NEW);
    let mut target = desired(3);
    target.dynamic_config.insert(
        "leader.replication.throttled.rate".to_owned(),
        "1048576".to_owned(),
    );
    admin(&mut observed).dynamic_config.insert(
        "follower.replication.throttled.rate".to_owned(),
        "10".to_owned(),
    );
    let apply = plan(&target, &observed, None, at(0));
    assert_eq!(
        apply.action,
        Action::AlterBrokerConfigs {
            configs: BTreeMap::from([
                (
                    "follower.replication.throttled.rate".to_owned(),
                    String::new()
                ),
                (
                    "leader.replication.throttled.rate".to_owned(),
                    "1048576".to_owned()
                ),
            ])
        }
    );
    let mut sim = Simulator::new(observed, target);
    let plans = sim.run(10);
    assert_eq!(plans.len(), 2);
    assert_eq!(sim.restarts, Vec::<i32>::new());
}

#[test]
fn a_healthy_cluster_on_the_desired_revision_is_idle() {
    let mut observed = cluster(3, NEW);
    add_topic(&mut observed, "orders", 6, 3, 2, &[0, 1, 2]);
    let idle = plan(&desired(3), &observed, None, at(0));
    assert_eq!(
        idle,
        Plan {
            action: Action::Idle,
            operation: None,
            blockers: Vec::new()
        }
    );
}

#[test]
fn scale_up_moves_the_fewest_replicas_and_keeps_racks_apart() {
    let mut observed = cluster(3, NEW);
    for (id, b) in admin(&mut observed).brokers.iter_mut().enumerate() {
        b.rack = Some(format!("zone-{id}"));
    }
    add_topic(&mut observed, "orders", 12, 3, 2, &[0, 1, 2]);
    let before = observed.clone();
    let mut sim = Simulator::new(observed, desired(6));
    // New brokers 3, 4, 5 join zones 0, 1, 2.
    sim.step();
    for b in &mut admin(&mut sim.observed).brokers {
        b.rack = Some(format!("zone-{}", b.id % 3));
    }
    sim.tick();
    let plans = sim.run(100);
    assert_eq!(plans.last().map(|p| &p.action), Some(&Action::Idle));

    let state = admin(&mut sim.observed);
    let old = before.admin.as_ref().expect("admin");
    let mut moved = 0;
    for p in &state.partitions {
        let zones: std::collections::BTreeSet<i32> = p.replicas.iter().map(|id| id % 3).collect();
        assert_eq!(zones.len(), 3, "{p:?} has two replicas in one zone");
        let was = old
            .partitions
            .iter()
            .find(|o| o.partition == p.partition)
            .expect("partition");
        moved += p
            .replicas
            .iter()
            .filter(|id| !was.replicas.contains(id))
            .count();
    }
    // 36 replicas, 6 each: exactly the 18 that the new brokers take move.
    assert_eq!(moved, 18);
    for id in 0..6 {
        assert_eq!(
            state
                .partitions
                .iter()
                .filter(|p| p.replicas.contains(&id))
                .count(),
            6
        );
        assert_eq!(
            state
                .partitions
                .iter()
                .filter(|p| p.leader == Some(id))
                .count(),
            2
        );
    }
}

#[test]
fn a_stopped_follower_holds_the_roll_and_the_message_names_the_partition() {
    // Broker 1 was rolled, then froze: it fell out of the ISR and reports not ready.
    let mut observed = old_cluster(3, 2);
    observed.workload.brokers[1].revision = Some(NEW.to_owned());
    observed.workload.brokers[1].ready = false;
    for p in &mut admin(&mut observed).partitions {
        p.isr.retain(|&id| id != 1);
    }
    let blocked = plan(&desired(3), &observed, None, at(0));
    assert_eq!(blocked.action, Action::Wait);
    let message = blocked.operation.and_then(|o| o.message).expect("message");
    assert!(message.contains("orders-0"), "{message}");
    assert!(message.contains("broker(s) 1"), "{message}");
    assert!(matches!(
        blocked.blockers.as_slice(),
        [Blocker::UnderMinIsr { broker: 0, .. }]
    ));
}

#[test]
fn brokers_a_scale_down_is_stopping_are_not_rolled_and_do_not_hold_the_roll() {
    let mut observed = old_cluster(3, 2);
    // Broker 3 was drained and is stopping: still listed, not ready, on the old revision.
    observed
        .workload
        .brokers
        .push(crate::day2::observed::WorkloadBroker {
            id: 3,
            revision: Some(OLD.to_owned()),
            ready: false,
            restarting: false,
            crash_looping: false,
            resize_pending: false,
        });
    let next = plan(&desired(3), &observed, None, at(0));
    assert_eq!(restart_of(&next), Some(0));
    assert_eq!(next.operation.map(|o| o.total_steps), Some(3));
}
