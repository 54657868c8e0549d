//! The partitions of an internal topic (`__consumer_offsets`, `__transaction_state`) as the
//! coordinators persist through them: [`OffsetsLog`] on the broker's own partition logs.
//!
//! A coordinator appends as leader without producer-sequence checks and waits for every
//! in-sync replica (acks=all, as Kafka's coordinators write), so state it acknowledged survives
//! the loss of the leader.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use strom_group::{OffsetsLog, OffsetsLogError};
use strom_storage::StorageError;

use crate::errors::storage_failure;
use crate::replica::{AppendError, CommitWait, ReplicaManager, now_ms};

/// How long a coordinator's write waits for the in-sync replicas (Kafka's
/// `offsets.commit.timeout.ms` and `transaction.state.log` write timeout default).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// One internal topic's partitions on this broker.
#[derive(Debug)]
pub struct InternalTopicLog {
    topic: &'static str,
    replicas: Arc<ReplicaManager>,
}

impl InternalTopicLog {
    pub fn new(topic: &'static str, replicas: Arc<ReplicaManager>) -> Self {
        Self { topic, replicas }
    }
}

impl OffsetsLog for InternalTopicLog {
    async fn append(&self, partition: i32, batch: Bytes) -> Result<i64, OffsetsLogError> {
        let target = self
            .replicas
            .partition(self.topic, partition)
            .filter(|p| p.is_leader())
            .ok_or(OffsetsLogError::NotLeader { partition })?;
        let append = target
            .append_as_coordinator(batch.to_vec(), now_ms())
            .await
            .map_err(|error| append_failure(partition, error))?;
        target
            .wait_for_commit(
                append.info.last_offset + 1,
                append.leader_epoch,
                COMMIT_TIMEOUT,
            )
            .await
            .map_err(|failed| commit_failure(partition, failed))?;
        Ok(append.info.first_offset)
    }

    fn read(
        &self,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(Bytes, i64), OffsetsLogError> {
        let target = self
            .replicas
            .partition(self.topic, partition)
            .ok_or(OffsetsLogError::NotLeader { partition })?;
        let log = target.log();
        let end = log.log_end_offset();
        let from = offset.max(log.log_start_offset());
        if from >= end {
            return Ok((Bytes::new(), end));
        }
        let read =
            log.read(from, max_bytes, end, true)
                .map_err(|error| OffsetsLogError::Storage {
                    partition,
                    reason: error.to_string(),
                })?;
        Ok((read.records, end))
    }
}

fn append_failure(partition: i32, error: AppendError) -> OffsetsLogError {
    match error {
        AppendError::NotLeader => OffsetsLogError::NotLeader { partition },
        AppendError::NotEnoughReplicas { .. } => OffsetsLogError::Unavailable {
            partition,
            reason: error.to_string(),
        },
        AppendError::Storage(StorageError::RecordTooLarge {
            size,
            max_message_bytes,
        }) => OffsetsLogError::TooLarge {
            partition,
            size,
            max: max_message_bytes,
        },
        AppendError::Storage(other) => {
            // The partition's producer state refused the write (a fenced or stale producer,
            // a transaction in the wrong state): the coordinator answers the client with that
            // code, which it must not retry.
            let (code, _) = storage_failure(&other);
            if matches!(
                code,
                ResponseError::InvalidProducerEpoch
                    | ResponseError::ProducerFenced
                    | ResponseError::InvalidTxnState
                    | ResponseError::TransactionCoordinatorFenced
            ) {
                OffsetsLogError::Rejected {
                    partition,
                    error_code: code.code(),
                    reason: other.to_string(),
                }
            } else {
                OffsetsLogError::Storage {
                    partition,
                    reason: other.to_string(),
                }
            }
        }
    }
}

fn commit_failure(partition: i32, failed: CommitWait) -> OffsetsLogError {
    match failed {
        CommitWait::NotLeader => OffsetsLogError::NotLeader { partition },
        CommitWait::NotEnoughReplicasAfterAppend | CommitWait::TimedOut => {
            OffsetsLogError::Unavailable {
                partition,
                reason: format!("not replicated to the in-sync replicas: {failed:?}"),
            }
        }
    }
}
