//! The running metadata quorum: an openraft node over the file log store and the image state
//! machine.
//!
//! `<dir>/cluster.json` records the cluster id and this node's id the first time the directory
//! is used (Kafka's `meta.properties`), so a broker pointed at another broker's directory, or a
//! directory of another cluster, refuses to start. `<dir>/.lock` is held while the quorum runs,
//! so two processes never write the same log.
//!
//! A fresh directory is initialized with the configured voters; today that is this node alone
//! and it elects itself at once. Adding voters later is a membership change plus a network
//! implementation (see [`crate::network`]), not a change of this code.

use std::collections::BTreeMap;
use std::fs::File;
use std::fs::OpenOptions;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::RaftNetworkFactory;
use openraft::SnapshotPolicy;
use openraft::error::ClientWriteError;
use openraft::error::Fatal;
use openraft::error::RaftError;
use openraft::metrics::WaitError;
use serde::Deserialize;
use serde::Serialize;
use tokio::sync::watch;

use crate::error::MetadataError;
use crate::files::read_json;
use crate::files::write_json;
use crate::image::MetadataImage;
use crate::log_store::FileLogStore;
use crate::network::UnreachableNetwork;
use crate::raft_types::MetadataBatch;
use crate::raft_types::NodeId;
use crate::raft_types::Raft;
use crate::records::MetadataRecord;
use crate::state_machine::ImagePublisher;
use crate::state_machine::MetadataStateMachine;

const CLUSTER_FILE: &str = "cluster.json";
const LOCK_FILE: &str = ".lock";
/// The openraft cluster name: every Strom metadata quorum shares it, the cluster id tells
/// clusters apart.
const RAFT_CLUSTER_NAME: &str = "strom";

/// Where and as whom the quorum runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    /// This broker's node id.
    pub node_id: u64,
    /// The metadata log directory, e.g. `<data-dir>/__cluster_metadata-0`.
    pub dir: PathBuf,
    /// The cluster id; generated and persisted on first start when `None`, checked against the
    /// persisted one when `Some`.
    pub cluster_id: Option<String>,
    /// Voter node ids and their quorum addresses; must contain `node_id`.
    pub voters: BTreeMap<u64, String>,
}

impl QuorumConfig {
    /// A single-voter quorum of this node.
    pub fn single_voter(node_id: u64, dir: impl Into<PathBuf>, address: impl Into<String>) -> Self {
        Self {
            node_id,
            dir: dir.into(),
            cluster_id: None,
            voters: BTreeMap::from([(node_id, address.into())]),
        }
    }
}

/// Tuning of the Raft node; the defaults suit a metadata quorum on a LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumOptions {
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_interval: u64,
    /// Entries kept behind a snapshot so a briefly lagging voter catches up from the log
    /// rather than by snapshot transfer.
    pub logs_to_keep_after_snapshot: u64,
    /// How long [`MetadataQuorum::start`] waits for a leader.
    pub start_timeout: Duration,
}

impl Default for QuorumOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(500),
            election_timeout_max: Duration::from_millis(1000),
            snapshot_interval: 1000,
            logs_to_keep_after_snapshot: 100,
            start_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ClusterMeta {
    version: u32,
    cluster_id: String,
    node_id: u64,
}

/// A handle to the running metadata quorum. Cheap to clone.
#[derive(Clone)]
pub struct MetadataQuorum {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    cluster_id: String,
    dir: PathBuf,
    raft: Raft,
    publisher: Arc<ImagePublisher>,
    /// The directory lock, held until shutdown (or until the last handle is dropped).
    lock: parking_lot::Mutex<Option<File>>,
}

impl std::fmt::Debug for MetadataQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataQuorum")
            .field("node_id", &self.inner.node_id)
            .field("cluster_id", &self.inner.cluster_id)
            .field("dir", &self.inner.dir)
            .field("offset", &self.inner.publisher.current().offset)
            .finish()
    }
}

impl MetadataQuorum {
    /// Starts a quorum with default options and no transport (single voter).
    pub async fn start(config: QuorumConfig) -> Result<MetadataQuorum, MetadataError> {
        Self::start_with(config, QuorumOptions::default(), UnreachableNetwork).await
    }

    /// Opens the log and snapshot under `config.dir`, replays them, initializes a fresh cluster
    /// with the configured voters, and waits (up to `options.start_timeout`) until a leader is
    /// known and, when it is this node, everything in its log is applied to the image.
    pub async fn start_with<N>(
        config: QuorumConfig,
        options: QuorumOptions,
        network: N,
    ) -> Result<MetadataQuorum, MetadataError>
    where
        N: RaftNetworkFactory<crate::raft_types::TypeConfig>,
    {
        if !config.voters.contains_key(&config.node_id) {
            return Err(MetadataError::InvalidConfig {
                reason: format!(
                    "the voters {:?} do not include this node ({})",
                    config.voters.keys().collect::<Vec<_>>(),
                    config.node_id
                ),
            });
        }
        let open_config = config.clone();
        let (lock, cluster_id, log_store, state_machine, publisher) =
            tokio::task::spawn_blocking(move || open_dir(&open_config))
                .await
                .map_err(MetadataError::raft)??;

        let raft_config = openraft::Config {
            cluster_name: RAFT_CLUSTER_NAME.to_owned(),
            heartbeat_interval: millis(options.heartbeat_interval),
            election_timeout_min: millis(options.election_timeout_min),
            election_timeout_max: millis(options.election_timeout_max),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(options.snapshot_interval),
            max_in_snapshot_log_to_keep: options.logs_to_keep_after_snapshot,
            purge_batch_size: 1,
            ..Default::default()
        }
        .validate()
        .map_err(|e| MetadataError::InvalidConfig {
            reason: e.to_string(),
        })?;

        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(MetadataError::raft)?;
        let quorum = MetadataQuorum {
            inner: Arc::new(Inner {
                node_id: config.node_id,
                cluster_id,
                dir: config.dir.clone(),
                raft,
                publisher,
                lock: parking_lot::Mutex::new(Some(lock)),
            }),
        };
        if let Err(e) = quorum.initialize_and_wait(&config, &options).await {
            // Stop the raft task so the directory is released for a retry.
            if let Err(stop) = quorum.shutdown().await {
                tracing::warn!(error = %stop, "metadata quorum failed while stopping");
            }
            return Err(e);
        }
        tracing::info!(
            node_id = config.node_id,
            cluster_id = %quorum.inner.cluster_id,
            offset = quorum.image().offset,
            "metadata quorum started"
        );
        Ok(quorum)
    }

    async fn initialize_and_wait(
        &self,
        config: &QuorumConfig,
        options: &QuorumOptions,
    ) -> Result<(), MetadataError> {
        let raft = &self.inner.raft;
        if !raft.is_initialized().await.map_err(MetadataError::raft)? {
            let members: BTreeMap<NodeId, BasicNode> = config
                .voters
                .iter()
                .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
                .collect();
            tracing::info!(voters = ?config.voters, "initializing a new metadata quorum");
            raft.initialize(members)
                .await
                .map_err(MetadataError::raft)?;
        }
        let node_id = config.node_id;
        let waited = raft
            .wait(Some(options.start_timeout))
            .metrics(
                move |m| match m.current_leader {
                    None => false,
                    Some(leader) if leader == node_id => {
                        m.last_applied.map(|l| l.index) >= m.last_log_index
                    }
                    Some(_) => true,
                },
                "metadata leader elected and log applied",
            )
            .await;
        match waited {
            Ok(_) => Ok(()),
            Err(WaitError::Timeout(..)) => Err(MetadataError::ElectionTimeout {
                timeout_ms: millis(options.start_timeout),
            }),
            Err(WaitError::ShuttingDown) => Err(MetadataError::ShutDown),
        }
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.inner.publisher.current()
    }

    /// A receiver that sees every newly published image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.inner.publisher.subscribe()
    }

    /// Commits `records` as one log entry and returns its offset once the image includes it.
    pub async fn propose(&self, records: Vec<MetadataRecord>) -> Result<u64, MetadataError> {
        if records.is_empty() {
            return Ok(self.image().offset);
        }
        match self
            .inner
            .raft
            .client_write(MetadataBatch { records })
            .await
        {
            Ok(response) => Ok(response.data.offset),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(MetadataError::NotLeader {
                    leader: forward.leader_id,
                })
            }
            Err(RaftError::APIError(e)) => Err(MetadataError::raft(e)),
            Err(RaftError::Fatal(Fatal::Stopped)) => Err(MetadataError::ShutDown),
            Err(RaftError::Fatal(e)) => Err(MetadataError::raft(e)),
        }
    }

    /// Stops the Raft node and releases the directory. Everything committed is already
    /// durable; later calls are no-ops.
    pub async fn shutdown(&self) -> Result<(), MetadataError> {
        let stopped = self
            .inner
            .raft
            .shutdown()
            .await
            .map_err(MetadataError::raft);
        // Release the directory only once the raft task (and its log writes) has stopped.
        self.inner.lock.lock().take();
        stopped
    }

    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    pub fn cluster_id(&self) -> &str {
        &self.inner.cluster_id
    }

    /// The current leader of the quorum (the active controller), if one is known.
    pub fn leader_id(&self) -> Option<u64> {
        self.inner.raft.metrics().borrow().current_leader
    }

    /// Whether this node is the active controller.
    pub fn is_leader(&self) -> bool {
        self.leader_id() == Some(self.inner.node_id)
    }

    /// The openraft node, for the voter transport's server side (append_entries, vote,
    /// install_snapshot) and for metrics.
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

type Opened = (
    File,
    String,
    FileLogStore,
    MetadataStateMachine,
    Arc<ImagePublisher>,
);

fn open_dir(config: &QuorumConfig) -> Result<Opened, MetadataError> {
    let dir = &config.dir;
    std::fs::create_dir_all(dir).map_err(|e| MetadataError::io("create directory", dir, e))?;
    let lock = lock_dir(dir)?;
    let cluster_id = cluster_id(config)?;
    let log_store = FileLogStore::open(dir)?;
    let (state_machine, publisher) = MetadataStateMachine::open(dir, &cluster_id)?;
    Ok((lock, cluster_id, log_store, state_machine, publisher))
}

fn lock_dir(dir: &Path) -> Result<File, MetadataError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| MetadataError::io("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(MetadataError::DirectoryInUse {
            path: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(MetadataError::io("lock", &path, e)),
    }
}

/// Reads the persisted cluster identity, or persists a new one.
fn cluster_id(config: &QuorumConfig) -> Result<String, MetadataError> {
    let path = config.dir.join(CLUSTER_FILE);
    if let Some(meta) = read_json::<ClusterMeta>(&path)? {
        if meta.node_id != config.node_id {
            return Err(MetadataError::NodeIdMismatch {
                path,
                stored: meta.node_id,
                configured: config.node_id,
            });
        }
        if let Some(configured) = &config.cluster_id
            && *configured != meta.cluster_id
        {
            return Err(MetadataError::ClusterIdMismatch {
                path,
                stored: meta.cluster_id,
                configured: configured.clone(),
            });
        }
        return Ok(meta.cluster_id);
    }
    let cluster_id = match &config.cluster_id {
        Some(id) if id.is_empty() => {
            return Err(MetadataError::InvalidConfig {
                reason: "the cluster id must not be empty".to_owned(),
            });
        }
        Some(id) => id.clone(),
        None => new_cluster_id(),
    };
    write_json(
        &path,
        &ClusterMeta {
            version: 1,
            cluster_id: cluster_id.clone(),
            node_id: config.node_id,
        },
    )?;
    Ok(cluster_id)
}

/// A random cluster id in Kafka's format: a UUID as 22 characters of URL-safe base64.
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let value = uuid::Uuid::new_v4().as_u128();
    // 128 bits = 21 groups of 6 bits plus 2 bits; emit the top bits first, like base64 does.
    (0..22)
        .map(|i| {
            let shift = 128i32 - 6 * (i + 1);
            let group = if shift >= 0 {
                (value >> shift) & 0x3f
            } else {
                (value << -shift) & 0x3f
            };
            char::from(ALPHABET[group as usize])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let a = new_cluster_id();
        let b = new_cluster_id();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
