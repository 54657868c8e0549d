//! AlterPartitionReassignments (API 45, KIP-455): move partitions to new replica sets, or
//! cancel a move (null replicas). The controller adds the target replicas, which catch up as
//! followers; once they are in sync it drops the replicas that leave and moves the leader if
//! it was one of them. Changing the replication factor this way is allowed (v1's
//! `allow_replication_factor_change` defaults to true, as in Kafka).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, RequestHeader,
};

use super::str_bytes;
use crate::capabilities::{HostedPartitions, MetadataView};
use crate::controller_channel::ControllerChannel;
use crate::errors::controller_failure;

pub async fn handle(
    metadata: &impl MetadataView,
    controller: &impl ControllerChannel,
    replicas: &impl HostedPartitions,
    _header: &RequestHeader,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let image = metadata.image();
    let mut targets = Vec::new();
    let mut slots = Vec::new();
    let mut responses: Vec<ReassignableTopicResponse> = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::new();
        for (p, partition) in topic.partitions.iter().enumerate() {
            let target = partition
                .replicas
                .as_ref()
                .map(|replicas| replicas.iter().map(|b| b.0).collect::<Vec<i32>>());
            // A change of the replication factor is refused only when the client says so.
            let changes_rf = target.as_ref().is_some_and(|target| {
                image
                    .partition(&name, partition.partition_index)
                    .is_some_and(|current| {
                        let original = current
                            .replicas
                            .len()
                            .saturating_sub(current.adding_replicas.len());
                        target.len() != original
                    })
            });
            let mut response = ReassignablePartitionResponse::default()
                .with_partition_index(partition.partition_index);
            if changes_rf && !request.allow_replication_factor_change {
                response = response
                    .with_error_code(ResponseError::InvalidReplicationFactor.code())
                    .with_error_message(Some(str_bytes(
                        "the reassignment changes the replication factor and the request does not allow it",
                    )));
            } else {
                targets.push((name.clone(), partition.partition_index, target));
                slots.push((t, p));
            }
            partitions.push(response);
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    let results = controller.alter_partition_reassignments(targets).await;
    replicas.publish_metadata().await;
    for ((t, p), result) in slots.into_iter().zip(results) {
        if let Err(error) = result {
            let (code, message) = controller_failure(&error);
            if let Some(response) = responses
                .get_mut(t)
                .and_then(|topic| topic.partitions.get_mut(p))
            {
                response.error_code = code;
                response.error_message = message.map(str_bytes);
            }
        }
    }
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_responses(responses)
}
