//! Property tests of the request decoder, per served API and version: arbitrary bytes after a
//! valid header, and valid requests with bytes changed, inserted, removed or cut, decode to a
//! request or an error, never a panic (nor an allocation the frame cannot back: the tests run
//! on the system allocator, where a claimed length of gigabytes aborts).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
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
            ApiKey::AddPartitionsToTxn => {
                type $t = AddPartitionsToTxnRequest;
                $body
            }
            ApiKey::AddOffsetsToTxn => {
                type $t = AddOffsetsToTxnRequest;
                $body
            }
            ApiKey::EndTxn => {
                type $t = EndTxnRequest;
                $body
            }
            ApiKey::WriteTxnMarkers => {
                type $t = WriteTxnMarkersRequest;
                $body
            }
            ApiKey::TxnOffsetCommit => {
                type $t = TxnOffsetCommitRequest;
                $body
            }
            ApiKey::DescribeTransactions => {
                type $t = DescribeTransactionsRequest;
                $body
            }
            ApiKey::ListTransactions => {
                type $t = ListTransactionsRequest;
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

/// A header for `api` v`version` followed by `request`, when it encodes at that version.
fn frame_of<T: Encodable>(api: ApiKey, version: i16, request: &T) -> Option<Vec<u8>> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")))
        .encode(&mut buf, api.request_header_version(version))
        .ok()?;
    request.encode(&mut buf, version).ok()?;
    Some(buf.to_vec())
}

fn name(s: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(s))
}

/// Requests with nested arrays, strings and records filled in, so that mutations reach the
/// nested decoders; each is tried at every version and kept where it encodes.
fn rich_frame(api: ApiKey, version: i16) -> Option<Vec<u8>> {
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
    };
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    match api {
        ApiKey::Produce => frame_of(
            api,
            version,
            &ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(name("t"))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(3)
                                .with_records(Some(Bytes::from(vec![7u8; 70]))),
                        ]),
                ]),
        ),
        ApiKey::Fetch => {
            let partitions = vec![
                FetchPartition::default()
                    .with_partition(1)
                    .with_fetch_offset(5),
            ];
            frame_of(
                api,
                version,
                &FetchRequest::default()
                    .with_max_wait_ms(10)
                    .with_topics(vec![
                        FetchTopic::default()
                            .with_topic(name("t"))
                            .with_partitions(partitions.clone()),
                    ]),
            )
            .or_else(|| {
                frame_of(
                    api,
                    version,
                    &FetchRequest::default().with_topics(vec![
                        FetchTopic::default()
                            .with_topic_id(uuid::Uuid::from_u128(9))
                            .with_partitions(partitions),
                    ]),
                )
            })
        }
        ApiKey::Metadata => frame_of(
            api,
            version,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("t"))),
                MetadataRequestTopic::default().with_name(Some(name("u"))),
            ])),
        ),
        ApiKey::CreateTopics => frame_of(
            api,
            version,
            &CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default()
                    .with_name(name("t"))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1)
                    .with_assignments(vec![
                        CreatableReplicaAssignment::default()
                            .with_partition_index(0)
                            .with_broker_ids(vec![BrokerId(0), BrokerId(1)]),
                    ])
                    .with_configs(vec![
                        CreatableTopicConfig::default()
                            .with_name(StrBytes::from_static_str("retention.ms"))
                            .with_value(Some(StrBytes::from_static_str("1000"))),
                    ]),
            ]),
        ),
        _ => None,
    }
}

/// A valid frame of `api` v`version`: a rich request where one encodes, else the default.
fn valid_frame(api: ApiKey, version: i16) -> Option<Vec<u8>> {
    rich_frame(api, version)
        .or_else(|| by_request_type!(api, T => frame_of(api, version, &T::default())))
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
    let mut rich = std::collections::BTreeSet::new();
    for (api, version) in served() {
        if rich_frame(api, version).is_some() {
            rich.insert(api as i16);
        }
        let Some(frame) = valid_frame(api, version) else {
            continue;
        };
        if let Err(error) = decode_frame(api, version, &frame) {
            panic!("{api:?} v{version}: {error}");
        }
    }
    // The rich seeds encode at some version of each of their APIs, or they seed nothing.
    for api in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::Metadata,
        ApiKey::CreateTopics,
    ] {
        assert!(rich.contains(&(api as i16)), "{api:?} has no rich seed");
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
