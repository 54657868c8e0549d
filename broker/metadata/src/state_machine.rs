//! The Raft state machine: applies committed metadata batches to the image and publishes it.
//!
//! The image lives in memory; durability comes from the log plus snapshots. A snapshot
//! (`snapshot.json`, replaced atomically) holds the serialized image with the last applied log
//! id and membership. On start the snapshot is loaded and openraft re-applies the committed
//! entries after it, so the image is rebuilt exactly.

use std::io::Cursor;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use openraft::AnyError;
use openraft::EntryPayload;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use openraft::StorageIOError;
use openraft::storage::RaftStateMachine;
use parking_lot::Mutex;
use serde::Deserialize;
use serde::Serialize;
use tokio::sync::watch;

use crate::error::MetadataError;
use crate::files::read_json;
use crate::files::write_atomic;
use crate::image::MetadataImage;
use crate::raft_types::Applied;
use crate::raft_types::Entry;
use crate::raft_types::LogId;
use crate::raft_types::Snapshot;
use crate::raft_types::SnapshotMeta;
use crate::raft_types::StorageError;
use crate::raft_types::StoredMembership;
use crate::raft_types::TypeConfig;

pub(crate) const SNAPSHOT_FILE: &str = "snapshot.json";

/// Where the current image is published: `ArcSwap` for lock-free reads on the request path,
/// a watch channel for tasks that react to changes.
#[derive(Debug)]
pub(crate) struct ImagePublisher {
    current: ArcSwap<MetadataImage>,
    tx: watch::Sender<Arc<MetadataImage>>,
}

impl ImagePublisher {
    pub(crate) fn new(image: Arc<MetadataImage>) -> Self {
        let (tx, _) = watch::channel(Arc::clone(&image));
        Self {
            current: ArcSwap::new(image),
            tx,
        }
    }

    pub(crate) fn publish(&self, image: Arc<MetadataImage>) {
        self.current.store(Arc::clone(&image));
        self.tx.send_replace(image);
    }

    pub(crate) fn current(&self) -> Arc<MetadataImage> {
        self.current.load_full()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.tx.subscribe()
    }
}

/// The snapshot file's content, also the bytes sent to a follower that needs a snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    image: MetadataImage,
}

/// The current snapshot, kept in memory as the serialized bytes openraft hands out.
#[derive(Debug, Clone)]
struct CurrentSnapshot {
    meta: SnapshotMeta,
    bytes: Vec<u8>,
}

/// The metadata state machine.
#[derive(Debug)]
pub struct MetadataStateMachine {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    publisher: Arc<ImagePublisher>,
    snapshot: Arc<Mutex<Option<CurrentSnapshot>>>,
}

impl MetadataStateMachine {
    /// Opens the state machine under `dir`, starting from the stored snapshot if there is one.
    ///
    /// `cluster_id` is the id this node recorded earlier, if any; a fresh node learns it from
    /// the log (the `cluster_id.v1` record of the first controller).
    pub(crate) fn open(
        dir: &Path,
        cluster_id: Option<&str>,
    ) -> Result<(Self, Arc<ImagePublisher>), MetadataError> {
        let path = dir.join(SNAPSHOT_FILE);
        let stored: Option<StoredSnapshot> = read_json(&path)?;
        let (image, last_applied, membership, snapshot) = match stored {
            Some(stored) => {
                if let Some(known) = cluster_id
                    && !stored.image.cluster_id.is_empty()
                    && stored.image.cluster_id != known
                {
                    return Err(MetadataError::ClusterIdMismatch {
                        path,
                        stored: stored.image.cluster_id,
                        configured: known.to_owned(),
                    });
                }
                let bytes = serde_json::to_vec(&stored).map_err(|e| MetadataError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                (
                    stored.image,
                    stored.meta.last_log_id,
                    stored.meta.last_membership.clone(),
                    Some(CurrentSnapshot {
                        meta: stored.meta,
                        bytes,
                    }),
                )
            }
            None => (
                MetadataImage::empty(cluster_id.unwrap_or_default()),
                None,
                StoredMembership::default(),
                None,
            ),
        };
        let image = Arc::new(image);
        let publisher = Arc::new(ImagePublisher::new(Arc::clone(&image)));
        let sm = Self {
            dir: dir.to_owned(),
            image,
            last_applied,
            membership,
            publisher: Arc::clone(&publisher),
            snapshot: Arc::new(Mutex::new(snapshot)),
        };
        Ok((sm, publisher))
    }
}

/// Builds snapshots from a frozen view of the state machine.
#[derive(Debug)]
pub struct MetadataSnapshotBuilder {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshot: Arc<Mutex<Option<CurrentSnapshot>>>,
}

fn snapshot_error(e: MetadataError) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

/// Serializes and persists a snapshot, unless a newer one is already stored (an installed
/// snapshot may race with a locally built one).
async fn persist_snapshot(
    dir: PathBuf,
    current: Arc<Mutex<Option<CurrentSnapshot>>>,
    stored: StoredSnapshot,
) -> Result<CurrentSnapshot, MetadataError> {
    tokio::task::spawn_blocking(move || {
        let path = dir.join(SNAPSHOT_FILE);
        let bytes = serde_json::to_vec(&stored).map_err(|e| MetadataError::Corrupt {
            path: path.clone(),
            reason: format!("cannot serialize snapshot: {e}"),
        })?;
        let snapshot = CurrentSnapshot {
            meta: stored.meta,
            bytes,
        };
        let mut current = current.lock();
        if let Some(existing) = current.as_ref()
            && existing.meta.last_log_id > snapshot.meta.last_log_id
        {
            return Ok(existing.clone());
        }
        write_atomic(&path, &snapshot.bytes)?;
        *current = Some(snapshot.clone());
        Ok(snapshot)
    })
    .await
    .map_err(|e| MetadataError::Raft {
        message: format!("snapshot I/O task failed: {e}"),
    })?
}

fn snapshot_id(last_applied: Option<LogId>) -> String {
    let (term, index) = last_applied.map_or((0, 0), |l| (l.leader_id.term, l.index));
    format!("{term}-{index}-{}", uuid::Uuid::new_v4().simple())
}

impl RaftSnapshotBuilder<TypeConfig> for MetadataSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: snapshot_id(self.last_applied),
        };
        let stored = StoredSnapshot {
            meta,
            image: MetadataImage::clone(&self.image),
        };
        let snapshot = persist_snapshot(self.dir.clone(), Arc::clone(&self.snapshot), stored)
            .await
            .map_err(snapshot_error)?;
        tracing::info!(snapshot = %snapshot.meta, bytes = snapshot.bytes.len(), "built metadata snapshot");
        Ok(Snapshot {
            meta: snapshot.meta,
            snapshot: Box::new(Cursor::new(snapshot.bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for MetadataStateMachine {
    type SnapshotBuilder = MetadataSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut image = Arc::clone(&self.image);
        let mut responses = Vec::new();
        for entry in entries {
            let offset = entry.log_id.index;
            match entry.payload {
                EntryPayload::Normal(batch) => {
                    image = Arc::new(image.apply_batch(offset, &batch.records));
                }
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    image = Arc::new(image.apply_batch(offset, &[]));
                }
                EntryPayload::Blank => {
                    image = Arc::new(image.apply_batch(offset, &[]));
                }
            }
            self.last_applied = Some(entry.log_id);
            responses.push(Applied { offset });
        }
        self.image = Arc::clone(&image);
        self.publisher.publish(image);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MetadataSnapshotBuilder {
            dir: self.dir.clone(),
            image: Arc::clone(&self.image),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            snapshot: Arc::clone(&self.snapshot),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let received: StoredSnapshot = crate::leader_id_format::from_slice(snapshot.get_ref())
            .map_err(|e| {
                StorageError::from(StorageIOError::read_snapshot(
                    Some(meta.signature()),
                    AnyError::new(&e),
                ))
            })?;
        if !crate::grpc::envelope::same_cluster(&self.image.cluster_id, &received.image.cluster_id)
        {
            let e = MetadataError::ClusterIdMismatch {
                path: self.dir.join(SNAPSHOT_FILE),
                stored: self.image.cluster_id.clone(),
                configured: received.image.cluster_id,
            };
            return Err(snapshot_error(e));
        }
        let stored = StoredSnapshot {
            meta: meta.clone(),
            image: received.image,
        };
        let image = Arc::new(stored.image.clone());
        persist_snapshot(self.dir.clone(), Arc::clone(&self.snapshot), stored)
            .await
            .map_err(snapshot_error)?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.image = Arc::clone(&image);
        self.publisher.publish(image);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.snapshot.lock().clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.bytes)),
        }))
    }
}
