//! One partition replica hosted by this broker: its log, its replica-set state and its high
//! watermark.
//!
//! The high watermark is the offset below which every in-sync replica holds the log; consumers
//! only ever read below it. On a single broker the ISR is this broker alone, so the high
//! watermark follows the log end offset after every append, but the computation already goes
//! through [`Partition::maybe_advance_high_watermark`], which replication extends with the
//! followers' fetch positions.
//!
//! Writes to the log (appends, rolls, flushes, retention, DeleteRecords, close) run on the
//! partition's log I/O worker ([`super::log_io`]), in the order they are submitted; the async
//! methods here only hand the work over and wait for its result. Reads are synchronous; the
//! fetch path runs them on tokio's blocking pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;
use strom_storage::{AppendInfo, AppendOrigin, FileRecords, LogConfig, PartitionLog, StorageError};
use tokio::sync::watch;
use uuid::Uuid;

use super::log_io::IoQueue;

/// Replica-set state of a partition, as last published by the metadata image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// A partition replica on this broker.
#[derive(Debug)]
pub struct Partition {
    pub topic: Arc<str>,
    pub topic_id: Uuid,
    pub index: i32,
    node_id: i32,
    log: PartitionLog,
    /// The I/O worker that runs this partition's writes.
    io: IoQueue,
    state: RwLock<ReplicaState>,
    min_insync_replicas: AtomicI64,
    high_watermark: AtomicI64,
    /// Publishes every high-watermark advance; long-polling fetches and `acks=all` produces wait
    /// on it instead of polling.
    hw_changed: watch::Sender<i64>,
}

impl Partition {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        topic: Arc<str>,
        topic_id: Uuid,
        index: i32,
        node_id: i32,
        log: PartitionLog,
        io: IoQueue,
        state: ReplicaState,
        min_insync_replicas: i32,
    ) -> Partition {
        let log_end = log.log_end_offset();
        let (hw_changed, _) = watch::channel(log_end);
        let partition = Partition {
            topic,
            topic_id,
            index,
            node_id,
            log,
            io,
            state: RwLock::new(state),
            min_insync_replicas: AtomicI64::new(i64::from(min_insync_replicas)),
            // Recovered data was acknowledged only if it was below the high watermark; with the
            // broker as its own sole in-sync replica that is the whole recovered log.
            high_watermark: AtomicI64::new(0),
            hw_changed,
        };
        partition.maybe_advance_high_watermark();
        partition
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    pub fn state(&self) -> ReplicaState {
        self.state.read().clone()
    }

    pub fn leader_epoch(&self) -> i32 {
        self.state.read().leader_epoch
    }

    pub fn is_leader(&self) -> bool {
        self.state.read().leader == self.node_id
    }

    pub fn update_state(&self, state: ReplicaState) {
        *self.state.write() = state;
        self.maybe_advance_high_watermark();
    }

    pub fn update_config(&self, config: LogConfig, min_insync_replicas: i32) {
        self.log.update_config(config);
        self.min_insync_replicas
            .store(i64::from(min_insync_replicas), Ordering::Relaxed);
    }

    pub fn min_insync_replicas(&self) -> i32 {
        self.min_insync_replicas.load(Ordering::Relaxed) as i32
    }

    pub fn isr_len(&self) -> usize {
        self.state.read().isr.len()
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    pub fn subscribe_high_watermark(&self) -> watch::Receiver<i64> {
        self.hw_changed.subscribe()
    }

    /// Runs `work` on the partition's I/O worker, after the work submitted before it. The work
    /// is queued now, when this is called, not when the future is first polled.
    pub fn run_io<R, W>(
        self: &Arc<Self>,
        work: W,
    ) -> impl Future<Output = Result<R, StorageError>> + Send + 'static + use<R, W>
    where
        R: Send + 'static,
        W: FnOnce(&Partition) -> Result<R, StorageError> + Send + 'static,
    {
        let partition = Arc::clone(self);
        let done = self.io.submit(move || work(&partition));
        let dir = self.log.dir().to_path_buf();
        async move { done.await.unwrap_or(Err(StorageError::Closed { dir })) }
    }

    /// Appends a produce request's record set as leader: the log assigns offsets, then the high
    /// watermark may advance.
    pub fn append_as_leader(
        self: &Arc<Self>,
        records: Bytes,
        now_ms: i64,
    ) -> impl Future<Output = Result<AppendInfo, StorageError>> + Send + 'static + use<> {
        self.run_io(move |partition| {
            let info = partition
                .log
                .append(&records, partition.leader_epoch(), now_ms)?;
            partition.maybe_advance_high_watermark();
            Ok(info)
        })
    }

    /// Appends the broker's own records (group coordinator state): no producer-sequence checks.
    pub fn append_as_coordinator(
        self: &Arc<Self>,
        records: Vec<u8>,
        now_ms: i64,
    ) -> impl Future<Output = Result<AppendInfo, StorageError>> + Send + 'static + use<> {
        self.run_io(move |partition| {
            let info = partition.log.append_with_origin(
                records,
                partition.leader_epoch(),
                now_ms,
                AppendOrigin::Coordinator,
            )?;
            partition.maybe_advance_high_watermark();
            Ok(info)
        })
    }

    /// Reads committed data only: nothing at or past the high watermark is visible. The batches
    /// come back as file ranges, for `sendfile`. Blocking (index lookups and batch headers are
    /// read from the files): call it off the async runtime.
    pub fn read_committed(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<FileRecords, StorageError> {
        self.log.read_file_records(
            fetch_offset,
            max_bytes,
            self.high_watermark(),
            min_one_batch,
        )
    }

    /// Advances the high watermark to the smallest log end offset among in-sync replicas. Today
    /// the only replica whose position is known is this broker's own.
    pub fn maybe_advance_high_watermark(&self) {
        let candidate = self.log.log_end_offset();
        let previous = self.high_watermark.fetch_max(candidate, Ordering::AcqRel);
        if candidate > previous {
            self.hw_changed.send_replace(candidate);
        }
    }
}
