//! The replica manager: the partitions this broker hosts, created, reconfigured and deleted by
//! publishing metadata images to it (KRaft's "metadata publisher" idea).
//!
//! Each partition directory holds a `partition.metadata` file with its topic id, as in Kafka, so
//! a topic deleted and re-created under the same name while a broker was down is never mistaken
//! for the old one.
//!
//! Applying an image opens and recovers logs and deletes directories: blocking work that
//! [`ReplicaManager::publish`] runs on tokio's blocking pool, never on a runtime worker. The
//! partitions' own writes run on the log I/O workers the manager owns ([`super::log_io`]).
//! Each image also says which partitions this broker follows and where their leaders are; the
//! manager hands exactly those to the replica fetchers ([`super::fetcher`]).
//!
//! The high watermarks of all partitions are written to `replication-offset-checkpoint` in the
//! data directory (and the flushed offsets to `recovery-point-offset-checkpoint`), as Kafka
//! does, so a restarted replica does not expose less, or more, than was committed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use strom_metadata::MetadataImage;
use strom_storage::{
    OffsetCheckpoint, PartitionLog, PartitionOffsets, StorageError, partition_metadata,
};
use uuid::Uuid;

use super::fetcher::{FetchTarget, FetcherManager};
use super::log_io::LogIo;
use super::partition::{Partition, ReplicaState, Transition, now_ms};
use super::quota::ReplicationQuotas;
use crate::config::BrokerProps;
use crate::topic_config::log_config;

/// Errors of the replica manager.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("opening the log of {topic}-{partition}: {source}")]
    Open {
        topic: String,
        partition: i32,
        source: StorageError,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting the log I/O threads: {0}")]
    Threads(std::io::Error),
    #[error("applying metadata stopped: {0}")]
    Stopped(String),
}

/// The partitions of one topic hosted here, indexed by partition number.
#[derive(Debug, Clone)]
struct HostedTopic {
    topic_id: Uuid,
    partitions: Vec<Option<Arc<Partition>>>,
    /// Partitions this broker should host whose log could not be opened (offline, Kafka's
    /// KAFKA_STORAGE_ERROR); opening is retried with every image applied.
    offline: Vec<i32>,
}

/// All partition replicas on this broker.
#[derive(Debug)]
pub struct ReplicaManager {
    node_id: i32,
    data_dir: PathBuf,
    topics: RwLock<HashMap<Arc<str>, HostedTopic>>,
    /// Serializes image application: the publisher task and admin handlers both publish.
    apply_lock: Mutex<u64>,
    /// The threads that run the partitions' disk writes.
    io: LogIo,
    /// The tasks that copy the logs of partitions led elsewhere.
    pub fetchers: FetcherManager,
    /// The replication throttles, as leader (the Fetch handler) and as follower (the fetchers).
    pub quotas: ReplicationQuotas,
    /// High watermarks and recovery points read from the data directory's checkpoint files
    /// at the first image, for the partitions it opens.
    checkpointed: Mutex<Option<Checkpointed>>,
}

/// What the checkpoint files held when the broker started.
#[derive(Debug, Default)]
struct Checkpointed {
    high_watermarks: PartitionOffsets,
    recovery_points: PartitionOffsets,
}

impl ReplicaManager {
    /// A manager with [`LogIo::default_threads`] log I/O threads.
    pub fn new(node_id: i32, data_dir: PathBuf) -> Result<ReplicaManager, ReplicaError> {
        let quotas = ReplicationQuotas::default();
        Ok(ReplicaManager {
            node_id,
            data_dir,
            topics: RwLock::new(HashMap::new()),
            apply_lock: Mutex::new(0),
            io: LogIo::start(LogIo::default_threads()).map_err(ReplicaError::Threads)?,
            fetchers: FetcherManager::new(node_id, quotas.follower.clone()),
            quotas,
            checkpointed: Mutex::new(None),
        })
    }

    /// The partition if this broker hosts it.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let topics = self.topics.read();
        let hosted = topics.get(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|i| hosted.partitions.get(i))
            .and_then(Clone::clone)
    }

    /// Whether this broker should host the partition but could not open its log.
    pub fn is_offline(&self, topic: &str, partition: i32) -> bool {
        self.topics
            .read()
            .get(topic)
            .is_some_and(|hosted| hosted.offline.contains(&partition))
    }

    /// The partitions of `topic` that could not be opened here.
    pub fn offline_partitions(&self, topic: &str) -> Vec<i32> {
        self.topics
            .read()
            .get(topic)
            .map_or_else(Vec::new, |hosted| hosted.offline.clone())
    }

    /// How many partitions could not be opened here.
    pub fn offline_count(&self) -> usize {
        self.topics.read().values().map(|t| t.offline.len()).sum()
    }

    /// Every hosted partition (for the retention and flush loops and metrics).
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.partitions.iter().flatten().cloned())
            .collect()
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    /// [`ReplicaManager::apply_image`] on tokio's blocking pool, for async callers.
    pub async fn publish(
        self: &Arc<Self>,
        image: Arc<MetadataImage>,
        props: BrokerProps,
    ) -> Result<(), ReplicaError> {
        self.quotas
            .update(&image, self.node_id, props.replication_throttled_rates());
        let manager = Arc::clone(self);
        let applied = {
            let image = image.clone();
            tokio::task::spawn_blocking(move || manager.apply_image(&image, &props))
                .await
                .map_err(|error| ReplicaError::Stopped(error.to_string()))?
        };
        self.fetchers.update(self.fetch_targets(&image));
        applied
    }

    /// The partitions this broker follows, with their leaders' addresses from `image`. A
    /// leader that is not registered (yet) has no address: its partitions wait for a later
    /// image.
    pub fn fetch_targets(&self, image: &MetadataImage) -> Vec<FetchTarget> {
        self.all_partitions()
            .into_iter()
            .filter_map(|partition| {
                let state = partition.state();
                if state.leader < 0 || state.leader == self.node_id {
                    return None;
                }
                let leader = image.broker(state.leader)?;
                Some(FetchTarget {
                    partition,
                    leader: state.leader,
                    leader_epoch: state.leader_epoch,
                    address: format!("{}:{}", leader.host, leader.port),
                })
            })
            .collect()
    }

    /// Writes the high watermark and recovery point of every hosted partition to the data
    /// directory's checkpoint files.
    pub fn write_checkpoints(&self) -> Result<(), StorageError> {
        let partitions = self.all_partitions();
        let offsets = |value: &dyn Fn(&Partition) -> i64| -> PartitionOffsets {
            partitions
                .iter()
                .map(|p| ((p.topic.to_string(), p.index), value(p)))
                .collect()
        };
        OffsetCheckpoint::new(&self.data_dir, OffsetCheckpoint::REPLICATION)
            .write(&offsets(&|p| p.high_watermark()))?;
        OffsetCheckpoint::new(&self.data_dir, OffsetCheckpoint::RECOVERY_POINT)
            .write(&offsets(&|p| p.log().recovery_point()))
    }

    /// The checkpointed high watermark and recovery point of a partition, read once from the
    /// data directory. A damaged file counts as absent: high watermarks then start at the log
    /// start and recovery scans everything, which is slower but loses nothing.
    fn checkpointed(&self, topic: &str, partition: i32) -> (Option<i64>, Option<i64>) {
        let mut checkpointed = self.checkpointed.lock();
        let files = checkpointed.get_or_insert_with(|| {
            let read = |name: &str| {
                let file = OffsetCheckpoint::new(&self.data_dir, name);
                file.read().unwrap_or_else(|error| {
                    tracing::warn!(path = %file.path().display(), %error, "ignoring an unreadable checkpoint file");
                    PartitionOffsets::new()
                })
            };
            Checkpointed {
                high_watermarks: read(OffsetCheckpoint::REPLICATION),
                recovery_points: read(OffsetCheckpoint::RECOVERY_POINT),
            }
        });
        let key = (topic.to_string(), partition);
        (
            files.high_watermarks.get(&key).copied(),
            files.recovery_points.get(&key).copied(),
        )
    }

    /// Brings the hosted partitions in line with `image`: opens new ones (recovering their logs),
    /// updates replica state and configs, and deletes those whose topic is gone. Idempotent;
    /// images older than one already applied are ignored. Blocking: async code calls
    /// [`ReplicaManager::publish`].
    pub fn apply_image(
        &self,
        image: &MetadataImage,
        props: &BrokerProps,
    ) -> Result<(), ReplicaError> {
        let mut applied = self.apply_lock.lock();
        if image.offset < *applied {
            return Ok(());
        }
        let now = now_ms();
        let mut next: HashMap<Arc<str>, HostedTopic> = HashMap::new();
        let current = self.topics.read().clone();
        let mut first_error = None;
        for (name, topic) in image.topics.iter() {
            let (config, min_isr) = log_config(props, &topic.configs);
            let reuse = current
                .get(name.as_str())
                .filter(|hosted| hosted.topic_id == topic.topic_id);
            let count = topic.partitions.keys().max().map_or(0, |max| *max + 1);
            let mut partitions: Vec<Option<Arc<Partition>>> =
                vec![None; usize::try_from(count).unwrap_or(0)];
            let mut offline = Vec::new();
            for (&index, p) in &topic.partitions {
                if !p.replicas.contains(&self.node_id) {
                    continue;
                }
                let state = ReplicaState {
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                };
                let existing = reuse
                    .and_then(|hosted| hosted.partitions.get(index as usize))
                    .and_then(Clone::clone);
                let partition = match existing {
                    Some(partition) => {
                        if partition.update_state(state) == Transition::BecameLeader {
                            partition.begin_leader_epoch();
                        }
                        partition.update_config(config.clone(), min_isr);
                        partition
                    }
                    None => {
                        let dir = self.partition_dir(name, index);
                        let (high_watermark, recovery_point) = self.checkpointed(name, index);
                        match open_partition_log(
                            &dir,
                            topic.topic_id,
                            config.clone(),
                            now,
                            recovery_point,
                        ) {
                            Ok(log) => Partition::started(Partition::new(
                                Arc::from(name.as_str()),
                                topic.topic_id,
                                index,
                                self.node_id,
                                log,
                                self.io.assign(),
                                state,
                                min_isr,
                                high_watermark,
                            )),
                            Err(source) => {
                                tracing::error!(topic = %name, partition = index, error = %source, "cannot open partition log; the partition is offline");
                                offline.push(index);
                                first_error.get_or_insert(ReplicaError::Open {
                                    topic: name.clone(),
                                    partition: index,
                                    source,
                                });
                                continue;
                            }
                        }
                    }
                };
                if let Some(slot) = partitions.get_mut(index as usize) {
                    *slot = Some(partition);
                }
            }
            next.insert(
                Arc::from(name.as_str()),
                HostedTopic {
                    topic_id: topic.topic_id,
                    partitions,
                    offline,
                },
            );
        }
        // Partitions no longer hosted (topic deleted, or re-created with a new id) lose their data.
        let mut removed = Vec::new();
        for (name, hosted) in &current {
            let kept = next.get(name).filter(|n| n.topic_id == hosted.topic_id);
            for partition in hosted.partitions.iter().flatten() {
                let still = kept
                    .and_then(|n| n.partitions.get(partition.index as usize))
                    .is_some_and(Option::is_some);
                if !still {
                    removed.push(partition.clone());
                }
            }
        }
        *self.topics.write() = next;
        *applied = image.offset;
        drop(applied);
        for partition in removed {
            let dir = self.partition_dir(&partition.topic, partition.index);
            tracing::info!(topic = %partition.topic, partition = partition.index, "deleting partition log");
            if let Err(error) = partition.log().close() {
                tracing::warn!(%error, "closing a deleted partition");
            }
            if let Err(source) = std::fs::remove_dir_all(&dir)
                && source.kind() != std::io::ErrorKind::NotFound
            {
                first_error.get_or_insert(ReplicaError::Io { path: dir, source });
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes partition directories whose topic no longer exists in `image` (deleted while this
    /// broker was down). Only directories with a `partition.metadata` file are considered.
    pub fn remove_orphans(&self, image: &MetadataImage) -> Result<usize, ReplicaError> {
        let entries = std::fs::read_dir(&self.data_dir).map_err(|source| ReplicaError::Io {
            path: self.data_dir.clone(),
            source,
        })?;
        let mut removed = 0;
        // Files beside the partition directories (the data-directory lock) hold no partition.
        for entry in entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        {
            let dir = entry.path();
            let Some(topic_id) = read_topic_id(&dir) else {
                continue;
            };
            let Some((topic, partition)) = parse_dir_name(&dir) else {
                continue;
            };
            let live = image.topic(&topic).is_some_and(|t| {
                t.topic_id == topic_id
                    && t.partitions
                        .get(&partition)
                        .is_some_and(|p| p.replicas.contains(&self.node_id))
            });
            if !live {
                tracing::info!(dir = %dir.display(), "removing the log of a deleted partition");
                std::fs::remove_dir_all(&dir).map_err(|source| ReplicaError::Io {
                    path: dir.clone(),
                    source,
                })?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Flushes and closes every log (controlled shutdown), each on its I/O worker after the
    /// writes queued before.
    pub async fn close_all(&self) {
        self.fetchers.stop_all();
        if let Err(error) = self.write_checkpoints() {
            tracing::error!(%error, "writing the offset checkpoints");
        }
        let closing: Vec<_> = self
            .all_partitions()
            .into_iter()
            .map(|partition| {
                let done = partition.run_io(|partition| partition.log().close());
                (partition, done)
            })
            .collect();
        for (partition, done) in closing {
            if let Err(error) = done.await {
                tracing::error!(topic = %partition.topic, partition = partition.index, %error, "closing log");
            }
        }
    }
}

fn open_partition_log(
    dir: &Path,
    topic_id: Uuid,
    config: strom_storage::LogConfig,
    now: i64,
    recovery_point: Option<i64>,
) -> Result<PartitionLog, StorageError> {
    if let Some(existing) = read_topic_id(dir)
        && existing != topic_id
    {
        // Same name, different topic: the old data belongs to a deleted topic.
        tracing::warn!(dir = %dir.display(), old = %existing, new = %topic_id, "replacing the log of a deleted topic");
        std::fs::remove_dir_all(dir).map_err(|source| StorageError::Io {
            op: "remove the directory of a deleted topic",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let log = PartitionLog::open_with_recovery_point(dir, config, now, recovery_point)?;
    if read_topic_id(dir).is_none() {
        partition_metadata::write_topic_id(dir, &topic_id.to_string())?;
    }
    Ok(log)
}

/// The topic id a partition directory belongs to; a damaged file counts as absent (it is then
/// rewritten for the topic that opens the directory).
fn read_topic_id(dir: &Path) -> Option<Uuid> {
    match partition_metadata::read_topic_id(dir) {
        Ok(id) => id.and_then(|id| id.parse().ok()),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "unreadable partition.metadata");
            None
        }
    }
}

fn parse_dir_name(dir: &Path) -> Option<(String, i32)> {
    let name = dir.file_name()?.to_str()?;
    let (topic, partition) = name.rsplit_once('-')?;
    Some((topic.to_string(), partition.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_dir_names_split_at_the_last_dash() {
        assert_eq!(
            parse_dir_name(Path::new("/d/my-topic-12")),
            Some(("my-topic".to_string(), 12))
        );
        assert_eq!(parse_dir_name(Path::new("/d/nodash")), None);
        assert_eq!(parse_dir_name(Path::new("/d/topic-x")), None);
    }
}
