//! Transactions on [`PartitionLog`] (KIP-98): writing the markers that end them, the last
//! stable offset, and the aborted transactions a `read_committed` fetch filters.
//!
//! Every append path (leader, coordinator, follower, recovery replay) goes through
//! [`record_appended`]: the producer state learns each batch, a marker closes its producer's
//! transaction, and an ABORT marker adds an [`AbortedTxn`] to the `.txnindex` of the segment it
//! was written into. So producer state and `.txnindex` files are the same on every replica.

use crate::batch::{BatchHeader, RecordBatch};
use crate::error::StorageError;
use crate::log::{AfterUnlock, AppendInfo, AppendOrigin, BatchInfo, PartitionLog};
use crate::producer_state::txn::MarkerRefusal;
use crate::producer_state::{CompletedTxn, ProducerStateManager};
use crate::records::{ControlMarker, marker_batch, read_marker};
use crate::segment::Segment;
use crate::txn_index::AbortedTxn;

/// A transaction marker to write (WriteTxnMarkers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The transaction's producer id.
    pub producer_id: i64,
    /// The producer epoch the transaction ends at.
    pub producer_epoch: i16,
    /// The epoch of the transaction coordinator writing it.
    pub coordinator_epoch: i32,
    /// COMMIT (true) or ABORT (false).
    pub commit: bool,
}

/// A transaction open in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenTxn {
    /// The producer id.
    pub producer_id: i64,
    /// The producer's current epoch.
    pub producer_epoch: i16,
    /// Offset of the transaction's first data batch.
    pub first_offset: i64,
    /// Largest batch timestamp of the producer.
    pub last_timestamp: i64,
}

/// The `.txnindex` entry of a completed transaction, when it was aborted.
fn aborted_entry(producers: &ProducerStateManager, completed: &CompletedTxn) -> Option<AbortedTxn> {
    completed.is_aborted.then(|| AbortedTxn {
        producer_id: completed.producer_id,
        first_offset: completed.first_offset,
        last_offset: completed.last_offset,
        last_stable_offset: producers.last_stable_offset_after(completed),
    })
}

/// Applies one stored batch (`bytes` holds the whole batch) to the producer state; returns the
/// `.txnindex` entry its ABORT marker makes, if it is one that ended a transaction.
pub(crate) fn apply_batch(
    producers: &mut ProducerStateManager,
    header: &BatchHeader,
    bytes: &[u8],
) -> Option<AbortedTxn> {
    let info = BatchInfo::from_header(header);
    let marker = header
        .is_control()
        .then(|| RecordBatch::parse(bytes).ok().and_then(|b| read_marker(&b)))
        .flatten();
    match marker {
        Some(marker) => {
            let completed = producers.update_marker(&info, marker)?;
            aborted_entry(producers, &completed)
        }
        None => {
            producers.update(&info);
            None
        }
    }
}

/// Records batches just written to `segment` (`bytes` holds them back to back, described by
/// `headers`): the producer state learns them and ABORT markers go to the segment's
/// `.txnindex`, in order.
pub(crate) fn record_appended(
    producers: &mut ProducerStateManager,
    segment: &Segment,
    bytes: &[u8],
    headers: &[BatchHeader],
) -> Result<(), StorageError> {
    let mut position = 0;
    for header in headers {
        let batch = bytes
            .get(position..position + header.size)
            .unwrap_or_default();
        if let Some(entry) = apply_batch(producers, header, batch) {
            segment.append_aborted_txn(&entry)?;
        }
        position += header.size;
    }
    Ok(())
}

/// What a KIP-890 verification saw of a producer on this partition: how many of its
/// transaction markers had been written here. A batch that would begin a transaction is
/// appended with [`PartitionLog::append_guarded`] only if no marker of its producer was written
/// since: a marker in between ended the transaction the coordinator vouched for, and the batch
/// would open a transaction nobody will end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnGuard {
    /// The producer id.
    pub producer_id: i64,
    markers: u64,
}

impl PartitionLog {
    /// The guard of `producer_id` when its next transactional batch here would begin a
    /// transaction (it has none open), `None` while one is open. Take it before asking the
    /// transaction coordinator.
    pub fn txn_guard(&self, producer_id: i64) -> Option<TxnGuard> {
        let inner = self.inner.lock();
        if inner.producers.has_open_transaction(producer_id) {
            return None;
        }
        let markers = inner
            .markers_written
            .get(&producer_id)
            .copied()
            .unwrap_or(0);
        Some(TxnGuard {
            producer_id,
            markers,
        })
    }

    /// [`PartitionLog::append_owned`] of a client's verified transactional batches: refused
    /// with [`StorageError::TransactionEndedSinceVerification`], nothing written, when the
    /// batches would begin a transaction of `guard.producer_id` and a marker of that producer
    /// was written after `guard` was taken.
    pub fn append_guarded(
        &self,
        records: Vec<u8>,
        leader_epoch: i32,
        now_ms: i64,
        guard: TxnGuard,
    ) -> Result<AppendInfo, StorageError> {
        let (mut records, mut headers) = self.prepare(records, now_ms, AppendOrigin::Client)?;
        let mut after = AfterUnlock::default();
        let result = {
            let mut inner = self.inner.lock();
            let markers = inner
                .markers_written
                .get(&guard.producer_id)
                .copied()
                .unwrap_or(0);
            if !inner.producers.has_open_transaction(guard.producer_id) && markers != guard.markers
            {
                Err(StorageError::TransactionEndedSinceVerification {
                    producer_id: guard.producer_id,
                })
            } else {
                self.append_locked(
                    &mut inner,
                    &mut records,
                    &mut headers,
                    leader_epoch,
                    now_ms,
                    AppendOrigin::Client,
                    &mut after,
                )
            }
        };
        after.run()?;
        result
    }

    /// Appends the control batch ending `marker.producer_id`'s transaction (Kafka's format:
    /// see `records::marker_batch`), as the leader at `leader_epoch`; a marker with no open
    /// transaction is still written, as Kafka does. An ABORT adds the transaction to the
    /// active segment's `.txnindex`.
    ///
    /// Refused, with nothing written: a producer epoch older than the producer's
    /// ([`StorageError::ProducerState`] with `InvalidProducerEpoch`), a coordinator epoch older
    /// than that of the producer's last marker
    /// ([`StorageError::TransactionCoordinatorFenced`]).
    pub fn append_txn_marker(
        &self,
        marker: TxnMarker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        let mut records = marker_batch(
            0,
            marker.producer_id,
            marker.producer_epoch,
            ControlMarker {
                commit: marker.commit,
                coordinator_epoch: marker.coordinator_epoch,
            },
            now_ms,
        )
        .map_err(|source| StorageError::InvalidRecord {
            position: 0,
            source,
        })?;
        let header =
            BatchHeader::parse(&records).map_err(|source| StorageError::InvalidRecord {
                position: 0,
                source,
            })?;
        let mut headers = [header];
        let mut after = AfterUnlock::default();
        let result = {
            let mut inner = self.inner.lock();
            match inner.producers.check_marker(
                marker.producer_id,
                marker.producer_epoch,
                marker.coordinator_epoch,
            ) {
                Ok(()) => {
                    let appended = self.append_locked(
                        &mut inner,
                        &mut records,
                        &mut headers,
                        leader_epoch,
                        now_ms,
                        AppendOrigin::Coordinator,
                        &mut after,
                    );
                    if appended.is_ok() {
                        *inner.markers_written.entry(marker.producer_id).or_default() += 1;
                    }
                    appended
                }
                Err(MarkerRefusal::ProducerEpoch(e)) => Err(e.into()),
                Err(MarkerRefusal::CoordinatorEpoch { current }) => {
                    Err(StorageError::TransactionCoordinatorFenced {
                        producer_id: marker.producer_id,
                        coordinator_epoch: marker.coordinator_epoch,
                        current_coordinator_epoch: current,
                    })
                }
            }
        };
        after.run()?;
        result
    }

    /// The last stable offset for `high_watermark`: the smallest of the first offset of every
    /// open transaction, the first offset of every completed one whose marker is at or above
    /// `high_watermark`, and `high_watermark`. A `read_committed` consumer reads below it.
    ///
    /// The high watermark must not go back between calls: completed transactions whose marker
    /// lies below it are forgotten.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        if !self.snapshot.load().txn_unstable {
            return high_watermark;
        }
        let mut inner = self.inner.lock();
        let lso = inner.producers.last_stable_offset(high_watermark);
        if !inner.producers.has_unstable() {
            self.publish(&inner);
        }
        lso
    }

    /// Aborted transactions a `read_committed` fetch from `from` up to `upper` must filter:
    /// the entries of the `.txnindex` files, from the segment holding `from` on, with
    /// `last_offset >= from` and `first_offset < upper`, oldest marker first. The scan stops
    /// at the first entry whose last stable offset reaches `upper` (no transaction open before
    /// `upper` can end later), as Kafka's does. Reads no lock on the append path.
    pub fn aborted_transactions(
        &self,
        from: i64,
        upper: i64,
    ) -> Result<Vec<AbortedTxn>, StorageError> {
        let snap = self.snapshot.load_full();
        let start = snap
            .segments
            .partition_point(|s| s.base_offset() <= from)
            .saturating_sub(1);
        let mut out = Vec::new();
        for segment in &snap.segments[start..] {
            let entries = match segment.aborted_txns() {
                Ok(entries) => entries,
                // Removed by retention meanwhile: its offsets are gone.
                Err(StorageError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            for entry in entries {
                if entry.last_offset >= from && entry.first_offset < upper {
                    out.push(entry);
                }
                if entry.last_stable_offset >= upper {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// The open transactions, oldest first.
    pub fn open_transactions(&self) -> Vec<OpenTxn> {
        let inner = self.inner.lock();
        inner
            .producers
            .open_transactions()
            .map(|(producer_id, entry, first_offset)| OpenTxn {
                producer_id,
                producer_epoch: entry.epoch,
                first_offset,
                last_timestamp: entry.last_timestamp,
            })
            .collect()
    }

    /// The `.txnindex` entries of every segment, oldest first (for tests and inspection).
    pub fn aborted_transaction_index(&self) -> Result<Vec<AbortedTxn>, StorageError> {
        let snap = self.snapshot.load_full();
        let mut out = Vec::new();
        for segment in snap.segments.iter() {
            out.extend(segment.aborted_txns()?);
        }
        Ok(out)
    }
}
