//! Replication-factor changes of a topic, planned as partition reassignments (pure).
//!
//! The target replicas come from [`with_replication_factor`] over the registered, unfenced
//! brokers (rack-aware, replicas added on the least-loaded brokers, dropped from the
//! most-loaded ones). Only partitions whose replica count differs from the factor are moved,
//! so a change never turns into a rebalance of the topic, and at most `max_concurrent_moves`
//! partitions of the cluster move at once (reassignments others started count too). A factor
//! above the brokers that could hold the replicas, or below the topic's `min.insync.replicas`
//! (every `acks=all` write would fail), is refused.

use std::collections::BTreeMap;

use strom_admin::TopicPartition;
use strom_crds::topic::ReassignmentProgress;

use crate::day2::assignment::with_replication_factor;
use crate::day2::observed::{PartitionView, RegisteredBroker};

/// What one pass of a replication-factor change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationStep {
    /// Every partition has the factor and none is being moved.
    Converged,
    /// The factor cannot be reached; nothing is moved.
    Refused(ReplicationRefusal),
    /// Start these moves (AlterPartitionReassignments), throttled to `throttle` bytes per
    /// second per broker (`None`: unthrottled).
    Reassign {
        /// Per partition its target replicas, preferred leader first.
        moves: BTreeMap<TopicPartition, Vec<i32>>,
        /// The replication throttle.
        throttle: Option<i64>,
    },
    /// Moves are running at the concurrency limit: wait for them.
    Wait,
}

/// Why a replication factor is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationRefusal {
    /// More replicas than brokers that can hold one.
    TooFewBrokers {
        /// The factor asked for.
        desired: usize,
        /// Registered, unfenced brokers.
        brokers: usize,
    },
    /// Fewer replicas than `min.insync.replicas`: no `acks=all` write could succeed.
    BelowMinInsync {
        /// The factor asked for.
        desired: usize,
        /// The topic's `min.insync.replicas`.
        min_insync: i32,
    },
}

impl ReplicationRefusal {
    /// Condition/Event reason.
    pub fn reason(&self) -> &'static str {
        "ReplicationFactorRefused"
    }

    /// What a person reads in the status and the Event.
    pub fn message(&self, topic: &str) -> String {
        match self {
            Self::TooFewBrokers { desired, brokers } => format!(
                "spec.replicationFactor is {desired} but the cluster has {brokers} registered, unfenced \
                 brokers: topic {topic} keeps its replicas; add brokers or lower spec.replicationFactor"
            ),
            Self::BelowMinInsync {
                desired,
                min_insync,
            } => format!(
                "spec.replicationFactor is {desired}, below min.insync.replicas {min_insync} of topic \
                 {topic}: every acks=all write would fail; keep at least {min_insync} replicas or lower \
                 min.insync.replicas first"
            ),
        }
    }
}

/// The policy a change runs under: the Cluster's `spec.operations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MovePolicy {
    /// Partitions of the cluster moving at once, at most.
    pub max_concurrent_moves: usize,
    /// Replication throttle in bytes per second per broker; `None`: unthrottled.
    pub throttle: Option<i64>,
}

/// The next step of changing `partitions` (one topic's, as the admin API reports them) to
/// `rf` replicas each, and how far the change has come.
///
/// `in_flight` counts the partitions of the whole cluster being reassigned now (this topic's
/// included); `log_dirs` are the replica sizes per broker, to tell the bytes left to copy.
pub fn plan_replication(
    partitions: &[PartitionView],
    brokers: &[RegisteredBroker],
    rf: usize,
    in_flight: usize,
    policy: MovePolicy,
    log_dirs: &BTreeMap<i32, BTreeMap<TopicPartition, i64>>,
) -> (ReplicationStep, ReassignmentProgress) {
    let progress = progress(partitions, rf, log_dirs);
    if partitions
        .iter()
        .all(|p| !p.reassigning() && p.replicas.len() == rf)
    {
        return (ReplicationStep::Converged, progress);
    }
    let live: Vec<i32> = brokers.iter().filter(|b| !b.fenced).map(|b| b.id).collect();
    if rf > live.len() {
        let refusal = ReplicationRefusal::TooFewBrokers {
            desired: rf,
            brokers: live.len(),
        };
        return (ReplicationStep::Refused(refusal), progress);
    }
    let min_insync = partitions
        .iter()
        .map(|p| p.min_insync_replicas)
        .max()
        .unwrap_or(1);
    if i64::try_from(rf).unwrap_or(i64::MAX) < i64::from(min_insync) {
        let refusal = ReplicationRefusal::BelowMinInsync {
            desired: rf,
            min_insync,
        };
        return (ReplicationStep::Refused(refusal), progress);
    }
    let room = policy.max_concurrent_moves.max(1).saturating_sub(in_flight);
    let pending: Vec<&PartitionView> = partitions
        .iter()
        .filter(|p| !p.reassigning() && p.replicas.len() != rf)
        .collect();
    if room == 0 || pending.is_empty() {
        return (ReplicationStep::Wait, progress);
    }
    let targets = with_replication_factor(partitions, brokers, &live, rf);
    let moves: BTreeMap<TopicPartition, Vec<i32>> = pending
        .iter()
        .filter_map(|p| {
            let target = targets.get(&p.partition)?;
            (target.len() == rf).then(|| (p.partition.clone(), target.clone()))
        })
        .take(room)
        .collect();
    if moves.is_empty() {
        return (ReplicationStep::Wait, progress);
    }
    let step = ReplicationStep::Reassign {
        moves,
        throttle: policy.throttle,
    };
    (step, progress)
}

/// The replication factor the topic has now: the lowest count of replicas that are in place
/// (assigned and not being added).
pub fn current_replication_factor(partitions: &[PartitionView]) -> Option<usize> {
    partitions
        .iter()
        .map(|p| p.replicas.iter().filter(|r| !p.adding.contains(r)).count())
        .min()
}

fn progress(
    partitions: &[PartitionView],
    rf: usize,
    log_dirs: &BTreeMap<i32, BTreeMap<TopicPartition, i64>>,
) -> ReassignmentProgress {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let done = partitions
        .iter()
        .filter(|p| !p.reassigning() && p.replicas.len() == rf)
        .count();
    let moving: Vec<&PartitionView> = partitions.iter().filter(|p| p.reassigning()).collect();
    // Bytes an added replica lacks: the leader's size minus what it already holds. Unknown
    // when the leader did not report its log directories.
    let bytes_remaining = moving.iter().try_fold(0i64, |sum, p| {
        if p.adding.is_empty() {
            return Some(sum);
        }
        let leader = p.leader?;
        let source = *log_dirs.get(&leader)?.get(&p.partition)?;
        let lacking: i64 = p
            .adding
            .iter()
            .map(|broker| {
                let have = log_dirs
                    .get(broker)
                    .and_then(|dirs| dirs.get(&p.partition))
                    .copied()
                    .unwrap_or(0);
                (source - have).max(0)
            })
            .sum();
        Some(sum.saturating_add(lacking))
    });
    ReassignmentProgress {
        total_partitions: count(partitions.len()),
        done_partitions: count(done),
        moving_partitions: count(moving.len()),
        bytes_remaining,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn view(partition: i32, replicas: &[i32]) -> PartitionView {
        PartitionView {
            partition: TopicPartition::new("orders", partition),
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            leader: replicas.first().copied(),
            min_insync_replicas: 1,
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    fn brokers(ids: &[i32]) -> Vec<RegisteredBroker> {
        ids.iter()
            .map(|&id| RegisteredBroker {
                id,
                fenced: false,
                rack: None,
            })
            .collect()
    }

    fn policy(max: usize) -> MovePolicy {
        MovePolicy {
            max_concurrent_moves: max,
            throttle: None,
        }
    }

    fn no_dirs() -> BTreeMap<i32, BTreeMap<TopicPartition, i64>> {
        BTreeMap::new()
    }

    fn plan(
        partitions: &[PartitionView],
        rf: usize,
        in_flight: usize,
        max: usize,
    ) -> (ReplicationStep, ReassignmentProgress) {
        plan_replication(
            partitions,
            &brokers(&[0, 1, 2]),
            rf,
            in_flight,
            policy(max),
            &no_dirs(),
        )
    }

    fn moves_of(step: &ReplicationStep) -> &BTreeMap<TopicPartition, Vec<i32>> {
        match step {
            ReplicationStep::Reassign { moves, .. } => moves,
            other => panic!("expected moves, got {other:?}"),
        }
    }

    #[test]
    fn growing_adds_one_replica_per_partition_keeping_the_existing_ones() {
        let partitions = vec![view(0, &[0, 1]), view(1, &[1, 2]), view(2, &[2, 0])];
        let throttled = MovePolicy {
            max_concurrent_moves: 10,
            throttle: Some(1000),
        };
        let (step, progress) = plan_replication(
            &partitions,
            &brokers(&[0, 1, 2]),
            3,
            0,
            throttled,
            &no_dirs(),
        );
        let moves = moves_of(&step);
        assert_eq!(moves.len(), 3);
        for p in &partitions {
            let target = &moves[&p.partition];
            let distinct: BTreeSet<i32> = target.iter().copied().collect();
            assert_eq!(distinct.len(), 3, "three distinct replicas: {target:?}");
            assert!(
                p.replicas.iter().all(|r| target.contains(r)),
                "no replica of {} is dropped: {target:?}",
                p.partition
            );
        }
        assert!(matches!(
            step,
            ReplicationStep::Reassign {
                throttle: Some(1000),
                ..
            }
        ));
        assert_eq!(
            (progress.total_partitions, progress.done_partitions),
            (3, 0)
        );
    }

    #[test]
    fn shrinking_drops_replicas_down_to_the_factor() {
        let partitions = vec![view(0, &[0, 1, 2]), view(1, &[1, 2, 0])];
        let (step, _) = plan(&partitions, 2, 0, 10);
        let moves = moves_of(&step);
        assert_eq!(moves.len(), 2);
        for (tp, target) in moves {
            let before = &partitions[usize::try_from(tp.partition).expect("index")].replicas;
            assert_eq!(target.len(), 2, "{target:?}");
            assert!(
                target.iter().all(|r| before.contains(r)),
                "only drops: {target:?}"
            );
        }
    }

    #[test]
    fn moves_are_bounded_by_the_concurrency_left() {
        let partitions: Vec<PartitionView> = (0..6).map(|p| view(p, &[0])).collect();
        let (step, _) = plan(&partitions, 2, 1, 3);
        assert_eq!(moves_of(&step).len(), 2, "3 allowed, 1 already moving");
        let (full, _) = plan(&partitions, 2, 3, 3);
        assert_eq!(full, ReplicationStep::Wait);
    }

    #[test]
    fn partitions_being_moved_are_waited_for_not_moved_again() {
        let mut moving = view(0, &[0, 1, 2]);
        moving.adding = vec![2];
        let partitions = vec![moving, view(1, &[1, 2, 0])];
        let (step, progress) = plan(&partitions, 3, 1, 1);
        assert_eq!(step, ReplicationStep::Wait);
        assert_eq!(
            (progress.done_partitions, progress.moving_partitions),
            (1, 1)
        );
        assert_eq!(current_replication_factor(&partitions), Some(2));
    }

    #[test]
    fn a_topic_at_its_factor_is_never_rebalanced() {
        // Every replica on brokers 0 and 1, broker 2 empty: unbalanced, but the factor holds.
        let partitions = vec![view(0, &[0, 1]), view(1, &[0, 1]), view(2, &[1, 0])];
        let (step, progress) = plan(&partitions, 2, 0, 10);
        assert_eq!(step, ReplicationStep::Converged);
        assert_eq!(progress.done_partitions, 3);
    }

    #[test]
    fn more_replicas_than_live_brokers_is_refused() {
        let mut registered = brokers(&[0, 1, 2]);
        registered[2].fenced = true;
        let (step, _) = plan_replication(
            &[view(0, &[0, 1])],
            &registered,
            3,
            0,
            policy(10),
            &no_dirs(),
        );
        let ReplicationStep::Refused(refusal) = step else {
            panic!("expected a refusal, got {step:?}");
        };
        assert_eq!(
            refusal,
            ReplicationRefusal::TooFewBrokers {
                desired: 3,
                brokers: 2
            }
        );
        assert!(
            refusal
                .message("orders")
                .contains("2 registered, unfenced brokers")
        );
    }

    #[test]
    fn a_factor_below_min_insync_is_refused() {
        let mut partition = view(0, &[0, 1, 2]);
        partition.min_insync_replicas = 2;
        let (step, _) = plan(&[partition], 1, 0, 10);
        assert_eq!(
            step,
            ReplicationStep::Refused(ReplicationRefusal::BelowMinInsync {
                desired: 1,
                min_insync: 2
            })
        );
    }

    #[test]
    fn bytes_remaining_are_what_the_added_replicas_lack() {
        let mut moving = view(0, &[0, 1, 2]);
        moving.adding = vec![2];
        let tp = moving.partition.clone();
        let dirs = BTreeMap::from([
            (0, BTreeMap::from([(tp.clone(), 1_000)])),
            (2, BTreeMap::from([(tp.clone(), 400)])),
        ]);
        let registered = brokers(&[0, 1, 2]);
        let (_, progress) = plan_replication(
            std::slice::from_ref(&moving),
            &registered,
            3,
            1,
            policy(1),
            &dirs,
        );
        assert_eq!(progress.bytes_remaining, Some(600));
        let (_, unknown) = plan_replication(&[moving], &registered, 3, 1, policy(1), &no_dirs());
        assert_eq!(unknown.bytes_remaining, None, "the leader did not say");
    }
}
