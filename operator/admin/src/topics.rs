//! The topic operations of [`BrokerAdmin`] on [`KafkaAdmin`]: one Kafka request each (two for
//! describe), read the way the Java admin client reads them.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    IncrementalAlterConfigsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::AdminRequest;
use crate::client::{KafkaAdmin, Target};
use crate::error::{AdminError, check};
use crate::topic_id::kafka_uuid_string;
use crate::{BrokerAdmin, ObservedTopic};

/// `ConfigResource.Type.TOPIC`.
const RESOURCE_TYPE_TOPIC: i8 = 2;
/// `DescribeConfigsResponse.ConfigSource.TOPIC_CONFIG`: set on the topic itself.
const CONFIG_SOURCE_DYNAMIC_TOPIC: i8 = 1;
/// `AlterConfigOp.OpType.SET` and `.DELETE` (KIP-339).
const CONFIG_OP_SET: i8 = 0;
const CONFIG_OP_DELETE: i8 = 1;
/// A controller-directed request is sent twice at most: once more after `NOT_CONTROLLER`,
/// with the controller looked up again.
pub(crate) const CONTROLLER_ATTEMPTS: usize = 2;

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

fn str_bytes(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

pub(crate) fn is_not_controller(code: i16) -> bool {
    code == ResponseError::NotController.code()
}

impl KafkaAdmin {
    fn missing_topic(&self, api: &'static str, name: &str) -> AdminError {
        AdminError::Protocol {
            broker: self.bootstrap().to_owned(),
            api,
            reason: format!("the response has no entry for topic {name:?}"),
        }
    }

    /// The `timeout_ms` given to the broker for CreateTopics, CreatePartitions and
    /// DeleteTopics: a fifth shorter than this client's own wait, so that a slow broker's
    /// `REQUEST_TIMED_OUT` answer arrives before the client stops listening.
    pub(crate) fn timeout_ms(&self) -> i32 {
        i32::try_from(self.timeout().mul_f64(0.8).as_millis()).unwrap_or(i32::MAX)
    }

    /// The topic's configs that were set on the topic itself (not defaults), `None` when the
    /// topic does not exist.
    pub async fn describe_topic_configs(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, AdminError> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TYPE_TOPIC)
                .with_resource_name(str_bytes(name))
                .with_configuration_keys(None),
        ]);
        let response = self.send(request).await?;
        let api = DescribeConfigsRequest::NAME;
        let result = response
            .results
            .into_iter()
            .find(|r| r.resource_type == RESOURCE_TYPE_TOPIC && r.resource_name.as_str() == name)
            .ok_or_else(|| self.missing_topic(api, name))?;
        if result.error_code == ResponseError::UnknownTopicOrPartition.code() {
            return Ok(None);
        }
        check(api, result.error_code, result.error_message.as_deref())?;
        let configs = result
            .configs
            .into_iter()
            .filter(|config| config.config_source == CONFIG_SOURCE_DYNAMIC_TOPIC)
            // Sensitive values come back null; there is nothing to compare them with.
            .filter_map(|config| Some((config.name.to_string(), config.value?.to_string())))
            .collect();
        Ok(Some(configs))
    }
}

impl BrokerAdmin for KafkaAdmin {
    async fn describe_topic(&self, name: &str) -> Result<Option<ObservedTopic>, AdminError> {
        let api = MetadataRequest::NAME;
        let (version, response) = self
            .send_to(Target::Any, |_| {
                MetadataRequest::default()
                    .with_topics(Some(vec![
                        MetadataRequestTopic::default().with_name(Some(topic_name(name))),
                    ]))
                    .with_allow_auto_topic_creation(false)
            })
            .await?;
        check(api, response.error_code, None)?;
        let topic = response
            .topics
            .into_iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name))
            .ok_or_else(|| self.missing_topic(api, name))?;
        if topic.error_code == ResponseError::UnknownTopicOrPartition.code() {
            return Ok(None);
        }
        check(api, topic.error_code, None)?;

        let partitions = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        // As kafka-topics.sh does: the replica count of the lowest partition. During a
        // reassignment that count includes the replicas being added.
        let replication_factor = topic
            .partitions
            .iter()
            .min_by_key(|p| p.partition_index)
            .map_or(0, |p| {
                i16::try_from(p.replica_nodes.len()).unwrap_or(i16::MAX)
            });
        // Metadata carries topic ids from v10 (KIP-516); older brokers leave it empty.
        let topic_id = if version >= 10 && !topic.topic_id.is_nil() {
            kafka_uuid_string(topic.topic_id.as_bytes())
        } else {
            String::new()
        };

        let Some(configs) = self.describe_topic_configs(name).await? else {
            // Deleted between the two requests.
            return Ok(None);
        };
        Ok(Some(ObservedTopic {
            name: name.to_owned(),
            topic_id,
            partitions,
            replication_factor,
            configs,
        }))
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<String, AdminError> {
        let api = CreateTopicsRequest::NAME;
        let topic = CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(key, value)| {
                        CreatableTopicConfig::default()
                            .with_name(str_bytes(key))
                            .with_value(Some(str_bytes(value)))
                    })
                    .collect(),
            );
        let mut attempt = 0;
        let (version, result) = loop {
            attempt += 1;
            let (version, response) = self
                .send_to(Target::Controller, |_| {
                    CreateTopicsRequest::default()
                        .with_topics(vec![topic.clone()])
                        .with_timeout_ms(self.timeout_ms())
                        .with_validate_only(false)
                })
                .await?;
            let result = response
                .topics
                .into_iter()
                .find(|t| t.name.0.as_str() == name)
                .ok_or_else(|| self.missing_topic(api, name))?;
            if !(is_not_controller(result.error_code) && attempt < CONTROLLER_ATTEMPTS) {
                break (version, result);
            }
        };
        check(api, result.error_code, result.error_message.as_deref())?;
        // CreateTopics returns the topic id from v7 (KIP-516); otherwise ask Metadata.
        if version >= 7 && !result.topic_id.is_nil() {
            return Ok(kafka_uuid_string(result.topic_id.as_bytes()));
        }
        Ok(self
            .describe_topic(name)
            .await?
            .map(|topic| topic.topic_id)
            .unwrap_or_default())
    }

    async fn create_partitions(&self, name: &str, total: i32) -> Result<(), AdminError> {
        let api = CreatePartitionsRequest::NAME;
        for attempt in 1..=CONTROLLER_ATTEMPTS {
            let (_, response) = self
                .send_to(Target::Controller, |_| {
                    CreatePartitionsRequest::default()
                        .with_topics(vec![
                            CreatePartitionsTopic::default()
                                .with_name(topic_name(name))
                                .with_count(total)
                                .with_assignments(None),
                        ])
                        .with_timeout_ms(self.timeout_ms())
                        .with_validate_only(false)
                })
                .await?;
            let result = response
                .results
                .into_iter()
                .find(|r| r.name.0.as_str() == name)
                .ok_or_else(|| self.missing_topic(api, name))?;
            if is_not_controller(result.error_code) && attempt < CONTROLLER_ATTEMPTS {
                continue;
            }
            return check(api, result.error_code, result.error_message.as_deref());
        }
        Err(AdminError::kafka(
            api,
            ResponseError::NotController.code(),
            None,
        ))
    }

    async fn alter_topic_configs(
        &self,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &BTreeSet<String>,
    ) -> Result<(), AdminError> {
        if set.is_empty() && delete.is_empty() {
            return Ok(());
        }
        let api = IncrementalAlterConfigsRequest::NAME;
        let ops = set
            .iter()
            .map(|(key, value)| {
                AlterableConfig::default()
                    .with_name(str_bytes(key))
                    .with_config_operation(CONFIG_OP_SET)
                    .with_value(Some(str_bytes(value)))
            })
            .chain(delete.iter().map(|key| {
                AlterableConfig::default()
                    .with_name(str_bytes(key))
                    .with_config_operation(CONFIG_OP_DELETE)
                    .with_value(None)
            }))
            .collect();
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(RESOURCE_TYPE_TOPIC)
                    .with_resource_name(str_bytes(name))
                    .with_configs(ops),
            ])
            .with_validate_only(false);
        let response = self.send(request).await?;
        let result = response
            .responses
            .into_iter()
            .find(|r| r.resource_type == RESOURCE_TYPE_TOPIC && r.resource_name.as_str() == name)
            .ok_or_else(|| self.missing_topic(api, name))?;
        check(api, result.error_code, result.error_message.as_deref())
    }

    async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let api = DeleteTopicsRequest::NAME;
        for attempt in 1..=CONTROLLER_ATTEMPTS {
            let (_, response) = self
                .send_to(Target::Controller, |version| {
                    let request = DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms());
                    // v6 names topics in `topics` (name or id, KIP-516); earlier versions in
                    // `topic_names`.
                    if version >= 6 {
                        request.with_topics(vec![
                            DeleteTopicState::default().with_name(Some(topic_name(name))),
                        ])
                    } else {
                        request.with_topic_names(vec![topic_name(name)])
                    }
                })
                .await?;
            let result = response
                .responses
                .into_iter()
                .find(|r| r.name.as_ref().is_some_and(|n| n.0.as_str() == name))
                .ok_or_else(|| self.missing_topic(api, name))?;
            if is_not_controller(result.error_code) && attempt < CONTROLLER_ATTEMPTS {
                continue;
            }
            // The topic being gone already is the outcome asked for.
            if result.error_code == ResponseError::UnknownTopicOrPartition.code() {
                return Ok(());
            }
            return check(api, result.error_code, result.error_message.as_deref());
        }
        Err(AdminError::kafka(
            api,
            ResponseError::NotController.code(),
            None,
        ))
    }
}
