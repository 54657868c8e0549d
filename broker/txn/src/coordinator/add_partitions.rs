//! AddPartitionsToTxn (API key 24): v0–v3 from producers, v4+ batched from brokers with
//! `verify_only` (KIP-890).

use std::collections::BTreeSet;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use strom_group::OffsetsLog;

use super::TransactionCoordinator;
use crate::codes::*;
use crate::marker::MarkerWriter;
use crate::metadata::{add_partitions, verify_producer};

impl<L: OffsetsLog, M: MarkerWriter> TransactionCoordinator<L, M> {
    /// AddPartitionsToTxn: adds partitions to the producer's transaction (written to
    /// `__transaction_state` before answering), or with `verify_only` (v4+) answers whether
    /// each partition is in the ongoing transaction. A partition of a topic that does not
    /// exist fails the request: it gets UNKNOWN_TOPIC_OR_PARTITION, the others
    /// OPERATION_NOT_ATTEMPTED, and nothing is written.
    pub async fn add_partitions_to_txn(
        &self,
        req: AddPartitionsToTxnRequest,
        version: i16,
    ) -> AddPartitionsToTxnResponse {
        if version <= 3 {
            let results = self
                .add_one(
                    req.v3_and_below_transactional_id.0.as_str(),
                    req.v3_and_below_producer_id.0,
                    req.v3_and_below_producer_epoch,
                    false,
                    &req.v3_and_below_topics,
                    version,
                )
                .await;
            return AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(results);
        }
        let mut out = Vec::with_capacity(req.transactions.len());
        for txn in &req.transactions {
            let results = self
                .add_one(
                    txn.transactional_id.0.as_str(),
                    txn.producer_id.0,
                    txn.producer_epoch,
                    txn.verify_only,
                    &txn.topics,
                    version,
                )
                .await;
            out.push(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(txn.transactional_id.clone())
                    .with_topic_results(results),
            );
        }
        AddPartitionsToTxnResponse::default().with_results_by_transaction(out)
    }

    async fn add_one(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        verify_only: bool,
        topics: &[AddPartitionsToTxnTopic],
        version: i16,
    ) -> Vec<AddPartitionsToTxnTopicResult> {
        let codes: Vec<Vec<i16>> = if verify_only {
            match self.verify(transactional_id, producer_id, producer_epoch) {
                Ok(included) => topics
                    .iter()
                    .map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| {
                                if included.contains(&(t.name.0.as_str().to_owned(), *p)) {
                                    NONE
                                } else {
                                    INVALID_TXN_STATE
                                }
                            })
                            .collect()
                    })
                    .collect(),
                Err(code) => uniform(topics, code),
            }
        } else {
            let unknown: Vec<Vec<bool>> = topics
                .iter()
                .map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| !self.topic_exists(t.name.0.as_str(), *p))
                        .collect()
                })
                .collect();
            if unknown.iter().flatten().any(|u| *u) {
                unknown
                    .iter()
                    .map(|t| {
                        t.iter()
                            .map(|u| {
                                if *u {
                                    UNKNOWN_TOPIC_OR_PARTITION
                                } else {
                                    OPERATION_NOT_ATTEMPTED
                                }
                            })
                            .collect()
                    })
                    .collect()
            } else {
                let partitions: BTreeSet<(String, i32)> = topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| (t.name.0.as_str().to_owned(), *p))
                    })
                    .collect();
                let code = match self
                    .add(transactional_id, producer_id, producer_epoch, &partitions)
                    .await
                {
                    Ok(()) => NONE,
                    Err(code) => fenced_for(code, version, 2),
                };
                uniform(topics, code)
            }
        };
        topics
            .iter()
            .zip(codes)
            .map(|(t, codes)| {
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name.clone())
                    .with_results_by_partition(
                        t.partitions
                            .iter()
                            .zip(codes)
                            .map(|(p, code)| {
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(*p)
                                    .with_partition_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect()
    }

    /// The partitions of the producer's ongoing transaction, if it may write to it.
    fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<BTreeSet<(String, i32)>, i16> {
        let state = self.shared.state.lock();
        self.check_txn(&state, transactional_id)?;
        let meta = state
            .txns
            .get(transactional_id)
            .ok_or(INVALID_PRODUCER_ID_MAPPING)?;
        verify_producer(meta, producer_id, producer_epoch)?;
        Ok(meta.partitions.clone())
    }

    /// Adds `partitions` to the producer's transaction and persists it.
    pub(super) async fn add(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<(String, i32)>,
    ) -> Result<(), i16> {
        let (_guard, partition, coordinator_epoch) = self.lock_txn(transactional_id).await?;
        let next = {
            let state = self.shared.state.lock();
            let meta = state
                .txns
                .get(transactional_id)
                .ok_or(INVALID_PRODUCER_ID_MAPPING)?;
            add_partitions(meta, producer_id, producer_epoch, partitions, self.now())?
        };
        match next {
            None => Ok(()),
            Some(next) => self.persist(partition, coordinator_epoch, next).await,
        }
    }
}

fn uniform(topics: &[AddPartitionsToTxnTopic], code: i16) -> Vec<Vec<i16>> {
    topics
        .iter()
        .map(|t| vec![code; t.partitions.len()])
        .collect()
}
