//! OffsetForLeaderEpoch (API 23, KIP-101 / KIP-279 / KIP-320): where the log of a given leader
//! epoch ends on the leader. A follower asks it before fetching from a new leader, with its own
//! latest epoch, and truncates whatever it holds past the answer; a consumer asks it after a
//! leader change to detect that its position was truncated away.
//!
//! The answer is the largest epoch at or below the one asked for that this log holds, and the
//! first offset of the next epoch (the log end for the latest); an epoch older than any in the
//! log answers -1 / -1 (UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET). Only the leader answers, and
//! only for the leader epoch the requester believes current (KIP-320 fencing).

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, RequestHeader,
};

use super::fetch::epoch_error;
use crate::capabilities::HostedPartitions;

pub async fn handle(
    replicas: &impl HostedPartitions,
    _header: &RequestHeader,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    answer(
                        replicas,
                        &name,
                        p.partition,
                        p.current_leader_epoch,
                        p.leader_epoch,
                    )
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

fn answer(
    replicas: &impl HostedPartitions,
    topic: &str,
    index: i32,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> EpochEndOffset {
    let response = EpochEndOffset::default()
        .with_partition(index)
        .with_leader_epoch(-1)
        .with_end_offset(-1);
    let partition = match replicas.leader_partition(topic, index) {
        Ok(partition) => partition,
        Err(error) => return response.with_error_code(error.code()),
    };
    if let Some(error) = epoch_error(current_leader_epoch, partition.leader_epoch()) {
        return response.with_error_code(error.code());
    }
    match partition.log().end_offset_for_epoch(leader_epoch) {
        Some((epoch, end_offset)) => response
            .with_leader_epoch(epoch)
            .with_end_offset(end_offset),
        None => response,
    }
}
