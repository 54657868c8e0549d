//! Kafka connections from this broker to the others, for the requests a coordinator or a
//! partition leader sends on its own behalf: transaction markers (WriteTxnMarkers) and
//! transactional produce verification (AddPartitionsToTxn with `verify_only`, KIP-890).
//!
//! One connection per broker, each behind its own lock: requests to different brokers go out
//! together, those to one broker one at a time. A connection that failed, or whose broker moved
//! to another address, is opened again on the next request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use strom_client::{ClientError, Connection, Request};

/// How long connecting, and each request, may take.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

/// The pool; cheap to share.
#[derive(Debug, Default)]
pub struct PeerConnections {
    slots: parking_lot::Mutex<HashMap<i32, Slot>>,
}

impl PeerConnections {
    /// Sends `request` to broker `node` at `address` (`host:port`), at `version` or else the
    /// highest both sides implement, and waits for its answer.
    pub async fn send<R: Request>(
        &self,
        node: i32,
        address: &str,
        request: R,
        version: Option<i16>,
    ) -> Result<R::Response, ClientError> {
        let slot = Arc::clone(self.slots.lock().entry(node).or_default());
        let mut slot = slot.lock().await;
        let reusable = slot
            .as_ref()
            .is_some_and(|c| c.is_usable() && c.broker() == address);
        if !reusable {
            *slot = Some(Connection::open(address, PEER_TIMEOUT, "strom-broker").await?);
        }
        match (slot.as_mut(), version) {
            (Some(connection), Some(version)) => connection.send_at_version(request, version).await,
            (Some(connection), None) => connection.send(request).await,
            (None, _) => unreachable_slot(address),
        }
    }
}

/// A slot is filled right before it is read; this answers the impossible empty one.
fn unreachable_slot<T>(address: &str) -> Result<T, ClientError> {
    Err(ClientError::Connect {
        broker: address.to_owned(),
        source: std::io::Error::other("no connection"),
    })
}
