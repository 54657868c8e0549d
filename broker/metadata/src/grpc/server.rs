//! The controller listener's server side: one tower service for every method, dispatched by
//! path, so the whole surface is visible in one `match`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::task::Poll;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::server::UnaryService;
use tonic::transport::server::TcpIncoming;

use crate::controller::Controller;
use crate::controller_ops::ControllerRequest;
use crate::grpc::envelope::Envelope;
use crate::grpc::envelope::cluster_mismatch_message;
use crate::grpc::envelope::paths;
use crate::grpc::envelope::same_cluster;
use crate::raft_types::NodeId;
use crate::raft_types::TypeConfig;
use crate::raft_types::Vote;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Serves the Raft and Controller services of one node.
#[derive(Debug, Clone)]
pub struct ControllerListener {
    controller: Controller,
}

impl ControllerListener {
    pub fn new(controller: Controller) -> ControllerListener {
        ControllerListener { controller }
    }

    /// Serves connections from `listener` until `cancel` fires.
    pub async fn serve(
        self,
        listener: TcpListener,
        cancel: CancellationToken,
    ) -> Result<(), tonic::transport::Error> {
        tonic::transport::Server::builder()
            .serve_with_incoming_shutdown(
                self,
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                cancel.cancelled_owned(),
            )
            .await
    }
}

impl<B> tower_service::Service<http::Request<B>> for ControllerListener
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = Method {
            path: request.uri().path().to_owned(),
            controller: self.controller.clone(),
        };
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(tonic_prost::ProstCodec::<Envelope, Envelope>::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// One call of one method.
struct Method {
    path: String,
    controller: Controller,
}

impl UnaryService<Envelope> for Method {
    type Response = Envelope;
    type Future = BoxFuture<Result<tonic::Response<Envelope>, Status>>;

    fn call(&mut self, request: tonic::Request<Envelope>) -> Self::Future {
        let path = std::mem::take(&mut self.path);
        let controller = self.controller.clone();
        Box::pin(async move {
            dispatch(&path, &controller, request.into_inner())
                .await
                .map(tonic::Response::new)
        })
    }
}

async fn dispatch(
    path: &str,
    controller: &Controller,
    request: Envelope,
) -> Result<Envelope, Status> {
    let quorum = controller.quorum();
    let ours = quorum.cluster_id();
    if !same_cluster(&ours, &request.cluster_id) {
        tracing::warn!(
            from_node = request.node_id,
            theirs = %request.cluster_id,
            "refusing a metadata request from another cluster"
        );
        return Err(Status::failed_precondition(cluster_mismatch_message(
            &ours,
            &request.cluster_id,
        )));
    }
    let raft = quorum.raft();
    let me = quorum.node_id();
    let reply = match path {
        paths::APPEND_ENTRIES => {
            let rpc: openraft::raft::AppendEntriesRequest<TypeConfig> = open(&request)?;
            senders_own(&rpc.vote, &request)?;
            let result = raft.append_entries(rpc).await;
            if result.is_ok() {
                quorum.peer_stats().record_leader_contact();
            }
            Envelope::wrap(&ours, me, &result)
        }
        paths::VOTE => {
            let rpc: openraft::raft::VoteRequest<NodeId> = open(&request)?;
            senders_own(&rpc.vote, &request)?;
            Envelope::wrap(&ours, me, &raft.vote(rpc).await)
        }
        paths::INSTALL_SNAPSHOT => {
            let rpc: openraft::raft::InstallSnapshotRequest<TypeConfig> = open(&request)?;
            senders_own(&rpc.vote, &request)?;
            Envelope::wrap(&ours, me, &raft.install_snapshot(rpc).await)
        }
        paths::CONTROLLER_CALL => {
            let call: ControllerRequest = open(&request)?;
            let response = controller.handle(call).await;
            Envelope::wrap(&ours, me, &response).map(|mut reply| {
                reply.metadata_offset = quorum.image().offset;
                reply
            })
        }
        other => return Err(Status::unimplemented(format!("no method {other}"))),
    };
    reply.map_err(|e| Status::internal(format!("encoding the reply: {e}")))
}

/// Refuses a Raft request whose vote is not the sender's own: a candidate asks for votes for
/// itself and a leader replicates under its own vote. openraft assumes two committed votes of
/// one term name the same leader (it stops the node otherwise), so a vote for some other node
/// never reaches it.
fn senders_own(vote: &Vote, request: &Envelope) -> Result<(), Status> {
    if vote.leader_id().voted_for() == Some(request.node_id) {
        return Ok(());
    }
    tracing::warn!(from_node = request.node_id, %vote, "refusing a Raft request with another node's vote");
    Err(Status::invalid_argument(format!(
        "the request's vote {vote} is not that of its sender, node {}",
        request.node_id
    )))
}

fn open<T: serde::de::DeserializeOwned>(request: &Envelope) -> Result<T, Status> {
    request.open().map_err(|e| {
        tracing::debug!(from_node = request.node_id, error = %e, "undecodable metadata request");
        Status::invalid_argument(format!("the payload does not decode: {e}"))
    })
}
