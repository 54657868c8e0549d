//! CreatePartitions: grow a topic's partition count (never shrink), optionally with explicit
//! replica assignments for the new partitions.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse, RequestHeader};

use super::str_bytes;
use crate::broker::Broker;
use crate::errors::controller_failure;

pub async fn handle(
    broker: &Broker,
    _header: &RequestHeader,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let names: Vec<_> = request.topics.iter().map(|t| t.name.clone()).collect();
    let requests = request
        .topics
        .iter()
        .map(|t| {
            let assignments = t.assignments.as_ref().map(|list| {
                list.iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
            (t.name.0.to_string(), t.count, assignments)
        })
        .collect();
    let results = broker
        .controller
        .create_partitions(requests, request.validate_only)
        .await;
    if !request.validate_only {
        broker.publish_metadata().await;
    }
    let results = names
        .into_iter()
        .zip(results)
        .map(|(name, result)| {
            let response = CreatePartitionsTopicResult::default().with_name(name);
            match result {
                Ok(()) => response,
                Err(error) => {
                    let (code, message) = controller_failure(&error);
                    response
                        .with_error_code(code)
                        .with_error_message(message.map(str_bytes))
                }
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
