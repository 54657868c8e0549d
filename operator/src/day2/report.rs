//! What one day-2 pass tells the operator metrics ([`crate::metrics`]), the same in both
//! runtimes: the operation in progress, each step that ended with how long it took, and
//! whether a rolling restart is blocked.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use strom_crds::cluster::{OperationKind, OperationStatus};

use super::Blocker;
use crate::metrics::Metrics;

/// A step of an operation that ended in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedStep {
    /// The operation it belonged to.
    pub kind: OperationKind,
    /// Its name (`Restarting`, `Reassigning`, ...).
    pub step: String,
    /// From its `stepStartedAt` to now.
    pub took: Duration,
}

/// The step of `previous` that ended when the operation became `next`: its step, its broker
/// or its start changed, or the operation ended or became another kind. `None` when the step
/// goes on, or `previous` recorded no step or no start.
pub fn finished_step(
    previous: Option<&OperationStatus>,
    next: Option<&OperationStatus>,
    now: &Time,
) -> Option<FinishedStep> {
    let previous = previous?;
    let step = previous.step.clone()?;
    let started = previous.step_started_at.as_ref()?;
    let same = next.is_some_and(|next| {
        next.kind == previous.kind
            && next.step == previous.step
            && next.broker == previous.broker
            && next.step_started_at == previous.step_started_at
    });
    if same {
        return None;
    }
    let took = now.0.duration_since(started.0);
    Some(FinishedStep {
        kind: previous.kind,
        step,
        took: Duration::try_from(took).unwrap_or(Duration::ZERO),
    })
}

/// Whether `blockers` stop a rolling restart (the `RollBlocked` and `Degraded` reasons; a
/// refused scale-down is not a roll).
pub fn roll_blocked(blockers: &[Blocker]) -> bool {
    blockers.iter().any(|b| {
        matches!(
            b,
            Blocker::UnderMinIsr { .. }
                | Blocker::UnavailableTopics { .. }
                | Blocker::RestartsExhausted { .. }
        )
    })
}

/// Records the pass of `cluster` (`namespace/name`) that moved the operation from `previous`
/// to `next` with `blockers`.
pub fn record_pass(
    metrics: &Metrics,
    cluster: &str,
    previous: Option<&OperationStatus>,
    next: Option<&OperationStatus>,
    blockers: &[Blocker],
    now: &Time,
) {
    if let Some(done) = finished_step(previous, next, now) {
        metrics.observe_step(cluster, done.kind, &done.step, done.took);
    }
    metrics.set_operation(cluster, next.map(|op| op.kind));
    metrics.set_roll_blocked(cluster, roll_blocked(blockers));
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(1_800_000_000 + seconds).expect("a valid time"))
    }

    fn operation(step: &str, broker: i32, started: i64) -> OperationStatus {
        OperationStatus {
            kind: OperationKind::RollingUpgrade,
            started_at: at(0),
            completed_steps: 0,
            total_steps: 3,
            message: None,
            broker: Some(broker),
            step: Some(step.to_owned()),
            step_started_at: Some(at(started)),
            attempts: 0,
            done: Vec::new(),
            revision: None,
        }
    }

    #[test]
    fn a_step_that_goes_on_has_not_finished() {
        let op = operation("Restarting", 1, 10);
        assert_eq!(finished_step(Some(&op), Some(&op.clone()), &at(40)), None);
    }

    #[test]
    fn a_new_step_finishes_the_previous_one_with_its_duration() {
        let before = operation("Restarting", 1, 10);
        let after = operation("AwaitingCatchUp", 1, 40);
        let done = finished_step(Some(&before), Some(&after), &at(40)).expect("a finished step");
        assert_eq!(done.step, "Restarting");
        assert_eq!(done.kind, OperationKind::RollingUpgrade);
        assert_eq!(done.took, Duration::from_secs(30));
    }

    #[test]
    fn the_same_step_on_the_next_broker_finishes_the_previous_one() {
        let before = operation("Restarting", 1, 10);
        let after = operation("Restarting", 2, 25);
        let done = finished_step(Some(&before), Some(&after), &at(25)).expect("a finished step");
        assert_eq!(done.took, Duration::from_secs(15));
    }

    #[test]
    fn the_end_of_the_operation_finishes_its_last_step() {
        let before = operation("RestoringLeaders", 2, 50);
        let done = finished_step(Some(&before), None, &at(52)).expect("a finished step");
        assert_eq!(done.step, "RestoringLeaders");
        assert_eq!(done.took, Duration::from_secs(2));
        assert_eq!(finished_step(None, Some(&before), &at(52)), None);
    }

    #[test]
    fn only_roll_blockers_block_a_roll() {
        assert!(!roll_blocked(&[]));
        assert!(!roll_blocked(&[Blocker::ScaleDownRefused {
            message: "fewer brokers than a replication factor".to_owned()
        }]));
        assert!(roll_blocked(&[Blocker::RestartsExhausted { broker: 2 }]));
        assert!(roll_blocked(&[Blocker::UnavailableTopics {
            topics: vec!["t".to_owned()]
        }]));
    }

    #[test]
    fn a_pass_sets_the_operation_the_step_and_the_blocked_roll() {
        let metrics = Metrics::new().expect("metrics");
        let before = operation("Restarting", 1, 10);
        let after = operation("AwaitingCatchUp", 1, 40);
        record_pass(
            &metrics,
            "ns/c",
            Some(&before),
            Some(&after),
            &[Blocker::RestartsExhausted { broker: 1 }],
            &at(40),
        );
        let text = metrics.encode().expect("encoded");
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {text}"))
                .to_owned()
        };
        assert!(
            line("strom_operator_operations_in_progress{cluster=\"ns/c\",kind=\"RollingUpgrade\"}")
                .ends_with(" 1")
        );
        assert!(line("strom_operator_blocked_rolls{cluster=\"ns/c\"}").ends_with(" 1"));
        assert!(line("strom_operator_operation_step_duration_seconds_sum{cluster=\"ns/c\",kind=\"RollingUpgrade\",step=\"Restarting\"}").ends_with(" 30"));
    }
}
