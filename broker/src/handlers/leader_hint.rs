//! KIP-951: a partition refused with NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH tells the
//! client who leads it now (and where that broker listens), so the client moves at once
//! instead of waiting for a metadata refresh. Produce v10+ and Fetch v16+ carry the hint.

use kafka_protocol::error::ResponseError;
use strom_metadata::MetadataImage;

/// The current leader of a partition and its listener, from the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderHint {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// Whether a partition error code is one KIP-951 attaches the leader to.
pub fn wants_hint(error_code: i16) -> bool {
    error_code == ResponseError::NotLeaderOrFollower.code()
        || error_code == ResponseError::FencedLeaderEpoch.code()
}

/// The leader of `topic`-`partition` per `image`, if it has a live one.
pub fn leader_hint(image: &MetadataImage, topic: &str, partition: i32) -> Option<LeaderHint> {
    let state = image.partition(topic, partition)?;
    let broker = image
        .broker(state.leader)
        .filter(|_| image.is_live(state.leader))?;
    Some(LeaderHint {
        leader_id: state.leader,
        leader_epoch: state.leader_epoch,
        host: broker.host.clone(),
        port: i32::from(broker.port),
        rack: broker.rack.clone(),
    })
}
