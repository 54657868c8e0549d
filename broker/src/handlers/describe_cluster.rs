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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::fakes::{FakeMetadata, broker};

    #[tokio::test]
    async fn fenced_brokers_are_listed_only_when_asked_for_and_flagged() {
        let metadata = FakeMetadata::new(
            1,
            3,
            &[
                broker(1, "b1", 9092, Some("a"), false),
                broker(2, "b2", 9093, Some("b"), true),
                broker(3, "b3", 9094, None, false),
            ],
        );
        let header = RequestHeader::default().with_request_api_version(2);
        let listed = |include_fenced_brokers: bool| {
            let request = DescribeClusterRequest::default()
                .with_endpoint_type(1)
                .with_include_fenced_brokers(include_fenced_brokers);
            handle(&metadata, &header, request)
        };

        let response = listed(false).await;
        assert_eq!(response.error_code, 0);
        assert_eq!(response.controller_id.0, 3);
        assert_eq!(response.cluster_id.as_str(), "fake-cluster");
        let brokers: Vec<_> = response
            .brokers
            .iter()
            .map(|b| (b.broker_id.0, b.port, b.is_fenced))
            .collect();
        assert_eq!(brokers, vec![(1, 9092, false), (3, 9094, false)]);

        let response = listed(true).await;
        let brokers: Vec<_> = response
            .brokers
            .iter()
            .map(|b| {
                (
                    b.broker_id.0,
                    b.rack.as_ref().map(ToString::to_string),
                    b.is_fenced,
                )
            })
            .collect();
        assert_eq!(
            brokers,
            vec![
                (1, Some("a".to_owned()), false),
                (2, Some("b".to_owned()), true),
                (3, None, false)
            ]
        );
    }
}
