//! Transactions in the producer state (KIP-98): which producers have a transaction open and
//! from which offset, which completed transactions still hold the last stable offset back,
//! and the checks markers and data batches go through.
//!
//! A transaction opens with its producer's first transactional data batch and closes with a
//! COMMIT or ABORT marker. The last stable offset (LSO) is the first offset a `read_committed`
//! consumer may not read yet: the first offset of the oldest open transaction, or of the oldest
//! completed one whose marker is not yet below the high watermark (its outcome is not
//! replicated, so it may still be lost), capped at the high watermark.

use super::{MAX_PRODUCERS_PER_PARTITION, ProducerEntry, ProducerStateError, ProducerStateManager};
use crate::BatchInfo;
use crate::records::ControlMarker;

/// A transaction a marker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    /// The producer id.
    pub producer_id: i64,
    /// Offset of the transaction's first data batch in this partition.
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    /// Ended by ABORT.
    pub is_aborted: bool,
}

/// Why a transaction marker is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MarkerRefusal {
    /// Its producer epoch is older than the producer's.
    ProducerEpoch(ProducerStateError),
    /// Its coordinator epoch is older than the one of the producer's last marker.
    CoordinatorEpoch {
        /// The epoch the producer's last marker carried.
        current: i32,
    },
}

impl ProducerStateManager {
    /// Whether a marker of `producer_id` at `producer_epoch` from a coordinator at
    /// `coordinator_epoch` may be written (Kafka's `appendEndTxnMarker` checks).
    pub(crate) fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), MarkerRefusal> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if producer_epoch < entry.epoch {
            return Err(MarkerRefusal::ProducerEpoch(
                ProducerStateError::InvalidProducerEpoch {
                    producer_id,
                    epoch: producer_epoch,
                    current_epoch: entry.epoch,
                },
            ));
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(MarkerRefusal::CoordinatorEpoch {
                current: entry.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Whether `producer_id` has a transaction open (a client's non-transactional batch is
    /// then refused with `INVALID_TXN_STATE`).
    pub fn has_open_transaction(&self, producer_id: i64) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some())
    }

    /// Records an appended marker batch: moves the producer's epoch, remembers the coordinator
    /// epoch and closes the open transaction, which is returned (`None` when none was open: a
    /// marker without a transaction is written all the same, as Kafka does).
    pub fn update_marker(
        &mut self,
        batch: &BatchInfo,
        marker: ControlMarker,
    ) -> Option<CompletedTxn> {
        if batch.producer_id < 0 {
            return None;
        }
        let entry: &mut ProducerEntry = self.entry_for(batch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        let first_offset = entry.current_txn_first_offset.take()?;
        self.ongoing.remove(&(first_offset, batch.producer_id));
        let completed = CompletedTxn {
            producer_id: batch.producer_id,
            first_offset,
            last_offset: batch.base_offset,
            is_aborted: !marker.commit,
        };
        self.unreplicated.insert(first_offset, completed);
        // Bounded like the producers: a log whose high watermark is never reported (a
        // follower's) forgets the oldest instead of growing.
        while self.unreplicated.len() > MAX_PRODUCERS_PER_PARTITION {
            self.unreplicated.pop_first();
        }
        Some(completed)
    }

    /// The last stable offset right after `completed`'s marker, ignoring the high watermark:
    /// the first offset of the oldest transaction still open, or the offset after the marker
    /// (what Kafka's `.txnindex` entries record).
    pub fn last_stable_offset_after(&self, completed: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, pid)| *pid != completed.producer_id)
            .map_or(completed.last_offset + 1, |(first, _)| *first)
    }

    /// The first offset not stable for any high watermark this state has not seen yet: the
    /// oldest first offset of an open transaction or of a completed one not yet seen below the
    /// high watermark. `None` when there is neither.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let open = self.ongoing.first().map(|(first, _)| *first);
        let completed = self.unreplicated.first_key_value().map(|(first, _)| *first);
        match (open, completed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether anything holds the last stable offset below the high watermark.
    pub fn has_unstable(&self) -> bool {
        !self.ongoing.is_empty() || !self.unreplicated.is_empty()
    }

    /// The last stable offset for `high_watermark`; completed transactions whose marker is
    /// below it are forgotten (the high watermark does not go back).
    pub fn last_stable_offset(&mut self, high_watermark: i64) -> i64 {
        self.unreplicated
            .retain(|_, txn| txn.last_offset >= high_watermark);
        self.first_unstable_offset()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// The open transactions, oldest first: (producer id, its entry, first offset).
    pub fn open_transactions(&self) -> impl Iterator<Item = (i64, &ProducerEntry, i64)> + '_ {
        self.ongoing
            .iter()
            .filter_map(|&(first, pid)| self.producers.get(&pid).map(|entry| (pid, entry, first)))
    }

    /// Re-derives the index of open transactions from the entries (after decoding).
    pub(super) fn reindex_open_transactions(&mut self) {
        self.ongoing = self
            .producers
            .iter()
            .filter_map(|(pid, e)| e.current_txn_first_offset.map(|first| (first, *pid)))
            .collect();
    }
}
