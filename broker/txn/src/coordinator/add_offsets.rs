//! AddOffsetsToTxn (API key 25).

use std::collections::BTreeSet;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use strom_group::{OffsetsLog, coordinator_partition};

use super::TransactionCoordinator;
use crate::CONSUMER_OFFSETS_TOPIC;
use crate::codes::*;
use crate::marker::MarkerWriter;

impl<L: OffsetsLog, M: MarkerWriter> TransactionCoordinator<L, M> {
    /// AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction, so
    /// its TxnOffsetCommit is committed or aborted with the transaction's markers.
    pub async fn add_offsets_to_txn(
        &self,
        req: AddOffsetsToTxnRequest,
        version: i16,
    ) -> AddOffsetsToTxnResponse {
        let partition = coordinator_partition(
            req.group_id.0.as_str(),
            self.shared.config.offsets_topic_partitions,
        );
        let partitions = BTreeSet::from([(CONSUMER_OFFSETS_TOPIC.to_owned(), partition)]);
        let code = match self
            .add(
                req.transactional_id.0.as_str(),
                req.producer_id.0,
                req.producer_epoch,
                &partitions,
            )
            .await
        {
            Ok(()) => NONE,
            Err(code) => fenced_for(code, version, 2),
        };
        AddOffsetsToTxnResponse::default().with_error_code(code)
    }
}
