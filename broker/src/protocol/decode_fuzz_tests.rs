//! Property tests of the request decoder, per served API and version: arbitrary bytes after a
//! valid header, and valid requests with bytes changed, inserted, removed or cut, decode to a
//! request or an error, never a panic (nor an allocation the frame cannot back: the tests run
//! on the system allocator, where a claimed length of gigabytes aborts).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Encodable;
use proptest::prelude::*;
use proptest::sample::Index;

use super::{ProtocolError, decode, versions};

/// Every request type the broker decodes, by API key. An API served without a line here fails
/// the test, so a new API cannot skip it.
macro_rules! by_request_type {
    ($api:expr, $t:ident => $body:expr) => {
        match $api {
            ApiKey::Produce => {
                type $t = ProduceRequest;
                $body
            }
            ApiKey::Fetch => {
                type $t = FetchRequest;
                $body
            }
            ApiKey::ListOffsets => {
                type $t = ListOffsetsRequest;
                $body
            }
            ApiKey::Metadata => {
                type $t = MetadataRequest;
                $body
            }
            ApiKey::ApiVersions => {
                type $t = ApiVersionsRequest;
                $body
            }
            ApiKey::CreateTopics => {
                type $t = CreateTopicsRequest;
                $body
            }
            ApiKey::DeleteTopics => {
                type $t = DeleteTopicsRequest;
                $body
            }
            ApiKey::DeleteRecords => {
                type $t = DeleteRecordsRequest;
                $body
            }
            ApiKey::DescribeConfigs => {
                type $t = DescribeConfigsRequest;
                $body
            }
            ApiKey::AlterConfigs => {
                type $t = AlterConfigsRequest;
                $body
            }
            ApiKey::DescribeLogDirs => {
                type $t = DescribeLogDirsRequest;
                $body
            }
            ApiKey::CreatePartitions => {
                type $t = CreatePartitionsRequest;
                $body
            }
            ApiKey::IncrementalAlterConfigs => {
                type $t = IncrementalAlterConfigsRequest;
                $body
            }
            ApiKey::DescribeCluster => {
                type $t = DescribeClusterRequest;
                $body
            }
            ApiKey::DescribeQuorum => {
                type $t = DescribeQuorumRequest;
                $body
            }
            ApiKey::InitProducerId => {
                type $t = InitProducerIdRequest;
                $body
            }
            ApiKey::FindCoordinator => {
                type $t = FindCoordinatorRequest;
                $body
            }
            ApiKey::OffsetForLeaderEpoch => {
                type $t = OffsetForLeaderEpochRequest;
                $body
            }
            ApiKey::ElectLeaders => {
                type $t = ElectLeadersRequest;
                $body
            }
            ApiKey::AlterPartitionReassignments => {
                type $t = AlterPartitionReassignmentsRequest;
                $body
            }
            ApiKey::ListPartitionReassignments => {
                type $t = ListPartitionReassignmentsRequest;
                $body
            }
            ApiKey::JoinGroup => {
                type $t = JoinGroupRequest;
                $body
            }
            ApiKey::SyncGroup => {
                type $t = SyncGroupRequest;
                $body
            }
            ApiKey::Heartbeat => {
                type $t = HeartbeatRequest;
                $body
            }
            ApiKey::LeaveGroup => {
                type $t = LeaveGroupRequest;
                $body
            }
            ApiKey::OffsetCommit => {
                type $t = OffsetCommitRequest;
                $body
            }
            ApiKey::OffsetFetch => {
                type $t = OffsetFetchRequest;
                $body
            }
            ApiKey::ListGroups => {
                type $t = ListGroupsRequest;
                $body
            }
            ApiKey::DescribeGroups => {
                type $t = DescribeGroupsRequest;
                $body
            }
            ApiKey::DeleteGroups => {
                type $t = DeleteGroupsRequest;
                $body
            }
            ApiKey::OffsetDelete => {
                type $t = OffsetDeleteRequest;
                $body
            }
            other => panic!("{other:?} is served but has no request type in this test"),
        }
    };
}

/// Every served (api, version).
fn served() -> Vec<(ApiKey, i16)> {
    versions::all()
        .into_iter()
        .flat_map(|(key, min, max)| {
            let api = ApiKey::try_from(key).expect("a known API key");
            (min..=max).map(move |version| (api, version))
        })
        .collect()
}

/// Decodes a request frame's header and body as the dispatcher does.
fn decode_frame(api: ApiKey, version: i16, frame: &[u8]) -> Result<(), ProtocolError> {
    let mut body = Bytes::copy_from_slice(frame);
    let _: RequestHeader = decode(api, api.request_header_version(version), &mut body)?;
    by_request_type!(api, T => decode::<T>(api, version, &mut body).map(drop))
}

/// A valid frame of `api` v`version`: a header and the default request, when it encodes.
fn valid_frame(api: ApiKey, version: i16) -> Option<Vec<u8>> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(kafka_protocol::protocol::StrBytes::from_static_str(
            "fuzz",
        )))
        .encode(&mut buf, api.request_header_version(version))
        .ok()?;
    by_request_type!(api, T => T::default().encode(&mut buf, version).ok()?);
    Some(buf.to_vec())
}

fn header_only(api: ApiKey, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .encode(&mut buf, api.request_header_version(version))
        .expect("a default header encodes");
    buf.to_vec()
}

#[test]
fn every_served_version_decodes_its_valid_request() {
    for (api, version) in served() {
        let Some(frame) = valid_frame(api, version) else {
            continue;
        };
        if let Err(error) = decode_frame(api, version, &frame) {
            panic!("{api:?} v{version}: {error}");
        }
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Set(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Cut(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Set(at, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<Index>().prop_map(Edit::Remove),
        any::<Index>().prop_map(Edit::Cut),
    ]
}

fn apply(frame: &mut Vec<u8>, edit: &Edit) {
    let len = frame.len();
    match edit {
        Edit::Set(at, b) if len > 0 => frame[at.index(len)] = *b,
        Edit::Insert(at, b) => frame.insert(at.index(len + 1), *b),
        Edit::Remove(at) if len > 0 => {
            frame.remove(at.index(len));
        }
        Edit::Cut(at) => frame.truncate(at.index(len + 1)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bodies_decode_or_fail_without_a_panic(
        which in any::<Index>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let all = served();
        let (api, version) = all[which.index(all.len())];
        let mut frame = header_only(api, version);
        frame.extend_from_slice(&body);
        let _ = decode_frame(api, version, &frame);
        let _ = decode_frame(api, version, &body);
    }

    #[test]
    fn mutated_valid_requests_decode_or_fail_without_a_panic(
        which in any::<Index>(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let all = served();
        let (api, version) = all[which.index(all.len())];
        let Some(mut frame) = valid_frame(api, version) else {
            return Ok(());
        };
        for edit in &edits {
            apply(&mut frame, edit);
        }
        let _ = decode_frame(api, version, &frame);
    }
}
