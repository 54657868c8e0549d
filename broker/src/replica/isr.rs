//! ISR changes of the partitions led here, proposed to the active controller with
//! AlterPartition (KIP-497): a follower that has not caught up within
//! `replica.lag.time.max.ms` leaves the ISR, a replica that reached the high watermark joins
//! it. The controller fences stale proposals by leader epoch and partition epoch; its answer
//! is the partition's new state, applied here at once (the metadata image brings the same
//! state later and is then ignored as not newer).

use std::sync::Arc;
use std::time::Duration;

use strom_metadata::{AlterPartitionRequest, ControllerRequest, ControllerResponse};
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
            for partition in self.broker.replicas.all_partitions() {
                if let Some((state, isr)) = partition.propose_isr(now, self.lag_max_ms) {
                    let broker = self.broker.clone();
                    tokio::spawn(async move { propose(&broker, &partition, state, isr).await });
                }
            }
        }
    }
}

/// Sends one ISR proposal and applies the answer.
async fn propose(broker: &Broker, partition: &Arc<Partition>, state: ReplicaState, isr: Vec<i32>) {
    let shrinking = isr.len() < state.isr.len();
    tracing::info!(
        topic = %partition.topic,
        partition = partition.index,
        from = ?state.isr,
        to = ?isr,
        "proposing an ISR change"
    );
    let request = ControllerRequest::AlterPartition(AlterPartitionRequest {
        broker_id: broker.node_id,
        incarnation: broker.lifecycle.incarnation(),
        topic_id: partition.topic_id,
        partition: partition.index,
        leader_epoch: state.leader_epoch,
        partition_epoch: state.partition_epoch,
        new_isr: isr,
    });
    match broker
        .controller
        .call_within(request, ALTER_PARTITION_DEADLINE)
        .await
    {
        ControllerResponse::AlterPartition(Ok(next)) => {
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
        ControllerResponse::AlterPartition(Err(error)) => {
            // A stale epoch means a newer state is on its way in the metadata image.
            tracing::info!(topic = %partition.topic, partition = partition.index, shrinking, %error, "ISR change refused");
        }
        other => {
            tracing::warn!(?other, "unexpected answer to AlterPartition");
        }
    }
    partition.isr_change_done();
}
