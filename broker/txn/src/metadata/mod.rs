//! The pure state machine of one transactional id (Kafka's `TransactionMetadata` and its
//! transitions). Every function takes the current metadata and `now_ms` and returns the next
//! metadata to persist, or the Kafka error code to answer; the driver writes the result to
//! `__transaction_state` and only then replaces the cached metadata, so a failed write changes
//! nothing.

use std::collections::BTreeSet;

use crate::codes::*;
use crate::records::TxnLogValue;
use crate::state::TxnState;

/// No producer id (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// No producer epoch (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// Whether `epoch` leaves no room for another bump (Kafka keeps `Short.MAX_VALUE` for the
/// fencing bump of an ongoing transaction, so `MAX - 1` is already exhausted).
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// What the coordinator knows about one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    /// The transactional id.
    pub transactional_id: String,
    /// Producer id in use.
    pub producer_id: i64,
    /// The producer id before the last rotation (KIP-360 retries), -1 when none.
    pub last_producer_id: i64,
    /// Current epoch of the producer id.
    pub producer_epoch: i16,
    /// Epoch the producer held before the last bump it asked for (KIP-360 retries); not
    /// persisted, -1 after a load, as in Kafka.
    pub last_producer_epoch: i16,
    /// Transaction timeout the producer asked for.
    pub timeout_ms: i32,
    /// State of the current transaction.
    pub state: TxnState,
    /// Partitions in the current transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the current transaction started, -1 when none.
    pub start_timestamp_ms: i64,
    /// When the state last changed.
    pub last_update_timestamp_ms: i64,
}

/// The outcome of an InitProducerId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// Persist this metadata and answer with its producer id and epoch.
    Ready(TransactionMetadata),
    /// A new producer id is needed (new transactional id or exhausted epoch): allocate one
    /// and ask again with it.
    NeedsProducerId,
    /// An ongoing transaction of the previous producer must be aborted first: persist this
    /// PrepareAbort (epoch bumped, which fences the old producer), write its markers, and
    /// answer CONCURRENT_TRANSACTIONS so the client retries once the abort completes.
    FenceOngoing(TransactionMetadata),
}

/// The outcome of a client's EndTxn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOutcome {
    /// Persist this PrepareCommit/PrepareAbort, answer, then write the markers.
    Prepare(TransactionMetadata),
    /// A retry of an EndTxn that already completed the same way: answer success.
    AlreadyComplete,
}

impl TransactionMetadata {
    /// A transactional id seen for the first time, before its first epoch bump.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        Self {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            last_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_timestamp_ms: -1,
            last_update_timestamp_ms: now_ms,
        }
    }

    /// The metadata a `__transaction_state` value describes.
    pub fn from_log(transactional_id: &str, value: &TxnLogValue) -> Self {
        Self {
            transactional_id: transactional_id.to_owned(),
            producer_id: value.producer_id,
            last_producer_id: value.previous_producer_id,
            producer_epoch: value.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms: value.timeout_ms,
            state: value.state,
            partitions: value
                .partitions
                .iter()
                .flat_map(|(topic, ps)| ps.iter().map(move |p| (topic.clone(), *p)))
                .collect(),
            start_timestamp_ms: value.start_timestamp_ms,
            last_update_timestamp_ms: value.last_update_timestamp_ms,
        }
    }

    /// The `__transaction_state` value of this metadata.
    pub fn to_log(&self) -> TxnLogValue {
        let mut partitions: Vec<(String, Vec<i32>)> = Vec::new();
        for (topic, p) in &self.partitions {
            match partitions.last_mut() {
                Some((last, ps)) if last == topic => ps.push(*p),
                _ => partitions.push((topic.clone(), vec![*p])),
            }
        }
        TxnLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.last_producer_id,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions,
            last_update_timestamp_ms: self.last_update_timestamp_ms,
            start_timestamp_ms: self.start_timestamp_ms,
            client_transaction_version: 0,
        }
    }

    fn transition(&self, state: TxnState, now_ms: i64) -> Self {
        Self {
            state,
            last_update_timestamp_ms: now_ms,
            ..self.clone()
        }
    }

    /// Whether the ongoing transaction has run longer than its timeout.
    pub fn is_timed_out(&self, now_ms: i64) -> bool {
        self.state == TxnState::Ongoing
            && self
                .start_timestamp_ms
                .saturating_add(i64::from(self.timeout_ms))
                < now_ms
    }

    /// Whether the transactional id has been idle for `expiration_ms` and may be removed.
    pub fn is_expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        self.state.is_idle()
            && self.last_update_timestamp_ms <= now_ms.saturating_sub(expiration_ms)
    }

    /// Aborts the ongoing transaction on the coordinator's initiative (a new producer with the
    /// same transactional id, or the transaction timed out): PrepareAbort with the epoch bumped
    /// so the markers fence the producer that was running it. `None` unless Ongoing.
    pub fn fence_abort(&self, now_ms: i64) -> Option<Self> {
        if self.state != TxnState::Ongoing {
            return None;
        }
        let mut next = self.transition(TxnState::PrepareAbort, now_ms);
        // At i16::MAX there is no epoch left to bump to; the abort still ends the transaction.
        next.producer_epoch = self.producer_epoch.saturating_add(1);
        next.last_producer_epoch = NO_PRODUCER_EPOCH;
        Some(next)
    }

    /// PrepareCommit/PrepareAbort → CompleteCommit/CompleteAbort once every marker is
    /// written; the partitions are cleared. `None` in any other state.
    pub fn complete(&self, now_ms: i64) -> Option<Self> {
        let state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        let mut next = self.transition(state, now_ms);
        next.partitions.clear();
        Some(next)
    }

    /// Whether `(producer_id, producer_epoch)` may run this transaction: Kafka's checks of
    /// AddPartitionsToTxn and EndTxn (id first, then epoch).
    fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), i16> {
        if self.producer_id != producer_id {
            Err(INVALID_PRODUCER_ID_MAPPING)
        } else if self.producer_epoch != producer_epoch {
            Err(PRODUCER_FENCED)
        } else {
            Ok(())
        }
    }
}

/// InitProducerId of a transactional id. `existing` is the cached metadata (if any),
/// `expected` the producer id and epoch of the request (KIP-360, v3+; `None` when both are
/// -1), `new_producer_id` an id allocated after an earlier [`InitOutcome::NeedsProducerId`].
pub fn init_producer_id(
    existing: Option<&TransactionMetadata>,
    transactional_id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    new_producer_id: Option<i64>,
    now_ms: i64,
) -> Result<InitOutcome, i16> {
    let Some(current) = existing else {
        let Some(id) = new_producer_id else {
            return Ok(InitOutcome::NeedsProducerId);
        };
        let fresh = TransactionMetadata::new(transactional_id, id, timeout_ms, now_ms);
        return bump_epoch(&fresh, timeout_ms, expected.map(|(_, e)| e), now_ms)
            .map(InitOutcome::Ready);
    };
    // Kafka's isValidProducerId: a request naming a producer is fenced unless it names the
    // current one, or the previous one with an exhausted epoch (a retry after a rotation).
    let valid = |(id, epoch): (i64, i16)| {
        current.producer_epoch == NO_PRODUCER_EPOCH
            || id == current.producer_id
            || (id == current.last_producer_id && is_epoch_exhausted(epoch))
    };
    if !expected.is_none_or(valid) {
        return Err(PRODUCER_FENCED);
    }
    match current.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
            Err(CONCURRENT_TRANSACTIONS)
        }
        TxnState::Ongoing => current
            .fence_abort(now_ms)
            .map(InitOutcome::FenceOngoing)
            .ok_or(CONCURRENT_TRANSACTIONS),
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
            let rotate = is_epoch_exhausted(current.producer_epoch)
                && expected.is_none_or(|(_, epoch)| epoch == current.producer_epoch);
            if !rotate {
                return bump_epoch(current, timeout_ms, expected.map(|(_, e)| e), now_ms)
                    .map(InitOutcome::Ready);
            }
            let Some(id) = new_producer_id else {
                return Ok(InitOutcome::NeedsProducerId);
            };
            let mut next = current.transition(TxnState::Empty, now_ms);
            next.last_producer_id = current.producer_id;
            next.producer_id = id;
            next.producer_epoch = 0;
            next.last_producer_epoch = if expected.is_some() {
                current.producer_epoch
            } else {
                NO_PRODUCER_EPOCH
            };
            next.timeout_ms = timeout_ms;
            next.partitions.clear();
            next.start_timestamp_ms = -1;
            Ok(InitOutcome::Ready(next))
        }
        TxnState::Dead => Err(CONCURRENT_TRANSACTIONS),
    }
}

/// Kafka's `prepareIncrementProducerEpoch`: the next epoch of the current producer id, or
/// the current one again for a retry of a bump that succeeded (KIP-360).
fn bump_epoch(
    current: &TransactionMetadata,
    timeout_ms: i32,
    expected_epoch: Option<i16>,
    now_ms: i64,
) -> Result<TransactionMetadata, i16> {
    let bumped = current.producer_epoch.saturating_add(1);
    let (epoch, last_epoch) = match expected_epoch {
        None => (bumped, NO_PRODUCER_EPOCH),
        Some(expected)
            if current.producer_epoch == NO_PRODUCER_EPOCH
                || expected == current.producer_epoch =>
        {
            (bumped, current.producer_epoch)
        }
        Some(expected) if expected == current.last_producer_epoch => {
            (current.producer_epoch, current.last_producer_epoch)
        }
        Some(_) => return Err(PRODUCER_FENCED),
    };
    let mut next = current.transition(TxnState::Empty, now_ms);
    next.producer_epoch = epoch;
    next.last_producer_epoch = last_epoch;
    next.timeout_ms = timeout_ms;
    next.partitions.clear();
    next.start_timestamp_ms = -1;
    Ok(next)
}

/// AddPartitionsToTxn (and AddOffsetsToTxn's `__consumer_offsets` partition): the metadata to
/// persist, or `None` when every partition is already in the ongoing transaction.
pub fn add_partitions(
    current: &TransactionMetadata,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &BTreeSet<(String, i32)>,
    now_ms: i64,
) -> Result<Option<TransactionMetadata>, i16> {
    current.check_producer(producer_id, producer_epoch)?;
    match current.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
            Err(CONCURRENT_TRANSACTIONS)
        }
        TxnState::Dead => Err(INVALID_TXN_STATE),
        TxnState::Ongoing if partitions.is_subset(&current.partitions) => Ok(None),
        state => {
            let mut next = current.transition(TxnState::Ongoing, now_ms);
            if state != TxnState::Ongoing {
                next.start_timestamp_ms = now_ms;
            }
            next.partitions.extend(partitions.iter().cloned());
            Ok(Some(next))
        }
    }
}

/// AddPartitionsToTxn v4+ with `verify_only` (KIP-890): whether the producer's ongoing
/// transaction may take data; each partition is then NONE if in it, INVALID_TXN_STATE if not.
pub fn verify_producer(
    current: &TransactionMetadata,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<(), i16> {
    current.check_producer(producer_id, producer_epoch)?;
    if current.state.is_prepare() || current.state == TxnState::PrepareEpochFence {
        return Err(CONCURRENT_TRANSACTIONS);
    }
    Ok(())
}

/// A client's EndTxn: commit (`commit`) or abort the ongoing transaction.
pub fn end_transaction(
    current: &TransactionMetadata,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndOutcome, i16> {
    current.check_producer(producer_id, producer_epoch)?;
    match (current.state, commit) {
        (TxnState::Ongoing, _) => {
            let state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            Ok(EndOutcome::Prepare(current.transition(state, now_ms)))
        }
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
            Ok(EndOutcome::AlreadyComplete)
        }
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(CONCURRENT_TRANSACTIONS)
        }
        (TxnState::PrepareEpochFence, _) => Err(CONCURRENT_TRANSACTIONS),
        _ => Err(INVALID_TXN_STATE),
    }
}

#[cfg(test)]
mod tests;
