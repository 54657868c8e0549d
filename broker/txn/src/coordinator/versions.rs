//! The API versions this coordinator implements, for ApiVersions.

use super::TransactionCoordinator;

/// (api key, min version, max version) of every API the coordinator answers.
///
/// InitProducerId stops at v5 (v6 is two-phase commit, KIP-939), EndTxn at v4 (v5 bumps the
/// epoch at every transaction end, KIP-890 part 2), ListTransactions at v1 (v2 adds a
/// transactional id regular expression).
const SUPPORTED_VERSIONS: &[(i16, i16, i16)] = &[
    (22, 0, 5), // InitProducerId
    (24, 0, 5), // AddPartitionsToTxn
    (25, 0, 4), // AddOffsetsToTxn
    (26, 0, 4), // EndTxn
    (65, 0, 0), // DescribeTransactions
    (66, 0, 1), // ListTransactions
];

impl<L, M> TransactionCoordinator<L, M> {
    /// `(api key, min, max)` of each transaction API implemented here; FindCoordinator,
    /// TxnOffsetCommit and the non-transactional InitProducerId are answered elsewhere (the
    /// broker and the group coordinator), and InitProducerId's range is shared with them.
    pub fn supported_versions() -> &'static [(i16, i16, i16)] {
        SUPPORTED_VERSIONS
    }
}
