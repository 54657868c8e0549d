//! InitProducerId (API key 22) with a transactional id.

use std::sync::atomic::Ordering;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use strom_group::OffsetsLog;

use super::TransactionCoordinator;
use crate::codes::*;
use crate::config::millis;
use crate::marker::MarkerWriter;
use crate::metadata::{InitOutcome, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, init_producer_id};

impl<L: OffsetsLog, M: MarkerWriter> TransactionCoordinator<L, M> {
    /// InitProducerId of a transactional producer: a producer id and a bumped epoch that fences
    /// every earlier producer of the same transactional id. An ongoing transaction of the
    /// previous producer is aborted first (its markers carry the bumped epoch) and the client
    /// gets CONCURRENT_TRANSACTIONS until the abort completes. A request without a
    /// transactional id is the broker's business and is answered INVALID_REQUEST here.
    pub async fn init_producer_id(
        &self,
        req: InitProducerIdRequest,
        version: i16,
    ) -> InitProducerIdResponse {
        let (code, producer_id, epoch) = match self.init(&req, version).await {
            Ok((id, epoch)) => (NONE, id, epoch),
            Err(code) => (
                fenced_for(code, version, 4),
                NO_PRODUCER_ID,
                NO_PRODUCER_EPOCH,
            ),
        };
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
    }

    async fn init(&self, req: &InitProducerIdRequest, version: i16) -> Result<(i64, i16), i16> {
        let Some(transactional_id) = req.transactional_id.as_ref().map(|t| t.0.as_str()) else {
            return Err(INVALID_REQUEST);
        };
        if transactional_id.is_empty() {
            return Err(INVALID_REQUEST);
        }
        let timeout_ms = req.transaction_timeout_ms;
        if timeout_ms <= 0
            || i64::from(timeout_ms) > millis(self.shared.config.max_transaction_timeout)
        {
            return Err(INVALID_TRANSACTION_TIMEOUT);
        }
        let expected = match (version >= 3, req.producer_id.0, req.producer_epoch) {
            (false, _, _) | (true, NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => None,
            (true, id, epoch) if id >= 0 && epoch >= 0 => Some((id, epoch)),
            _ => return Err(INVALID_REQUEST),
        };
        let (_guard, partition, coordinator_epoch) = self.lock_txn(transactional_id).await?;
        let mut new_id = None;
        let outcome = loop {
            let existing = self.transaction(transactional_id);
            let outcome = init_producer_id(
                existing.as_ref(),
                transactional_id,
                timeout_ms,
                expected,
                new_id,
                self.now(),
            )?;
            if outcome != InitOutcome::NeedsProducerId {
                break (outcome, existing);
            }
            if new_id.is_some() {
                return Err(UNKNOWN_SERVER_ERROR);
            }
            match self.shared.producer_ids.next_id_boxed().await {
                Ok(id) => new_id = Some(id),
                Err(reason) => {
                    tracing::warn!(transactional_id, %reason, "allocating a producer id failed");
                    return Err(COORDINATOR_LOAD_IN_PROGRESS);
                }
            }
        };
        match outcome {
            (InitOutcome::Ready(meta), existing) => {
                let answer = (meta.producer_id, meta.producer_epoch);
                self.persist(partition, coordinator_epoch, meta).await?;
                if expected.is_none() && existing.is_some_and(|e| e.producer_epoch >= 0) {
                    self.shared
                        .counters
                        .fenced_producers
                        .fetch_add(1, Ordering::Relaxed);
                }
                Ok(answer)
            }
            (InitOutcome::FenceOngoing(abort), _) => {
                tracing::info!(
                    transactional_id,
                    producer_id = abort.producer_id,
                    epoch = abort.producer_epoch,
                    "aborting the ongoing transaction of a fenced producer"
                );
                self.persist(partition, coordinator_epoch, abort.clone())
                    .await?;
                self.spawn_markers(partition, coordinator_epoch, abort);
                Err(CONCURRENT_TRANSACTIONS)
            }
            (InitOutcome::NeedsProducerId, _) => Err(UNKNOWN_SERVER_ERROR),
        }
    }
}
