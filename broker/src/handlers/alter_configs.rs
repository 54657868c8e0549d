//! AlterConfigs (legacy): replaces a resource's whole set of dynamic configs; keys left out go
//! back to their defaults. IncrementalAlterConfigs is the API to prefer; both share the
//! resource naming and error reporting here.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use strom_metadata::{ConfigResource, ControllerError};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::str_bytes;
use crate::capabilities::HostedPartitions;
use crate::controller_channel::ControllerChannel;
use crate::errors::controller_failure;

/// The metadata resource named by a (type, name) pair from a request. A BROKER resource named
/// "" is Kafka's default broker resource: the configs every broker takes unless it has its own.
pub fn config_resource(resource_type: i8, name: &str) -> Result<ConfigResource, String> {
    match resource_type {
        RESOURCE_TOPIC => Ok(ConfigResource::Topic(name.to_string())),
        RESOURCE_BROKER if name.is_empty() => Ok(ConfigResource::BrokerDefault),
        RESOURCE_BROKER => name
            .parse::<i32>()
            .map(ConfigResource::Broker)
            .map_err(|_| format!("broker resource name {name:?} is not a broker id")),
        other => Err(format!("resource type {other} is not supported")),
    }
}

/// What one resource's alteration answers: an error code (0 = done) and a message.
pub type Outcome = (i16, Option<StrBytes>);

/// A request the broker could not even hand to the controller.
pub fn invalid_request(message: String) -> Outcome {
    (
        ResponseError::InvalidRequest.code(),
        Some(str_bytes(message)),
    )
}

/// The controller's answer for one resource.
pub fn controller_outcome(result: Result<(), ControllerError>) -> Outcome {
    match result {
        Ok(()) => (0, None),
        Err(error) => {
            let (code, message) = controller_failure(&error);
            (code, message.map(str_bytes))
        }
    }
}

pub async fn handle(
    controller: &impl ControllerChannel,
    replicas: &impl HostedPartitions,
    _header: &RequestHeader,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let outcome = match config_resource(resource.resource_type, &resource.resource_name) {
            Err(message) => invalid_request(message),
            Ok(target) => {
                let configs = resource
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                    .collect();
                controller_outcome(
                    controller
                        .alter_configs(target, configs, request.validate_only)
                        .await,
                )
            }
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
    AlterConfigsResponse::default().with_responses(responses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_resources_name_a_broker_id_or_the_cluster_wide_defaults() {
        assert_eq!(
            config_resource(RESOURCE_BROKER, "3"),
            Ok(ConfigResource::Broker(3))
        );
        assert_eq!(
            config_resource(RESOURCE_BROKER, ""),
            Ok(ConfigResource::BrokerDefault)
        );
        assert_eq!(
            config_resource(RESOURCE_TOPIC, ""),
            Ok(ConfigResource::Topic(String::new()))
        );
        let refused = config_resource(RESOURCE_BROKER, "b1").expect_err("not an id");
        assert!(refused.contains("not a broker id"), "{refused}");
    }
}
