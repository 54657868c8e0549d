//! The async driver around the pure [`crate::metadata`] state machine: routes requests to
//! transactional ids, persists their state to `__transaction_state`, writes markers and runs
//! the timers.
//!
//! Concurrency: all transactional ids live behind one synchronous lock that is never held
//! across an `.await`. Every operation that writes to a `__transaction_state` partition first
//! takes that partition's async write lock and holds it from the state check to the cache
//! update, so transitions of one transactional id never interleave and the cache changes only
//! after the write succeeded. Markers are written by tasks on the coordinator's task tracker;
//! while they run the transaction is in PrepareCommit/PrepareAbort, which makes conflicting
//! requests answer CONCURRENT_TRANSACTIONS.

mod add_offsets;
mod add_partitions;
mod describe;
mod end_txn;
mod init_producer_id;
mod load;
mod markers;
mod timer;
mod versions;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use parking_lot::Mutex;
use strom_group::records::build_batch;
use strom_group::{
    Clock, OffsetsLog, OffsetsLogError, TokioClock, TopicLookup, coordinator_partition,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codes::*;
use crate::config::TxnConfig;
use crate::error::append_error_code;
use crate::marker::{DynProducerIdSource, MarkerWriter, ProducerIdSource};
use crate::metadata::TransactionMetadata;
use crate::records::TxnLogKey;
use crate::state::TxnState;

pub use timer::TxnTimer;

/// Optional collaborators of a [`TransactionCoordinator`].
#[derive(Debug, Clone)]
pub struct TxnOptions {
    /// Time source; [`TokioClock`] by default.
    pub clock: Arc<dyn Clock>,
    /// Topic existence check for AddPartitionsToTxn; without one every topic is taken to exist.
    pub topic_lookup: Option<Arc<dyn TopicLookup>>,
}

impl Default for TxnOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(TokioClock::new()),
            topic_lookup: None,
        }
    }
}

/// Counts for metrics: gauges of what is held now, counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxnStats {
    /// Transactional ids held by this coordinator.
    pub transactional_ids: u64,
    /// Transactions in the Ongoing state now.
    pub ongoing: u64,
    /// Transactions whose markers are being written now (PrepareCommit/PrepareAbort).
    pub completing: u64,
    /// Transactions that reached CompleteCommit.
    pub committed: u64,
    /// Transactions that reached CompleteAbort (client aborts, fencing and timeouts).
    pub aborted: u64,
    /// InitProducerId calls that bumped the epoch of a transactional id another producer
    /// instance held, fencing it (KIP-360 retries of the same producer excluded).
    pub fenced_producers: u64,
    /// Transactions aborted because they ran longer than their timeout.
    pub timed_out_aborts: u64,
    /// When the oldest transaction not yet complete (Ongoing or Prepare*) started, in epoch
    /// milliseconds: a transaction stuck open keeps it old.
    pub oldest_open_start_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartitionStatus {
    /// Being replayed; `load` tells loads apart so an abandoned one does not finish.
    Loading {
        load: u64,
        coordinator_epoch: i32,
    },
    Owned {
        coordinator_epoch: i32,
    },
}

#[derive(Debug, Default)]
struct State {
    partitions: HashMap<i32, PartitionStatus>,
    txns: HashMap<String, TransactionMetadata>,
    next_load: u64,
    shut_down: bool,
}

impl State {
    fn owned_epoch(&self, partition: i32) -> Option<i32> {
        match self.partitions.get(&partition) {
            Some(PartitionStatus::Owned { coordinator_epoch }) => Some(*coordinator_epoch),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    committed: AtomicU64,
    aborted: AtomicU64,
    fenced_producers: AtomicU64,
    timed_out_aborts: AtomicU64,
}

pub(crate) struct Shared<L, M> {
    config: TxnConfig,
    log: Arc<L>,
    markers: Arc<M>,
    producer_ids: Arc<dyn DynProducerIdSource>,
    clock: Arc<dyn Clock>,
    topic_lookup: Option<Arc<dyn TopicLookup>>,
    state: Mutex<State>,
    /// The partition count transactional ids hash onto.
    partitions: AtomicI32,
    /// One write lock per `__transaction_state` partition of the configured count; partitions
    /// beyond it share them (modulo), which serializes more but loses nothing.
    writers: Vec<tokio::sync::Mutex<()>>,
    /// Marker tasks.
    tasks: TaskTracker,
    counters: Counters,
    shutdown: CancellationToken,
}

/// The transaction coordinator of this broker for the `__transaction_state` partitions it
/// leads.
///
/// Cheap to clone (shared state). Run its timers with [`TransactionCoordinator::timer`].
pub struct TransactionCoordinator<L, M> {
    shared: Arc<Shared<L, M>>,
}

impl<L, M> Clone for TransactionCoordinator<L, M> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<L, M> std::fmt::Debug for TransactionCoordinator<L, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionCoordinator")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<L: OffsetsLog, M: MarkerWriter> TransactionCoordinator<L, M> {
    /// A coordinator that owns no partition yet: call
    /// [`TransactionCoordinator::load_partition`] for each `__transaction_state` partition this
    /// broker leads, and run [`TransactionCoordinator::timer`].
    pub fn new<P: ProducerIdSource>(
        config: TxnConfig,
        log: Arc<L>,
        markers: Arc<M>,
        producer_ids: Arc<P>,
    ) -> Self {
        Self::with_options(config, log, markers, producer_ids, TxnOptions::default())
    }

    /// [`TransactionCoordinator::new`] with a clock and a topic existence check.
    pub fn with_options<P: ProducerIdSource>(
        config: TxnConfig,
        log: Arc<L>,
        markers: Arc<M>,
        producer_ids: Arc<P>,
        options: TxnOptions,
    ) -> Self {
        let count = config.transaction_state_partitions.max(1);
        let writers = usize::try_from(count).unwrap_or(1);
        let producer_ids: Arc<dyn DynProducerIdSource> = producer_ids;
        Self {
            shared: Arc::new(Shared {
                partitions: AtomicI32::new(count),
                config,
                log,
                markers,
                producer_ids,
                clock: options.clock,
                topic_lookup: options.topic_lookup,
                state: Mutex::new(State::default()),
                writers: (0..writers).map(|_| tokio::sync::Mutex::new(())).collect(),
                tasks: TaskTracker::new(),
                counters: Counters::default(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// The `__transaction_state` partition whose leader coordinates `transactional_id` (for
    /// FindCoordinator with key type 1): Kafka's hash of the id.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        coordinator_partition(transactional_id, self.partition_count())
    }

    /// The `__transaction_state` partition count transactional ids hash onto now.
    pub fn partition_count(&self) -> i32 {
        self.shared.partitions.load(Ordering::Acquire)
    }

    /// Hashes transactional ids onto `count` partitions from now on: the count the existing
    /// `__transaction_state` topic has, which wins over the configured one as in Kafka. Call it
    /// before loading partitions. Returns whether the count changed.
    pub fn set_partition_count(&self, count: i32) -> bool {
        let count = count.max(1);
        self.shared.partitions.swap(count, Ordering::AcqRel) != count
    }

    /// Counts for metrics.
    pub fn stats(&self) -> TxnStats {
        let state = self.shared.state.lock();
        let count = |wanted: &dyn Fn(TxnState) -> bool| {
            state.txns.values().filter(|t| wanted(t.state)).count() as u64
        };
        let c = &self.shared.counters;
        TxnStats {
            transactional_ids: state.txns.len() as u64,
            ongoing: count(&|s| s == TxnState::Ongoing),
            completing: count(&TxnState::is_prepare),
            committed: c.committed.load(Ordering::Relaxed),
            aborted: c.aborted.load(Ordering::Relaxed),
            fenced_producers: c.fenced_producers.load(Ordering::Relaxed),
            timed_out_aborts: c.timed_out_aborts.load(Ordering::Relaxed),
            oldest_open_start_ms: state
                .txns
                .values()
                .filter(|t| t.state == TxnState::Ongoing || t.state.is_prepare())
                .map(|t| t.start_timestamp_ms)
                .min(),
        }
    }

    /// The cached metadata of `transactional_id`, if this coordinator holds it.
    pub fn transaction(&self, transactional_id: &str) -> Option<TransactionMetadata> {
        self.shared.state.lock().txns.get(transactional_id).cloned()
    }

    /// The timer loop of this coordinator (aborting timed-out transactions, expiring idle
    /// transactional ids). Spawn its `run` on the broker's task tracker.
    pub fn timer(&self) -> TxnTimer<L, M> {
        TxnTimer::new(self.clone())
    }

    /// Stops serving: marker tasks and the timer stop (transactions left in
    /// PrepareCommit/PrepareAbort are completed by whichever coordinator loads their partition
    /// next), later requests are answered NOT_COORDINATOR. Waits for the marker tasks to end.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        {
            let mut state = self.shared.state.lock();
            state.shut_down = true;
            state.txns.clear();
            state.partitions.clear();
        }
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }

    fn now(&self) -> i64 {
        self.shared.clock.now_ms()
    }

    fn writer(&self, partition: i32) -> &tokio::sync::Mutex<()> {
        let index = usize::try_from(partition).unwrap_or(0) % self.shared.writers.len();
        &self.shared.writers[index]
    }

    /// Which partition coordinates `transactional_id` and its coordinator epoch, or the error
    /// code (Kafka's `getTransactionState` checks).
    fn check_txn(&self, state: &State, transactional_id: &str) -> Result<(i32, i32), i16> {
        if state.shut_down {
            return Err(NOT_COORDINATOR);
        }
        if transactional_id.is_empty() {
            return Err(INVALID_REQUEST);
        }
        let partition = self.partition_for(transactional_id);
        match state.partitions.get(&partition) {
            None => Err(NOT_COORDINATOR),
            Some(PartitionStatus::Loading { .. }) => Err(COORDINATOR_LOAD_IN_PROGRESS),
            Some(PartitionStatus::Owned { coordinator_epoch }) => {
                Ok((partition, *coordinator_epoch))
            }
        }
    }

    fn check_txn_now(&self, transactional_id: &str) -> Result<(i32, i32), i16> {
        let state = self.shared.state.lock();
        self.check_txn(&state, transactional_id)
    }

    /// Takes the write lock of `transactional_id`'s partition and checks ownership again
    /// under it; returns the guard, the partition and its coordinator epoch.
    async fn lock_txn(
        &self,
        transactional_id: &str,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, i32, i32), i16> {
        let (partition, _) = self.check_txn_now(transactional_id)?;
        let guard = self.writer(partition).lock().await;
        let (partition, epoch) = self.check_txn_now(transactional_id)?;
        Ok((guard, partition, epoch))
    }

    /// Writes `meta` to its partition (acks=all through the log) and, once written, caches
    /// it, if the partition is still owned at `coordinator_epoch`. The caller holds the
    /// partition's write lock.
    async fn persist(
        &self,
        partition: i32,
        coordinator_epoch: i32,
        meta: TransactionMetadata,
    ) -> Result<(), i16> {
        let value = meta.to_log().encode().map_err(|_| INVALID_REQUEST)?;
        self.append(partition, vec![(self.key(&meta.transactional_id)?, Some(value))])
            .await
            .map_err(|error| {
                tracing::warn!(transactional_id = %meta.transactional_id, partition, %error, "persisting transaction state failed");
                append_error_code(&error)
            })?;
        let mut state = self.shared.state.lock();
        if state.owned_epoch(partition) != Some(coordinator_epoch) {
            return Err(NOT_COORDINATOR);
        }
        state.txns.insert(meta.transactional_id.clone(), meta);
        Ok(())
    }

    fn key(&self, transactional_id: &str) -> Result<bytes::Bytes, i16> {
        TxnLogKey {
            transactional_id: transactional_id.to_owned(),
        }
        .encode()
        .map_err(|_| INVALID_REQUEST)
    }

    /// Appends records to a `__transaction_state` partition as one batch.
    async fn append(
        &self,
        partition: i32,
        records: Vec<strom_group::records::KeyValue>,
    ) -> Result<i64, OffsetsLogError> {
        let batch = build_batch(&records, self.now())
            .map_err(|reason| OffsetsLogError::Storage { partition, reason })?;
        self.shared.log.append(partition, batch).await
    }

    fn topic_exists(&self, topic: &str, partition: i32) -> bool {
        self.shared
            .topic_lookup
            .as_ref()
            .is_none_or(|lookup| lookup.partition_exists(topic, partition))
    }
}
