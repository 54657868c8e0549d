//! The running metadata quorum: an openraft node over the file log store and the image state
//! machine.
//!
//! Voters (`process.roles=broker,controller`) form the Raft quorum; other nodes follow the log
//! as observers (Raft learners) that the active controller adds when they ask, and never vote.
//! A single broker with no voters configured is a quorum of one voter: the same code.
//!
//! The cluster id is fixed once, in the log: the first elected controller commits a
//! `cluster_id.v1` record (the configured id, the one this directory already recorded, or a new
//! one); [`crate::identity`] keeps the directory's node and cluster id. `<dir>/.lock` is held
//! while the quorum runs, so two processes never write the same log.
//!
//! Start-up is two steps, so the caller can serve the controller listener in between (voters
//! must answer each other's votes before any of them is elected): [`MetadataQuorum::open_with`]
//! opens the directory and starts the Raft node, [`MetadataQuorum::await_ready`] initializes a
//! fresh voter set and waits for a leader and the cluster id.
//!
//! A storage fault stops the node for good. Openraft stops its Raft node when the log store or
//! the state machine reports a storage error (a write or fsync of the metadata log failed on a
//! full or failing disk). KRaft treats the same fault as fatal to the process (its raft
//! manager's fault handler halts it) so that another voter takes over and the disk gets fixed
//! before the node rejoins. [`MetadataQuorum::fault`] says whether that happened, and
//! [`MetadataQuorum::failed`] waits for it, so the process hosting the quorum can stop instead
//! of serving as a controller that can no longer commit anything.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::RaftMetrics;
use openraft::RaftNetworkFactory;
use openraft::SnapshotPolicy;
use openraft::error::ClientWriteError;
use openraft::error::Fatal;
use openraft::error::InitializeError;
use openraft::error::RaftError;
use tokio::sync::watch;

use crate::election_timer;
use crate::election_timer::ElectionTimeouts;
use crate::error::MetadataError;
use crate::files::lock_dir;
use crate::grpc::raft_network::PeerStats;
use crate::identity;
use crate::image::MetadataImage;
use crate::log_store::FileLogStore;
use crate::network::UnreachableNetwork;
use crate::raft_types::MetadataBatch;
use crate::raft_types::NodeId;
use crate::raft_types::Raft;
use crate::records::MetadataRecord;
use crate::state_machine::ImagePublisher;
use crate::state_machine::MetadataStateMachine;

/// The openraft cluster name: every Strom metadata quorum shares it, the cluster id tells
/// clusters apart.
const RAFT_CLUSTER_NAME: &str = "strom";
/// The largest piece of a snapshot sent in one InstallSnapshot RPC.
const SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;
/// How long one snapshot chunk may take to reach a follower (openraft's default is 200 ms,
/// which a follower that writes 1 MiB on a busy disk misses over and over).
const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 5000;

/// Where and as whom the quorum runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    /// This broker's node id.
    pub node_id: u64,
    /// The metadata log directory, e.g. `<data-dir>/__cluster_metadata-0`.
    pub dir: PathBuf,
    /// The cluster id the first controller fixes; when `None` it takes the one this directory
    /// recorded, or a new one. Checked against the recorded one when `Some`.
    pub cluster_id: Option<String>,
    /// Voter node ids and their controller listener addresses.
    pub voters: BTreeMap<u64, String>,
    /// `true` for an observer (`process.roles=broker`): it follows the log and never votes,
    /// and `node_id` must not be a voter. `false` for a voter: `node_id` must be a voter.
    pub observer: bool,
    /// This node's advertised controller listener (an observer tells the controller).
    pub address: String,
}

impl QuorumConfig {
    /// A single-voter quorum of this node.
    pub fn single_voter(node_id: u64, dir: impl Into<PathBuf>, address: impl Into<String>) -> Self {
        let address = address.into();
        Self {
            node_id,
            dir: dir.into(),
            cluster_id: None,
            voters: BTreeMap::from([(node_id, address.clone())]),
            observer: false,
            address,
        }
    }

    fn validate(&self) -> Result<(), MetadataError> {
        let is_voter = self.voters.contains_key(&self.node_id);
        let invalid = |reason: String| Err(MetadataError::InvalidConfig { reason });
        if self.voters.is_empty() {
            return invalid("controller.quorum.voters lists no voter".to_owned());
        }
        if !self.observer && !is_voter {
            return invalid(format!(
                "the voters {:?} do not include this node ({}), but its process.roles include \
                 controller",
                self.voters.keys().collect::<Vec<_>>(),
                self.node_id
            ));
        }
        if self.observer && is_voter {
            return invalid(format!(
                "node {} is listed in controller.quorum.voters, but its process.roles do not \
                 include controller",
                self.node_id
            ));
        }
        Ok(())
    }
}

/// What a transport factory gets to know about its node.
#[derive(Debug, Clone)]
pub struct NetworkContext {
    pub node_id: NodeId,
    /// Newly applied images; the transport presents the image's cluster id to its peers.
    pub images: watch::Receiver<Arc<MetadataImage>>,
    /// Where the transport records what it learns about peers; it must record every
    /// acknowledged AppendEntries ([`PeerStats::record_ack`]), which the leader's progress
    /// check reads.
    pub stats: Arc<PeerStats>,
}

/// Tuning of the Raft node; the defaults suit a metadata quorum on a LAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumOptions {
    /// How often the leader sends AppendEntries, and also how long one may take: openraft
    /// gives up on an AppendEntries after one interval. Too short, and a follower slowed by a
    /// busy CPU or a slow fsync never answers in time, so it never catches up.
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
            heartbeat_interval: Duration::from_millis(250),
            // KRaft's controller.quorum.election.timeout.ms (1 s) plus its random backoff.
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            snapshot_interval: 1000,
            logs_to_keep_after_snapshot: 100,
            start_timeout: Duration::from_secs(30),
        }
    }
}

/// A handle to the running metadata quorum. Cheap to clone.
#[derive(Clone)]
pub struct MetadataQuorum {
    inner: Arc<Inner>,
}

struct Inner {
    config: QuorumConfig,
    options: QuorumOptions,
    /// The cluster id the first leader commits when the log has none yet.
    proposed_cluster_id: String,
    raft: Raft,
    publisher: Arc<ImagePublisher>,
    stats: Arc<PeerStats>,
    /// The directory lock, held until shutdown (or until the last handle is dropped).
    lock: parking_lot::Mutex<Option<File>>,
}

impl std::fmt::Debug for MetadataQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let image = self.inner.publisher.current();
        f.debug_struct("MetadataQuorum")
            .field("node_id", &self.inner.config.node_id)
            .field("cluster_id", &image.cluster_id)
            .field("dir", &self.inner.config.dir)
            .field("offset", &image.offset)
            .finish()
    }
}

impl MetadataQuorum {
    /// Starts a quorum with default options and no transport (single voter).
    pub async fn start(config: QuorumConfig) -> Result<MetadataQuorum, MetadataError> {
        Self::start_with(config, QuorumOptions::default(), UnreachableNetwork).await
    }

    /// [`open_with`](Self::open_with) and [`await_ready`](Self::await_ready) in one, for a
    /// quorum whose transport needs no server of the caller's (tests, a single voter).
    pub async fn start_with<N>(
        config: QuorumConfig,
        options: QuorumOptions,
        network: N,
    ) -> Result<MetadataQuorum, MetadataError>
    where
        N: RaftNetworkFactory<crate::raft_types::TypeConfig>,
    {
        let quorum = Self::open_with(config, options, |_| network).await?;
        if let Err(e) = quorum.await_ready().await {
            quorum.stop_after_failed_start().await;
            return Err(e);
        }
        Ok(quorum)
    }

    /// Opens the log and snapshot under `config.dir`, replays them and starts the Raft node
    /// with the transport `network` makes. Nothing is elected yet.
    pub async fn open_with<N, F>(
        config: QuorumConfig,
        options: QuorumOptions,
        network: F,
    ) -> Result<MetadataQuorum, MetadataError>
    where
        N: RaftNetworkFactory<crate::raft_types::TypeConfig>,
        F: FnOnce(NetworkContext) -> N,
    {
        config.validate()?;
        let open_config = config.clone();
        let (lock, proposed_cluster_id, log_store, state_machine, publisher) =
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
            snapshot_max_chunk_size: SNAPSHOT_CHUNK_BYTES,
            install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
            purge_batch_size: 1,
            ..Default::default()
        }
        .validate()
        .map_err(|e| MetadataError::InvalidConfig {
            reason: e.to_string(),
        })?;

        let stats = Arc::new(PeerStats::default());
        let network = network(NetworkContext {
            node_id: config.node_id,
            images: publisher.subscribe(),
            stats: Arc::clone(&stats),
        });
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(MetadataError::raft)?;
        if !config.observer && config.voters.len() > 1 {
            election_timer::start(
                raft.clone(),
                config.node_id,
                Arc::clone(&stats),
                ElectionTimeouts {
                    min: options.election_timeout_min,
                    max: options.election_timeout_max,
                },
            );
        }
        Ok(MetadataQuorum {
            inner: Arc::new(Inner {
                config,
                options,
                proposed_cluster_id,
                raft,
                publisher,
                stats,
                lock: parking_lot::Mutex::new(Some(lock)),
            }),
        })
    }

    /// Initializes a fresh voter set, then waits (up to `options.start_timeout`) until a
    /// leader is known, the cluster id is in the image and, on the leader, everything in its
    /// log is applied. Checks the cluster id against the one the directory recorded.
    ///
    /// An observer must have been added by the controller first (the broker asks through the
    /// controller listener); until then no leader replicates to it.
    pub async fn await_ready(&self) -> Result<(), MetadataError> {
        let config = &self.inner.config;
        let raft = &self.inner.raft;
        if !config.observer && !raft.is_initialized().await.map_err(MetadataError::raft)? {
            let members: BTreeMap<NodeId, BasicNode> = config
                .voters
                .iter()
                .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
                .collect();
            tracing::info!(voters = ?config.voters, "initializing a new metadata quorum");
            match raft.initialize(members).await {
                Ok(()) => {}
                // Another voter's vote or entries arrived first: the quorum is forming.
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(MetadataError::raft(e)),
            }
        }
        if !config.observer {
            self.check_voters()?;
        }
        let timeout = self.inner.options.start_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut metrics = raft.metrics();
        let mut images = self.subscribe();
        let mut next_report = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(fault) = self.fault() {
                return Err(fault);
            }
            if let Some(error) = self.inner.stats.cluster_mismatch() {
                return Err(MetadataError::ForeignQuorum {
                    detail: error.to_string(),
                });
            }
            let ready = {
                let m = metrics.borrow_and_update();
                match m.current_leader {
                    None => false,
                    Some(leader) if leader == config.node_id => {
                        m.last_applied.map(|l| l.index) >= m.last_log_index
                    }
                    Some(_) => true,
                }
            };
            if ready {
                self.ensure_cluster_id().await;
                if !self.image().cluster_id.is_empty() {
                    break;
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(MetadataError::ElectionTimeout {
                    timeout_ms: millis(timeout),
                });
            }
            if now >= next_report {
                tracing::info!(voters = ?config.voters, "waiting for a metadata leader");
                next_report = now + Duration::from_secs(10);
            }
            let tick = deadline.min(now + Duration::from_millis(100));
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() {
                    return Err(self.fault().unwrap_or(MetadataError::ShutDown));
                },
                _ = images.changed() => {}
                _ = tokio::time::sleep_until(tick) => {}
            }
        }
        let dir = config.dir.clone();
        let node_id = config.node_id;
        let cluster_id = self.cluster_id();
        tokio::task::spawn_blocking(move || {
            identity::record_cluster_id(&dir, node_id, &cluster_id)
        })
        .await
        .map_err(MetadataError::raft)??;
        tracing::info!(
            node_id,
            cluster_id = %self.cluster_id(),
            offset = self.image().offset,
            observer = config.observer,
            "metadata quorum ready"
        );
        Ok(())
    }

    /// Refuses a log whose voters are not the configured ones: the directory belongs to
    /// another quorum (or the voter list was edited, which is a reconfiguration Strom does not
    /// perform), and starting would split the cluster.
    fn check_voters(&self) -> Result<(), MetadataError> {
        let membership = self.inner.raft.metrics().borrow().membership_config.clone();
        let stored: Vec<NodeId> = membership.membership().voter_ids().collect();
        let configured: Vec<NodeId> = self.inner.config.voters.keys().copied().collect();
        if stored.is_empty() || stored == configured {
            return Ok(());
        }
        Err(MetadataError::InvalidConfig {
            reason: format!(
                "the metadata log in {} has the voters {stored:?}, but controller.quorum.voters \
                 lists {configured:?}; give this broker the data directory of this cluster",
                self.inner.config.dir.display()
            ),
        })
    }

    /// On the leader, commits the cluster id if the log has none yet (the first controller's
    /// duty; a controller elected after a first one died before committing it does it too).
    pub async fn ensure_cluster_id(&self) {
        if !self.is_leader() || !self.image().cluster_id.is_empty() {
            return;
        }
        let record = MetadataRecord::ClusterId {
            cluster_id: self.inner.proposed_cluster_id.clone(),
        };
        if let Err(error) = self.propose(vec![record]).await {
            tracing::debug!(%error, "committing the cluster id");
        }
    }

    /// Stops the Raft task of a quorum whose start failed, so the directory is released.
    pub async fn stop_after_failed_start(&self) {
        if let Err(stop) = self.shutdown().await {
            tracing::warn!(error = %stop, "metadata quorum failed while stopping");
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
            Err(RaftError::Fatal(Fatal::Stopped)) => {
                Err(self.fault().unwrap_or(MetadataError::ShutDown))
            }
            Err(RaftError::Fatal(e)) => Err(self.fault().unwrap_or(MetadataError::LogFailed {
                reason: e.to_string(),
            })),
        }
    }

    /// Why the Raft node stopped on its own, if it did: a storage fault (see the module doc)
    /// or a panic in it. `None` while it runs and after a requested [`shutdown`](Self::shutdown).
    pub fn fault(&self) -> Option<MetadataError> {
        fault_of(&self.inner.raft.metrics().borrow())
    }

    /// Resolves once the Raft node has stopped on a fault, with the fault; never resolves for a
    /// node that runs or was shut down on request.
    pub async fn failed(&self) -> MetadataError {
        let mut metrics = self.inner.raft.metrics();
        loop {
            if let Some(fault) = fault_of(&metrics.borrow_and_update()) {
                return fault;
            }
            if metrics.changed().await.is_err() {
                // The node is gone; its last metrics say whether it failed.
                return match fault_of(&metrics.borrow()) {
                    Some(fault) => fault,
                    None => std::future::pending().await,
                };
            }
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
        self.inner.config.node_id
    }

    /// The cluster id; empty until the first controller has committed it.
    pub fn cluster_id(&self) -> String {
        self.image().cluster_id.clone()
    }

    pub fn config(&self) -> &QuorumConfig {
        &self.inner.config
    }

    /// What the transport learned about peers.
    pub fn peer_stats(&self) -> &Arc<PeerStats> {
        &self.inner.stats
    }

    /// The current leader of the quorum (the active controller), if one is known. A node whose
    /// Raft node stopped knows none: the leader it last saw may be itself, which no longer
    /// leads anything. Nor does a leader that no majority of the voters has answered within the
    /// progress timeout (see [`is_leader`](Self::is_leader)) name itself.
    pub fn leader_id(&self) -> Option<u64> {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        let leader = metrics
            .running_state
            .is_ok()
            .then_some(metrics.current_leader)
            .flatten()?;
        (leader != self.inner.config.node_id || self.heard_from_majority(&metrics))
            .then_some(leader)
    }

    /// The leader, if this node leads or heard from it within `within`: a follower that has
    /// not heard from its leader for longer may be talking about a dead one.
    pub fn recent_leader(&self, within: Duration) -> Option<u64> {
        let leader = self.leader_id()?;
        let fresh = leader == self.node_id()
            || self
                .inner
                .stats
                .since_leader_contact()
                .is_some_and(|since| since <= within);
        fresh.then_some(leader)
    }

    /// Whether this node is the active controller: it leads the quorum, has applied an entry
    /// of its own leadership (the first one it appended, at the latest), and a majority of the
    /// voters answered it lately.
    ///
    /// A newly elected leader may not have applied its predecessor's last entries yet; until it
    /// has, its image could miss a registration or an ISR change that brokers already acted on,
    /// so it answers NOT_CONTROLLER (callers retry) and its duties wait, as KRaft's controller
    /// does until it has replayed the log.
    ///
    /// A leader cut off from the majority does not learn of the next leader, and openraft keeps
    /// it leading its old term. KIP-595's leader progress timeout (KAFKA-15489) makes such a
    /// leader resign; here it stops counting as the active controller once no majority has
    /// acknowledged an AppendEntries within [`progress_timeout`](Self::progress_timeout), so it
    /// takes no operation it could not commit and no broker cut off with it calls it the
    /// controller. It counts again as soon as a majority answers.
    pub fn is_leader(&self) -> bool {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        leads_with_own_entry_applied(&metrics, self.inner.config.node_id)
            && self.heard_from_majority(&metrics)
    }

    /// How long a leader may go without acknowledgements from a majority of the voters before
    /// it stops counting as the active controller: 1.5 times the longest election timeout, as
    /// KRaft waits 1.5 times its fetch timeout. By then the other voters have started an
    /// election.
    pub fn progress_timeout(&self) -> Duration {
        self.inner.options.election_timeout_max * 3 / 2
    }

    /// Whether a majority of the voters, this node included, acknowledged this node's
    /// AppendEntries within the progress timeout. Always true for a single voter, which has no
    /// one to hear from (KAFKA-16144).
    fn heard_from_majority(&self, metrics: &RaftMetrics<NodeId, BasicNode>) -> bool {
        let me = self.inner.config.node_id;
        let membership = metrics.membership_config.membership();
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        if voters.len() <= 1 {
            return true;
        }
        let within = self.progress_timeout();
        let heard = voters
            .iter()
            .filter(|&&v| v == me || self.inner.stats.acked_within(v, within))
            .count();
        heard * 2 > voters.len()
    }

    /// The openraft node, for the voter transport's server side (append_entries, vote,
    /// install_snapshot) and for metrics.
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }
}

/// Whether `metrics` show `me` leading and having applied an entry of its own leadership.
///
/// The quorum elects one leader per term, so a log id names its leader by the term alone: an
/// applied entry of the current term is the new leader's own (its first, blank entry at the
/// earliest), and everything committed before it is applied too.
fn leads_with_own_entry_applied(metrics: &RaftMetrics<NodeId, BasicNode>, me: NodeId) -> bool {
    metrics.running_state.is_ok()
        && metrics.current_leader == Some(me)
        && metrics.last_applied.is_some_and(|applied| {
            applied.leader_id == openraft::CommittedLeaderId::new(metrics.current_term, me)
        })
}

fn fault_of(metrics: &RaftMetrics<NodeId, BasicNode>) -> Option<MetadataError> {
    match &metrics.running_state {
        Ok(()) | Err(Fatal::Stopped) => None,
        Err(Fatal::Panicked) => Some(MetadataError::Raft {
            message: "the metadata Raft node panicked and stopped".to_owned(),
        }),
        Err(fatal) => Some(MetadataError::LogFailed {
            reason: fatal.to_string(),
        }),
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
    let (recorded, proposed) = identity::claim(dir, config.node_id, config.cluster_id.as_deref())?;
    let log_store = FileLogStore::open(dir)?;
    let (state_machine, publisher) = MetadataStateMachine::open(dir, recorded.as_deref())?;
    Ok((lock, proposed, log_store, state_machine, publisher))
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;
    use openraft::LogId;
    use openraft::Vote;

    use super::*;

    /// Node `me` leading term `term`, having applied an entry of term `applied` at index 9.
    fn leading(me: NodeId, term: u64, applied: u64) -> RaftMetrics<NodeId, BasicNode> {
        let mut metrics = RaftMetrics::new_initial(me);
        metrics.current_term = term;
        metrics.vote = Vote::new_committed(term, me);
        metrics.current_leader = Some(me);
        metrics.last_applied = Some(LogId::new(CommittedLeaderId::new(applied, me), 9));
        metrics
    }

    #[test]
    fn a_leader_is_active_once_it_applied_an_entry_of_its_own_leadership() {
        let cases = [
            ("own entry applied", leading(3, 4, 4), true),
            ("only an older term applied", leading(3, 4, 3), false),
        ];
        for (case, metrics, active) in cases {
            assert_eq!(leads_with_own_entry_applied(&metrics, 3), active, "{case}");
        }
        let mut follower = leading(3, 4, 4);
        follower.current_leader = Some(2);
        assert!(!leads_with_own_entry_applied(&follower, 3), "a follower");
    }
}
