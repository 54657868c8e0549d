//! IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT on individual keys,
//! leaving every other key as it is.

use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, RequestHeader,
};
use strom_metadata::ConfigOp;

use super::alter_configs::{config_resource, controller_outcome, invalid_request};
use crate::capabilities::HostedPartitions;
use crate::controller_channel::ControllerChannel;

/// A request's operation as a controller operation (Kafka's op codes 0–3).
fn config_op(config: &AlterableConfig) -> Result<ConfigOp, String> {
    let key = config.name.to_string();
    let value = config.value.as_ref().map(ToString::to_string);
    match (config.config_operation, value) {
        (0, Some(v)) => Ok(ConfigOp::Set(key, v)),
        (1, _) => Ok(ConfigOp::Delete(key)),
        (2, Some(v)) => Ok(ConfigOp::Append(key, v)),
        (3, Some(v)) => Ok(ConfigOp::Subtract(key, v)),
        (0 | 2 | 3, None) => Err(format!("{key}: operation needs a value")),
        (op, _) => Err(format!("{key}: unknown operation {op}")),
    }
}

pub async fn handle(
    controller: &impl ControllerChannel,
    replicas: &impl HostedPartitions,
    _header: &RequestHeader,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let target = config_resource(resource.resource_type, &resource.resource_name);
        let ops: Result<Vec<ConfigOp>, String> = resource.configs.iter().map(config_op).collect();
        let outcome = match (target, ops) {
            (Err(message), _) | (_, Err(message)) => invalid_request(message),
            (Ok(target), Ok(ops)) => controller_outcome(
                controller
                    .incremental_alter_configs(target, ops, request.validate_only)
                    .await,
            ),
        };
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(outcome.0)
                .with_error_message(outcome.1),
        );
    }
    if !request.validate_only {
        replicas.publish_metadata().await;
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
