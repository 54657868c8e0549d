//! [`Request`]: a Kafka request tied to its response type, its API key and the versions a
//! negotiated send may pick, for every request `kafka-protocol` implements.
//!
//! `kafka_protocol::protocol::Request` exists only when that crate is built with both its
//! `client` and `broker` features; a client needs only `client` (encode requests, decode
//! responses), so this crate carries its own trait over the same message types.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, VersionRange};

/// A Kafka request a [`crate::Connection`] can send, tied to its response type.
///
/// [`crate::Connection::send`] uses the highest version in both [`Request::CLIENT_VERSIONS`]
/// and the range the broker advertised in ApiVersions.
pub trait Request: Encodable + HeaderVersion + Message + Send + Sync {
    /// The API key sent in the request header.
    const KEY: ApiKey;
    /// The API's name, as Kafka spells it, for errors and logs.
    const NAME: &'static str;
    /// The versions a negotiated send may pick: every version `kafka-protocol` can encode,
    /// except where a version's meaning makes it unsafe to pick unasked (Metadata below v4).
    const CLIENT_VERSIONS: VersionRange = <Self as Message>::VERSIONS;
    /// The response to this request.
    type Response: Decodable + HeaderVersion + Message + Send;
}

/// Implements [`Request`] for each `XRequest => XResponse, X (min..=max)`; the range narrows
/// [`Request::CLIENT_VERSIONS`]. Tests check each pairing against the codec's own tables.
macro_rules! requests {
    ($($request:ident => $response:ident, $key:ident $(($min:literal ..= $max:literal))?;)*) => {
        $(
            impl Request for $request {
                const KEY: ApiKey = ApiKey::$key;
                const NAME: &'static str = stringify!($key);
                $(const CLIENT_VERSIONS: VersionRange = VersionRange { min: $min, max: $max };)?
                type Response = $response;
            }
        )*

        /// Every implementation, as the codec describes its two types.
        #[cfg(test)]
        const ALL: &[Pairing] = &[
            $(Pairing {
                key: ApiKey::$key,
                name: stringify!($key),
                request_versions: <$request as Message>::VERSIONS,
                response_versions: <$response as Message>::VERSIONS,
                request_header: <$request as HeaderVersion>::header_version,
                response_header: <$response as HeaderVersion>::header_version,
            },)*
        ];
    };
}

requests! {
    ProduceRequest => ProduceResponse, Produce;
    FetchRequest => FetchResponse, Fetch;
    ListOffsetsRequest => ListOffsetsResponse, ListOffsets;
    // v4 is the first version with `allow_auto_topic_creation`: below it, asking about a missing
    // topic may create it on brokers configured to auto-create. A caller that means to send an
    // older version names it with `Connection::send_at_version`.
    MetadataRequest => MetadataResponse, Metadata (4..=13);
    OffsetCommitRequest => OffsetCommitResponse, OffsetCommit;
    OffsetFetchRequest => OffsetFetchResponse, OffsetFetch;
    FindCoordinatorRequest => FindCoordinatorResponse, FindCoordinator;
    JoinGroupRequest => JoinGroupResponse, JoinGroup;
    HeartbeatRequest => HeartbeatResponse, Heartbeat;
    LeaveGroupRequest => LeaveGroupResponse, LeaveGroup;
    SyncGroupRequest => SyncGroupResponse, SyncGroup;
    DescribeGroupsRequest => DescribeGroupsResponse, DescribeGroups;
    ListGroupsRequest => ListGroupsResponse, ListGroups;
    SaslHandshakeRequest => SaslHandshakeResponse, SaslHandshake;
    // v3 is what a connection tries first (KIP-511: it carries the client software name); v0 is
    // the fallback every broker answers.
    ApiVersionsRequest => ApiVersionsResponse, ApiVersions (0..=3);
    CreateTopicsRequest => CreateTopicsResponse, CreateTopics;
    DeleteTopicsRequest => DeleteTopicsResponse, DeleteTopics;
    DeleteRecordsRequest => DeleteRecordsResponse, DeleteRecords;
    InitProducerIdRequest => InitProducerIdResponse, InitProducerId;
    OffsetForLeaderEpochRequest => OffsetForLeaderEpochResponse, OffsetForLeaderEpoch;
    AddPartitionsToTxnRequest => AddPartitionsToTxnResponse, AddPartitionsToTxn;
    AddOffsetsToTxnRequest => AddOffsetsToTxnResponse, AddOffsetsToTxn;
    EndTxnRequest => EndTxnResponse, EndTxn;
    WriteTxnMarkersRequest => WriteTxnMarkersResponse, WriteTxnMarkers;
    TxnOffsetCommitRequest => TxnOffsetCommitResponse, TxnOffsetCommit;
    DescribeAclsRequest => DescribeAclsResponse, DescribeAcls;
    CreateAclsRequest => CreateAclsResponse, CreateAcls;
    DeleteAclsRequest => DeleteAclsResponse, DeleteAcls;
    DescribeConfigsRequest => DescribeConfigsResponse, DescribeConfigs;
    AlterConfigsRequest => AlterConfigsResponse, AlterConfigs;
    AlterReplicaLogDirsRequest => AlterReplicaLogDirsResponse, AlterReplicaLogDirs;
    DescribeLogDirsRequest => DescribeLogDirsResponse, DescribeLogDirs;
    SaslAuthenticateRequest => SaslAuthenticateResponse, SaslAuthenticate;
    CreatePartitionsRequest => CreatePartitionsResponse, CreatePartitions;
    CreateDelegationTokenRequest => CreateDelegationTokenResponse, CreateDelegationToken;
    RenewDelegationTokenRequest => RenewDelegationTokenResponse, RenewDelegationToken;
    ExpireDelegationTokenRequest => ExpireDelegationTokenResponse, ExpireDelegationToken;
    DescribeDelegationTokenRequest => DescribeDelegationTokenResponse, DescribeDelegationToken;
    DeleteGroupsRequest => DeleteGroupsResponse, DeleteGroups;
    ElectLeadersRequest => ElectLeadersResponse, ElectLeaders;
    IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse, IncrementalAlterConfigs;
    AlterPartitionReassignmentsRequest => AlterPartitionReassignmentsResponse, AlterPartitionReassignments;
    ListPartitionReassignmentsRequest => ListPartitionReassignmentsResponse, ListPartitionReassignments;
    OffsetDeleteRequest => OffsetDeleteResponse, OffsetDelete;
    DescribeClientQuotasRequest => DescribeClientQuotasResponse, DescribeClientQuotas;
    AlterClientQuotasRequest => AlterClientQuotasResponse, AlterClientQuotas;
    DescribeUserScramCredentialsRequest => DescribeUserScramCredentialsResponse, DescribeUserScramCredentials;
    AlterUserScramCredentialsRequest => AlterUserScramCredentialsResponse, AlterUserScramCredentials;
    VoteRequest => VoteResponse, Vote;
    BeginQuorumEpochRequest => BeginQuorumEpochResponse, BeginQuorumEpoch;
    EndQuorumEpochRequest => EndQuorumEpochResponse, EndQuorumEpoch;
    DescribeQuorumRequest => DescribeQuorumResponse, DescribeQuorum;
    AlterPartitionRequest => AlterPartitionResponse, AlterPartition;
    UpdateFeaturesRequest => UpdateFeaturesResponse, UpdateFeatures;
    EnvelopeRequest => EnvelopeResponse, Envelope;
    FetchSnapshotRequest => FetchSnapshotResponse, FetchSnapshot;
    DescribeClusterRequest => DescribeClusterResponse, DescribeCluster;
    DescribeProducersRequest => DescribeProducersResponse, DescribeProducers;
    BrokerRegistrationRequest => BrokerRegistrationResponse, BrokerRegistration;
    BrokerHeartbeatRequest => BrokerHeartbeatResponse, BrokerHeartbeat;
    UnregisterBrokerRequest => UnregisterBrokerResponse, UnregisterBroker;
    DescribeTransactionsRequest => DescribeTransactionsResponse, DescribeTransactions;
    ListTransactionsRequest => ListTransactionsResponse, ListTransactions;
    AllocateProducerIdsRequest => AllocateProducerIdsResponse, AllocateProducerIds;
    ConsumerGroupHeartbeatRequest => ConsumerGroupHeartbeatResponse, ConsumerGroupHeartbeat;
    ConsumerGroupDescribeRequest => ConsumerGroupDescribeResponse, ConsumerGroupDescribe;
    ControllerRegistrationRequest => ControllerRegistrationResponse, ControllerRegistration;
    GetTelemetrySubscriptionsRequest => GetTelemetrySubscriptionsResponse, GetTelemetrySubscriptions;
    PushTelemetryRequest => PushTelemetryResponse, PushTelemetry;
    AssignReplicasToDirsRequest => AssignReplicasToDirsResponse, AssignReplicasToDirs;
    ListConfigResourcesRequest => ListConfigResourcesResponse, ListConfigResources;
    DescribeTopicPartitionsRequest => DescribeTopicPartitionsResponse, DescribeTopicPartitions;
    ShareGroupHeartbeatRequest => ShareGroupHeartbeatResponse, ShareGroupHeartbeat;
    ShareGroupDescribeRequest => ShareGroupDescribeResponse, ShareGroupDescribe;
    ShareFetchRequest => ShareFetchResponse, ShareFetch;
    ShareAcknowledgeRequest => ShareAcknowledgeResponse, ShareAcknowledge;
    AddRaftVoterRequest => AddRaftVoterResponse, AddRaftVoter;
    RemoveRaftVoterRequest => RemoveRaftVoterResponse, RemoveRaftVoter;
    UpdateRaftVoterRequest => UpdateRaftVoterResponse, UpdateRaftVoter;
    InitializeShareGroupStateRequest => InitializeShareGroupStateResponse, InitializeShareGroupState;
    ReadShareGroupStateRequest => ReadShareGroupStateResponse, ReadShareGroupState;
    WriteShareGroupStateRequest => WriteShareGroupStateResponse, WriteShareGroupState;
    DeleteShareGroupStateRequest => DeleteShareGroupStateResponse, DeleteShareGroupState;
    ReadShareGroupStateSummaryRequest => ReadShareGroupStateSummaryResponse, ReadShareGroupStateSummary;
    DescribeShareGroupOffsetsRequest => DescribeShareGroupOffsetsResponse, DescribeShareGroupOffsets;
    AlterShareGroupOffsetsRequest => AlterShareGroupOffsetsResponse, AlterShareGroupOffsets;
    DeleteShareGroupOffsetsRequest => DeleteShareGroupOffsetsResponse, DeleteShareGroupOffsets;
}

/// One [`Request`] implementation as the codec describes its request and response types.
#[cfg(test)]
struct Pairing {
    key: ApiKey,
    name: &'static str,
    request_versions: VersionRange,
    response_versions: VersionRange,
    request_header: fn(i16) -> i16,
    response_header: fn(i16) -> i16,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe<R: Request>() -> (i16, &'static str, i16, i16) {
        (
            R::KEY as i16,
            R::NAME,
            R::CLIENT_VERSIONS.min,
            R::CLIENT_VERSIONS.max,
        )
    }

    #[test]
    fn keys_names_and_client_versions() {
        let cases = [
            (describe::<ApiVersionsRequest>(), (18, "ApiVersions", 0, 3)),
            (describe::<MetadataRequest>(), (3, "Metadata", 4, 13)),
            (describe::<FetchRequest>(), (1, "Fetch", 4, 18)),
            (
                describe::<OffsetForLeaderEpochRequest>(),
                (23, "OffsetForLeaderEpoch", 2, 4),
            ),
            (
                describe::<CreateTopicsRequest>(),
                (19, "CreateTopics", 2, 7),
            ),
            (
                describe::<DeleteTopicsRequest>(),
                (20, "DeleteTopics", 1, 6),
            ),
            (
                describe::<DescribeLogDirsRequest>(),
                (35, "DescribeLogDirs", 1, 4),
            ),
            (
                describe::<CreatePartitionsRequest>(),
                (37, "CreatePartitions", 0, 3),
            ),
            (
                describe::<ElectLeadersRequest>(),
                (43, "ElectLeaders", 0, 2),
            ),
            (
                describe::<AlterPartitionReassignmentsRequest>(),
                (45, "AlterPartitionReassignments", 0, 1),
            ),
            (
                describe::<ListPartitionReassignmentsRequest>(),
                (46, "ListPartitionReassignments", 0, 0),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn every_request_type_is_paired_with_its_own_api() {
        assert_eq!(ALL.len(), 87, "every request kafka-protocol implements");
        for pairing in ALL {
            let name = pairing.name;
            assert_eq!(format!("{:?}", pairing.key), name);
            let versions = pairing.request_versions;
            // Every version a request may be sent at has a response that decodes.
            let response = pairing.response_versions;
            assert!(
                response.min <= versions.min && versions.max <= response.max,
                "{name}: request {versions}, response {response}"
            );
            // The codec derives header versions from the key; a type paired with the wrong
            // key disagrees with it at some version (flexible versions start at different
            // versions for different APIs).
            for version in versions.min..=versions.max {
                assert_eq!(
                    (pairing.request_header)(version),
                    pairing.key.request_header_version(version),
                    "{name} v{version} request header"
                );
                assert_eq!(
                    (pairing.response_header)(version),
                    pairing.key.response_header_version(version),
                    "{name} v{version} response header"
                );
            }
        }
    }
}
