//! A client of one remote controller listener.
//!
//! One HTTP/2 channel per remote address, connected lazily and reconnected by tonic after a
//! failure; each call has its own deadline. Both the Raft transport and controller forwarding
//! use it, so there is one way to reach another metadata node.

use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::Code;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use crate::grpc::envelope::Envelope;
use crate::grpc::envelope::cluster_mismatch_ids;

/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a call to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    #[error("controller listener {addr} is unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("controller listener {addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("controller listener {addr} belongs to cluster {theirs}, this node to cluster {ours}")]
    ClusterMismatch {
        addr: String,
        ours: String,
        theirs: String,
    },
    #[error("controller listener {addr} refused the request: {message}")]
    Refused { addr: String, message: String },
}

/// A client of the controller listener at one address. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Peer {
    addr: String,
    channel: Channel,
}

impl Peer {
    /// A client of `addr` (`host:port`); no connection is made until the first call.
    pub fn new(addr: &str) -> Result<Peer, PeerError> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| PeerError::Unreachable {
                addr: addr.to_owned(),
                reason: format!("not a valid host:port: {e}"),
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        Ok(Peer {
            addr: addr.to_owned(),
            channel: endpoint.connect_lazy(),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` to the method at `path` and returns the response envelope.
    pub async fn call(
        &self,
        path: &'static str,
        request: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, PeerError> {
        let mut client = tonic::client::Grpc::new(self.channel.clone());
        let ours = request.cluster_id.clone();
        let call = async {
            client.ready().await.map_err(|e| PeerError::Unreachable {
                addr: self.addr.clone(),
                reason: e.to_string(),
            })?;
            let mut request = tonic::Request::new(request);
            request.set_timeout(timeout);
            client
                .unary(
                    request,
                    PathAndQuery::from_static(path),
                    tonic_prost::ProstCodec::<Envelope, Envelope>::default(),
                )
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| self.status_error(&ours, status))
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(PeerError::Timeout {
                addr: self.addr.clone(),
                timeout,
            }),
        }
    }

    fn status_error(&self, ours: &str, status: tonic::Status) -> PeerError {
        let addr = self.addr.clone();
        match status.code() {
            Code::FailedPrecondition => match cluster_mismatch_ids(status.message()) {
                Some((theirs, _)) => PeerError::ClusterMismatch {
                    addr,
                    ours: ours.to_owned(),
                    theirs,
                },
                None => PeerError::Refused {
                    addr,
                    message: status.message().to_owned(),
                },
            },
            Code::InvalidArgument | Code::Unimplemented | Code::PermissionDenied => {
                PeerError::Refused {
                    addr,
                    message: status.message().to_owned(),
                }
            }
            Code::DeadlineExceeded => PeerError::Timeout {
                addr,
                timeout: Duration::ZERO,
            },
            _ => PeerError::Unreachable {
                addr,
                reason: status.message().to_owned(),
            },
        }
    }
}
