//! The openraft type configuration of the metadata quorum.

use serde::Deserialize;
use serde::Serialize;

use crate::records::MetadataRecord;

/// The payload of one metadata log entry: records committed and applied together, so a topic
/// and its partitions and configs appear in the image at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataBatch {
    pub records: Vec<MetadataRecord>,
}

/// What applying an entry returns to its proposer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The log index of the entry, now the image's `offset`.
    pub offset: u64,
}

openraft::declare_raft_types!(
    /// The openraft type configuration: node ids are broker node ids, nodes carry their quorum
    /// address, snapshots are serialized images held in memory while transferred.
    pub TypeConfig:
        D = MetadataBatch,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
        Responder = openraft::impls::OneshotResponder<TypeConfig>,
);

pub type NodeId = u64;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type Raft = openraft::Raft<TypeConfig>;
