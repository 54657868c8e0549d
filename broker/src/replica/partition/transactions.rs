//! The transactional side of a hosted partition: COMMIT/ABORT markers written as leader, the
//! last stable offset (LSO), and the aborted transactions a read_committed fetch filters.
//!
//! The LSO is the storage's first unstable offset bounded by this replica's high watermark, so
//! a follower serving consumers (KIP-392) answers with its own, and it only moves when the high
//! watermark or the producer state moves: read_committed fetches long-poll on the high
//! watermark like any other.

use std::sync::Arc;

use strom_storage::{AbortedTxn, FileRecords, StorageError, TxnMarker};

use super::{LeaderAppend, LeaderAppendResult, Partition};

impl Partition {
    /// Appends the control batch that ends `marker.producer_id`'s transaction, as leader (the
    /// transaction coordinator's WriteTxnMarkers); the high watermark may advance.
    pub fn append_txn_marker(
        self: &Arc<Self>,
        marker: TxnMarker,
        now_ms: i64,
    ) -> impl Future<Output = LeaderAppendResult> + Send + 'static + use<> {
        self.run_io(move |partition| {
            let leader_epoch = partition.check_leader(false)?;
            let info = partition
                .log
                .append_txn_marker(marker, leader_epoch, now_ms)?;
            partition.appended();
            Ok(LeaderAppend { info, leader_epoch })
        })
    }

    /// The offset below which every transaction is decided and replicated.
    pub fn last_stable_offset(&self) -> i64 {
        self.log.last_stable_offset(self.high_watermark())
    }

    /// Reads decided data only, for a read_committed consumer: nothing at or past the last
    /// stable offset is visible. Blocking, like [`Partition::read_committed`].
    pub fn read_stable(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<FileRecords, StorageError> {
        self.log.read_file_records(
            fetch_offset,
            max_bytes,
            self.last_stable_offset(),
            min_one_batch,
        )
    }

    /// The aborted transactions whose data may lie in `[from, upper)`, oldest first. Blocking
    /// (reads the `.txnindex` files).
    pub fn aborted_transactions(
        &self,
        from: i64,
        upper: i64,
    ) -> Result<Vec<AbortedTxn>, StorageError> {
        self.log.aborted_transactions(from, upper)
    }
}
