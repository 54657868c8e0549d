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

/// The leader hints of one response: each refused partition's leader, and every leader's
/// listener once for the response's `node_endpoints`.
#[derive(Debug, Default)]
pub struct LeaderHints {
    endpoints: Vec<LeaderHint>,
}

impl LeaderHints {
    /// The `(leader id, leader epoch)` a partition refused with `error_code` names, if it wants a
    /// hint and the image knows a live leader; that leader's listener joins the endpoints.
    pub fn note(
        &mut self,
        image: &MetadataImage,
        topic: &str,
        partition: i32,
        error_code: i16,
    ) -> Option<(i32, i32)> {
        if !wants_hint(error_code) {
            return None;
        }
        let hint = leader_hint(image, topic, partition)?;
        let named = (hint.leader_id, hint.leader_epoch);
        if !self.endpoints.iter().any(|e| e.leader_id == hint.leader_id) {
            self.endpoints.push(hint);
        }
        Some(named)
    }

    /// The listeners of every leader named, once each.
    pub fn endpoints(self) -> Vec<LeaderHint> {
        self.endpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_metadata::MetadataRecord;
    use uuid::Uuid;

    fn image() -> MetadataImage {
        let topic_id = Uuid::from_u128(7);
        let mut image = MetadataImage::empty("c");
        for record in [
            MetadataRecord::RegisterBroker {
                node_id: 2,
                host: "b2".into(),
                port: 9092,
                rack: Some("r".into()),
                incarnation: Uuid::from_u128(1),
                fenced: false,
            },
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id,
            },
            MetadataRecord::Partition {
                topic_id,
                partition: 0,
                replicas: vec![1, 2],
                isr: vec![2],
                leader: 2,
                leader_epoch: 4,
                partition_epoch: 5,
            },
        ] {
            image = image.apply(&record);
        }
        image
    }

    #[test]
    fn refused_partitions_name_the_live_leader_once_per_broker() {
        let image = image();
        let mut hints = LeaderHints::default();
        let not_leader = ResponseError::NotLeaderOrFollower.code();
        assert_eq!(hints.note(&image, "t", 0, not_leader), Some((2, 4)));
        assert_eq!(
            hints.note(&image, "t", 0, ResponseError::FencedLeaderEpoch.code()),
            Some((2, 4))
        );
        assert_eq!(hints.note(&image, "t", 0, 0), None, "no error, no hint");
        assert_eq!(
            hints.note(&image, "t", 9, not_leader),
            None,
            "unknown partition"
        );
        let endpoints = hints.endpoints();
        assert_eq!(endpoints.len(), 1);
        assert_eq!(
            (
                endpoints[0].host.as_str(),
                endpoints[0].port,
                endpoints[0].rack.as_deref()
            ),
            ("b2", 9092, Some("r"))
        );
    }
}
