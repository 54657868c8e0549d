//! CreatePartitions: grow a topic's partition count (never shrink), optionally with explicit
//! replica assignments for the new partitions. Internal topics are refused: more
//! `__consumer_offsets` partitions would rehash groups onto partitions that hold none of their
//! committed offsets.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, RequestHeader};

use super::metadata::is_internal;
use super::str_bytes;
use crate::capabilities::HostedPartitions;
use crate::controller_channel::ControllerChannel;
use crate::errors::controller_failure;

pub async fn handle(
    controller: &impl ControllerChannel,
    replicas: &impl HostedPartitions,
    _header: &RequestHeader,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let names: Vec<_> = request.topics.iter().map(|t| t.name.clone()).collect();
    let requests = request
        .topics
        .iter()
        .filter(|t| !is_internal(&t.name.0))
        .map(|t| {
            let assignments = t.assignments.as_ref().map(|list| {
                list.iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
            (t.name.0.to_string(), t.count, assignments)
        })
        .collect();
    let results = controller
        .create_partitions(requests, request.validate_only)
        .await;
    if !request.validate_only {
        replicas.publish_metadata().await;
    }
    let mut results = results.into_iter();
    let results = names
        .into_iter()
        .filter_map(|name| {
            if is_internal(&name.0) {
                let message = format!(
                    "{} is an internal topic: more partitions would move groups onto partitions without their committed offsets",
                    name.0
                );
                return Some(
                    CreatePartitionsTopicResult::default()
                        .with_name(name)
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(message))),
                );
            }
            let response = CreatePartitionsTopicResult::default().with_name(name);
            Some(match results.next()? {
                Ok(()) => response,
                Err(error) => {
                    let (code, message) = controller_failure(&error);
                    response
                        .with_error_code(code)
                        .with_error_message(message.map(str_bytes))
                }
            })
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
