//! The one message of the controller listener, and who may send it.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Full gRPC paths of the methods the controller listener serves.
pub mod paths {
    pub const APPEND_ENTRIES: &str = "/strom.metadata.v1.Raft/AppendEntries";
    pub const VOTE: &str = "/strom.metadata.v1.Raft/Vote";
    pub const INSTALL_SNAPSHOT: &str = "/strom.metadata.v1.Raft/InstallSnapshot";
    pub const CONTROLLER_CALL: &str = "/strom.metadata.v1.Controller/Call";
}

/// A request or a response: who sent it and a JSON payload.
///
/// ```text
/// message Envelope {
///   string cluster_id = 1;  // the sender's cluster id; empty while it does not know one yet
///   uint64 node_id    = 2;  // the sender's node id
///   bytes  payload    = 3;  // JSON of the request or response type of the method
///   uint64 metadata_offset = 4;  // the sender's applied metadata offset
/// }
/// ```
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Envelope {
    #[prost(string, tag = "1")]
    pub cluster_id: String,
    #[prost(uint64, tag = "2")]
    pub node_id: u64,
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
    /// The metadata offset the sender had applied when it sent this: a broker that forwarded
    /// an operation waits until its own image has caught up with the controller's answer, so
    /// its clients read their own writes.
    #[prost(uint64, tag = "4")]
    pub metadata_offset: u64,
}

impl Envelope {
    /// Wraps `value` as JSON.
    pub fn wrap<T: Serialize>(
        cluster_id: &str,
        node_id: u64,
        value: &T,
    ) -> Result<Envelope, serde_json::Error> {
        Ok(Envelope {
            cluster_id: cluster_id.to_owned(),
            node_id,
            payload: serde_json::to_vec(value)?,
            metadata_offset: 0,
        })
    }

    /// Decodes the payload as `T`, reading the leader ids of earlier versions' peers
    /// (`leader_id_format`).
    pub fn open<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        crate::leader_id_format::from_slice(&self.payload)
    }
}

/// Whether an envelope from `theirs` may be accepted by a node of `ours`: a node that does not
/// know its cluster id yet (a fresh voter before the first controller fixed it, an observer
/// joining) accepts any; otherwise both must match.
pub fn same_cluster(ours: &str, theirs: &str) -> bool {
    ours.is_empty() || theirs.is_empty() || ours == theirs
}

/// The message of a cluster-id refusal; [`cluster_mismatch_ids`] reads it back on the client.
pub(crate) fn cluster_mismatch_message(ours: &str, theirs: &str) -> String {
    format!("cluster id mismatch: this node belongs to cluster {ours}, the sender to {theirs}")
}

/// `(receiver's, sender's)` cluster ids from a refusal made by [`cluster_mismatch_message`].
pub fn cluster_mismatch_ids(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("cluster id mismatch: this node belongs to cluster ")?;
    let (ours, theirs) = rest.split_once(", the sender to ")?;
    Some((ours.to_owned(), theirs.to_owned()))
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn envelopes_round_trip_through_protobuf() {
        let envelope = Envelope::wrap("abc", 7, &vec![1u64, 2, 3]).expect("serializes");
        let bytes = envelope.encode_to_vec();
        let back = Envelope::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(back, envelope);
        assert_eq!(back.open::<Vec<u64>>().expect("payload"), vec![1, 2, 3]);
    }

    #[test]
    fn garbage_is_not_an_envelope_or_a_payload() {
        assert!(Envelope::decode(&[0xff, 0xff, 0xff][..]).is_err());
        let envelope = Envelope {
            cluster_id: String::new(),
            node_id: 1,
            payload: b"not json".to_vec(),
            metadata_offset: 0,
        };
        assert!(envelope.open::<Vec<u64>>().is_err());
    }

    #[test]
    fn cluster_ids_must_match_once_known() {
        assert!(same_cluster("", "x"));
        assert!(same_cluster("x", ""));
        assert!(same_cluster("x", "x"));
        assert!(!same_cluster("x", "y"));
        let message = cluster_mismatch_message("a", "b");
        assert_eq!(
            cluster_mismatch_ids(&message),
            Some(("a".to_owned(), "b".to_owned()))
        );
    }
}
