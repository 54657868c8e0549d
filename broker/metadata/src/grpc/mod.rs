//! The controller listener: gRPC between metadata nodes.
//!
//! Two services share one HTTP/2 listener (`--controller-listen`):
//!
//! - `strom.metadata.v1.Raft`: `AppendEntries`, `Vote`, `InstallSnapshot` — openraft's RPCs from
//!   the quorum leader to voters and observers (learners). Snapshots travel in chunks of
//!   openraft's `snapshot_max_chunk_size`, one RPC each, so no message holds a whole snapshot.
//! - `strom.metadata.v1.Controller`: `Call` — a controller operation forwarded by any broker to
//!   the active controller (KIP-590's idea), answered with the operation's result.
//!
//! Every message is an [`Envelope`]: the sender's cluster id and node id around a JSON payload,
//! the serialized form of openraft's own request and response types or of a
//! [`ControllerRequest`](crate::controller_ops::ControllerRequest). A receiver that knows its
//! cluster id refuses an envelope from another cluster with `FAILED_PRECONDITION`, and a payload
//! that does not decode with `INVALID_ARGUMENT`; neither reaches openraft or the controller.
//!
//! Layout: [`envelope`] (the message and the identity checks), [`server`] (the listener),
//! [`peer`] (one client connection per remote address, shared by both services),
//! [`raft_network`] (openraft's network factory over [`peer`]).

pub mod envelope;
pub mod peer;
pub mod raft_network;
pub mod server;

pub use envelope::Envelope;
pub use peer::Peer;
pub use peer::PeerError;
pub use raft_network::GrpcNetwork;
pub use server::ControllerListener;
