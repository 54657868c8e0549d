//! IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT on individual keys,
//! leaving every other key as it is.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader,
};
use strom_metadata::ConfigOp;

use super::alter_configs::config_resource;
use super::str_bytes;
use crate::broker::Broker;
use crate::errors::controller_failure;

pub async fn handle(
    broker: &Broker,
    _header: &RequestHeader,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let invalid = |message: String| {
            response
                .clone()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(str_bytes(message)))
        };
        let target = match config_resource(resource.resource_type, &resource.resource_name) {
            Ok(target) => target,
            Err(message) => {
                responses.push(invalid(message));
                continue;
            }
        };
        let ops: Result<Vec<ConfigOp>, String> = resource
            .configs
            .iter()
            .map(|c| {
                let key = c.name.to_string();
                let value = c.value.as_ref().map(ToString::to_string);
                match (c.config_operation, value) {
                    (0, Some(v)) => Ok(ConfigOp::Set(key, v)),
                    (1, _) => Ok(ConfigOp::Delete(key)),
                    (2, Some(v)) => Ok(ConfigOp::Append(key, v)),
                    (3, Some(v)) => Ok(ConfigOp::Subtract(key, v)),
                    (0 | 2 | 3, None) => Err(format!("{key}: operation needs a value")),
                    (op, _) => Err(format!("{key}: unknown operation {op}")),
                }
            })
            .collect();
        let ops = match ops {
            Ok(ops) => ops,
            Err(message) => {
                responses.push(invalid(message));
                continue;
            }
        };
        let result = broker
            .controller
            .incremental_alter_configs(target, ops, request.validate_only)
            .await;
        responses.push(match result {
            Ok(()) => response,
            Err(error) => {
                let (code, message) = controller_failure(&error);
                response
                    .with_error_code(code)
                    .with_error_message(message.map(str_bytes))
            }
        });
    }
    if !request.validate_only {
        broker.publish_metadata();
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
