//! ISR changes of the partitions led here, proposed to the active controller with
//! AlterPartition (KIP-497): a follower that has not caught up within
//! `replica.lag.time.max.ms` leaves the ISR, a replica that reached the high watermark joins
//! it. The proposals of one check go in one request, which the controller commits as one
//! batch. The controller fences stale proposals by leader epoch and partition epoch; its answer
//! is the partition's new state, applied here at once (the metadata image brings the same
//! state later and is then ignored as not newer).

use std::sync::Arc;
use std::time::Duration;

use strom_metadata::AlterPartitionRequest;
use tokio_util::sync::CancellationToken;

use super::partition::{Partition, ReplicaState, now_ms};
use crate::broker::Broker;

/// How long one ISR proposal may wait for a controller; the next check proposes again.
const ALTER_PARTITION_DEADLINE: Duration = Duration::from_secs(5);

/// Checks every partition led here for ISR changes, `interval` apart.
#[derive(Debug)]
pub struct IsrUpdater {
    pub broker: Arc<Broker>,
    pub interval: Duration,
    pub lag_max_ms: i64,
}

impl IsrUpdater {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = now_ms();
            let proposals: Vec<Proposal> = self
                .broker
                .replicas
                .all_partitions()
                .into_iter()
                .filter_map(|partition| {
                    let (state, isr) = partition.propose_isr(now, self.lag_max_ms)?;
                    Some(Proposal {
                        partition,
                        state,
                        isr,
                    })
                })
                .collect();
            if !proposals.is_empty() {
                let broker = self.broker.clone();
                tokio::spawn(async move { propose(&broker, proposals).await });
            }
        }
    }
}

/// An ISR change of one partition led here, with the state it was planned on.
struct Proposal {
    partition: Arc<Partition>,
    state: ReplicaState,
    isr: Vec<i32>,
}

/// Sends the ISR proposals of one check in one request and applies the answers.
async fn propose(broker: &Broker, proposals: Vec<Proposal>) {
    let requests = proposals
        .iter()
        .map(|p| {
            tracing::info!(
                topic = %p.partition.topic,
                partition = p.partition.index,
                from = ?p.state.isr,
                to = ?p.isr,
                "proposing an ISR change"
            );
            AlterPartitionRequest {
                broker_id: broker.node_id,
                incarnation: broker.lifecycle.incarnation(),
                topic_id: p.partition.topic_id,
                partition: p.partition.index,
                leader_epoch: p.state.leader_epoch,
                partition_epoch: p.state.partition_epoch,
                new_isr: p.isr.clone(),
            }
        })
        .collect();
    let results = broker
        .controller
        .alter_partitions(requests, ALTER_PARTITION_DEADLINE)
        .await;
    for (proposal, result) in proposals.into_iter().zip(results) {
        apply(broker, &proposal, result);
        proposal.partition.isr_change_done();
    }
}

/// Applies the controller's answer to one proposal.
fn apply(
    broker: &Broker,
    proposal: &Proposal,
    result: Result<strom_metadata::PartitionState, strom_metadata::ControllerError>,
) {
    let Proposal {
        partition, state, ..
    } = proposal;
    match result {
        Ok(next) => {
            let removed = state.isr.iter().filter(|r| !next.isr.contains(r)).count();
            let added = next.isr.iter().filter(|r| !state.isr.contains(r)).count();
            for _ in 0..removed {
                broker.metrics.isr_shrink();
            }
            for _ in 0..added {
                broker.metrics.isr_expand();
            }
            partition.update_state(ReplicaState {
                leader: next.leader,
                leader_epoch: next.leader_epoch,
                partition_epoch: next.partition_epoch,
                replicas: next.replicas,
                isr: next.isr,
            });
        }
        Err(error) => {
            // A stale epoch means a newer state is on its way in the metadata image.
            let shrinking = proposal.isr.len() < state.isr.len();
            tracing::info!(topic = %partition.topic, partition = partition.index, shrinking, %error, "ISR change refused");
        }
    }
}
