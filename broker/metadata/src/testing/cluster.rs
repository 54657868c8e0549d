//! A metadata quorum of several nodes in one process, over the [`Router`]: voters and observers
//! on directories of their own under one temporary directory, stopped and restarted on them, and
//! waits on cluster-wide conditions with a deadline.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use tokio::task::JoinSet;

use crate::controller::Controller;
use crate::controller::ControllerOptions;
use crate::error::MetadataError;
use crate::image::MetadataImage;
use crate::quorum::MetadataQuorum;
use crate::quorum::QuorumConfig;
use crate::quorum::QuorumOptions;
use crate::raft_types::NodeId;
use crate::testing::leader_log::LeaderLog;
use crate::testing::router::Router;

/// How long a wait of the cluster lasts before it fails, unless the test sets another.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(20);
/// How often a wait looks at the nodes again.
const POLL: Duration = Duration::from_millis(10);

/// Why a test cluster could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum TestClusterError {
    #[error(transparent)]
    Quorum(#[from] MetadataError),
    #[error("could not create the cluster's temporary directory: {0}")]
    TempDir(#[source] std::io::Error),
    #[error("node {node} is not a node of this cluster")]
    UnknownNode { node: NodeId },
    #[error("node {node} is not running")]
    NotRunning { node: NodeId },
    #[error("node {node} is already running")]
    AlreadyRunning { node: NodeId },
    #[error("timed out after {waited:?} waiting for {what}; {state}")]
    Timeout {
        what: String,
        waited: Duration,
        state: String,
    },
}

/// Quorum timings for tests: elections within about a second, AppendEntries bounded by a
/// heartbeat interval that a loaded two-core machine still meets.
pub fn test_options() -> QuorumOptions {
    QuorumOptions {
        heartbeat_interval: Duration::from_millis(100),
        election_timeout_min: Duration::from_millis(500),
        election_timeout_max: Duration::from_millis(1000),
        start_timeout: DEFAULT_DEADLINE,
        ..QuorumOptions::default()
    }
}

/// A multi-node metadata quorum in this process.
#[derive(Debug)]
pub struct TestCluster {
    /// Holds every node's directory (`<root>/node-<id>`) until the cluster is dropped.
    root: tempfile::TempDir,
    router: Router,
    options: QuorumOptions,
    voters: BTreeMap<NodeId, String>,
    nodes: BTreeMap<NodeId, Node>,
    leaders: LeaderLog,
    /// One task per running node recording who it saw lead in which term.
    watchers: JoinSet<()>,
    deadline: Duration,
}

#[derive(Debug)]
struct Node {
    config: QuorumConfig,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    quorum: MetadataQuorum,
    controller: Controller,
}

impl TestCluster {
    /// Starts voters `1..=voters` with [`test_options`] and waits until they are ready.
    pub async fn start(voters: u64) -> Result<TestCluster, TestClusterError> {
        Self::start_with(1..=voters, test_options()).await
    }

    /// Starts the voters `ids` with `options` one after the other, as a rolling start does:
    /// the first one initializes the quorum and is elected, then the others join it. Waits
    /// until every one is ready.
    pub async fn start_with(
        ids: impl IntoIterator<Item = NodeId>,
        options: QuorumOptions,
    ) -> Result<TestCluster, TestClusterError> {
        let cluster = Self::open_all(ids, options).await?;
        let voters = cluster.voters();
        if let Some((first, rest)) = voters.split_first() {
            cluster.quorum(*first)?.await_ready().await?;
            cluster.await_ready(rest).await?;
        }
        Ok(cluster)
    }

    /// Starts the voters `ids` with `options` all at once, as brokers started in parallel
    /// do: every one initializes the quorum and campaigns. Waits until every one is ready.
    pub async fn start_together(
        ids: impl IntoIterator<Item = NodeId>,
        options: QuorumOptions,
    ) -> Result<TestCluster, TestClusterError> {
        let cluster = Self::open_all(ids, options).await?;
        cluster.await_ready(&cluster.voters()).await?;
        Ok(cluster)
    }

    /// Opens the voters `ids`, each reachable by the others; nothing is initialized yet.
    async fn open_all(
        ids: impl IntoIterator<Item = NodeId>,
        options: QuorumOptions,
    ) -> Result<TestCluster, TestClusterError> {
        let root = tempfile::Builder::new()
            .prefix("strom-quorum-")
            .tempdir()
            .map_err(TestClusterError::TempDir)?;
        let voters: BTreeMap<NodeId, String> = ids.into_iter().map(|id| (id, label(id))).collect();
        let mut cluster = TestCluster {
            root,
            router: Router::new(),
            options,
            voters: voters.clone(),
            nodes: BTreeMap::new(),
            leaders: LeaderLog::default(),
            watchers: JoinSet::new(),
            deadline: DEFAULT_DEADLINE,
        };
        for &id in voters.keys() {
            let config = cluster.config(id, false);
            cluster.nodes.insert(
                id,
                Node {
                    config,
                    running: None,
                },
            );
            cluster.open(id).await?;
        }
        Ok(cluster)
    }

    /// Runs [`MetadataQuorum::await_ready`] of `ids` concurrently.
    async fn await_ready(&self, ids: &[NodeId]) -> Result<(), TestClusterError> {
        let ready = ids
            .iter()
            .map(|&id| {
                let quorum = self.quorum(id).cloned();
                async move { Ok::<_, TestClusterError>(quorum?.await_ready().await?) }
            })
            .collect::<Vec<_>>();
        for result in futures::future::join_all(ready).await {
            result?;
        }
        Ok(())
    }

    /// Adds observer `id` (`process.roles=broker`): the leader adds it as a Raft learner, as
    /// the controller does for a broker that asks, and it waits until it follows the log.
    pub async fn add_observer(&mut self, id: NodeId) -> Result<(), TestClusterError> {
        if self.nodes.contains_key(&id) {
            return Err(TestClusterError::AlreadyRunning { node: id });
        }
        let config = self.config(id, true);
        self.nodes.insert(
            id,
            Node {
                config,
                running: None,
            },
        );
        self.open(id).await?;
        self.join_observer(id).await
    }

    /// The router between the nodes, for fault injection.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The voter ids.
    pub fn voters(&self) -> Vec<NodeId> {
        self.voters.keys().copied().collect()
    }

    /// Every node id, voters and observers, running or not.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The metadata directory of `id`.
    pub fn dir(&self, id: NodeId) -> PathBuf {
        self.root.path().join(format!("node-{id}"))
    }

    /// How long waits last before they fail.
    pub fn set_deadline(&mut self, deadline: Duration) {
        self.deadline = deadline;
    }

    /// The running quorum of `id`.
    pub fn quorum(&self, id: NodeId) -> Result<&MetadataQuorum, TestClusterError> {
        self.running_node(id).map(|r| &r.quorum)
    }

    /// The controller of `id`; it acts only while `id` leads.
    pub fn controller(&self, id: NodeId) -> Result<&Controller, TestClusterError> {
        self.running_node(id).map(|r| &r.controller)
    }

    /// The running nodes' quorums.
    pub fn running(&self) -> impl Iterator<Item = &MetadataQuorum> {
        self.nodes
            .values()
            .filter_map(|n| n.running.as_ref().map(|r| &r.quorum))
    }

    pub fn is_running(&self, id: NodeId) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.running.is_some())
    }

    /// Every `(term, leader)` any node saw since the cluster started; more than one leader in
    /// a term is a split brain.
    pub fn leaders_by_term(&self) -> BTreeMap<u64, BTreeSet<NodeId>> {
        self.leaders.by_term()
    }

    /// Stops `id` as a crash-free shutdown does; its directory stays, and messages to it fail
    /// as to a dead peer.
    pub async fn stop(&mut self, id: NodeId) -> Result<(), TestClusterError> {
        self.router.disconnect(id);
        let running = self
            .nodes
            .get_mut(&id)
            .ok_or(TestClusterError::UnknownNode { node: id })?
            .running
            .take()
            .ok_or(TestClusterError::NotRunning { node: id })?;
        running.quorum.shutdown().await?;
        Ok(())
    }

    /// Starts `id` again on its directory. It rejoins as a voter or observer of the running
    /// quorum once a leader reaches it; [`wait_in_sync`](Self::wait_in_sync) waits for that.
    pub async fn restart(&mut self, id: NodeId) -> Result<(), TestClusterError> {
        self.open(id).await
    }

    /// Stops every running node.
    pub async fn shutdown(mut self) -> Result<(), TestClusterError> {
        for id in self.node_ids() {
            if self.is_running(id) {
                self.stop(id).await?;
            }
        }
        Ok(())
    }

    /// Waits until `check` returns a value, looking again every few milliseconds; fails after
    /// the cluster's deadline with `what` and the state of every node.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        mut check: impl FnMut(&TestCluster) -> Option<T>,
    ) -> Result<T, TestClusterError> {
        let deadline = tokio::time::Instant::now() + self.deadline;
        loop {
            if let Some(value) = check(self) {
                return Ok(value);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TestClusterError::Timeout {
                    what: what.to_owned(),
                    waited: self.deadline,
                    state: self.describe(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until one of `among` is the active controller (it leads and has applied its
    /// term's first entry) and every other node of `among` follows it; returns its id.
    pub async fn wait_for_leader(&self, among: &[NodeId]) -> Result<NodeId, TestClusterError> {
        let what = format!("one leader that nodes {among:?} all follow");
        self.wait_for(&what, |cluster| cluster.agreed_leader(among))
            .await
    }

    /// Waits until every node of `among` has applied the same offset, at least `offset`, and
    /// returns their images (by node id). Images at one offset must be equal; the caller
    /// asserts it, since a difference is a bug, not something to wait out.
    pub async fn wait_in_sync(
        &self,
        among: &[NodeId],
        offset: u64,
    ) -> Result<BTreeMap<NodeId, Arc<MetadataImage>>, TestClusterError> {
        let what = format!("nodes {among:?} to apply one offset, at least {offset}");
        self.wait_for(&what, |cluster| {
            let images: BTreeMap<NodeId, Arc<MetadataImage>> = among
                .iter()
                .map(|&id| cluster.quorum(id).ok().map(|q| (id, q.image())))
                .collect::<Option<_>>()?;
            let mut offsets = images.values().map(|image| image.offset);
            let first = offsets.next()?;
            (first >= offset && offsets.all(|o| o == first)).then_some(images)
        })
        .await
    }

    /// One line per node: role, Raft state, term, leader, log and applied index, and the
    /// router's faults; what a failed wait reports.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (id, node) in &self.nodes {
            let role = if node.config.observer {
                "observer"
            } else {
                "voter"
            };
            let _ = write!(out, "node {id} ({role}): ");
            match &node.running {
                None => out.push_str("stopped"),
                Some(running) => {
                    let m = running.quorum.raft().metrics().borrow().clone();
                    let _ = write!(
                        out,
                        "{:?} term {} leader {:?} log {:?} applied {:?} image offset {}",
                        m.state,
                        m.current_term,
                        m.current_leader,
                        m.last_log_index,
                        m.last_applied.map(|l| l.index),
                        running.quorum.image().offset
                    );
                }
            }
            out.push_str("; ");
        }
        let _ = write!(
            out,
            "isolated {:?}, cut links {:?}",
            self.router.isolated(),
            self.router.cut_links()
        );
        out
    }

    fn agreed_leader(&self, among: &[NodeId]) -> Option<NodeId> {
        let mut views = among.iter().map(|&id| {
            let quorum = self.quorum(id).ok()?;
            let metrics = quorum.raft().metrics().borrow().clone();
            Some((metrics.current_leader?, metrics.current_term))
        });
        let (leader, term) = views.next()??;
        if !among.contains(&leader) || !self.quorum(leader).ok()?.is_leader() {
            return None;
        }
        views
            .all(|view| view == Some((leader, term)))
            .then_some(leader)
    }

    fn running_node(&self, id: NodeId) -> Result<&Running, TestClusterError> {
        self.nodes
            .get(&id)
            .ok_or(TestClusterError::UnknownNode { node: id })?
            .running
            .as_ref()
            .ok_or(TestClusterError::NotRunning { node: id })
    }

    fn config(&self, id: NodeId, observer: bool) -> QuorumConfig {
        QuorumConfig {
            node_id: id,
            dir: self.dir(id),
            cluster_id: None,
            voters: self.voters.clone(),
            observer,
            address: label(id),
        }
    }

    /// Opens `id` on its directory and makes it reachable; nothing is awaited.
    async fn open(&mut self, id: NodeId) -> Result<(), TestClusterError> {
        let node = self
            .nodes
            .get(&id)
            .ok_or(TestClusterError::UnknownNode { node: id })?;
        if node.running.is_some() {
            return Err(TestClusterError::AlreadyRunning { node: id });
        }
        let router = self.router.clone();
        let quorum = MetadataQuorum::open_with(node.config.clone(), self.options.clone(), |ctx| {
            router.network(ctx)
        })
        .await?;
        self.router.connect(&quorum);
        self.leaders.watch(&quorum, &mut self.watchers);
        let controller = Controller::with_options(quorum.clone(), ControllerOptions::default());
        if let Some(node) = self.nodes.get_mut(&id) {
            node.running = Some(Running { quorum, controller });
        }
        Ok(())
    }

    async fn join_observer(&self, id: NodeId) -> Result<(), TestClusterError> {
        let leader = self.wait_for_leader(&self.voters()).await?;
        let address = self.quorum(id)?.config().address.clone();
        self.quorum(leader)?.add_observer(id, address).await?;
        self.quorum(id)?.await_ready().await?;
        Ok(())
    }

    /// Whether `id` runs as a learner: it follows the log and never campaigns.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.quorum(id)
            .is_ok_and(|q| q.raft().metrics().borrow().state == ServerState::Learner)
    }
}

/// The address a node is known by in the membership. The router delivers by node id and never
/// dials it; port 0 on loopback is an address nothing can listen on, so no connection to it is
/// ever made, from this process or any other.
fn label(_id: NodeId) -> String {
    "127.0.0.1:0".to_owned()
}
