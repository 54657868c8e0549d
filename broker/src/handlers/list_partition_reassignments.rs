//! ListPartitionReassignments (API 46, KIP-455): the reassignments in progress, with each
//! partition's replicas and those being added and removed, from the active controller.

use std::collections::BTreeMap;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, RequestHeader,
};

use super::{str_bytes, topic_name};
use crate::controller_channel::ControllerChannel;
use crate::errors::controller_failure;

pub async fn handle(
    controller: &impl ControllerChannel,
    _header: &RequestHeader,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let partitions = request.topics.map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partition_indexes.iter().map(move |p| (name.clone(), *p))
            })
            .collect()
    });
    let listed = match controller.list_partition_reassignments(partitions).await {
        Ok(listed) => listed,
        Err(error) => {
            let (code, message) = controller_failure(&error);
            return ListPartitionReassignmentsResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(str_bytes));
        }
    };
    let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for r in listed {
        by_topic.entry(r.topic.clone()).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(r.partition)
                .with_replicas(ids(&r.replicas))
                .with_adding_replicas(ids(&r.adding_replicas))
                .with_removing_replicas(ids(&r.removing_replicas)),
        );
    }
    ListPartitionReassignmentsResponse::default().with_topics(
        by_topic
            .into_iter()
            .map(|(name, partitions)| {
                OngoingTopicReassignment::default()
                    .with_name(topic_name(&name))
                    .with_partitions(partitions)
            })
            .collect(),
    )
}
