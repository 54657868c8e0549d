//! DeleteTopics: by name (all versions) or by id (v6+); the data goes with the topic.
//! Internal topics are refused: deleting `__consumer_offsets` would drop every group's
//! committed offsets.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, RequestHeader};
use uuid::Uuid;

use super::metadata::is_internal;
use super::{str_bytes, topic_name};
use crate::capabilities::{HostedPartitions, MetadataView};
use crate::controller_channel::ControllerChannel;
use crate::errors::controller_failure;
use crate::metrics::BrokerMetrics;

pub async fn handle(
    metadata: &impl MetadataView,
    controller: &impl ControllerChannel,
    replicas: &impl HostedPartitions,
    metrics: &BrokerMetrics,
    header: &RequestHeader,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let image = metadata.image();
    // v0-5 list names; v6 lists (name | id) states.
    let wanted: Vec<(Option<String>, Uuid)> = if header.request_api_version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    let mut to_delete = Vec::new();
    for (name, id) in wanted {
        let resolved = match &name {
            Some(name) => Some(name.clone()),
            None => image.topic_by_id(&id).map(|t| t.name.clone()),
        };
        match resolved {
            Some(resolved) if is_internal(&resolved) => responses.push(
                DeletableTopicResult::default()
                    .with_name(Some(topic_name(&resolved)))
                    .with_topic_id(image.topic(&resolved).map_or(id, |t| t.topic_id))
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(format!(
                        "{resolved} is an internal topic: deleting it would drop every group's committed offsets"
                    )))),
            ),
            Some(resolved) => {
                to_delete.push((responses.len(), resolved.clone()));
                responses.push(
                    DeletableTopicResult::default()
                        .with_name(Some(topic_name(&resolved)))
                        .with_topic_id(image.topic(&resolved).map_or(id, |t| t.topic_id)),
                );
            }
            None => responses.push(
                DeletableTopicResult::default()
                    .with_topic_id(id)
                    .with_error_code(ResponseError::UnknownTopicId.code()),
            ),
        }
    }
    let names = to_delete.iter().map(|(_, name)| name.clone()).collect();
    let results = controller.delete_topics(names).await;
    replicas.publish_metadata().await;
    for ((slot, name), result) in to_delete.into_iter().zip(results) {
        if let Err(error) = result {
            let (code, message) = controller_failure(&error);
            if let Some(response) = responses.get_mut(slot) {
                response.error_code = code;
                response.error_message = message.map(str_bytes);
            }
        } else {
            metrics.remove_topic(&name);
        }
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use strom_metadata::MetadataRecord;

    use super::*;
    use crate::handlers::fakes::{FakeController, FakeMetadata, FakeReplicas, broker};

    #[tokio::test]
    async fn internal_and_unknown_topics_are_answered_without_the_controller() {
        let (orders, offsets) = (Uuid::from_u128(0x0d), Uuid::from_u128(0x0f));
        let metadata = FakeMetadata::new(
            1,
            1,
            &[
                broker(1, "b1", 9092, None, false),
                MetadataRecord::Topic {
                    name: "orders".into(),
                    topic_id: orders,
                },
                MetadataRecord::Topic {
                    name: "__consumer_offsets".into(),
                    topic_id: offsets,
                },
            ],
        );
        let controller = FakeController::default();
        let replicas = FakeReplicas::default();
        let metrics = BrokerMetrics::new(1, "test", "fake-cluster");
        let header = RequestHeader::default().with_request_api_version(6);
        let request = DeleteTopicsRequest::default().with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic_name("orders"))),
            DeleteTopicState::default().with_topic_id(offsets),
            DeleteTopicState::default().with_topic_id(Uuid::from_u128(0x99)),
        ]);
        let response = handle(
            &metadata,
            &controller,
            &replicas,
            &metrics,
            &header,
            request,
        )
        .await;

        let answers: Vec<_> = response
            .responses
            .iter()
            .map(|r| (r.topic_id, r.error_code))
            .collect();
        assert_eq!(
            answers,
            vec![
                (orders, 0),
                (offsets, ResponseError::InvalidRequest.code()),
                (Uuid::from_u128(0x99), ResponseError::UnknownTopicId.code()),
            ]
        );
        let named: Vec<_> = response.responses[..2]
            .iter()
            .map(|r| r.name.as_ref().map(|n| n.0.to_string()))
            .collect();
        assert_eq!(
            named,
            vec![
                Some("orders".to_owned()),
                Some("__consumer_offsets".to_owned())
            ],
            "a topic asked for by id is answered with its name"
        );
        assert_eq!(*controller.deleted.lock(), vec!["orders".to_owned()]);
        assert_eq!(
            replicas.publishes(),
            1,
            "the deletion is applied before answering"
        );
    }
}
