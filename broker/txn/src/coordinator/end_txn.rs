//! EndTxn (API key 26).

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use strom_group::OffsetsLog;

use super::TransactionCoordinator;
use crate::codes::*;
use crate::marker::MarkerWriter;
use crate::metadata::{EndOutcome, end_transaction};

impl<L: OffsetsLog, M: MarkerWriter> TransactionCoordinator<L, M> {
    /// EndTxn: commits or aborts the producer's ongoing transaction. PrepareCommit/PrepareAbort
    /// is written to `__transaction_state` before the answer; the markers and the
    /// CompleteCommit/CompleteAbort follow in a task of the coordinator. An unknown
    /// transactional id is INVALID_PRODUCER_ID_MAPPING, as in Kafka.
    pub async fn end_txn(&self, req: EndTxnRequest, version: i16) -> EndTxnResponse {
        let code = match self
            .end(
                req.transactional_id.0.as_str(),
                req.producer_id.0,
                req.producer_epoch,
                req.committed,
            )
            .await
        {
            Ok(()) => NONE,
            Err(code) => fenced_for(code, version, 2),
        };
        EndTxnResponse::default().with_error_code(code)
    }

    async fn end(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), i16> {
        let (_guard, partition, coordinator_epoch) = self.lock_txn(transactional_id).await?;
        let outcome = {
            let state = self.shared.state.lock();
            let meta = state
                .txns
                .get(transactional_id)
                .ok_or(INVALID_PRODUCER_ID_MAPPING)?;
            end_transaction(meta, producer_id, producer_epoch, commit, self.now())?
        };
        match outcome {
            EndOutcome::AlreadyComplete => Ok(()),
            EndOutcome::Prepare(prepare) => {
                self.persist(partition, coordinator_epoch, prepare.clone())
                    .await?;
                self.spawn_markers(partition, coordinator_epoch, prepare);
                Ok(())
            }
        }
    }
}
