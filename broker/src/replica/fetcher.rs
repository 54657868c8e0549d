//! Replica fetchers: how a follower copies its leaders' logs, with the Kafka Fetch API as
//! Kafka's `ReplicaFetcherThread` does.
//!
//! One fetcher task runs per source broker (the leader of some partitions followed here), with
//! one connection and one request in flight, so the bytes in flight per source are bounded by
//! `replica.fetch.response.max.bytes`. A partition enters its fetcher in the truncating phase:
//! the fetcher asks the leader, with OffsetForLeaderEpoch, where the log of this replica's
//! latest leader epoch ends on the leader, truncates anything past that (a tail the previous
//! leader wrote but never committed), and only then fetches from its log end. Fetch responses
//! are appended as they came (offsets and epochs kept) and bring the leader's high watermark.
//!
//! Replicas listed in `follower.replication.throttled.replicas` count their bytes against the
//! follower quota ([`super::quota`]); while it is exceeded, those not in sync (behind the
//! leader's high watermark at their last fetch) are left out of the requests.
//!
//! Errors back off per partition (`replica.fetch.backoff.ms`): a leader that does not know the
//! new epoch yet, a fenced epoch (this broker's image is behind), a failed append. A broken
//! connection backs the whole source off and is reopened.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};
use parking_lot::Mutex;
use strom_client::Connection;
use strom_storage::StorageError;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::partition::{Partition, now_ms};
use super::quota::ReplicationQuota;
use crate::log_limit::LogLimiter;

/// Connection failures to a source repeat every backoff: one line per distinct failure per
/// minute.
static FETCH_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(60));

/// How soon a partition refused because one side's metadata lags is fetched again.
const METADATA_LAG_RETRY: Duration = Duration::from_millis(50);

/// The `client_id` of fetch requests, as Kafka's `broker-<id>-fetcher-0`.
fn client_id(node_id: i32) -> String {
    format!("broker-{node_id}-fetcher-0")
}

/// The replica fetchers' settings (Kafka's `replica.fetch.*`).
#[derive(Debug, Clone, Copy)]
pub struct FetchSettings {
    pub max_wait: Duration,
    pub min_bytes: i32,
    pub partition_max_bytes: i32,
    pub response_max_bytes: i32,
    pub backoff: Duration,
    pub request_timeout: Duration,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            partition_max_bytes: 1024 * 1024,
            response_max_bytes: 10 * 1024 * 1024,
            backoff: Duration::from_millis(1000),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A partition this broker follows, and where its leader is.
#[derive(Debug, Clone)]
pub struct FetchTarget {
    pub partition: Arc<Partition>,
    pub leader: i32,
    pub leader_epoch: i32,
    /// The leader's advertised Kafka listener, `host:port`.
    pub address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Truncating,
    Fetching,
}

#[derive(Debug)]
struct Entry {
    partition: Arc<Partition>,
    leader_epoch: i32,
    phase: Phase,
    retry_at: Option<Instant>,
}

type Key = (Arc<str>, i32);

/// The partitions one fetcher task copies from one source broker.
#[derive(Debug, Default)]
struct SourceShared {
    partitions: Mutex<HashMap<Key, Entry>>,
    wake: Notify,
}

#[derive(Debug)]
struct Source {
    shared: Arc<SourceShared>,
    cancel: CancellationToken,
}

/// Counters the metrics read.
#[derive(Debug, Default)]
pub struct ReplicationStats {
    /// Bytes appended from leaders' fetch responses.
    pub bytes_in: AtomicU64,
}

/// Every fetcher task of this broker.
#[derive(Debug)]
pub struct FetcherManager {
    node_id: i32,
    settings: Mutex<FetchSettings>,
    sources: Mutex<HashMap<(i32, String), Source>>,
    pub stats: Arc<ReplicationStats>,
    quota: Arc<ReplicationQuota>,
}

impl FetcherManager {
    pub fn new(node_id: i32, quota: Arc<ReplicationQuota>) -> FetcherManager {
        FetcherManager {
            node_id,
            settings: Mutex::new(FetchSettings::default()),
            sources: Mutex::new(HashMap::new()),
            stats: Arc::default(),
            quota,
        }
    }

    pub fn set_settings(&self, settings: FetchSettings) {
        *self.settings.lock() = settings;
    }

    /// Makes the fetchers copy exactly `targets`: partitions no longer followed (or followed
    /// from another source) leave their task, a new leader epoch restarts a partition in the
    /// truncating phase, and a source with nothing left stops. Must run on the tokio runtime.
    pub fn update(&self, targets: Vec<FetchTarget>) {
        let mut wanted: HashMap<(i32, String), Vec<FetchTarget>> = HashMap::new();
        for target in targets {
            wanted
                .entry((target.leader, target.address.clone()))
                .or_default()
                .push(target);
        }
        let mut sources = self.sources.lock();
        sources.retain(|key, source| {
            if wanted.contains_key(key) {
                return true;
            }
            source.cancel.cancel();
            false
        });
        let settings = *self.settings.lock();
        for (key, targets) in wanted {
            let source = sources.entry(key.clone()).or_insert_with(|| {
                let shared = Arc::new(SourceShared::default());
                let cancel = CancellationToken::new();
                let task = SourceTask {
                    node_id: self.node_id,
                    leader: key.0,
                    address: key.1.clone(),
                    shared: shared.clone(),
                    settings,
                    stats: self.stats.clone(),
                    quota: self.quota.clone(),
                };
                tokio::spawn(task.run(cancel.clone()));
                Source { shared, cancel }
            });
            let mut partitions = source.shared.partitions.lock();
            let keep: HashMap<Key, &FetchTarget> = targets
                .iter()
                .map(|t| ((t.partition.topic.clone(), t.partition.index), t))
                .collect();
            partitions.retain(|k, entry| {
                keep.get(k).is_some_and(|t| {
                    Arc::ptr_eq(&t.partition, &entry.partition)
                        && t.leader_epoch == entry.leader_epoch
                })
            });
            for (k, target) in keep {
                partitions.entry(k).or_insert_with(|| Entry {
                    partition: target.partition.clone(),
                    leader_epoch: target.leader_epoch,
                    phase: Phase::Truncating,
                    retry_at: None,
                });
            }
            drop(partitions);
            source.shared.wake.notify_one();
        }
    }

    /// Stops every fetcher (shutdown).
    pub fn stop_all(&self) {
        for (_, source) in self.sources.lock().drain() {
            source.cancel.cancel();
        }
    }
}

/// One source broker's fetcher.
struct SourceTask {
    node_id: i32,
    leader: i32,
    address: String,
    shared: Arc<SourceShared>,
    settings: FetchSettings,
    stats: Arc<ReplicationStats>,
    quota: Arc<ReplicationQuota>,
}

/// A partition ready for the next request, as the request was built.
struct Ready {
    key: Key,
    partition: Arc<Partition>,
    leader_epoch: i32,
    fetch_offset: i64,
}

impl SourceTask {
    async fn run(self, cancel: CancellationToken) {
        tracing::info!(leader = self.leader, address = %self.address, "replica fetcher started");
        let mut connection: Option<Connection> = None;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let (truncating, fetching, next_retry) = self.ready();
            if truncating.is_empty() && fetching.is_empty() {
                let idle = next_retry.map_or(Duration::from_secs(1), |at| {
                    at.saturating_duration_since(Instant::now())
                });
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = self.shared.wake.notified() => {}
                    _ = tokio::time::sleep(idle) => {}
                }
                continue;
            }
            let conn = match connection.take().filter(Connection::is_usable) {
                Some(conn) => conn,
                None => match Connection::open(
                    &self.address,
                    self.settings.request_timeout,
                    &client_id(self.node_id),
                )
                .await
                {
                    Ok(conn) => conn,
                    Err(error) => {
                        self.log_failure(&error.to_string());
                        if self.pause(&cancel, self.settings.backoff).await {
                            break;
                        }
                        continue;
                    }
                },
            };
            let mut conn = conn;
            let outcome = tokio::select! {
                _ = cancel.cancelled() => break,
                outcome = self.round(&mut conn, truncating, fetching) => outcome,
            };
            match outcome {
                Ok(()) => connection = Some(conn),
                Err(error) => {
                    self.log_failure(&error);
                    if self.pause(&cancel, self.settings.backoff).await {
                        break;
                    }
                }
            }
        }
        tracing::info!(leader = self.leader, "replica fetcher stopped");
    }

    fn log_failure(&self, error: &str) {
        if let Some(suppressed) = FETCH_LOG.check(&format!("{}:{error}", self.leader)) {
            tracing::warn!(leader = self.leader, address = %self.address, error, suppressed, "replica fetch failed");
        }
    }

    /// Sleeps `duration` unless cancelled first; true when cancelled.
    async fn pause(&self, cancel: &CancellationToken, duration: Duration) -> bool {
        tokio::select! {
            _ = cancel.cancelled() => true,
            _ = tokio::time::sleep(duration) => false,
        }
    }

    /// The partitions due now, by phase, and when the next backed-off one is due.
    fn ready(&self) -> (Vec<Ready>, Vec<Ready>, Option<Instant>) {
        let now = Instant::now();
        let mut truncating = Vec::new();
        let mut fetching = Vec::new();
        let mut next_retry: Option<Instant> = None;
        for (key, entry) in self.shared.partitions.lock().iter_mut() {
            if let Some(at) = entry.retry_at {
                if at > now {
                    next_retry = Some(next_retry.map_or(at, |n| n.min(at)));
                    continue;
                }
                entry.retry_at = None;
            }
            let ready = Ready {
                key: key.clone(),
                partition: entry.partition.clone(),
                leader_epoch: entry.leader_epoch,
                fetch_offset: entry.partition.log_end_offset(),
            };
            match entry.phase {
                Phase::Truncating => truncating.push(ready),
                Phase::Fetching => fetching.push(ready),
            }
        }
        (truncating, fetching, next_retry)
    }

    /// Sets the phase or backoff of a partition, if it is still the same entry.
    fn mark(&self, ready: &Ready, phase: Option<Phase>, backoff: bool) {
        self.mark_for(ready, phase, backoff.then_some(self.settings.backoff));
    }

    /// [`SourceTask::mark`] with a refusal's error code: a leader whose metadata is a moment
    /// behind this broker's (the partition or its new epoch not applied there yet), or the
    /// other way round, is asked again soon, not after the whole `replica.fetch.backoff.ms`.
    fn mark_refused(&self, ready: &Ready, code: i16) {
        let metadata_lag = [
            ResponseError::UnknownTopicOrPartition,
            ResponseError::UnknownTopicId,
            ResponseError::NotLeaderOrFollower,
            ResponseError::UnknownLeaderEpoch,
            ResponseError::FencedLeaderEpoch,
        ]
        .iter()
        .any(|e| e.code() == code);
        let pause = if metadata_lag {
            self.settings.backoff.min(METADATA_LAG_RETRY)
        } else {
            self.settings.backoff
        };
        self.mark_for(ready, None, Some(pause));
    }

    fn mark_for(&self, ready: &Ready, phase: Option<Phase>, pause: Option<Duration>) {
        if let Some(entry) = self.shared.partitions.lock().get_mut(&ready.key)
            && Arc::ptr_eq(&entry.partition, &ready.partition)
            && entry.leader_epoch == ready.leader_epoch
        {
            if let Some(phase) = phase {
                entry.phase = phase;
            }
            if let Some(pause) = pause {
                entry.retry_at = Some(Instant::now() + pause);
            }
        }
    }

    /// One truncation request (if any partition needs it) and one fetch request.
    async fn round(
        &self,
        conn: &mut Connection,
        truncating: Vec<Ready>,
        fetching: Vec<Ready>,
    ) -> Result<(), String> {
        if !truncating.is_empty() {
            self.truncate(conn, truncating).await?;
        }
        if !fetching.is_empty() {
            self.fetch(conn, fetching).await?;
        }
        Ok(())
    }

    /// OffsetForLeaderEpoch for every truncating partition, then the truncations.
    async fn truncate(&self, conn: &mut Connection, partitions: Vec<Ready>) -> Result<(), String> {
        let mut asked = Vec::new();
        for ready in partitions {
            match ready.partition.log().latest_epoch() {
                // Nothing written under any epoch: nothing can have diverged.
                None => self.mark(&ready, Some(Phase::Fetching), false),
                Some(epoch) => asked.push((ready, epoch)),
            }
        }
        if asked.is_empty() {
            return Ok(());
        }
        let mut by_topic: HashMap<Arc<str>, Vec<OffsetForLeaderPartition>> = HashMap::new();
        for (ready, epoch) in &asked {
            by_topic.entry(ready.key.0.clone()).or_default().push(
                OffsetForLeaderPartition::default()
                    .with_partition(ready.key.1)
                    .with_current_leader_epoch(ready.leader_epoch)
                    .with_leader_epoch(*epoch),
            );
        }
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(self.node_id))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetForLeaderTopic::default()
                            .with_topic(crate::handlers::topic_name(&topic))
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        let version = conn
            .version_for::<OffsetForLeaderEpochRequest>()
            .ok_or_else(|| {
                "the leader serves no usable OffsetForLeaderEpoch version".to_string()
            })?;
        let response: OffsetForLeaderEpochResponse = conn
            .send_at_version_with_timeout(request, version, self.settings.request_timeout)
            .await
            .map_err(|e| format!("OffsetForLeaderEpoch: {e}"))?;
        let mut answers: HashMap<(String, i32), (i16, i32, i64)> = HashMap::new();
        for topic in response.topics {
            for p in topic.partitions {
                answers.insert(
                    (topic.topic.0.to_string(), p.partition),
                    (p.error_code, p.leader_epoch, p.end_offset),
                );
            }
        }
        for (ready, epoch) in asked {
            let answer = answers
                .get(&(ready.key.0.to_string(), ready.key.1))
                .copied();
            let Some((code, leader_epoch, end_offset)) = answer else {
                self.mark(&ready, None, true);
                continue;
            };
            if code != 0 {
                tracing::debug!(topic = %ready.key.0, partition = ready.key.1, code, "OffsetForLeaderEpoch refused");
                self.mark_refused(&ready, code);
                continue;
            }
            let log = ready.partition.log();
            let own_end = log.log_end_offset();
            let target = if leader_epoch < 0 || end_offset < 0 {
                // The leader holds no epoch this old: keep only what was committed.
                ready.partition.high_watermark()
            } else if leader_epoch == epoch {
                end_offset.min(own_end)
            } else {
                // The leader's log knows only an older epoch: keep what both logs hold of it.
                let own = log
                    .end_offset_for_epoch(leader_epoch)
                    .map_or(-1, |(_, o)| o);
                end_offset.min(own).min(own_end).max(0)
            };
            match ready
                .partition
                .truncate_as_follower(target, ready.leader_epoch)
                .await
            {
                Ok(true) => self.mark(&ready, Some(Phase::Fetching), false),
                Ok(false) => {}
                Err(error) => {
                    self.log_failure(&format!("truncating: {error}"));
                    self.mark(&ready, None, true);
                }
            }
        }
        Ok(())
    }

    /// One Fetch request for every fetching partition, and its response applied.
    async fn fetch(&self, conn: &mut Connection, partitions: Vec<Ready>) -> Result<(), String> {
        let partitions: Vec<Ready> = partitions
            .into_iter()
            .filter(|r| {
                let in_sync = r.partition.follower_lag() == 0;
                !self.quota.holds_back(&r.key.0, r.key.1, in_sync)
            })
            .collect();
        if partitions.is_empty() {
            // Everything here is throttled: wait until the quota has room again.
            let wait = self
                .quota
                .time_to_bound()
                .min(self.settings.backoff)
                .max(Duration::from_millis(10));
            tokio::time::sleep(wait).await;
            return Ok(());
        }
        let version = conn
            .version_for::<FetchRequest>()
            .ok_or_else(|| "the leader serves no usable Fetch version".to_string())?
            .min(16);
        let by_id = version >= 13;
        let mut by_topic: HashMap<Arc<str>, (uuid::Uuid, Vec<FetchPartition>)> = HashMap::new();
        for ready in &partitions {
            let entry = by_topic
                .entry(ready.key.0.clone())
                .or_insert_with(|| (ready.partition.topic_id, Vec::new()));
            entry.1.push(
                FetchPartition::default()
                    .with_partition(ready.key.1)
                    .with_current_leader_epoch(ready.leader_epoch)
                    .with_fetch_offset(ready.fetch_offset)
                    .with_log_start_offset(ready.partition.log_start_offset())
                    .with_partition_max_bytes(self.settings.partition_max_bytes),
            );
        }
        let topics = by_topic
            .into_iter()
            .map(|(name, (id, partitions))| {
                let topic = FetchTopic::default().with_partitions(partitions);
                if by_id {
                    topic.with_topic_id(id)
                } else {
                    topic.with_topic(crate::handlers::topic_name(&name))
                }
            })
            .collect();
        let mut request = FetchRequest::default()
            .with_max_wait_ms(i32::try_from(self.settings.max_wait.as_millis()).unwrap_or(500))
            .with_min_bytes(self.settings.min_bytes)
            .with_max_bytes(self.settings.response_max_bytes)
            .with_topics(topics);
        if version >= 15 {
            request = request.with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(self.node_id))
                    .with_replica_epoch(-1),
            );
        } else {
            request = request.with_replica_id(BrokerId(self.node_id));
        }
        let timeout = self.settings.request_timeout + self.settings.max_wait;
        let response: FetchResponse = conn
            .send_at_version_with_timeout(request, version, timeout)
            .await
            .map_err(|e| format!("Fetch: {e}"))?;
        if response.error_code != 0 {
            return Err(format!("Fetch refused with error {}", response.error_code));
        }
        let mut answers: HashMap<(uuid::Uuid, String, i32), _> = HashMap::new();
        for topic in response.responses {
            for p in topic.partitions {
                answers.insert(
                    (topic.topic_id, topic.topic.0.to_string(), p.partition_index),
                    p,
                );
            }
        }
        // Each partition's append goes to its own I/O worker: all of them are queued before
        // any is awaited, so the partitions of one response are written in parallel.
        let applies = partitions.into_iter().filter_map(|ready| {
            let key = if by_id {
                (ready.partition.topic_id, String::new(), ready.key.1)
            } else {
                (uuid::Uuid::nil(), ready.key.0.to_string(), ready.key.1)
            };
            let data = answers.remove(&key)?;
            Some(async move { self.apply(&ready, data).await })
        });
        futures::future::join_all(applies).await;
        Ok(())
    }

    /// Applies one partition's part of a fetch response.
    async fn apply(
        &self,
        ready: &Ready,
        data: kafka_protocol::messages::fetch_response::PartitionData,
    ) {
        let partition = &ready.partition;
        match ResponseError::try_from_code(data.error_code) {
            None => {}
            Some(ResponseError::OffsetOutOfRange) => {
                if ready.fetch_offset < data.log_start_offset {
                    if let Err(error) = partition
                        .restart_log_at(data.log_start_offset, ready.leader_epoch)
                        .await
                    {
                        self.log_failure(&format!("restarting the log: {error}"));
                        self.mark(ready, None, true);
                    }
                } else {
                    self.mark(ready, Some(Phase::Truncating), false);
                }
                return;
            }
            Some(error) => {
                tracing::debug!(topic = %partition.topic, partition = partition.index, ?error, "replica fetch refused");
                self.mark_refused(ready, data.error_code);
                return;
            }
        }
        let records = data.records.unwrap_or_default();
        if !records.is_empty() {
            let bytes = records.len() as u64;
            match partition
                .append_as_follower(records, ready.leader_epoch, now_ms())
                .await
            {
                Ok(Some(_)) => {
                    self.stats.bytes_in.fetch_add(bytes, Ordering::Relaxed);
                    if self.quota.is_throttled(&partition.topic, partition.index) {
                        self.quota.record(bytes);
                    }
                }
                Ok(None) => return,
                Err(StorageError::OffsetMismatch { expected, actual }) => {
                    tracing::info!(topic = %partition.topic, partition = partition.index, expected, actual, "fetched data does not continue the log; truncating again");
                    self.mark(ready, Some(Phase::Truncating), false);
                    return;
                }
                Err(error) => {
                    self.log_failure(&format!(
                        "appending {}-{}: {error}",
                        partition.topic, partition.index
                    ));
                    self.mark(ready, None, true);
                    return;
                }
            }
        }
        partition.update_follower_high_watermark(data.high_watermark);
        if data.log_start_offset > partition.log_start_offset() {
            let start = data
                .log_start_offset
                .min(partition.log_end_offset())
                .min(partition.high_watermark());
            let raised = partition.run_io(move |p| p.log().delete_records_before(start));
            if let Err(error) = raised.await {
                tracing::debug!(%error, "following the leader's log start offset");
            }
        }
    }
}
