//! One partition replica hosted by this broker: its log, its replica-set state, its high
//! watermark, and (while it leads) what it knows of its followers.
//!
//! The high watermark is the offset below which every in-sync replica holds the log; consumers
//! only ever read below it. The leader advances it to the smallest log end offset of the ISR
//! (its followers report theirs with every fetch); a follower takes the leader's, bounded by its
//! own log end.
//!
//! Every write to the log (appends as leader or follower, truncation, rolls, flushes,
//! retention, DeleteRecords, close) runs on the partition's log I/O worker
//! ([`super::log_io`]), in the order submitted. A leader append checks leadership and
//! `min.insync.replicas` on that worker, under the state it stamps into the batches, so no
//! append of a deposed leader slips in after a newer image made this replica a follower: the
//! transition is applied before later work runs. Reads are synchronous; the fetch path runs them
//! on tokio's blocking pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use strom_storage::{
    AppendInfo, AppendOrigin, FileRecords, LogConfig, PartitionLog, StorageError, TxnGuard,
};
use tokio::sync::watch;
use uuid::Uuid;

mod transactions;

use super::followers::{FollowerProgress, Followers};
use super::log_io::IoQueue;

/// Replica-set state of a partition, as last published by the metadata image (or by the
/// controller's answer to this leader's own ISR change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// What applying a new [`ReplicaState`] changed for this replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The state was older than the one held, or equal: nothing changed.
    Unchanged,
    /// Same role and leader epoch; replicas or ISR changed.
    Updated,
    /// This broker leads from this leader epoch on.
    BecameLeader,
    /// Another broker leads from this leader epoch on; this replica fetches from it.
    BecameFollower { leader: i32, leader_epoch: i32 },
    /// No leader (no in-sync replica is alive): nothing is fetched or served.
    NoLeader,
}

/// Why a leader append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("this broker does not lead the partition")]
    NotLeader,
    #[error("{isr} in-sync replicas, min.insync.replicas is {min}")]
    NotEnoughReplicas { isr: usize, min: i32 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why waiting for an `acks=all` append to be committed ended without success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitWait {
    /// Leadership moved while waiting: the records may or may not be replicated.
    NotLeader,
    /// The high watermark passed the records, but the ISR shrank below `min.insync.replicas`.
    NotEnoughReplicasAfterAppend,
    TimedOut,
}

/// A leader append: where the records went and the leader epoch they carry.
#[derive(Debug)]
pub struct LeaderAppend {
    pub info: AppendInfo,
    pub leader_epoch: i32,
}

/// What a leader append future resolves to.
pub type LeaderAppendResult = Result<LeaderAppend, AppendError>;

/// Leader-side bookkeeping, valid for one leader epoch.
#[derive(Debug, Default)]
struct Leadership {
    followers: Followers,
    /// The log end offset when this leader epoch began: a follower joins the ISR only once it
    /// reached it (it has then truncated whatever the previous epochs left diverged).
    epoch_start_offset: i64,
    /// An AlterPartition of this leader is in flight; the next waits for its answer.
    isr_change_pending: bool,
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
    leadership: Mutex<Leadership>,
    min_insync_replicas: AtomicI64,
    high_watermark: AtomicI64,
    /// Publishes every high-watermark advance and every state change; long-polling consumer
    /// fetches and `acks=all` produces wait on it instead of polling.
    hw_changed: watch::Sender<i64>,
    /// Publishes every growth of the log; followers' long-polling fetches wait on it.
    log_end_changed: watch::Sender<i64>,
    /// As a follower: how far this log ended behind the leader's high watermark at the last
    /// fetch (Kafka's fetcher lag).
    follower_lag: AtomicI64,
}

impl Partition {
    /// A replica over an opened `log`. `checkpointed_high_watermark` is the value last written
    /// to `replication-offset-checkpoint`, if any.
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
        checkpointed_high_watermark: Option<i64>,
    ) -> Partition {
        let log_end = log.log_end_offset();
        let high_watermark = checkpointed_high_watermark
            .unwrap_or(0)
            .clamp(log.log_start_offset(), log_end);
        let (hw_changed, _) = watch::channel(high_watermark);
        let (log_end_changed, _) = watch::channel(log_end);
        let leadership = Leadership {
            followers: Followers::new_epoch(&state.replicas, &state.isr, node_id, now_ms()),
            epoch_start_offset: log_end,
            isr_change_pending: false,
        };
        let partition = Partition {
            topic,
            topic_id,
            index,
            node_id,
            log,
            io,
            state: RwLock::new(state),
            leadership: Mutex::new(leadership),
            min_insync_replicas: AtomicI64::new(i64::from(min_insync_replicas)),
            high_watermark: AtomicI64::new(high_watermark),
            hw_changed,
            log_end_changed,
            follower_lag: AtomicI64::new(0),
        };
        partition.maybe_advance_high_watermark();
        partition
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn state(&self) -> ReplicaState {
        self.state.read().clone()
    }

    pub fn leader_epoch(&self) -> i32 {
        self.state.read().leader_epoch
    }

    pub fn leader(&self) -> i32 {
        self.state.read().leader
    }

    pub fn is_leader(&self) -> bool {
        self.state.read().leader == self.node_id
    }

    /// Applies a newer replica-set state. States are ordered by (leader epoch, partition epoch):
    /// an image that lags behind the controller's answer to this leader's ISR change, or any
    /// older state, is ignored.
    pub fn update_state(&self, next: ReplicaState) -> Transition {
        let transition = {
            let mut state = self.state.write();
            let current = (state.leader_epoch, state.partition_epoch);
            if (next.leader_epoch, next.partition_epoch) < current || *state == next {
                return Transition::Unchanged;
            }
            let new_epoch = next.leader_epoch != state.leader_epoch || next.leader != state.leader;
            let transition = if !new_epoch {
                Transition::Updated
            } else if next.leader == self.node_id {
                Transition::BecameLeader
            } else if next.leader < 0 {
                Transition::NoLeader
            } else {
                Transition::BecameFollower {
                    leader: next.leader,
                    leader_epoch: next.leader_epoch,
                }
            };
            let mut leadership = self.leadership.lock();
            if transition == Transition::BecameLeader {
                *leadership = Leadership {
                    followers: Followers::new_epoch(
                        &next.replicas,
                        &next.isr,
                        self.node_id,
                        now_ms(),
                    ),
                    epoch_start_offset: self.log.log_end_offset(),
                    isr_change_pending: false,
                };
            } else {
                leadership
                    .followers
                    .retain_replicas(&next.replicas, self.node_id);
            }
            *state = next;
            transition
        };
        self.maybe_advance_high_watermark();
        // Waiters re-check leadership and the ISR, not just the high watermark.
        self.hw_changed.send_modify(|_| {});
        transition
    }

    /// Records in the leader-epoch cache that the current leader epoch starts at the log end
    /// (Kafka's `makeLeader`), so a follower asking OffsetForLeaderEpoch for an older epoch
    /// learns where it ended even before this leader appended anything. Runs on the I/O worker
    /// after the writes queued before; a no-op unless this replica leads.
    pub fn begin_leader_epoch(self: &Arc<Self>) {
        let assigning = self.run_io(|partition| {
            let state = partition.state.read().clone();
            if state.leader == partition.node_id {
                partition
                    .log
                    .assign_epoch_start_offset(state.leader_epoch)?;
            }
            Ok::<(), StorageError>(())
        });
        let topic = self.topic.clone();
        let index = self.index;
        // The work is queued already; the task only reports its failure.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = assigning.await {
                    tracing::warn!(%topic, partition = index, %error, "recording the start of a leader epoch");
                }
            });
        }
    }

    /// A new replica, shared; a leader records the start of its epoch.
    pub fn started(partition: Partition) -> Arc<Partition> {
        let partition = Arc::new(partition);
        if partition.is_leader() {
            partition.begin_leader_epoch();
        }
        partition
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

    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end_changed.subscribe()
    }

    /// Runs `work` on the partition's I/O worker, after the work submitted before it. The work
    /// is queued now, when this is called, not when the future is first polled.
    pub fn run_io<R, E, W>(
        self: &Arc<Self>,
        work: W,
    ) -> impl Future<Output = Result<R, E>> + Send + 'static + use<R, E, W>
    where
        R: Send + 'static,
        E: From<StorageError> + Send + 'static,
        W: FnOnce(&Partition) -> Result<R, E> + Send + 'static,
    {
        let partition = Arc::clone(self);
        let done = self.io.submit(move || work(&partition));
        let dir = self.log.dir().to_path_buf();
        async move {
            done.await
                .unwrap_or_else(|_| Err(E::from(StorageError::Closed { dir })))
        }
    }

    /// Appends a produce request's record set as leader: the log assigns offsets and stamps the
    /// leader epoch, then the high watermark may advance. With `acks=all` the ISR must have at
    /// least `min.insync.replicas` members.
    ///
    /// With `guard` (batches the transaction coordinator verified, KIP-890) the append is
    /// refused if the producer's transaction ended since the guard was taken.
    pub fn append_as_leader(
        self: &Arc<Self>,
        records: Bytes,
        acks_all: bool,
        now_ms: i64,
        guard: Option<TxnGuard>,
    ) -> impl Future<Output = LeaderAppendResult> + Send + 'static + use<> {
        self.run_io(move |partition| {
            let leader_epoch = partition.check_leader(acks_all)?;
            let info = match guard {
                Some(guard) => {
                    partition
                        .log
                        .append_guarded(records.to_vec(), leader_epoch, now_ms, guard)?
                }
                None => partition.log.append(&records, leader_epoch, now_ms)?,
            };
            partition.appended();
            Ok(LeaderAppend { info, leader_epoch })
        })
    }

    /// Appends the broker's own records (group coordinator state) as leader: no
    /// producer-sequence checks.
    pub fn append_as_coordinator(
        self: &Arc<Self>,
        records: Vec<u8>,
        now_ms: i64,
    ) -> impl Future<Output = LeaderAppendResult> + Send + 'static + use<> {
        self.run_io(move |partition| {
            let leader_epoch = partition.check_leader(false)?;
            let info = partition.log.append_with_origin(
                records,
                leader_epoch,
                now_ms,
                AppendOrigin::Coordinator,
            )?;
            partition.appended();
            Ok(LeaderAppend { info, leader_epoch })
        })
    }

    /// The leader epoch to stamp, if this replica leads and the ISR is large enough.
    fn check_leader(&self, acks_all: bool) -> Result<i32, AppendError> {
        let state = self.state.read();
        if state.leader != self.node_id {
            return Err(AppendError::NotLeader);
        }
        let min = self.min_insync_replicas();
        if acks_all && (state.isr.len() as i64) < i64::from(min) {
            return Err(AppendError::NotEnoughReplicas {
                isr: state.isr.len(),
                min,
            });
        }
        Ok(state.leader_epoch)
    }

    fn appended(&self) {
        self.log_end_changed.send_replace(self.log.log_end_offset());
        self.maybe_advance_high_watermark();
    }

    /// Appends batches fetched from the leader of `leader_epoch`, as they are (offsets and
    /// epochs kept). Returns `Ok(None)` when this replica no longer follows that epoch: the
    /// fetched data is dropped.
    pub fn append_as_follower(
        self: &Arc<Self>,
        records: Bytes,
        leader_epoch: i32,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<AppendInfo>, StorageError>> + Send + 'static + use<>
    {
        self.run_io(move |partition| {
            if !partition.follows(leader_epoch) {
                return Ok(None);
            }
            let info = partition.log.append_as_follower(&records, now_ms)?;
            partition
                .log_end_changed
                .send_replace(partition.log.log_end_offset());
            Ok(Some(info))
        })
    }

    /// Truncates the log to `offset` as a follower of `leader_epoch` (divergence found with
    /// OffsetForLeaderEpoch); the high watermark never stays above the new log end.
    pub fn truncate_as_follower(
        self: &Arc<Self>,
        offset: i64,
        leader_epoch: i32,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send + 'static + use<> {
        self.run_io(move |partition| {
            if !partition.follows(leader_epoch) {
                return Ok(false);
            }
            let before = partition.log.log_end_offset();
            if offset < before {
                tracing::info!(
                    topic = %partition.topic,
                    partition = partition.index,
                    from = before,
                    to = offset,
                    leader_epoch,
                    "truncating a diverged log tail"
                );
                partition.log.truncate_to(offset)?;
                partition.clamp_high_watermark();
            }
            Ok(true)
        })
    }

    /// Empties the log and restarts it at `offset`: the leader's log starts past this
    /// follower's log end (retention or DeleteRecords removed what it misses).
    pub fn restart_log_at(
        self: &Arc<Self>,
        offset: i64,
        leader_epoch: i32,
    ) -> impl Future<Output = Result<bool, StorageError>> + Send + 'static + use<> {
        self.run_io(move |partition| {
            if !partition.follows(leader_epoch) {
                return Ok(false);
            }
            tracing::info!(
                topic = %partition.topic,
                partition = partition.index,
                offset,
                "restarting the log at the leader's log start"
            );
            partition.log.truncate_fully_and_start_at(offset)?;
            partition.clamp_high_watermark();
            Ok(true)
        })
    }

    fn follows(&self, leader_epoch: i32) -> bool {
        let state = self.state.read();
        state.leader != self.node_id && state.leader >= 0 && state.leader_epoch == leader_epoch
    }

    fn clamp_high_watermark(&self) {
        let end = self.log.log_end_offset();
        self.high_watermark.fetch_min(end, Ordering::AcqRel);
        self.log_end_changed.send_replace(end);
        self.hw_changed.send_modify(|_| {});
    }

    /// A follower's high watermark: the leader's, bounded by this replica's log end.
    pub fn update_follower_high_watermark(&self, leader_high_watermark: i64) {
        let end = self.log.log_end_offset();
        self.follower_lag
            .store((leader_high_watermark - end).max(0), Ordering::Relaxed);
        let candidate = leader_high_watermark.min(end);
        let previous = self.high_watermark.fetch_max(candidate, Ordering::AcqRel);
        if candidate > previous {
            self.hw_changed.send_replace(candidate);
        }
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

    /// Reads up to the log end, for a follower's fetch.
    pub fn read_for_follower(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<FileRecords, StorageError> {
        self.log.read_file_records(
            fetch_offset,
            max_bytes,
            self.log.log_end_offset(),
            min_one_batch,
        )
    }

    /// Records a follower's fetch at `fetch_offset` (its log end) and advances the high
    /// watermark. Returns false when `replica` is not a follower of this leader.
    pub fn record_follower_fetch(&self, replica: i32, fetch_offset: i64, now_ms: i64) -> bool {
        if !self.is_leader() {
            return false;
        }
        let log_end = self.log.log_end_offset();
        let mut leadership = self.leadership.lock();
        if fetch_offset > log_end {
            // A log that reaches past this leader's has diverged: the read answers
            // OFFSET_OUT_OF_RANGE and the follower truncates; its position counts for nothing.
            return leadership.followers.get(replica).is_some();
        }
        let known = leadership
            .followers
            .record_fetch(replica, fetch_offset, log_end, now_ms);
        drop(leadership);
        if known {
            self.maybe_advance_high_watermark();
        }
        known
    }

    /// As a follower, the lag behind the leader's high watermark at the last fetch; 0 as leader.
    pub fn follower_lag(&self) -> i64 {
        if self.is_leader() {
            0
        } else {
            self.follower_lag.load(Ordering::Relaxed)
        }
    }

    /// What this leader knows of `replica`.
    pub fn follower_progress(&self, replica: i32) -> Option<FollowerProgress> {
        self.leadership.lock().followers.get(replica)
    }

    /// The ISR this leader should propose now, if it differs from the current one and no
    /// proposal is in flight: out-of-sync followers removed (never the leader itself), caught-up
    /// replicas added. Marks the proposal in flight; [`Partition::isr_change_done`] clears it.
    pub fn propose_isr(&self, now_ms: i64, lag_max_ms: i64) -> Option<(ReplicaState, Vec<i32>)> {
        let state = self.state.read().clone();
        if state.leader != self.node_id {
            return None;
        }
        let mut leadership = self.leadership.lock();
        if leadership.isr_change_pending {
            return None;
        }
        let out = leadership
            .followers
            .out_of_sync(&state.isr, self.node_id, now_ms, lag_max_ms);
        let join = leadership.followers.caught_up_outside(
            &state.isr,
            self.high_watermark(),
            leadership.epoch_start_offset,
        );
        if out.is_empty() && join.is_empty() {
            return None;
        }
        let mut isr: Vec<i32> = state
            .isr
            .iter()
            .copied()
            .filter(|r| !out.contains(r))
            .collect();
        isr.extend(join.iter().filter(|r| state.replicas.contains(r)));
        if isr == state.isr {
            return None;
        }
        leadership.isr_change_pending = true;
        Some((state, isr))
    }

    /// The controller answered (or refused) this leader's ISR proposal.
    pub fn isr_change_done(&self) {
        self.leadership.lock().isr_change_pending = false;
    }

    /// Whether records up to `required` (exclusive) are committed, for `acks=all`: waits until
    /// the high watermark passes them, while this broker still leads in `leader_epoch` (a
    /// negative epoch: in whichever epoch it leads now).
    pub async fn wait_for_commit(
        &self,
        required: i64,
        leader_epoch: i32,
        timeout: std::time::Duration,
    ) -> Result<(), CommitWait> {
        let mut changes = self.subscribe_high_watermark();
        let check = || -> Option<Result<(), CommitWait>> {
            let state = self.state.read();
            if state.leader != self.node_id
                || (leader_epoch >= 0 && state.leader_epoch != leader_epoch)
            {
                return Some(Err(CommitWait::NotLeader));
            }
            if self.high_watermark() < required {
                return None;
            }
            if (state.isr.len() as i64) < i64::from(self.min_insync_replicas()) {
                return Some(Err(CommitWait::NotEnoughReplicasAfterAppend));
            }
            Some(Ok(()))
        };
        let wait = async {
            loop {
                changes.borrow_and_update();
                if let Some(done) = check() {
                    return done;
                }
                if changes.changed().await.is_err() {
                    return Err(CommitWait::NotLeader);
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(CommitWait::TimedOut))
    }

    /// Advances the high watermark to the smallest log end offset among in-sync replicas; it
    /// never moves back.
    pub fn maybe_advance_high_watermark(&self) {
        let state = self.state.read();
        if state.leader != self.node_id {
            return;
        }
        let own_end = self.log.log_end_offset();
        let Some(candidate) =
            self.leadership
                .lock()
                .followers
                .min_isr_log_end(&state.isr, self.node_id, own_end)
        else {
            return;
        };
        drop(state);
        let previous = self.high_watermark.fetch_max(candidate, Ordering::AcqRel);
        if candidate > previous {
            self.hw_changed.send_replace(candidate);
        }
    }
}

/// Wall-clock milliseconds since the epoch, the unit of Kafka timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
