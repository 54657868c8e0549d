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

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use strom_metadata::{ControllerError, CreatedTopic};
    use uuid::Uuid;

    use super::*;
    use crate::handlers::fakes::{FakeController, FakeMetadata, FakeReplicas, broker};

    fn topic(name: &str) -> CreatableTopic {
        CreatableTopic::default()
            .with_name(TopicName(str_bytes(name)))
            .with_num_partitions(3)
            .with_replication_factor(1)
    }

    #[tokio::test]
    async fn controller_errors_become_kafka_codes_and_not_controller_never_reaches_the_client() {
        let metadata = FakeMetadata::new(1, 2, &[broker(1, "b1", 9092, None, false)]);
        let replicas = FakeReplicas::default();
        let controller = FakeController::default();
        controller.answer_create(
            "taken",
            Err(ControllerError::TopicAlreadyExists {
                topic: "taken".into(),
            }),
        );
        controller.answer_create(
            "wide",
            Err(ControllerError::InvalidReplicationFactor {
                topic: "wide".into(),
                message: "Replication factor 3 is larger than the 1 unfenced brokers.".into(),
            }),
        );
        // The controller moved in the middle of the batch and the channel handed that back.
        controller.answer_create(
            "moved",
            Err(ControllerError::NotController { leader: Some(3) }),
        );
        controller.answer_create(
            "late",
            Err(ControllerError::ControllerUnavailable { timeout_ms: 30_000 }),
        );
        controller.answer_create(
            "broken",
            Err(ControllerError::Internal(
                "/data/__cluster_metadata-0: EIO".into(),
            )),
        );
        let topic_id = Uuid::from_u128(0x0c);
        controller.answer_create(
            "fine",
            Ok(CreatedTopic {
                topic_id,
                num_partitions: 3,
                replication_factor: 1,
                configs: Vec::new(),
            }),
        );
        let names = [
            "taken",
            "wide",
            "moved",
            "late",
            "broken",
            "__consumer_offsets",
            "fine",
        ];
        let request =
            CreateTopicsRequest::default().with_topics(names.iter().map(|n| topic(n)).collect());
        let header = RequestHeader::default().with_request_api_version(7);
        let response = handle(
            &metadata,
            &controller,
            &replicas,
            &BrokerProps::default(),
            &header,
            request,
        )
        .await;

        let internal_not_sent: Vec<String> = names
            .iter()
            .filter(|n| !n.starts_with("__"))
            .map(|n| (*n).to_owned())
            .collect();
        assert_eq!(controller.created_names(), internal_not_sent);
        assert_eq!(replicas.publishes(), 1, "applied before answering");
        let answers: Vec<_> = response
            .topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.error_code))
            .collect();
        let code = |e: ResponseError| e.code();
        assert_eq!(
            answers,
            vec![
                ("taken".to_owned(), code(ResponseError::TopicAlreadyExists)),
                (
                    "wide".to_owned(),
                    code(ResponseError::InvalidReplicationFactor)
                ),
                ("moved".to_owned(), code(ResponseError::RequestTimedOut)),
                ("late".to_owned(), code(ResponseError::RequestTimedOut)),
                ("broken".to_owned(), code(ResponseError::UnknownServerError)),
                (
                    "__consumer_offsets".to_owned(),
                    code(ResponseError::InvalidRequest)
                ),
                ("fine".to_owned(), 0),
            ]
        );
        assert!(
            response
                .topics
                .iter()
                .all(|t| t.error_code != ResponseError::NotController.code()),
            "NOT_CONTROLLER is never a client's answer"
        );
        let message = |name: &str| {
            response
                .topics
                .iter()
                .find(|t| t.name.0.as_str() == name)
                .and_then(|t| t.error_message.as_ref().map(ToString::to_string))
        };
        assert_eq!(
            message("wide").as_deref(),
            Some("Replication factor 3 is larger than the 1 unfenced brokers.")
        );
        assert_eq!(
            message("broken"),
            None,
            "internal details stay in the broker log"
        );
        let fine = &response.topics[6];
        assert_eq!(
            (fine.topic_id, fine.num_partitions, fine.replication_factor),
            (topic_id, 3, 1)
        );
        assert!(
            fine.configs.as_ref().is_some_and(|c| !c.is_empty()),
            "v5+ reports the effective configs"
        );
    }
}
