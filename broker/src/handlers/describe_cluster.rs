//! DescribeCluster (KIP-700): the registered, unfenced brokers and the active controller; with
//! v2's `include_fenced_brokers` (KIP-1073) the fenced ones too, flagged. Controller endpoints
//! (KIP-919's endpoint type 2) are not served on the Kafka listener.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, RequestHeader,
};

use super::str_bytes;
use crate::capabilities::MetadataView;

/// Every cluster operation bit (KIP-430), reported when requested: there is no authorizer yet.
const ALL_CLUSTER_OPERATIONS: i32 = 0b1111_1111_1000;

pub async fn handle(
    metadata: &impl MetadataView,
    _header: &RequestHeader,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    /// KIP-919's endpoint type of brokers; 2 asks for controllers.
    const BROKER_ENDPOINTS: i8 = 1;
    if request.endpoint_type != BROKER_ENDPOINTS {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::MismatchedEndpointType.code())
            .with_error_message(Some(str_bytes(
                "This listener serves broker endpoints only (endpoint type 1).",
            )))
            .with_endpoint_type(request.endpoint_type);
    }
    let image = metadata.image();
    let brokers = image
        .brokers
        .values()
        .filter(|b| request.include_fenced_brokers || !b.fenced)
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.node_id))
                .with_host(str_bytes(b.host.clone()))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.clone().map(str_bytes))
                .with_is_fenced(b.fenced)
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(image.cluster_id.clone()))
        .with_controller_id(BrokerId(metadata.controller_id()))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            ALL_CLUSTER_OPERATIONS
        } else {
            i32::MIN
        })
}
