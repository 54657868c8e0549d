//! [`AdminRequest`]: the requests this client can send, with their response type and the
//! versions this client implements.
//!
//! `kafka_protocol::protocol::Request` is only implemented when that crate is built with both
//! its `client` and `broker` features; a client needs only `client` (encode requests, decode
//! responses), so this crate carries its own trait over the same message types.

use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse, ApiKey, ApiVersionsRequest, ApiVersionsResponse,
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse, ElectLeadersRequest,
    ElectLeadersResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    ListOffsetsRequest, ListOffsetsResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, VersionRange};

/// A Kafka request this client can send, tied to its response type.
///
/// The version used on a connection is the highest one in both [`AdminRequest::CLIENT_VERSIONS`]
/// and the range the broker advertised in ApiVersions.
pub trait AdminRequest: Encodable + HeaderVersion + Message + Send + Sync {
    /// The API key sent in the request header.
    const KEY: ApiKey;
    /// The API's name, as Kafka spells it, for errors and logs.
    const NAME: &'static str;
    /// The versions whose fields this client fills in and reads back. Defaults to every version
    /// `kafka-protocol` can encode; APIs whose semantics change across versions narrow it.
    const CLIENT_VERSIONS: VersionRange = <Self as Message>::VERSIONS;
    /// The response to this request.
    type Response: Decodable + HeaderVersion + Message + Send;
}

macro_rules! admin_request {
    ($request:ty => $response:ty, $key:ident $(, $min:literal ..= $max:literal)?) => {
        impl AdminRequest for $request {
            const KEY: ApiKey = ApiKey::$key;
            const NAME: &'static str = stringify!($key);
            $(const CLIENT_VERSIONS: VersionRange = VersionRange { min: $min, max: $max };)?
            type Response = $response;
        }
    };
}

// v3 is what the client tries first (KIP-511: it carries the client software name); v0 is
// the fallback every broker answers.
admin_request!(ApiVersionsRequest => ApiVersionsResponse, ApiVersions, 0..=3);
// v4 is the first version with `allow_auto_topic_creation`: below it, asking about a missing
// topic may create it on brokers configured to auto-create.
admin_request!(MetadataRequest => MetadataResponse, Metadata, 4..=13);
admin_request!(CreateTopicsRequest => CreateTopicsResponse, CreateTopics);
admin_request!(DeleteTopicsRequest => DeleteTopicsResponse, DeleteTopics);
admin_request!(CreatePartitionsRequest => CreatePartitionsResponse, CreatePartitions);
admin_request!(DescribeConfigsRequest => DescribeConfigsResponse, DescribeConfigs);
admin_request!(IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse, IncrementalAlterConfigs);
admin_request!(AlterConfigsRequest => AlterConfigsResponse, AlterConfigs);
admin_request!(AlterPartitionReassignmentsRequest => AlterPartitionReassignmentsResponse, AlterPartitionReassignments);
admin_request!(ListPartitionReassignmentsRequest => ListPartitionReassignmentsResponse, ListPartitionReassignments);
admin_request!(DescribeClusterRequest => DescribeClusterResponse, DescribeCluster);
admin_request!(ElectLeadersRequest => ElectLeadersResponse, ElectLeaders);
admin_request!(DescribeLogDirsRequest => DescribeLogDirsResponse, DescribeLogDirs);
admin_request!(DeleteRecordsRequest => DeleteRecordsResponse, DeleteRecords);
admin_request!(ListOffsetsRequest => ListOffsetsResponse, ListOffsets);

#[cfg(test)]
mod tests {
    use super::*;

    fn key_and_name<R: AdminRequest>() -> (i16, &'static str, VersionRange) {
        (R::KEY as i16, R::NAME, R::CLIENT_VERSIONS)
    }

    #[test]
    fn keys_names_and_client_versions() {
        let cases = [
            (
                key_and_name::<ApiVersionsRequest>(),
                (18, "ApiVersions", 0, 3),
            ),
            (key_and_name::<MetadataRequest>(), (3, "Metadata", 4, 13)),
            (
                key_and_name::<CreateTopicsRequest>(),
                (19, "CreateTopics", 2, 7),
            ),
            (
                key_and_name::<DeleteTopicsRequest>(),
                (20, "DeleteTopics", 1, 6),
            ),
            (
                key_and_name::<CreatePartitionsRequest>(),
                (37, "CreatePartitions", 0, 3),
            ),
            (
                key_and_name::<DescribeConfigsRequest>(),
                (32, "DescribeConfigs", 1, 4),
            ),
            (
                key_and_name::<IncrementalAlterConfigsRequest>(),
                (44, "IncrementalAlterConfigs", 0, 1),
            ),
        ];
        for ((key, name, range), (want_key, want_name, min, max)) in cases {
            assert_eq!((key, name), (want_key, want_name));
            assert_eq!(range, VersionRange { min, max }, "{name}");
        }
    }
}
