//! The transport between metadata voters.
//!
//! openraft reaches other voters through a [`RaftNetworkFactory`]; the quorum is generic over
//! it (see [`MetadataQuorum::start_with`](crate::quorum::MetadataQuorum::start_with)), so the
//! gRPC transport plugs in without touching storage or the controller. A single-voter quorum
//! never sends an RPC; [`UnreachableNetwork`] is its transport and answers every RPC with
//! `Unreachable`, which openraft retries with backoff, so a misconfigured multi-voter quorum
//! fails to elect (and says so) instead of misbehaving.

use openraft::RaftNetwork;
use openraft::RaftNetworkFactory;
use openraft::error::InstallSnapshotError;
use openraft::error::RPCError;
use openraft::error::RaftError;
use openraft::error::Unreachable;
use openraft::network::RPCOption;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::InstallSnapshotRequest;
use openraft::raft::InstallSnapshotResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;

use crate::raft_types::NodeId;
use crate::raft_types::TypeConfig;

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, openraft::BasicNode, E>>;

/// The transport of a quorum with no remote voters: every RPC fails as unreachable.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnreachableNetwork;

/// A connection of [`UnreachableNetwork`] to one target voter.
#[derive(Debug, Clone)]
pub struct UnreachableConnection {
    target: NodeId,
    addr: String,
}

impl UnreachableConnection {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<NodeId, openraft::BasicNode, E> {
        let error = std::io::Error::other(format!(
            "no transport to metadata voter {} at {}: this broker runs a single-voter quorum",
            self.target, self.addr
        ));
        RPCError::Unreachable(Unreachable::new(&error))
    }
}

impl RaftNetworkFactory<TypeConfig> for UnreachableNetwork {
    type Network = UnreachableConnection;

    async fn new_client(&mut self, target: NodeId, node: &openraft::BasicNode) -> Self::Network {
        UnreachableConnection {
            target,
            addr: node.addr.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for UnreachableConnection {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        Err(self.unreachable())
    }
}
