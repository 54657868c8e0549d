//! openraft's network over the controller listener: one [`Peer`] per target node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use std::time::SystemTime;

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
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::grpc::envelope::Envelope;
use crate::grpc::envelope::paths;
use crate::grpc::peer::Peer;
use crate::grpc::peer::PeerError;
use crate::image::MetadataImage;
use crate::raft_types::LogId;
use crate::raft_types::NodeId;
use crate::raft_types::TypeConfig;

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, openraft::BasicNode, E>>;

/// What the transport learned about its peers, for DescribeQuorum and for start-up checks.
#[derive(Debug, Default)]
pub struct PeerStats {
    /// When each target last acknowledged an AppendEntries (its last "fetch", in Kafka's terms):
    /// the wall-clock time DescribeQuorum reports, and the monotonic one the leader's progress
    /// check measures.
    acks: Mutex<BTreeMap<NodeId, (SystemTime, Instant)>>,
    /// The first peer that refused this node for belonging to another cluster.
    mismatch: Mutex<Option<PeerError>>,
    /// When this node last accepted entries (or a heartbeat) from a leader.
    leader_contact: Mutex<Option<Instant>>,
    /// When a voter last refused this node's vote request for holding a longer log.
    greater_log: Mutex<Option<Instant>>,
}

impl PeerStats {
    /// Milliseconds since the Unix epoch of `target`'s last acknowledged append, -1 if none.
    pub fn last_ack_ms(&self, target: NodeId) -> i64 {
        self.acks.lock().get(&target).map_or(-1, |(at, _)| {
            at.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        })
    }

    /// Records that `target` acknowledged an AppendEntries just now. Every transport of a
    /// multi-voter quorum calls it: a leader counts as the active controller only while a
    /// majority acknowledges it (see [`MetadataQuorum::is_leader`](crate::MetadataQuorum::is_leader)).
    pub fn record_ack(&self, target: NodeId) {
        self.acks
            .lock()
            .insert(target, (SystemTime::now(), Instant::now()));
    }

    /// Whether `target` acknowledged an AppendEntries within the last `within`.
    pub(crate) fn acked_within(&self, target: NodeId, within: Duration) -> bool {
        self.acks
            .lock()
            .get(&target)
            .is_some_and(|(_, at)| at.elapsed() <= within)
    }

    /// Records that a leader's AppendEntries was accepted just now.
    pub fn record_leader_contact(&self) {
        *self.leader_contact.lock() = Some(Instant::now());
    }

    /// When this node last heard from a leader, if ever.
    pub(crate) fn last_leader_contact(&self) -> Option<Instant> {
        *self.leader_contact.lock()
    }

    /// Notes a voter's answer to this node's vote request that asked with `asked_with` as its
    /// last log id: a refusal from a voter with a longer log means that voter should campaign
    /// first (`election_timer`).
    pub(crate) fn record_vote_reply(
        &self,
        asked_with: Option<LogId>,
        reply: &VoteResponse<NodeId>,
    ) {
        if !reply.vote_granted && reply.last_log_id > asked_with {
            *self.greater_log.lock() = Some(Instant::now());
        }
    }

    /// Whether a voter with a longer log refused a vote request of this node since `since`.
    pub(crate) fn greater_log_seen_since(&self, since: Instant) -> bool {
        self.greater_log.lock().is_some_and(|at| at >= since)
    }

    /// How long ago this node last heard from a leader, if ever.
    pub fn since_leader_contact(&self) -> Option<Duration> {
        self.leader_contact.lock().map(|at| at.elapsed())
    }

    /// A peer's refusal of this node's cluster id, if one was seen.
    pub fn cluster_mismatch(&self) -> Option<PeerError> {
        self.mismatch.lock().clone()
    }
}

/// The network factory: connections share the node's identity and the stats.
#[derive(Debug, Clone)]
pub struct GrpcNetwork {
    node_id: NodeId,
    images: watch::Receiver<Arc<MetadataImage>>,
    stats: Arc<PeerStats>,
}

impl GrpcNetwork {
    /// A transport for `node_id`; `images` tells it the cluster id to present.
    pub fn new(
        node_id: NodeId,
        images: watch::Receiver<Arc<MetadataImage>>,
        stats: Arc<PeerStats>,
    ) -> GrpcNetwork {
        GrpcNetwork {
            node_id,
            images,
            stats,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetwork {
    type Network = GrpcConnection;

    async fn new_client(&mut self, target: NodeId, node: &openraft::BasicNode) -> GrpcConnection {
        GrpcConnection {
            target,
            peer: Peer::new(&node.addr),
            network: self.clone(),
            unreachable: false,
        }
    }
}

/// openraft's connection to one target node.
#[derive(Debug)]
pub struct GrpcConnection {
    target: NodeId,
    peer: Result<Peer, PeerError>,
    network: GrpcNetwork,
    /// Whether the last call failed to reach the target; logged on changes only, since
    /// openraft retries an unreachable peer every few hundred milliseconds.
    unreachable: bool,
}

impl GrpcConnection {
    async fn send<Req, Resp, E>(
        &mut self,
        path: &'static str,
        request: &Req,
        timeout: Duration,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error,
    {
        let peer = self.peer.as_ref().map_err(unreachable)?;
        let cluster_id = self.network.images.borrow().cluster_id.clone();
        let envelope = Envelope::wrap(&cluster_id, self.network.node_id, request)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let result = peer.call(path, envelope, timeout).await;
        let now_unreachable = matches!(result, Err(PeerError::Unreachable { .. }));
        if now_unreachable != self.unreachable {
            self.unreachable = now_unreachable;
            match &result {
                Err(e) => {
                    tracing::warn!(target_node = self.target, error = %e, "metadata peer is unreachable")
                }
                Ok(_) => tracing::info!(
                    target_node = self.target,
                    "metadata peer is reachable again"
                ),
            }
        }
        let reply = result.map_err(|e| {
            if let PeerError::ClusterMismatch { .. } = &e {
                tracing::error!(target_node = self.target, error = %e, "metadata peer refused this node");
                self.network.stats.mismatch.lock().get_or_insert(e.clone());
            }
            match e {
                PeerError::Unreachable { .. } => unreachable(&e),
                other => RPCError::Network(NetworkError::new(&other)),
            }
        })?;
        reply
            .open()
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, openraft::BasicNode, E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

fn unreachable<E: std::error::Error>(e: &PeerError) -> RPCError<NodeId, openraft::BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(e))
}

impl RaftNetwork<TypeConfig> for GrpcConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let reply: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> = self
            .send(paths::APPEND_ENTRIES, &rpc, option.hard_ttl())
            .await?;
        let response = reply.map_err(|e| self.remote(e))?;
        self.network.stats.record_ack(self.target);
        Ok(response)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let reply: Result<
            InstallSnapshotResponse<NodeId>,
            RaftError<NodeId, InstallSnapshotError>,
        > = self
            .send(paths::INSTALL_SNAPSHOT, &rpc, option.hard_ttl())
            .await?;
        reply.map_err(|e| self.remote(e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let asked_with = rpc.last_log_id;
        let reply: Result<VoteResponse<NodeId>, RaftError<NodeId>> =
            self.send(paths::VOTE, &rpc, option.hard_ttl()).await?;
        let reply = reply.map_err(|e| self.remote(e))?;
        self.network.stats.record_vote_reply(asked_with, &reply);
        Ok(reply)
    }
}
