//! The API versions this broker implements, which ApiVersions advertises verbatim.
//!
//! A version appears here only when its semantics are implemented and a real client exercises
//! it in the test suite; the codec supporting more is not a reason to advertise more.

use kafka_protocol::messages::ApiKey;

/// (api, min version, max version) for every API the broker serves.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::WriteTxnMarkers, 1, 1),
];

/// The coordinators' own tables: the group coordinator's, then the transaction
/// coordinator's (which also answers InitProducerId, for idempotent producers through the
/// broker's handler).
fn coordinators() -> impl Iterator<Item = &'static (i16, i16, i16)> {
    crate::groups::Coordinator::supported_versions()
        .iter()
        .chain(crate::transactions::TxnCoordinator::supported_versions())
}

/// The supported range of `api`: the broker's own table, then the coordinators'.
fn lookup(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|&(_, min, max)| (min, max))
        .or_else(|| {
            coordinators()
                .find(|(key, _, _)| *key == api as i16)
                .map(|&(_, min, max)| (min, max))
        })
}

/// Every served API with its range, as ApiVersions lists them.
pub fn all() -> Vec<(i16, i16, i16)> {
    let mut out: Vec<(i16, i16, i16)> = SUPPORTED
        .iter()
        .map(|&(api, min, max)| (api as i16, min, max))
        .collect();
    out.extend(coordinators());
    out.sort_unstable();
    out
}

/// The supported version range of `api`, if the broker serves it.
pub fn supported(api: ApiKey) -> Option<(i16, i16)> {
    lookup(api)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Message;

    #[test]
    fn advertised_ranges_are_within_what_the_codec_supports() {
        for (key, min, max) in all() {
            let api = ApiKey::try_from(key).expect("a known API key");
            let codec = api.valid_versions();
            assert!(min <= max, "{api:?}");
            assert!(
                codec.min <= min && max <= codec.max,
                "{api:?} {min}..={max} outside codec {codec}"
            );
        }
        // The header of ApiVersions must stay decodable by every client generation (KIP-511).
        assert_eq!(
            kafka_protocol::messages::ApiVersionsRequest::VERSIONS.min,
            0
        );
    }
}
