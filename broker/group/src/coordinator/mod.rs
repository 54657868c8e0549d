//! The async driver around the pure [`crate::group::Group`] state machine: routes requests to
//! groups, parks JoinGroup/SyncGroup requests on oneshot channels until the rebalance answers
//! them, persists group state to `__consumer_offsets`, and runs the timers.
//!
//! Concurrency: all groups live behind one synchronous lock that is never held across an
//! `.await`. Every operation that writes to a `__consumer_offsets` partition first takes that
//! partition's async write lock, so records reach the log in the order the state changed and
//! the cache is updated only after the write succeeded.

mod delete_groups;
mod describe_groups;
mod heartbeat;
mod join_group;
mod leave_group;
mod list_groups;
mod load;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod sync_group;
mod timer;
mod txn_offset_commit;
mod versions;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, TokioClock};
use crate::codes::*;
use crate::config::{GroupConfig, Timeouts, coordinator_partition, millis};
use crate::error::OffsetsLogError;
use crate::group::{Effect, Group, JoinResult, SyncResult};
use crate::log::OffsetsLog;
use crate::records::{KeyValue, RecordKey, build_batch};

pub use timer::GroupTimer;

/// Whether a topic partition exists, for OffsetCommit and OffsetDelete
/// (UNKNOWN_TOPIC_OR_PARTITION, as Kafka checks its metadata cache).
pub trait TopicLookup: Send + Sync + std::fmt::Debug + 'static {
    /// Whether `topic` exists and has partition `partition`.
    fn partition_exists(&self, topic: &str, partition: i32) -> bool;
}

/// Connection facts a JoinGroup needs that are not in its body: Kafka prefixes member ids with
/// the client id and DescribeGroups shows both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// `client.id` from the request header.
    pub client_id: String,
    /// Address of the client's connection, as Kafka shows it (`/127.0.0.1`).
    pub client_host: String,
}

/// Optional collaborators of a [`GroupCoordinator`].
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    /// Time source; [`TokioClock`] by default.
    pub clock: Arc<dyn Clock>,
    /// Topic existence check; without one every topic is taken to exist.
    pub topic_lookup: Option<Arc<dyn TopicLookup>>,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(TokioClock::new()),
            topic_lookup: None,
        }
    }
}

/// A committed offset, for consumer lag metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommittedOffset {
    /// Group id.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Committed offset (next offset to consume).
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartitionStatus {
    /// Being replayed; `u64` tells loads apart so an abandoned one does not finish.
    Loading(u64),
    Owned,
}

#[derive(Debug, Default)]
struct State {
    partitions: HashMap<i32, PartitionStatus>,
    groups: HashMap<String, Group>,
    join_waiters: HashMap<(String, String), Vec<oneshot::Sender<JoinResult>>>,
    sync_waiters: HashMap<(String, String), Vec<oneshot::Sender<SyncResult>>>,
    next_load: u64,
    shut_down: bool,
}

impl State {
    /// Hands effects to the parked requests; true when the group's metadata must be persisted.
    fn deliver(&mut self, group_id: &str, effects: Vec<Effect>) -> bool {
        let mut store = false;
        for effect in effects {
            match effect {
                Effect::Join { member_id, result } => {
                    for tx in self
                        .join_waiters
                        .remove(&(group_id.to_owned(), member_id))
                        .into_iter()
                        .flatten()
                    {
                        // A closed receiver is a client that went away; nothing to tell it.
                        let _ = tx.send(result.clone());
                    }
                }
                Effect::Sync { member_id, result } => {
                    for tx in self
                        .sync_waiters
                        .remove(&(group_id.to_owned(), member_id))
                        .into_iter()
                        .flatten()
                    {
                        let _ = tx.send(result.clone());
                    }
                }
                Effect::StoreGroup => store = true,
            }
        }
        store
    }

    fn park_join(&mut self, group_id: &str, member_id: &str) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        self.join_waiters
            .entry((group_id.to_owned(), member_id.to_owned()))
            .or_default()
            .push(tx);
        rx
    }

    fn park_sync(&mut self, group_id: &str, member_id: &str) -> oneshot::Receiver<SyncResult> {
        let (tx, rx) = oneshot::channel();
        self.sync_waiters
            .entry((group_id.to_owned(), member_id.to_owned()))
            .or_default()
            .push(tx);
        rx
    }

    /// Forgets a group with nothing left in it (no members, offsets or joins in flight).
    fn drop_if_disposable(&mut self, group_id: &str) {
        if self.groups.get(group_id).is_some_and(Group::is_disposable) {
            self.groups.remove(group_id);
        }
    }
}

pub(crate) struct Shared<L> {
    config: GroupConfig,
    timeouts: Timeouts,
    log: Arc<L>,
    clock: Arc<dyn Clock>,
    topic_lookup: Option<Arc<dyn TopicLookup>>,
    state: Mutex<State>,
    /// The partition count groups hash onto: `offsets.topic.num.partitions` until the broker
    /// reports the count the existing topic has ([`GroupCoordinator::set_partition_count`]).
    partitions: AtomicI32,
    /// One write lock per `__consumer_offsets` partition of the configured count; partitions
    /// beyond it share them (modulo), which serializes more but loses nothing.
    writers: Vec<tokio::sync::Mutex<()>>,
    /// Wakes the timer when deadlines may have moved earlier.
    wake: Notify,
    shutdown: CancellationToken,
}

/// The group coordinator of this broker for the `__consumer_offsets` partitions it leads.
///
/// Cheap to clone (shared state). Run its timers with [`GroupCoordinator::timer`].
pub struct GroupCoordinator<L> {
    shared: Arc<Shared<L>>,
}

impl<L> Clone for GroupCoordinator<L> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<L> std::fmt::Debug for GroupCoordinator<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<L: OffsetsLog> GroupCoordinator<L> {
    /// A coordinator that owns no partition yet: call [`GroupCoordinator::load_partition`] for
    /// each `__consumer_offsets` partition this broker leads, and run
    /// [`GroupCoordinator::timer`].
    pub fn new(config: GroupConfig, log: Arc<L>) -> Self {
        Self::with_options(config, log, CoordinatorOptions::default())
    }

    /// [`GroupCoordinator::new`] with a clock and a topic existence check.
    pub fn with_options(config: GroupConfig, log: Arc<L>, options: CoordinatorOptions) -> Self {
        let partitions = usize::try_from(config.offsets_topic_partitions.max(1)).unwrap_or(1);
        let timeouts = Timeouts::from(&config);
        Self {
            shared: Arc::new(Shared {
                partitions: AtomicI32::new(config.offsets_topic_partitions.max(1)),
                config,
                timeouts,
                log,
                clock: options.clock,
                topic_lookup: options.topic_lookup,
                state: Mutex::new(State::default()),
                writers: (0..partitions)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
                wake: Notify::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// The `__consumer_offsets` partition whose leader coordinates `group_id` (for
    /// FindCoordinator).
    pub fn partition_for(&self, group_id: &str) -> i32 {
        coordinator_partition(group_id, self.partition_count())
    }

    /// The `__consumer_offsets` partition count groups hash onto now.
    pub fn partition_count(&self) -> i32 {
        self.shared.partitions.load(Ordering::Acquire)
    }

    /// Hashes groups onto `count` partitions from now on: the count the existing
    /// `__consumer_offsets` topic has, which wins over `offsets.topic.num.partitions` as in
    /// Kafka (a topic created under another setting keeps its count). Call it before loading
    /// partitions; with partitions loaded, the caller unloads them first, since their groups
    /// may hash elsewhere under the new count. Returns whether the count changed.
    pub fn set_partition_count(&self, count: i32) -> bool {
        let count = count.max(1);
        self.shared.partitions.swap(count, Ordering::AcqRel) != count
    }

    /// Every committed offset of every group this coordinator holds, for lag metrics.
    pub fn committed_offsets(&self) -> Vec<CommittedOffset> {
        let state = self.shared.state.lock();
        let mut out: Vec<CommittedOffset> = state
            .groups
            .values()
            .flat_map(|group| {
                group
                    .offsets
                    .iter()
                    .map(|((topic, partition), entry)| CommittedOffset {
                        group: group.group_id().to_owned(),
                        topic: topic.clone(),
                        partition: *partition,
                        offset: entry.offset,
                    })
            })
            .collect();
        out.sort();
        out
    }

    /// The timer loop of this coordinator (session, rebalance and sync timeouts, offset
    /// retention). Spawn its `run` on the broker's task tracker.
    pub fn timer(&self) -> GroupTimer<L> {
        GroupTimer::new(Arc::clone(&self.shared))
    }

    /// Stops serving: parked JoinGroup/SyncGroup requests are answered NOT_COORDINATOR, later
    /// requests COORDINATOR_NOT_AVAILABLE, and the timer stops.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        let mut state = self.shared.state.lock();
        state.shut_down = true;
        // Dropping the senders answers every parked request.
        state.join_waiters.clear();
        state.sync_waiters.clear();
        state.groups.clear();
        state.partitions.clear();
    }

    fn now(&self) -> i64 {
        self.shared.clock.now_ms()
    }

    fn writer(&self, partition: i32) -> &tokio::sync::Mutex<()> {
        let index = usize::try_from(partition).unwrap_or(0) % self.shared.writers.len();
        &self.shared.writers[index]
    }

    /// Kafka's `validateGroupStatus`: which partition coordinates the group, or the error code.
    /// Commits, fetches, describes and deletes accept the empty group id, as Kafka does.
    fn check_group(&self, state: &State, group_id: &str, allow_empty_id: bool) -> Result<i32, i16> {
        if state.shut_down {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        if (group_id.is_empty() && !allow_empty_id) || group_id.len() > i16::MAX as usize {
            return Err(INVALID_GROUP_ID);
        }
        let partition = self.partition_for(group_id);
        match state.partitions.get(&partition) {
            None => Err(NOT_COORDINATOR),
            Some(PartitionStatus::Loading(_)) => Err(COORDINATOR_LOAD_IN_PROGRESS),
            Some(PartitionStatus::Owned) => Ok(partition),
        }
    }

    /// `check_group` taking the state lock itself.
    fn check_group_now(&self, group_id: &str, allow_empty_id: bool) -> Result<i32, i16> {
        let state = self.shared.state.lock();
        self.check_group(&state, group_id, allow_empty_id)
    }

    /// The record holding `group`'s metadata now (a tombstone once Dead).
    fn group_record(
        group: &Group,
        assignments: Option<&HashMap<String, Bytes>>,
    ) -> Option<KeyValue> {
        let key = RecordKey::GroupMetadata {
            group: group.group_id().to_owned(),
        };
        let key = match key.encode() {
            Ok(key) => key,
            Err(error) => {
                tracing::error!(group = group.group_id(), %error, "group id cannot be persisted");
                return None;
            }
        };
        if group.state() == crate::state::GroupState::Dead {
            return Some((key, None));
        }
        match group.metadata_value(assignments).encode() {
            Ok(value) => Some((key, Some(value))),
            Err(error) => {
                tracing::error!(group = group.group_id(), %error, "group metadata cannot be persisted");
                None
            }
        }
    }

    /// Appends records to a `__consumer_offsets` partition as one batch.
    async fn append(&self, partition: i32, records: Vec<KeyValue>) -> Result<i64, OffsetsLogError> {
        let batch = build_batch(&records, self.now())
            .map_err(|reason| OffsetsLogError::Storage { partition, reason })?;
        self.shared.log.append(partition, batch).await
    }

    /// Appends group metadata whose failure nobody waits on; a failure only means the group
    /// reloads from older metadata after a coordinator move, so it is logged.
    async fn append_logged(&self, partition: i32, group_id: &str, record: Option<KeyValue>) {
        let Some(record) = record else { return };
        if let Err(error) = self.append(partition, vec![record]).await {
            tracing::warn!(group = group_id, partition, %error, "persisting group metadata failed");
        }
    }

    fn wake_timer(&self) {
        self.shared.wake.notify_one();
    }

    fn offset_retention_ms(&self) -> i64 {
        millis(self.shared.config.offsets_retention)
    }
}
