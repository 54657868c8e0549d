//! Idempotent-producer state of one partition (Kafka's `ProducerStateManager`).
//!
//! Per producer id the leader remembers the current epoch and the metadata of the last
//! [`MAX_CACHED_BATCHES`] batches, so a retried batch is recognised as a duplicate (and answered
//! with its original offsets) and a gap in sequence numbers is rejected.
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
//! starts it), so only its deduplication of retries is lost, never data.
//!
//! The state is persisted in `<offset>.snapshot` files (the state after every offset below
//! `offset`), written on segment roll and on close, and rebuilt on open by replaying the batch
//! headers after the newest usable snapshot.

use std::collections::{HashMap, VecDeque};

use crate::BatchInfo;
use crate::batch::increment_sequence;

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
    /// The batch comes from an older epoch (a fenced producer): Kafka `INVALID_PRODUCER_EPOCH`.
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
}

const SNAPSHOT_VERSION: u16 = 1;
const SNAPSHOT_HEADER: usize = 2 + 4;
const BATCH_METADATA_SIZE: usize = 4 + 4 + 8 + 8;

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
    /// grow without bound. Returns how many were removed.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp) <= expiration_ms);
        before - self.producers.len()
    }

    /// Evicts the producers with the oldest last timestamps (ties: the lowest id) until at
    /// most `max` remain.
    fn evict_to(&mut self, max: usize) {
        while self.producers.len() > max {
            let Some(oldest) = self
                .producers
                .iter()
                .min_by_key(|(id, e)| (e.last_timestamp, **id))
                .map(|(id, _)| *id)
            else {
                return;
            };
            self.producers.remove(&oldest);
        }
    }

    /// A copy holding only the given producers (to stage the checks of a multi-batch append).
    pub(crate) fn subset(&self, producer_ids: impl Iterator<Item = i64>) -> Self {
        let producers = producer_ids
            .filter_map(|id| self.producers.get(&id).map(|e| (id, e.clone())))
            .collect();
        ProducerStateManager { producers }
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

    /// Records an appended batch. Batches without a producer id are ignored; control batches
    /// (transaction markers) only move the epoch.
    pub fn update(&mut self, batch: &BatchInfo) {
        if batch.producer_id < 0 {
            return;
        }
        if !self.producers.contains_key(&batch.producer_id) {
            self.evict_to(MAX_PRODUCERS_PER_PARTITION - 1);
        }
        let entry = self
            .producers
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: batch.producer_epoch,
                batches: VecDeque::new(),
                last_timestamp: batch.max_timestamp,
            });
        entry.last_timestamp = entry.last_timestamp.max(batch.max_timestamp);
        if batch.producer_epoch != entry.epoch {
            entry.epoch = batch.producer_epoch;
            entry.batches.clear();
        }
        if batch.is_control || batch.base_sequence < 0 {
            return;
        }
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

    /// Serialises the state: version u16, CRC32C u32 of the rest, producer count u32, then per
    /// producer: id i64, epoch i16, last timestamp i64, batch count u8, batches (first_seq i32, last_seq i32,
    /// first_offset i64, last_offset i64). Big-endian; producers sorted by id.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body =
            Vec::with_capacity(4 + self.producers.len() * (11 + 2 * BATCH_METADATA_SIZE));
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        body.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            let entry = &self.producers[&id];
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            // At most MAX_CACHED_BATCHES, so it fits a byte.
            body.push(entry.batches.len() as u8);
            for b in &entry.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER + body.len());
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses [`ProducerStateManager::encode`]'s format, refusing anything damaged.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { buf: bytes };
        let version = u16::from_be_bytes(r.take::<2>()?);
        if version != SNAPSHOT_VERSION {
            return Err(format!("unknown snapshot version {version}"));
        }
        let crc = u32::from_be_bytes(r.take::<4>()?);
        if crc32c::crc32c(r.buf) != crc {
            return Err("CRC32C mismatch".to_string());
        }
        let count = u32::from_be_bytes(r.take::<4>()?);
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = i64::from_be_bytes(r.take::<8>()?);
            let epoch = i16::from_be_bytes(r.take::<2>()?);
            let last_timestamp = i64::from_be_bytes(r.take::<8>()?);
            let [n] = r.take::<1>()?;
            if usize::from(n) > MAX_CACHED_BATCHES {
                return Err(format!("producer {id} has {n} cached batches"));
            }
            let mut batches = VecDeque::with_capacity(usize::from(n));
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: i32::from_be_bytes(r.take::<4>()?),
                    last_seq: i32::from_be_bytes(r.take::<4>()?),
                    first_offset: i64::from_be_bytes(r.take::<8>()?),
                    last_offset: i64::from_be_bytes(r.take::<8>()?),
                });
            }
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                },
            );
        }
        if !r.buf.is_empty() {
            return Err(format!("{} trailing bytes", r.buf.len()));
        }
        let mut state = ProducerStateManager { producers };
        // A snapshot written before the bound existed may hold more.
        state.evict_to(MAX_PRODUCERS_PER_PARTITION);
        Ok(state)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        if self.buf.len() < N {
            return Err("snapshot ends early".to_string());
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[..N]);
        self.buf = &self.buf[N..];
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, offset: i64, count: i32) -> BatchInfo {
        BatchInfo {
            base_offset: offset,
            last_offset: offset + i64::from(count) - 1,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: count,
            max_timestamp: 0,
            is_transactional: false,
            is_control: false,
        }
    }

    #[test]
    fn sequence_rules() {
        let mut s = ProducerStateManager::new();
        assert_eq!(
            s.check(7, 0, 42, 44),
            Ok(SequenceCheck::Append),
            "unknown producer starts anywhere"
        );
        s.update(&batch(7, 0, 0, 100, 3));
        s.update(&batch(7, 0, 3, 103, 2));
        let cases = [
            ((0, 5, 6), Ok(SequenceCheck::Append)),
            (
                (0, 0, 2),
                Ok(SequenceCheck::Duplicate {
                    first_offset: 100,
                    last_offset: 102,
                }),
            ),
            (
                (0, 3, 4),
                Ok(SequenceCheck::Duplicate {
                    first_offset: 103,
                    last_offset: 104,
                }),
            ),
            (
                (0, 7, 8),
                Err(ProducerStateError::OutOfOrderSequence {
                    producer_id: 7,
                    epoch: 0,
                    expected: 5,
                    got: 7,
                }),
            ),
            (
                (0, 4, 4),
                Err(ProducerStateError::OutOfOrderSequence {
                    producer_id: 7,
                    epoch: 0,
                    expected: 5,
                    got: 4,
                }),
            ),
            ((1, 0, 0), Ok(SequenceCheck::Append)),
            (
                (1, 5, 5),
                Err(ProducerStateError::OutOfOrderSequence {
                    producer_id: 7,
                    epoch: 1,
                    expected: 0,
                    got: 5,
                }),
            ),
        ];
        for ((epoch, first, last), want) in cases {
            assert_eq!(
                s.check(7, epoch, first, last),
                want,
                "epoch {epoch} seq {first}..{last}"
            );
        }
        s.update(&batch(7, 1, 0, 105, 1));
        assert_eq!(
            s.check(7, 0, 5, 5),
            Err(ProducerStateError::InvalidProducerEpoch {
                producer_id: 7,
                epoch: 0,
                current_epoch: 1
            })
        );
    }

    #[test]
    fn keeps_last_five_batches_and_wraps() {
        let mut s = ProducerStateManager::new();
        for i in 0..7 {
            s.update(&batch(1, 0, i, i64::from(i) * 10, 1));
        }
        let entry = s.entry(1).expect("tracked");
        assert_eq!(entry.batches.len(), MAX_CACHED_BATCHES);
        assert_eq!(entry.batches.front().map(|b| b.first_seq), Some(2));
        assert_eq!(
            s.check(1, 0, 0, 0),
            Err(ProducerStateError::OutOfOrderSequence {
                producer_id: 1,
                epoch: 0,
                expected: 7,
                got: 0
            })
        );

        let mut w = ProducerStateManager::new();
        w.update(&batch(2, 0, i32::MAX - 1, 0, 2));
        assert_eq!(
            w.entry(2)
                .and_then(|e| e.batches.back().map(|b| b.last_seq)),
            Some(i32::MAX)
        );
        assert_eq!(w.check(2, 0, 0, 0), Ok(SequenceCheck::Append), "wraps to 0");
    }

    #[test]
    fn idle_producers_expire() {
        let mut s = ProducerStateManager::new();
        let mut old = batch(1, 0, 0, 0, 1);
        old.max_timestamp = 1_000;
        let mut recent = batch(2, 0, 0, 1, 1);
        recent.max_timestamp = 90_000;
        s.update(&old);
        s.update(&recent);
        assert_eq!(s.remove_expired(100_000, 50_000), 1);
        assert!(s.entry(1).is_none());
        assert!(s.entry(2).is_some());
    }

    #[test]
    fn a_new_producer_beyond_the_bound_evicts_the_least_recently_active() {
        let mut s = ProducerStateManager::new();
        let max = i64::try_from(MAX_PRODUCERS_PER_PARTITION).expect("fits");
        for id in 0..max {
            let mut b = batch(id, 0, 0, id, 1);
            // Producer 7 is the least recently active; the others are newer than it.
            b.max_timestamp = if id == 7 { 10 } else { 1_000 + id };
            s.update(&b);
        }
        assert_eq!(s.len(), MAX_PRODUCERS_PER_PARTITION);
        // A known producer appending again evicts nobody.
        s.update(&batch(3, 0, 1, max, 1));
        assert_eq!(s.len(), MAX_PRODUCERS_PER_PARTITION);
        assert!(s.entry(7).is_some());

        let mut newcomer = batch(max, 0, 0, max + 1, 1);
        newcomer.max_timestamp = 5;
        s.update(&newcomer);
        assert_eq!(s.len(), MAX_PRODUCERS_PER_PARTITION);
        assert!(s.entry(7).is_none(), "the oldest last timestamp is evicted");
        assert!(s.entry(max).is_some(), "the newcomer is tracked");
        // The evicted producer is new to the partition again: its next batch is accepted.
        assert_eq!(s.check(7, 0, 1, 1), Ok(SequenceCheck::Append));
        // The survivors keep their deduplication.
        assert_eq!(
            s.check(3, 0, 1, 1),
            Ok(SequenceCheck::Duplicate {
                first_offset: max,
                last_offset: max
            })
        );
    }

    #[test]
    fn expiry_keeps_a_producer_exactly_at_the_limit_and_counts_from_its_newest_batch() {
        let mut s = ProducerStateManager::new();
        let mut first = batch(1, 0, 0, 0, 1);
        first.max_timestamp = 1_000;
        let mut later = batch(1, 0, 1, 1, 1);
        later.max_timestamp = 60_000;
        s.update(&first);
        s.update(&later);
        assert_eq!(s.remove_expired(110_000, 50_000), 0, "idle exactly 50 s");
        assert_eq!(s.remove_expired(110_001, 50_000), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn snapshot_round_trip_and_damage() {
        let mut s = ProducerStateManager::new();
        s.update(&batch(1, 3, 0, 0, 2));
        s.update(&batch(9, 0, 10, 2, 5));
        let bytes = s.encode();
        assert_eq!(ProducerStateManager::decode(&bytes), Ok(s.clone()));
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(ProducerStateManager::decode(&bad).is_err());
        assert!(ProducerStateManager::decode(&bytes[..bytes.len() - 3]).is_err());
    }
}
