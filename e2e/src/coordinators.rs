//! Finding a group's or a transactional id's coordinator the way clients do, and computing the
//! internal-topic partition Kafka hashes a key onto, independently of the broker's own code.

use std::time::Duration;

use anyhow::Context;
use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

use crate::cluster::Cluster;
use crate::wire::call;

/// FindCoordinator key type of a consumer group.
pub const GROUP: i8 = 0;
/// FindCoordinator key type of a transactional id.
pub const TRANSACTION: i8 = 1;

/// How long one request to one broker may take (a killed broker refuses at once).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The partition of its internal topic (`__consumer_offsets`, `__transaction_state`) that `key`
/// hashes onto, as Kafka computes it: `Utils.abs(key.hashCode()) % partitions` with Java's
/// `String.hashCode`.
pub fn kafka_partition_for(key: &str, partitions: i32) -> i32 {
    let hash = key.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions
}

/// FindCoordinator v3 for `key` of `key_type` against `bootstrap`: (error code, coordinator
/// node id).
pub async fn find_coordinator(
    bootstrap: &str,
    key_type: i8,
    key: &str,
) -> anyhow::Result<(i16, i32)> {
    let request = async {
        let mut stream = TcpStream::connect(bootstrap).await?;
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(key.to_owned()))
            .with_key_type(key_type);
        let response: FindCoordinatorResponse =
            call(&mut stream, ApiKey::FindCoordinator, 3, &request).await?;
        anyhow::Ok((response.error_code, response.node_id.0))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .with_context(|| format!("FindCoordinator to {bootstrap} timed out"))?
}

/// The coordinator of `key` once every running broker names the same running broker.
pub async fn agreed_coordinator(cluster: &Cluster, key_type: i8, key: &str) -> Option<i32> {
    let mut named = Vec::new();
    for id in cluster.running() {
        match find_coordinator(&cluster.broker(id).bootstrap(), key_type, key).await {
            Ok((0, node)) => named.push(node),
            _ => return None,
        }
    }
    let first = *named.first()?;
    let running = usize::try_from(first).is_ok_and(|id| cluster.running().contains(&id));
    (running && named.iter().all(|n| *n == first)).then_some(first)
}
