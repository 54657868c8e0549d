//! CreateTopics: the controller validates and commits; the response reports (v5+) the topic's
//! partitions, replication factor and effective configs, and (v7+) its id. Internal topics
//! (`__consumer_offsets`, `__transaction_state`) are refused with INVALID_REQUEST: the broker
//! creates them itself, with the partition count and configs its coordinators rely on.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, RequestHeader};
use strom_metadata::CreateTopicRequest;

use super::metadata::is_internal;
use super::str_bytes;
use crate::capabilities::{HostedPartitions, MetadataView};
use crate::config::BrokerProps;
use crate::controller_channel::ControllerChannel;
use crate::errors::controller_failure;
use crate::topic_config::effective_topic_configs;

pub async fn handle(
    metadata: &impl MetadataView,
    controller: &impl ControllerChannel,
    replicas: &impl HostedPartitions,
    props: &BrokerProps,
    header: &RequestHeader,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let names: Vec<_> = request.topics.iter().map(|t| t.name.clone()).collect();
    let requested_configs: BTreeMap<String, BTreeMap<String, String>> = request
        .topics
        .iter()
        .map(|t| {
            let configs = t
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            (t.name.0.to_string(), configs)
        })
        .collect();
    let requests = request
        .topics
        .into_iter()
        .filter(|topic| !is_internal(&topic.name.0))
        .map(|topic| CreateTopicRequest {
            name: topic.name.0.to_string(),
            num_partitions: (topic.num_partitions != -1).then_some(topic.num_partitions),
            replication_factor: (topic.replication_factor != -1)
                .then_some(topic.replication_factor),
            assignments: (!topic.assignments.is_empty()).then(|| {
                topic
                    .assignments
                    .iter()
                    .map(|a| {
                        (
                            a.partition_index,
                            a.broker_ids.iter().map(|b| b.0).collect(),
                        )
                    })
                    .collect::<Vec<_>>()
            }),
            configs: requested_configs
                .get(topic.name.0.as_str())
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    let results = controller
        .create_topics(requests, request.validate_only)
        .await;
    if !request.validate_only {
        replicas.publish_metadata().await;
    }
    let image_after = metadata.image();
    let mut results = results.into_iter();
    let topics = names
        .into_iter()
        .filter_map(|name| {
            let response = CreatableTopicResult::default().with_name(name.clone());
            if is_internal(&name.0) {
                return Some(
                    response
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes(format!(
                            "{} is an internal topic: the broker creates it itself, with the partition count and configs its coordinator relies on",
                            name.0
                        ))))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1),
                );
            }
            Some(match results.next()?.result {
                Ok(created) if !replicas.offline_partitions(&name.0).is_empty() => {
                    // Created in the metadata, but this broker cannot open some of its logs (a
                    // failing disk, no file descriptors left): not a success for the client.
                    let offline = replicas.offline_partitions(&name.0);
                    response
                        .with_error_code(ResponseError::KafkaStorageError.code())
                        .with_error_message(Some(str_bytes(format!(
                            "the topic was created, but partitions {offline:?} cannot be opened on broker {}; see its log",
                            metadata.node_id()
                        ))))
                        .with_topic_id(created.topic_id)
                        .with_num_partitions(created.num_partitions)
                        .with_replication_factor(created.replication_factor)
                }
                Ok(created) => {
                    // Validate-only creations are not in the image: their explicit configs are
                    // the request's own.
                    let explicit = image_after
                        .topic(&name.0)
                        .map(|t| t.configs.clone())
                        .unwrap_or_else(|| {
                            requested_configs
                                .get(name.0.as_str())
                                .cloned()
                                .unwrap_or_default()
                        });
                    let configs = effective_topic_configs(props, &explicit)
                        .into_iter()
                        .map(|c| {
                            CreatableTopicConfigs::default()
                                .with_name(str_bytes(c.def.name))
                                .with_value(Some(str_bytes(c.value)))
                                .with_config_source(c.source as i8)
                                .with_is_sensitive(c.def.sensitive)
                        })
                        .collect();
                    response
                        .with_topic_id(created.topic_id)
                        .with_num_partitions(created.num_partitions)
                        .with_replication_factor(created.replication_factor)
                        // Configs are reported from v5 on (KIP-525).
                        .with_configs((header.request_api_version >= 5).then_some(configs))
                }
                Err(error) => {
                    let (code, message) = controller_failure(&error);
                    response
                        .with_error_code(code)
                        .with_error_message(message.map(str_bytes))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                }
            })
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}
