//! DescribeQuorum (KIP-595, KIP-853's node listeners in v2): the metadata quorum's leader,
//! epoch, high watermark and how far each voter and observer has replicated. Answered by the
//! active controller, wherever the request lands.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, RequestHeader,
};
use strom_metadata::controller_ops::{QuorumDescription, QuorumReplica};

use super::{str_bytes, topic_name};
use crate::controller_channel::ControllerChannel;

/// The metadata log's topic and partition, as Kafka names them.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(
    controller: &impl ControllerChannel,
    _header: &RequestHeader,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let asks_for_metadata_log = request.topics.len() == 1
        && request.topics[0].topic_name.0.as_str() == METADATA_TOPIC
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    if !asks_for_metadata_log {
        return DescribeQuorumResponse::default()
            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
            .with_error_message(Some(str_bytes(format!(
                "DescribeQuorum describes only {METADATA_TOPIC}-0"
            ))));
    }
    match controller.describe_quorum().await {
        Ok(quorum) => response(&quorum),
        Err(error) => DescribeQuorumResponse::default()
            .with_error_code(error.kafka_error_code())
            .with_error_message(Some(str_bytes(error.client_message()))),
    }
}

fn response(quorum: &QuorumDescription) -> DescribeQuorumResponse {
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(quorum.leader_id))
        .with_leader_epoch(quorum.leader_epoch)
        .with_high_watermark(quorum.high_watermark)
        .with_current_voters(quorum.voters.iter().map(replica_state).collect())
        .with_observers(quorum.observers.iter().map(replica_state).collect());
    let nodes = quorum
        .voters
        .iter()
        .chain(&quorum.observers)
        .filter_map(|r| {
            let address = r.address.as_deref()?;
            let (host, port) = address.rsplit_once(':')?;
            let listener = Listener::default()
                .with_name(str_bytes("CONTROLLER"))
                .with_host(str_bytes(host.trim_matches(['[', ']'])))
                .with_port(port.parse().ok()?);
            Some(
                Node::default()
                    .with_node_id(BrokerId(r.node_id))
                    .with_listeners(vec![listener]),
            )
        })
        .collect();
    DescribeQuorumResponse::default()
        .with_topics(vec![
            TopicData::default()
                .with_topic_name(topic_name(METADATA_TOPIC))
                .with_partitions(vec![partition]),
        ])
        .with_nodes(nodes)
}

fn replica_state(replica: &QuorumReplica) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(BrokerId(replica.node_id))
        .with_log_end_offset(replica.log_end_offset)
        .with_last_fetch_timestamp(replica.last_fetch_timestamp)
        .with_last_caught_up_timestamp(replica.last_caught_up_timestamp)
}
