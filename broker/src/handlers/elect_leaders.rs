//! ElectLeaders (API 43, KIP-460): a preferred election (type 0) gives leadership back to
//! each partition's first replica when it is live and in sync; an unclean one (type 1) elects
//! a live replica outside the ISR for partitions that have no leader. Null partitions mean
//! every partition; the answer then lists only those where an election happened or failed.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, RequestHeader};

use super::{str_bytes, topic_name};
use crate::capabilities::HostedPartitions;
use crate::controller_channel::ControllerChannel;
use crate::errors::controller_failure;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub async fn handle(
    controller: &impl ControllerChannel,
    replicas: &impl HostedPartitions,
    header: &RequestHeader,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    // v0 has no election type: it is always preferred.
    let election_type = if header.request_api_version == 0 {
        PREFERRED
    } else {
        request.election_type
    };
    if election_type != PREFERRED && election_type != UNCLEAN {
        return ElectLeadersResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code());
    }
    let partitions = request.topic_partitions.map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.iter().map(move |p| (name.clone(), *p))
            })
            .collect()
    });
    let outcomes = match controller
        .elect_leaders(election_type == PREFERRED, partitions)
        .await
    {
        Ok(outcomes) => outcomes,
        Err(error) => {
            let (code, _) = controller_failure(&error);
            return ElectLeadersResponse::default().with_error_code(code);
        }
    };
    replicas.publish_metadata().await;
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for (topic, partition, result) in outcomes {
        let mut item = PartitionResult::default().with_partition_id(partition);
        if let Err(error) = result {
            let (code, message) = controller_failure(&error);
            item = item
                .with_error_code(code)
                .with_error_message(message.map(str_bytes));
        }
        by_topic.entry(topic).or_default().push(item);
    }
    ElectLeadersResponse::default().with_replica_election_results(
        by_topic
            .into_iter()
            .map(|(topic, partition_result)| {
                ReplicaElectionResult::default()
                    .with_topic(topic_name(&topic))
                    .with_partition_result(partition_result)
            })
            .collect(),
    )
}
