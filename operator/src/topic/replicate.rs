//! Acting on a replication-factor change: observe the topic's partitions, the reassignments in
//! flight and the brokers, plan with [`plan_replication`] (pure), start the next batch through
//! the day-2 engine (throttled as `kafka-reassign-partitions.sh --throttle` does), and clear
//! the throttles once the change is over.

use std::collections::{BTreeMap, BTreeSet};

use strom_admin::{AdminError, ReplicaAdmin, TopicPartition};
use strom_crds::topic::ReassignmentProgress;
use strom_crds::{Cluster, TopicStatus};

use super::replication::{
    MovePolicy, ReplicationRefusal, ReplicationStep, current_replication_factor, plan_replication,
};
use crate::day2::engine::{DayTwoAdmin, clear_throttles, reassign};
use crate::day2::observed::{PartitionView, RegisteredBroker};
use crate::error::Error;
use crate::metrics::Metrics;

/// The topic config (else the Cluster's broker config) a shrink must not go below.
const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

/// Where a replication-factor change stands after this pass.
#[derive(Debug)]
pub(crate) enum Replication {
    /// Every partition has the factor; no move of this topic runs.
    Converged,
    /// Moves run or were started now.
    InProgress {
        /// How far the change has come.
        progress: ReassignmentProgress,
        /// The factor in place now (replicas assigned and not being added), lowest partition.
        current: Option<usize>,
        /// Partitions whose moves this pass started.
        started: usize,
    },
    /// The factor cannot be reached.
    Refused(ReplicationRefusal),
}

fn failed(operation: &'static str) -> impl FnOnce(AdminError) -> Error {
    move |source| Error::ClusterAdmin { operation, source }
}

/// One pass of changing topic `name` to `rf` replicas per partition. `topic_min_insync` is the
/// topic's own `min.insync.replicas`, if set on it. `finishing`: the change was in progress
/// before this pass, so its throttles are cleared once it converges with nothing else moving.
pub(crate) async fn replicate<A: DayTwoAdmin>(
    admin: &A,
    cluster: &Cluster,
    name: &str,
    rf: usize,
    topic_min_insync: Option<&str>,
    finishing: bool,
) -> Result<Replication, Error> {
    let min_insync = topic_min_insync
        .or_else(|| {
            cluster
                .spec
                .config
                .get(MIN_INSYNC_REPLICAS)
                .map(String::as_str)
        })
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(1);
    let described = admin
        .describe_cluster()
        .await
        .map_err(failed("DescribeCluster"))?;
    let brokers: Vec<RegisteredBroker> = described
        .brokers
        .iter()
        .map(|b| RegisteredBroker {
            id: b.node_id,
            fenced: b.fenced,
            rack: b.rack.clone(),
        })
        .collect();
    let states = admin
        .describe_topics_partitions(Some(&[name]))
        .await
        .map_err(failed("Metadata"))?;
    let states = match states.get(name) {
        Some(Ok(states)) => states.clone(),
        Some(Err(error)) => {
            return Err(Error::Refused {
                operation: "Metadata",
                message: format!("topic {name}: {error}"),
            });
        }
        None => Vec::new(),
    };
    let in_flight = admin
        .list_partition_reassignments(None)
        .await
        .map_err(failed("ListPartitionReassignments"))?;
    let partitions: Vec<PartitionView> = states
        .iter()
        .map(|state| {
            let tp = TopicPartition::new(name, state.partition);
            let ongoing = in_flight.get(&tp);
            PartitionView {
                replicas: state.replicas.clone(),
                isr: state.isr.clone(),
                leader: state.leader,
                min_insync_replicas: min_insync,
                adding: ongoing
                    .map(|o| o.adding_replicas.clone())
                    .unwrap_or_default(),
                removing: ongoing
                    .map(|o| o.removing_replicas.clone())
                    .unwrap_or_default(),
                partition: tp,
            }
        })
        .collect();
    let log_dirs = replica_sizes(admin, &partitions).await;
    let policy = &cluster.spec.operations;
    let policy = MovePolicy {
        max_concurrent_moves: usize::try_from(policy.max_concurrent_moves).unwrap_or(1),
        throttle: Some(policy.throttle_bytes_per_second).filter(|rate| *rate > 0),
    };
    let (step, progress) = plan_replication(
        &partitions,
        &brokers,
        rf,
        in_flight.len(),
        policy,
        &log_dirs,
    );
    let current = current_replication_factor(&partitions);
    match step {
        ReplicationStep::Converged => {
            // Throttles of other moves stay: whoever runs those clears them.
            if finishing && in_flight.is_empty() {
                clear_throttles(admin).await?;
            }
            Ok(Replication::Converged)
        }
        ReplicationStep::Refused(refusal) => Ok(Replication::Refused(refusal)),
        ReplicationStep::Wait => Ok(Replication::InProgress {
            progress,
            current,
            started: 0,
        }),
        ReplicationStep::Reassign { moves, throttle } => {
            reassign(admin, &moves, throttle).await?;
            let mut progress = progress;
            progress.moving_partitions = progress
                .moving_partitions
                .saturating_add(i32::try_from(moves.len()).unwrap_or(i32::MAX));
            Ok(Replication::InProgress {
                progress,
                current,
                started: moves.len(),
            })
        }
    }
}

/// The sizes of the topic's replicas on the brokers its moves copy from and to, for the bytes
/// remaining. A broker that does not answer is left out (the bytes are then unknown).
async fn replica_sizes<A: ReplicaAdmin>(
    admin: &A,
    partitions: &[PartitionView],
) -> BTreeMap<i32, BTreeMap<TopicPartition, i64>> {
    let moving: Vec<&PartitionView> = partitions.iter().filter(|p| !p.adding.is_empty()).collect();
    let wanted: Vec<TopicPartition> = moving.iter().map(|p| p.partition.clone()).collect();
    let involved: BTreeSet<i32> = moving
        .iter()
        .flat_map(|p| p.leader.into_iter().chain(p.adding.iter().copied()))
        .collect();
    let mut sizes = BTreeMap::new();
    for broker in involved {
        let Ok(dirs) = admin.describe_log_dirs(broker, Some(&wanted)).await else {
            continue;
        };
        let held: BTreeMap<TopicPartition, i64> = dirs
            .into_iter()
            .filter(|dir| dir.error.is_none())
            .flat_map(|dir| dir.replicas)
            .filter(|r| !r.is_future)
            .map(|r| (r.partition, r.size_bytes))
            .collect();
        sizes.insert(broker, held);
    }
    sizes
}

/// The factor a pass drives the topic to: the spec's, while a change is under way (the plan
/// sees the factor differ, or the status still records a target). A change runs until every
/// partition has the factor, even once the lowest partition's count already matches.
pub(crate) fn replication_target(
    spec_rf: Option<i16>,
    plan_changes_rf: bool,
    status: &TopicStatus,
) -> Option<i16> {
    let changing = plan_changes_rf || status.target_replication_factor.is_some();
    spec_rf.filter(|_| changing)
}

/// What a replication pass changed in the status, for the runtime to announce (events,
/// metrics) and to fold into the Ready condition.
#[derive(Debug, Default)]
pub(crate) struct ReplicationReport {
    /// Partitions whose moves this pass started.
    pub started: usize,
    /// The change finished in this pass.
    pub finished: bool,
    /// Why the factor cannot be reached: (reason, message).
    pub refusal: Option<(&'static str, String)>,
    /// The `ReplicationFactorChanging` message while moves run.
    pub changing: Option<String>,
    /// The bytes still to copy, to publish (`Some(None)`: clear the figure).
    pub bytes_remaining: Option<Option<i64>>,
}

impl ReplicationReport {
    /// Publishes the bytes still to copy as Topic `topic`'s share (`Topic/<name>`) of
    /// `cluster`'s (`namespace/name`) `strom_operator_reassignment_bytes_remaining`, when this
    /// pass has a figure to publish or to clear; the same in both runtimes.
    pub(crate) fn publish_bytes_remaining(&self, metrics: &Metrics, cluster: &str, topic: &str) {
        if let Some(bytes) = self.bytes_remaining {
            metrics.set_reassignment_bytes_remaining(cluster, &format!("Topic/{topic}"), bytes);
        }
    }
}

/// Records `replication` (the target and this pass's outcome, `None` when no change runs) in
/// `status`: the factor in place, the target, the reassignment progress.
pub(crate) fn record_replication(
    status: &mut TopicStatus,
    name: &str,
    replication: Option<(i16, &Replication)>,
) -> ReplicationReport {
    let mut report = ReplicationReport::default();
    match replication {
        Some((
            rf,
            Replication::InProgress {
                progress,
                current,
                started,
            },
        )) => {
            report.started = *started;
            status.target_replication_factor = Some(rf);
            if let Some(in_place) = current.and_then(|n| i16::try_from(n).ok()) {
                status.replication_factor = Some(in_place);
            }
            report.bytes_remaining = Some(progress.bytes_remaining);
            report.changing = Some(changing_note(name, status.replication_factor, rf, progress));
            status.reassignment = Some(progress.clone());
        }
        Some((rf, Replication::Converged)) => {
            report.finished = status.target_replication_factor.is_some();
            status.replication_factor = Some(rf);
            status.target_replication_factor = None;
            status.reassignment = None;
            report.bytes_remaining = Some(None);
        }
        Some((rf, Replication::Refused(refusal))) => {
            status.target_replication_factor = Some(rf);
            status.reassignment = None;
            report.bytes_remaining = Some(None);
            report.refusal = Some((refusal.reason(), refusal.message(name)));
        }
        None => {
            if status.target_replication_factor.take().is_some() {
                report.bytes_remaining = Some(None);
            }
            status.reassignment = None;
        }
    }
    report
}

/// What the `ReplicationFactorChanging` condition says.
fn changing_note(
    name: &str,
    current: Option<i16>,
    target: i16,
    progress: &ReassignmentProgress,
) -> String {
    let from = current.map_or_else(|| "?".to_owned(), |rf| rf.to_string());
    let bytes = progress
        .bytes_remaining
        .map(|b| format!(", {b} bytes left to copy"))
        .unwrap_or_default();
    format!(
        "topic {name}: replication factor {from} -> {target}: {}/{} partitions done, {} moving{bytes}",
        progress.done_partitions, progress.total_partitions, progress.moving_partitions
    )
}
