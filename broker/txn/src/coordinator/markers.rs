//! Completing a decided transaction: markers to every partition, then
//! CompleteCommit/CompleteAbort.
//!
//! Markers are sent again, with a doubling backoff, to the partitions that answered
//! [`MarkerError::Retriable`] until every partition answered `Ok` or
//! [`MarkerError::UnknownPartition`] (a deleted topic has nothing to mark). The task stops
//! without completing when the coordinator loses the partition, a newer coordinator fences it
//! ([`MarkerError::CoordinatorFenced`]), or it shuts down: the next coordinator of the
//! partition finds the PrepareCommit/PrepareAbort when loading and completes it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use strom_group::OffsetsLog;

use super::TransactionCoordinator;
use crate::codes::*;
use crate::marker::{MarkerError, MarkerRequest, MarkerWriter};
use crate::metadata::TransactionMetadata;
use crate::state::TxnState;

impl<L: OffsetsLog, M: MarkerWriter> TransactionCoordinator<L, M> {
    /// Starts the task completing `prepare` (a persisted PrepareCommit/PrepareAbort).
    pub(super) fn spawn_markers(
        &self,
        partition: i32,
        coordinator_epoch: i32,
        prepare: TransactionMetadata,
    ) {
        let this = self.clone();
        self.shared.tasks.spawn(async move {
            this.complete_transaction(partition, coordinator_epoch, prepare)
                .await;
        });
    }

    fn still_owner(&self, partition: i32, coordinator_epoch: i32) -> bool {
        !self.shared.shutdown.is_cancelled()
            && self.shared.state.lock().owned_epoch(partition) == Some(coordinator_epoch)
    }

    /// Waits `backoff` (or until shutdown) and doubles it; false on shutdown.
    async fn back_off(&self, backoff: &mut Duration) -> bool {
        tokio::select! {
            () = self.shared.shutdown.cancelled() => return false,
            () = tokio::time::sleep(*backoff) => {}
        }
        *backoff = (*backoff * 2).min(self.shared.config.marker_retry_backoff_max);
        true
    }

    async fn complete_transaction(
        &self,
        partition: i32,
        coordinator_epoch: i32,
        prepare: TransactionMetadata,
    ) {
        let commit = prepare.state == TxnState::PrepareCommit;
        let id = prepare.transactional_id.as_str();
        let mut pending: Vec<(String, i32)> = prepare.partitions.iter().cloned().collect();
        let mut backoff = self.shared.config.marker_retry_backoff;
        while !pending.is_empty() {
            if !self.still_owner(partition, coordinator_epoch) {
                return;
            }
            let results = self
                .shared
                .markers
                .write_markers(MarkerRequest {
                    producer_id: prepare.producer_id,
                    producer_epoch: prepare.producer_epoch,
                    coordinator_epoch,
                    commit,
                    partitions: pending.clone(),
                })
                .await;
            let mut retry = Vec::new();
            for tp in pending {
                match results.iter().find(|(r, _)| *r == tp).map(|(_, r)| r) {
                    Some(Ok(())) | Some(Err(MarkerError::UnknownPartition)) => {}
                    Some(Err(MarkerError::CoordinatorFenced)) => {
                        tracing::warn!(
                            transactional_id = id,
                            partition,
                            "a newer transaction coordinator fenced this one; leaving the transaction to it"
                        );
                        return;
                    }
                    Some(Err(MarkerError::Retriable(reason))) => {
                        tracing::debug!(transactional_id = id, topic = %tp.0, p = tp.1, %reason, "marker not written yet; retrying");
                        retry.push(tp);
                    }
                    None => retry.push(tp),
                }
            }
            pending = retry;
            if !pending.is_empty() && !self.back_off(&mut backoff).await {
                return;
            }
        }
        let mut backoff = self.shared.config.marker_retry_backoff;
        loop {
            match self
                .write_complete(partition, coordinator_epoch, &prepare)
                .await
            {
                Ok(()) => return,
                Err(NOT_COORDINATOR) => return,
                Err(code) => {
                    tracing::warn!(
                        transactional_id = id,
                        partition,
                        code,
                        "writing the completed transaction failed; retrying"
                    );
                    if !self.back_off(&mut backoff).await {
                        return;
                    }
                }
            }
        }
    }

    async fn write_complete(
        &self,
        partition: i32,
        coordinator_epoch: i32,
        prepare: &TransactionMetadata,
    ) -> Result<(), i16> {
        let _guard = self.writer(partition).lock().await;
        let next = {
            let state = self.shared.state.lock();
            if state.owned_epoch(partition) != Some(coordinator_epoch) {
                return Err(NOT_COORDINATOR);
            }
            match state.txns.get(&prepare.transactional_id) {
                Some(current)
                    if current.producer_id == prepare.producer_id
                        && current.producer_epoch == prepare.producer_epoch
                        && current.state == prepare.state =>
                {
                    current.complete(self.now())
                }
                // Completed or replaced meanwhile: nothing left to do.
                _ => None,
            }
        };
        let Some(next) = next else { return Ok(()) };
        let commit = next.state == TxnState::CompleteCommit;
        self.persist(partition, coordinator_epoch, next).await?;
        let counter = if commit {
            &self.shared.counters.committed
        } else {
            &self.shared.counters.aborted
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            transactional_id = %prepare.transactional_id,
            commit,
            "transaction complete"
        );
        Ok(())
    }
}
