//! AlterConfigs (legacy): replaces a resource's whole set of dynamic configs; keys left out go
//! back to their defaults. IncrementalAlterConfigs is the API to prefer.

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, RequestHeader};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::str_bytes;
use crate::broker::Broker;
use crate::errors::controller_failure;
use kafka_protocol::error::ResponseError;
use strom_metadata::ConfigResource;

/// The metadata resource named by a (type, name) pair from a request.
pub fn config_resource(resource_type: i8, name: &str) -> Result<ConfigResource, String> {
    match resource_type {
        RESOURCE_TOPIC => Ok(ConfigResource::Topic(name.to_string())),
        RESOURCE_BROKER => name
            .parse::<i32>()
            .map(ConfigResource::Broker)
            .map_err(|_| format!("broker resource name {name:?} is not a broker id")),
        other => Err(format!("resource type {other} is not supported")),
    }
}

pub async fn handle(
    broker: &Broker,
    _header: &RequestHeader,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let target = match config_resource(resource.resource_type, &resource.resource_name) {
            Ok(target) => target,
            Err(message) => {
                responses.push(
                    response
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(message))),
                );
                continue;
            }
        };
        let configs = resource
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        let result = broker
            .controller
            .alter_configs(target, configs, request.validate_only)
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
    AlterConfigsResponse::default().with_responses(responses)
}
