//! The API versions this coordinator implements, for ApiVersions.

use super::GroupCoordinator;

/// (api key, min version, max version) of every API the coordinator answers.
///
/// OffsetCommit stops at v8 and OffsetFetch at v8: v9 brings KIP-848 member epochs and v10
/// topic ids, neither of which classic groups use. DescribeGroups stops at v5 (v6 changes the
/// unknown-group answer, KIP-1043). TxnOffsetCommit stops at v4: v5 (KIP-890 part 2) means the
/// broker verifies the partition joined the transaction itself.
const SUPPORTED_VERSIONS: &[(i16, i16, i16)] = &[
    (8, 2, 8),  // OffsetCommit
    (9, 1, 8),  // OffsetFetch
    (11, 0, 9), // JoinGroup
    (12, 0, 4), // Heartbeat
    (13, 0, 5), // LeaveGroup
    (14, 0, 5), // SyncGroup
    (15, 0, 5), // DescribeGroups
    (16, 0, 5), // ListGroups
    (28, 0, 4), // TxnOffsetCommit
    (42, 0, 2), // DeleteGroups
    (47, 0, 0), // OffsetDelete
];

impl<L> GroupCoordinator<L> {
    /// `(api key, min, max)` of each group API implemented here; FindCoordinator is the
    /// broker's.
    pub fn supported_versions() -> &'static [(i16, i16, i16)] {
        SUPPORTED_VERSIONS
    }
}
