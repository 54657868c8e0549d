//! DescribeConfigs: a topic's effective configs with their source (topic override, broker
//! `log.*` setting, or Kafka default), or this broker's configs: static ones read-only, the
//! replication throttles with their dynamic value when one is set (on this broker, else
//! cluster-wide), or, for the BROKER resource named "", the values set cluster-wide.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse, RequestHeader};
use strom_metadata::DynamicLevel;
use strom_metadata::broker_config::dynamic_broker_config_def;
use strom_metadata::topic_config::ConfigDef;

use super::str_bytes;
use crate::capabilities::MetadataView;
use crate::config::{BROKER_KEYS, BrokerProps};
use crate::topic_config::{ConfigSource, effective_topic_configs};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's DescribeConfigs config types (v3+).
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_BOOLEAN: i8 = 1;

/// Kafka's `DYNAMIC_BROKER_CONFIG` source: set for this broker at run time.
const DYNAMIC_BROKER_CONFIG: i8 = 2;
/// Kafka's `DYNAMIC_DEFAULT_BROKER_CONFIG` source: set for every broker at run time.
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 4;

pub async fn handle(
    metadata: &impl MetadataView,
    props: &BrokerProps,
    _header: &RequestHeader,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let image = metadata.image();
    let node_id = metadata.node_id();
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let keys: Option<Vec<String>> = resource
                .configuration_keys
                .map(|keys| keys.iter().map(ToString::to_string).collect());
            let wanted = |key: &str| keys.as_ref().is_none_or(|k| k.iter().any(|w| w == key));
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match resource.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = image.topic(&name) else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(format!(
                                "topic {name} does not exist"
                            ))));
                    };
                    let configs = effective_topic_configs(props, &topic.configs)
                        .into_iter()
                        .filter(|c| wanted(c.def.name))
                        .map(|c| {
                            let synonyms = if request.include_synonyms {
                                topic_synonyms(props, c.def, &topic.configs)
                            } else {
                                Vec::new()
                            };
                            DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(c.def.name))
                                .with_value(Some(str_bytes(c.value)))
                                .with_config_source(c.source as i8)
                                .with_is_sensitive(c.def.sensitive)
                                .with_config_type(topic_config_type(c.def))
                                .with_synonyms(synonyms)
                                .with_documentation(
                                    request.include_documentation.then(|| str_bytes(c.def.doc)),
                                )
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_BROKER if name.is_empty() => {
                    // Kafka's default broker resource: only the values set cluster-wide.
                    let configs = image
                        .broker_default_config()
                        .iter()
                        .filter(|(key, _)| wanted(key))
                        .map(|(key, value)| {
                            DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(key.clone()))
                                .with_value(Some(str_bytes(value.clone())))
                                .with_config_source(DYNAMIC_DEFAULT_BROKER_CONFIG)
                                .with_config_type(broker_config_type(key))
                        })
                        .collect();
                    result.with_configs(configs)
                }
                RESOURCE_BROKER => {
                    if name != node_id.to_string() {
                        return result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(format!(
                                "broker {name} is not this broker ({node_id})"
                            ))));
                    }
                    let defaults = BrokerProps::default();
                    let configs = BROKER_KEYS
                        .iter()
                        .filter(|key| wanted(key))
                        .filter_map(|key| {
                            if dynamic_broker_config_def(key).is_some()
                                && let Some((value, level)) =
                                    image.dynamic_broker_value(node_id, key)
                            {
                                let source = match level {
                                    DynamicLevel::Broker => DYNAMIC_BROKER_CONFIG,
                                    DynamicLevel::ClusterDefault => DYNAMIC_DEFAULT_BROKER_CONFIG,
                                };
                                return Some(
                                    DescribeConfigsResourceResult::default()
                                        .with_name(str_bytes(*key))
                                        .with_value(Some(str_bytes(value.to_owned())))
                                        .with_config_source(source)
                                        .with_config_type(broker_config_type(key)),
                                );
                            }
                            let value = props.get(key)?;
                            let source = if defaults.get(key).as_deref() == Some(value.as_str()) {
                                ConfigSource::Default
                            } else {
                                ConfigSource::StaticBroker
                            };
                            Some(
                                DescribeConfigsResourceResult::default()
                                    .with_name(str_bytes(*key))
                                    .with_value(Some(str_bytes(value)))
                                    .with_read_only(dynamic_broker_config_def(key).is_none())
                                    .with_config_source(source as i8)
                                    .with_config_type(broker_config_type(key)),
                            )
                        })
                        .collect();
                    result.with_configs(configs)
                }
                _ => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(format!(
                        "resource type {} is not supported",
                        resource.resource_type
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// The chain of places a topic config's value can come from, most specific first (KIP-226).
fn topic_synonyms(
    props: &BrokerProps,
    def: &ConfigDef,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Vec<DescribeConfigsSynonym> {
    let mut out = Vec::new();
    if let Some(value) = overrides.get(def.name) {
        out.push(
            DescribeConfigsSynonym::default()
                .with_name(str_bytes(def.name))
                .with_value(Some(str_bytes(value.clone())))
                .with_source(ConfigSource::Topic as i8),
        );
    }
    if let (Some(key), Some(value)) = (broker_key_for(def.name), props.topic_default(def.name))
        && value != def.default
    {
        out.push(
            DescribeConfigsSynonym::default()
                .with_name(str_bytes(key))
                .with_value(Some(str_bytes(value)))
                .with_source(ConfigSource::StaticBroker as i8),
        );
    }
    out.push(
        DescribeConfigsSynonym::default()
            .with_name(str_bytes(broker_key_for(def.name).unwrap_or(def.name)))
            .with_value(Some(str_bytes(def.default)))
            .with_source(ConfigSource::Default as i8),
    );
    out
}

fn broker_key_for(topic_key: &str) -> Option<&'static str> {
    Some(match topic_key {
        "retention.ms" => "log.retention.ms",
        "retention.bytes" => "log.retention.bytes",
        "segment.bytes" => "log.segment.bytes",
        "segment.ms" => "log.roll.ms",
        "max.message.bytes" => "message.max.bytes",
        "message.timestamp.type" => "log.message.timestamp.type",
        "message.timestamp.before.max.ms" => "log.message.timestamp.before.max.ms",
        "message.timestamp.after.max.ms" => "log.message.timestamp.after.max.ms",
        "min.insync.replicas" => "min.insync.replicas",
        "flush.messages" => "log.flush.interval.messages",
        "flush.ms" => "log.flush.interval.ms",
        "unclean.leader.election.enable" => "unclean.leader.election.enable",
        _ => return None,
    })
}

fn topic_config_type(def: &ConfigDef) -> i8 {
    def.kind.kafka_config_type()
}

fn broker_config_type(key: &str) -> i8 {
    match key {
        "auto.create.topics.enable"
        | "unclean.leader.election.enable"
        | "auto.leader.rebalance.enable" => TYPE_BOOLEAN,
        "log.message.timestamp.type"
        | "broker.rack"
        | "max.connections.per.ip.overrides"
        | "replica.selector.class" => TYPE_STRING,
        "num.partitions"
        | "min.insync.replicas"
        | "message.max.bytes"
        | "socket.request.max.bytes"
        | "max.connections"
        | "max.connections.per.ip"
        | "fetch.max.bytes"
        | "offsets.topic.num.partitions"
        | "replica.fetch.max.bytes"
        | "replica.fetch.response.max.bytes"
        | "replica.fetch.min.bytes"
        | "replica.fetch.backoff.ms"
        | "leader.imbalance.per.broker.percentage"
        | "transaction.state.log.num.partitions"
        | "transaction.state.log.min.isr"
        | "transaction.state.log.segment.bytes"
        | "transaction.max.timeout.ms"
        | "transactional.id.expiration.ms" => TYPE_INT,
        "default.replication.factor"
        | "offsets.topic.replication.factor"
        | "transaction.state.log.replication.factor" => 4,
        _ => TYPE_LONG,
    }
}
