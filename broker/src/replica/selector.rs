//! Fetch from the closest replica (KIP-392): with `replica.selector.class` set to Kafka's
//! `org.apache.kafka.common.replica.RackAwareReplicaSelector`, the leader answers a consumer
//! that names its rack (`client.rack`, Fetch v11+) with the replica of that rack to read from
//! instead of records, and the consumer fetches from it. A replica qualifies when it holds the
//! fetch offset and caught up within `replica.lag.time.max.ms`; the leader keeps clients of its
//! own rack, and of racks without a qualifying replica.

use strom_metadata::MetadataImage;

use super::partition::Partition;

/// Kafka's class name of the rack-aware selector, the one `replica.selector.class` value that
/// turns it on.
pub const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// The replica a consumer in `client_rack` reading from `fetch_offset` should fetch from, if it
/// is not this leader.
pub fn preferred_read_replica(
    image: &MetadataImage,
    partition: &Partition,
    client_rack: &str,
    fetch_offset: i64,
    now_ms: i64,
    lag_max_ms: i64,
) -> Option<i32> {
    if client_rack.is_empty() || !partition.is_leader() {
        return None;
    }
    let rack_of = |id: i32| image.broker(id).and_then(|b| b.rack.clone());
    let me = partition.node_id();
    if rack_of(me).as_deref() == Some(client_rack) {
        return None;
    }
    partition
        .state()
        .replicas
        .iter()
        .copied()
        .filter(|&id| id != me && image.is_live(id))
        .filter(|&id| rack_of(id).as_deref() == Some(client_rack))
        .filter_map(|id| {
            let progress = partition.follower_progress(id)?;
            let fresh = now_ms.saturating_sub(progress.last_caught_up_ms) <= lag_max_ms;
            (fresh && progress.log_end_offset >= fetch_offset && fetch_offset >= 0)
                .then_some((progress.log_end_offset, id))
        })
        .max()
        .map(|(_, id)| id)
}
