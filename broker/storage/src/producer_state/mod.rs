//! Producer state of one partition (Kafka's `ProducerStateManager`): idempotent-producer
//! sequences and the transactions of transactional producers.
//!
//! Per producer id the log remembers the current epoch and the metadata of the last
//! [`MAX_CACHED_BATCHES`] batches, so a retried batch is recognised as a duplicate (and answered
//! with its original offsets) and a gap in sequence numbers is rejected; and, for
//! transactions (`txn`), the first offset of its open transaction and the coordinator epoch of
//! its last marker.
//!
//! Sequence rules follow Kafka ≥ 2.5 (KIP-360): a producer the partition does not know yet may
//! start at any sequence (its earlier batches may have been removed by retention or
//! DeleteRecords), so there is no `UNKNOWN_PRODUCER_ID` case; a new epoch must start at
//! sequence 0; within an epoch each batch must continue at `last_sequence + 1`, wrapping from
//! `i32::MAX` to 0.
//!
//! Producer ids come from clients and a partition accepts ids it does not know, so the map is
//! bounded twice: producers idle for longer than `producer.id.expiration.ms` are forgotten by
//! [`ProducerStateManager::remove_expired`] (the broker runs it periodically), and at most
//! [`MAX_PRODUCERS_PER_PARTITION`] are kept: a new producer beyond it evicts the one with the
//! oldest last timestamp. A forgotten producer is a new one to the partition (any sequence
//! starts it), so only its deduplication of retries is lost, never data. A producer with an
//! open transaction is neither expired nor (while others can go) evicted: the last stable
//! offset depends on it.
//!
//! The state is persisted in `<offset>.snapshot` files (the state after every offset below
//! `offset`, format in `snapshot`), written on segment roll and on close, and rebuilt on open
//! by replaying the batch headers after the newest usable snapshot.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::BatchInfo;
use crate::batch::increment_sequence;

mod snapshot;
pub(crate) mod txn;

pub use txn::CompletedTxn;

/// Batches remembered per producer, as in Kafka (`ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const MAX_CACHED_BATCHES: usize = 5;

/// Most producer ids one partition tracks; beyond it the least recently active one (oldest
/// last timestamp) is evicted. About 200 bytes each, so at most a few MB per partition, and
/// each snapshot stays bounded.
pub const MAX_PRODUCERS_PER_PARTITION: usize = 10_000;

/// What the log remembers about one appended batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// `baseSequence`.
    pub first_seq: i32,
    /// Sequence of the batch's last record.
    pub last_seq: i32,
    /// Offset assigned to the first record.
    pub first_offset: i64,
    /// Offset assigned to the last record.
    pub last_offset: i64,
}

/// State of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Current producer epoch.
    pub epoch: i16,
    /// The latest batches, oldest first.
    pub batches: VecDeque<BatchMetadata>,
    /// Largest batch max timestamp seen from this producer (for `producer.id.expiration.ms`).
    pub last_timestamp: i64,
    /// First offset of the producer's open transaction, if one is open.
    pub current_txn_first_offset: Option<i64>,
    /// Coordinator epoch of the producer's last transaction marker; -1 before any.
    pub coordinator_epoch: i32,
}

impl ProducerEntry {
    fn new(epoch: i16, last_timestamp: i64) -> Self {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_timestamp,
            current_txn_first_offset: None,
            coordinator_epoch: -1,
        }
    }
}

/// Outcome of [`ProducerStateManager::check`] for an acceptable batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New data: append it.
    Append,
    /// A retry of a batch already in the log: do not append, answer with its offsets.
    Duplicate {
        /// Offset of the original batch's first record.
        first_offset: i64,
        /// Offset of the original batch's last record.
        last_offset: i64,
    },
}

/// Why a producer's batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerStateError {
    /// A gap (or a rewind) in sequence numbers: Kafka `OUT_OF_ORDER_SEQUENCE_NUMBER`.
    #[error(
        "out of order sequence number for producer {producer_id} epoch {epoch}: expected {expected}, got {got}"
    )]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The batch's producer epoch.
        epoch: i16,
        /// Sequence the partition expected next.
        expected: i32,
        /// The batch's base sequence.
        got: i32,
    },
    /// The batch (or transaction marker) comes from an older epoch (a fenced producer): Kafka
    /// `INVALID_PRODUCER_EPOCH`.
    #[error(
        "producer {producer_id} epoch {epoch} is older than the current epoch {current_epoch}: it was fenced"
    )]
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// The batch's producer epoch.
        epoch: i16,
        /// The epoch the partition knows.
        current_epoch: i16,
    },
}

/// Producer id → state, for one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions as (first offset, producer id), oldest first.
    ongoing: BTreeSet<(i64, i64)>,
    /// Completed transactions whose marker was not yet seen below the high watermark, by
    /// first offset: they still hold the last stable offset back.
    unreplicated: BTreeMap<i64, CompletedTxn>,
}

impl ProducerStateManager {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state of `producer_id`, if known.
    pub fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// True when no producer is tracked.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Last offset of each producer's latest batch: the batches the cleaner keeps (empty if need
    /// be) so that the producer's state survives a rebuild from the log.
    pub(crate) fn last_batch_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset)))
            .collect()
    }

    /// Forgets producers whose newest batch timestamp is more than `expiration_ms` before
    /// `now_ms` (Kafka's `producer.id.expiration.ms`, default one day), so the state does not
    /// grow without bound; a producer with an open transaction stays, as in Kafka. Returns how
    /// many were removed.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) <= expiration_ms
        });
        before - self.producers.len()
    }

    /// Evicts the producers with the oldest last timestamps (ties: the lowest id) until at
    /// most `max` remain; producers with an open transaction go only when no other is left.
    fn evict_to(&mut self, max: usize) {
        while self.producers.len() > max {
            let Some(oldest) = self
                .producers
                .iter()
                .min_by_key(|(id, e)| {
                    (e.current_txn_first_offset.is_some(), e.last_timestamp, **id)
                })
                .map(|(id, _)| *id)
            else {
                return;
            };
            if let Some(e) = self.producers.remove(&oldest)
                && let Some(first) = e.current_txn_first_offset
            {
                self.ongoing.remove(&(first, oldest));
            }
        }
    }

    /// A copy holding only the given producers (to stage the checks of a multi-batch append).
    pub(crate) fn subset(&self, producer_ids: impl Iterator<Item = i64>) -> Self {
        let producers: HashMap<i64, ProducerEntry> = producer_ids
            .filter_map(|id| self.producers.get(&id).map(|e| (id, e.clone())))
            .collect();
        let ongoing = producers
            .iter()
            .filter_map(|(id, e)| e.current_txn_first_offset.map(|first| (first, *id)))
            .collect();
        ProducerStateManager {
            producers,
            ongoing,
            unreplicated: BTreeMap::new(),
        }
    }

    /// Decides whether a batch `[base_sequence, last_sequence]` of `producer_id` at `epoch` is
    /// new data, a duplicate of a cached batch, or refused.
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        last_sequence: i32,
    ) -> Result<SequenceCheck, ProducerStateError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(ProducerStateError::InvalidProducerEpoch {
                producer_id,
                epoch,
                current_epoch: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            // A bumped epoch restarts the sequence space.
            return if base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ProducerStateError::OutOfOrderSequence {
                    producer_id,
                    epoch,
                    expected: 0,
                    got: base_sequence,
                })
            };
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == base_sequence && b.last_seq == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate {
                first_offset: dup.first_offset,
                last_offset: dup.last_offset,
            });
        }
        match entry.batches.back() {
            // Only an epoch is known (e.g. from a transaction marker): any sequence starts it.
            None => Ok(SequenceCheck::Append),
            Some(last) => {
                let expected = increment_sequence(last.last_seq, 1);
                if base_sequence == expected {
                    Ok(SequenceCheck::Append)
                } else {
                    Err(ProducerStateError::OutOfOrderSequence {
                        producer_id,
                        epoch,
                        expected,
                        got: base_sequence,
                    })
                }
            }
        }
    }

    /// The entry of `batch`'s producer, created if new, with its epoch and last timestamp
    /// moved to the batch's (a new epoch forgets the cached batches).
    fn entry_for(&mut self, batch: &BatchInfo) -> &mut ProducerEntry {
        if !self.producers.contains_key(&batch.producer_id) {
            self.evict_to(MAX_PRODUCERS_PER_PARTITION - 1);
        }
        let entry = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry::new(batch.producer_epoch, batch.max_timestamp));
        entry.last_timestamp = entry.last_timestamp.max(batch.max_timestamp);
        if batch.producer_epoch != entry.epoch {
            entry.epoch = batch.producer_epoch;
            entry.batches.clear();
        }
        entry
    }

    /// Records an appended batch. Batches without a producer id are ignored; a transactional
    /// data batch opens its producer's transaction if none is open (any sequence, -1 included:
    /// the coordinator writes offset commits without one); control batches only move the epoch
    /// here ([`ProducerStateManager::update_marker`] records what a marker ends).
    pub fn update(&mut self, batch: &BatchInfo) {
        if batch.producer_id < 0 {
            return;
        }
        let entry = self.entry_for(batch);
        let opened = (batch.is_transactional
            && !batch.is_control
            && entry.current_txn_first_offset.is_none())
        .then(|| {
            entry.current_txn_first_offset = Some(batch.base_offset);
            batch.base_offset
        });
        if !(batch.is_control || batch.base_sequence < 0) {
            let delta = i32::try_from(batch.last_offset - batch.base_offset).unwrap_or(i32::MAX);
            entry.batches.push_back(BatchMetadata {
                first_seq: batch.base_sequence,
                last_seq: increment_sequence(batch.base_sequence, delta),
                first_offset: batch.base_offset,
                last_offset: batch.last_offset,
            });
            while entry.batches.len() > MAX_CACHED_BATCHES {
                entry.batches.pop_front();
            }
        }
        if let Some(first) = opened {
            self.ongoing.insert((first, batch.producer_id));
        }
    }
}

#[cfg(test)]
mod tests;
