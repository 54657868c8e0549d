//! An in-process transport: openraft's RPCs go straight to the target quorum's Raft node, through
//! links that tests cut, heal and slow down (openraft's own tests route messages this way).
//!
//! The router stands where [`GrpcNetwork`](crate::grpc::GrpcNetwork) stands, behind the same
//! `RaftNetworkFactory` seam, and answers as it does: a message to a node that is not running,
//! or over a cut link, fails as `Unreachable` (what the gRPC transport reports for a dead peer),
//! and openraft backs off and retries. A message whose reply cannot come back (the link from the
//! target to the sender is cut) is delivered and acted on by the target, and the sender sees no
//! answer before its deadline, as over a network that drops one direction. It delivers the
//! requests themselves, without the listener's envelope, so the cluster id check of the
//! controller listener is not part of it.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::RaftNetwork;
use openraft::RaftNetworkFactory;
use openraft::error::InstallSnapshotError;
use openraft::error::NetworkError;
use openraft::error::RPCError;
use openraft::error::RaftError;
use openraft::error::RemoteError;
use openraft::error::Unreachable;
use openraft::network::RPCOption;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::InstallSnapshotRequest;
use openraft::raft::InstallSnapshotResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use parking_lot::Mutex;

use crate::grpc::raft_network::PeerStats;
use crate::quorum::MetadataQuorum;
use crate::quorum::NetworkContext;
use crate::raft_types::NodeId;
use crate::raft_types::Raft;
use crate::raft_types::TypeConfig;

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

/// The kinds of message the router carries, for [`Router::delivered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

/// Links between the quorums of one process. Cheap to clone; clones share the links.
#[derive(Debug, Clone, Default)]
pub struct Router {
    links: Arc<Mutex<Links>>,
}

#[derive(Debug, Default)]
struct Links {
    /// The running nodes messages can reach.
    nodes: BTreeMap<NodeId, Endpoint>,
    /// Nodes cut off from every other node, in both directions.
    isolated: BTreeSet<NodeId>,
    /// Directed links `(from, to)` that lose every message.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Latency of one directed link, added to each message sent over it.
    delays: BTreeMap<(NodeId, NodeId), Duration>,
    /// Latency of every link without its own.
    default_delay: Duration,
    /// Messages delivered, by target and kind.
    delivered: BTreeMap<(NodeId, Rpc), u64>,
}

/// What a message is delivered to.
#[derive(Clone)]
struct Endpoint {
    raft: Raft,
    stats: Arc<PeerStats>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").finish_non_exhaustive()
    }
}

impl Links {
    fn blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.isolated.contains(&from)
            || self.isolated.contains(&to)
            || self.cut.contains(&(from, to))
    }

    fn delay(&self, from: NodeId, to: NodeId) -> Duration {
        self.delays
            .get(&(from, to))
            .copied()
            .unwrap_or(self.default_delay)
    }
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// The transport of the node `ctx` describes, for
    /// [`MetadataQuorum::open_with`]: `|ctx| router.network(ctx)`.
    pub fn network(&self, ctx: NetworkContext) -> RouterNetwork {
        RouterNetwork {
            router: self.clone(),
            from: ctx.node_id,
            stats: ctx.stats,
        }
    }

    /// Makes `quorum` reachable: messages to its node id are delivered to it from now on.
    pub fn connect(&self, quorum: &MetadataQuorum) {
        let endpoint = Endpoint {
            raft: quorum.raft().clone(),
            stats: Arc::clone(quorum.peer_stats()),
        };
        self.links.lock().nodes.insert(quorum.node_id(), endpoint);
    }

    /// Makes `node` unreachable, as a stopped process is: messages to it fail from now on.
    pub fn disconnect(&self, node: NodeId) {
        self.links.lock().nodes.remove(&node);
    }

    /// Cuts `node` off from every other node, in both directions, until [`heal`](Self::heal).
    pub fn isolate(&self, node: NodeId) {
        self.links.lock().isolated.insert(node);
    }

    /// Cuts every link between a node of `side` and a node of `rest`, in both directions;
    /// links within each side stay up.
    pub fn partition(&self, side: &[NodeId], rest: &[NodeId]) {
        let mut links = self.links.lock();
        for &a in side {
            for &b in rest {
                links.cut.insert((a, b));
                links.cut.insert((b, a));
            }
        }
    }

    /// Cuts the link from `from` to `to` only: `to` no longer hears `from`, and no reply of
    /// `to` reaches `from`; `from` still hears `to`.
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.links.lock().cut.insert((from, to));
    }

    /// Restores every link of `node`: ends its isolation and the cuts from or to it.
    pub fn heal(&self, node: NodeId) {
        let mut links = self.links.lock();
        links.isolated.remove(&node);
        links.cut.retain(|&(a, b)| a != node && b != node);
    }

    /// Restores every link.
    pub fn heal_all(&self) {
        let mut links = self.links.lock();
        links.isolated.clear();
        links.cut.clear();
    }

    /// Whether a message from `from` to `to` would be lost now.
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.links.lock().blocked(from, to)
    }

    /// The nodes isolated now.
    pub fn isolated(&self) -> BTreeSet<NodeId> {
        self.links.lock().isolated.clone()
    }

    /// The directed links cut now (isolations not included).
    pub fn cut_links(&self) -> BTreeSet<(NodeId, NodeId)> {
        self.links.lock().cut.clone()
    }

    /// Adds `delay` to every message from `from` to `to`, in place of the default delay.
    pub fn set_delay(&self, from: NodeId, to: NodeId, delay: Duration) {
        self.links.lock().delays.insert((from, to), delay);
    }

    /// Gives the link from `from` to `to` the default delay again.
    pub fn clear_delay(&self, from: NodeId, to: NodeId) {
        self.links.lock().delays.remove(&(from, to));
    }

    /// Adds `delay` to every message over a link without a delay of its own.
    pub fn set_default_delay(&self, delay: Duration) {
        self.links.lock().default_delay = delay;
    }

    /// How many messages of `kind` reached `to` so far.
    pub fn delivered(&self, to: NodeId, kind: Rpc) -> u64 {
        self.links
            .lock()
            .delivered
            .get(&(to, kind))
            .copied()
            .unwrap_or(0)
    }

    /// The target of a message, if it is delivered now; counts the delivery.
    fn route(&self, from: NodeId, to: NodeId, kind: Rpc) -> Result<Endpoint, String> {
        let mut links = self.links.lock();
        if links.blocked(from, to) {
            return Err(format!("the link from node {from} to node {to} is cut"));
        }
        let endpoint = links
            .nodes
            .get(&to)
            .cloned()
            .ok_or_else(|| format!("node {to} is not running"))?;
        *links.delivered.entry((to, kind)).or_default() += 1;
        Ok(endpoint)
    }
}

/// The network factory of one node.
#[derive(Debug, Clone)]
pub struct RouterNetwork {
    router: Router,
    from: NodeId,
    stats: Arc<PeerStats>,
}

impl RaftNetworkFactory<TypeConfig> for RouterNetwork {
    type Network = RouterConnection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> RouterConnection {
        RouterConnection {
            network: self.clone(),
            to: target,
        }
    }
}

/// openraft's connection from one node to one target.
#[derive(Debug)]
pub struct RouterConnection {
    network: RouterNetwork,
    to: NodeId,
}

impl RouterConnection {
    /// Carries one message to the target and its reply back, through the links as they are
    /// when each travels.
    async fn send<Resp, E, F, Fut>(
        &self,
        kind: Rpc,
        option: &RPCOption,
        call: F,
    ) -> RpcResult<Resp, E>
    where
        E: std::error::Error,
        F: FnOnce(Endpoint) -> Fut,
        Fut: Future<Output = Result<Resp, E>>,
    {
        let router = &self.network.router;
        let (from, to) = (self.network.from, self.to);
        let delay = router.links.lock().delay(from, to);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let endpoint = router.route(from, to, kind).map_err(|reason| {
            RPCError::Unreachable(Unreachable::new(&std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                reason,
            )))
        })?;
        let stats = Arc::clone(&endpoint.stats);
        let reply = call(endpoint).await;
        if router.is_blocked(to, from) {
            // The target acted on the message; its answer is lost and the sender waits out
            // its deadline, as a gRPC client does.
            tokio::time::sleep(option.hard_ttl()).await;
            return Err(RPCError::Network(NetworkError::new(&std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no reply from node {to}: the link from node {to} to node {from} is cut"),
            ))));
        }
        if kind == Rpc::AppendEntries && reply.is_ok() {
            stats.record_leader_contact();
        }
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(to, e)))
    }
}

impl RaftNetwork<TypeConfig> for RouterConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let response = self
            .send(Rpc::AppendEntries, &option, |target| async move {
                target.raft.append_entries(rpc).await
            })
            .await?;
        self.network.stats.record_ack(self.to);
        Ok(response)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.send(Rpc::InstallSnapshot, &option, |target| async move {
            target.raft.install_snapshot(rpc).await
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let asked_with = rpc.last_log_id;
        let reply = self
            .send(Rpc::Vote, &option, |target| async move {
                target.raft.vote(rpc).await
            })
            .await?;
        self.network.stats.record_vote_reply(asked_with, &reply);
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A case: its name, the faults it injects, the links they block.
    type Case = (&'static str, fn(&Router), Vec<(NodeId, NodeId)>);

    /// Every directed link among nodes 1..=3 that is blocked.
    fn blocked(router: &Router) -> Vec<(NodeId, NodeId)> {
        let mut out = Vec::new();
        for from in 1..=3 {
            for to in 1..=3 {
                if from != to && router.is_blocked(from, to) {
                    out.push((from, to));
                }
            }
        }
        out
    }

    #[test]
    fn faults_block_the_links_they_name_and_heal_restores_them() {
        let cases: [Case; 5] = [
            ("no fault", |_| {}, vec![]),
            (
                "isolate 2",
                |r| r.isolate(2),
                vec![(1, 2), (2, 1), (2, 3), (3, 2)],
            ),
            ("cut 1 -> 3", |r| r.cut(1, 3), vec![(1, 3)]),
            (
                "partition {1} | {2, 3}",
                |r| r.partition(&[1], &[2, 3]),
                vec![(1, 2), (1, 3), (2, 1), (3, 1)],
            ),
            (
                "isolate 2, then heal 2",
                |r| {
                    r.isolate(2);
                    r.cut(2, 1);
                    r.cut(3, 2);
                    r.heal(2);
                },
                vec![],
            ),
        ];
        for (case, fault, expected) in cases {
            let router = Router::new();
            fault(&router);
            assert_eq!(blocked(&router), expected, "{case}");
            router.heal_all();
            assert_eq!(blocked(&router), vec![], "{case}, healed");
        }
    }

    #[test]
    fn healing_one_node_keeps_the_other_cuts() {
        let router = Router::new();
        router.cut(1, 2);
        router.cut(3, 1);
        router.heal(2);
        assert_eq!(blocked(&router), vec![(3, 1)]);
    }

    #[test]
    fn a_link_delay_overrides_the_default_until_cleared() {
        let router = Router::new();
        router.set_default_delay(Duration::from_millis(5));
        router.set_delay(1, 2, Duration::from_millis(40));
        let delay = |from, to| router.links.lock().delay(from, to);
        assert_eq!(delay(1, 2), Duration::from_millis(40));
        assert_eq!(delay(2, 1), Duration::from_millis(5));
        router.clear_delay(1, 2);
        assert_eq!(delay(1, 2), Duration::from_millis(5));
    }
}
