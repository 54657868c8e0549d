//! Metadata: brokers, the controller, and topics with their partitions' leaders, epochs,
//! replicas and ISR. Unknown topics are auto-created when the request allows it (v4+) and
//! `auto.create.topics.enable` is on, as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, RequestHeader};
use strom_metadata::{MetadataImage, TopicImage};

use super::auto_create::auto_create_topics;
use super::{str_bytes, topic_name};
use crate::capabilities::{HostedPartitions, MetadataView};
use crate::config::BrokerProps;
use crate::controller_channel::ControllerChannel;

/// Every topic operation bit (KIP-430), reported when requested: there is no authorizer yet.
const ALL_TOPIC_OPERATIONS: i32 = 0b1111_1111_1000;

/// Topics whose names start with `__` are the broker's own (`__consumer_offsets`).
pub fn is_internal(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

pub async fn handle(
    metadata: &impl MetadataView,
    controller: &impl ControllerChannel,
    replicas: &impl HostedPartitions,
    props: &BrokerProps,
    header: &RequestHeader,
    request: MetadataRequest,
) -> MetadataResponse {
    let version = header.request_api_version;
    let mut image = metadata.image();
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let requested: Option<Vec<(Option<String>, uuid::Uuid)>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    // Before v4 there was no flag and auto-creation always applied.
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    if let Some(requested) = &requested {
        let missing: Vec<String> = requested
            .iter()
            .filter_map(|(name, _)| name.clone())
            .filter(|name| image.topic(name).is_none() && !is_internal(name))
            .collect();
        if allow_auto_create && !missing.is_empty() {
            image = auto_create_topics(props, metadata, controller, replicas, missing).await;
        }
    }

    let topics = match requested {
        None => image
            .topics
            .values()
            .map(|topic| {
                topic_metadata(
                    &image,
                    topic,
                    request.include_topic_authorized_operations,
                    &local_offline(metadata, replicas, &topic.name),
                )
            })
            .collect(),
        Some(requested) => requested
            .into_iter()
            .map(|(name, id)| {
                let found = match &name {
                    Some(name) => image.topic(name),
                    None => image.topic_by_id(&id),
                };
                match found {
                    Some(topic) => topic_metadata(
                        &image,
                        topic,
                        request.include_topic_authorized_operations,
                        &local_offline(metadata, replicas, &topic.name),
                    ),
                    None => {
                        let code = match &name {
                            Some(name)
                                if strom_metadata::topic_name::validate_topic_name(name)
                                    .is_err() =>
                            {
                                ResponseError::InvalidTopicException
                            }
                            Some(_) => ResponseError::UnknownTopicOrPartition,
                            None => ResponseError::UnknownTopicId,
                        };
                        MetadataResponseTopic::default()
                            .with_error_code(code.code())
                            .with_name(name.as_deref().map(topic_name))
                            .with_topic_id(id)
                    }
                }
            })
            .collect(),
    };

    MetadataResponse::default()
        .with_brokers(brokers(&image))
        .with_cluster_id(Some(str_bytes(image.cluster_id.clone())))
        .with_controller_id(BrokerId(metadata.metadata_controller_id()))
        .with_topics(topics)
        .with_cluster_authorized_operations(i32::MIN)
}

/// The brokers clients may use: registered and not fenced.
pub fn brokers(image: &MetadataImage) -> Vec<MetadataResponseBroker> {
    image
        .live_brokers()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(str_bytes(b.host.clone()))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.clone().map(str_bytes))
        })
        .collect()
}

/// This broker's replicas of `topic` whose logs could not be opened: (partition, node id).
fn local_offline(
    metadata: &impl MetadataView,
    replicas: &impl HostedPartitions,
    topic: &str,
) -> Vec<(i32, i32)> {
    replicas
        .offline_partitions(topic)
        .into_iter()
        .map(|partition| (partition, metadata.node_id()))
        .collect()
}

/// `offline_here` lists (partition, node) replicas known to be offline beyond the image's view
/// (this broker's partitions whose logs could not be opened): they are reported as offline
/// replicas, and a partition whose leader is one of them has no usable leader
/// (KAFKA_STORAGE_ERROR, leader -1).
fn topic_metadata(
    image: &MetadataImage,
    topic: &TopicImage,
    include_operations: bool,
    offline_here: &[(i32, i32)],
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, p)| {
            let is_offline = |id: i32| !image.is_live(id) || offline_here.contains(&(index, id));
            let offline: Vec<BrokerId> = p
                .replicas
                .iter()
                .filter(|&&id| is_offline(id))
                .map(|&id| BrokerId(id))
                .collect();
            let storage_failed = offline_here.contains(&(index, p.leader));
            let leader_known = p.leader >= 0 && !is_offline(p.leader);
            MetadataResponsePartition::default()
                .with_error_code(if leader_known {
                    0
                } else if storage_failed {
                    ResponseError::KafkaStorageError.code()
                } else {
                    ResponseError::LeaderNotAvailable.code()
                })
                .with_partition_index(index)
                .with_leader_id(BrokerId(if leader_known { p.leader } else { -1 }))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().map(|&id| BrokerId(id)).collect())
                .with_isr_nodes(p.isr.iter().map(|&id| BrokerId(id)).collect())
                .with_offline_replicas(offline)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.topic_id)
        .with_is_internal(is_internal(&topic.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(if include_operations {
            ALL_TOPIC_OPERATIONS
        } else {
            i32::MIN
        })
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use strom_metadata::MetadataRecord;
    use uuid::Uuid;

    use super::*;
    use crate::handlers::fakes::{FakeController, FakeMetadata, FakeReplicas, broker, partition};

    const ORDERS: Uuid = Uuid::from_u128(0x0d);

    /// Broker 1 (this one, rack a), 2 (fenced) and 3 (rack c); controller 3; topic `orders`.
    fn cluster() -> FakeMetadata {
        let records = [
            broker(1, "b1", 9092, Some("a"), false),
            broker(2, "b2", 9093, Some("b"), true),
            broker(3, "b3", 9094, Some("c"), false),
            MetadataRecord::Topic {
                name: "orders".into(),
                topic_id: ORDERS,
            },
            // Led by 1; the fenced broker 2 is an offline replica outside the ISR.
            partition(ORDERS, 0, (&[1, 2, 3], &[1, 3], 1, 4)),
            // Led by the fenced broker: no usable leader.
            partition(ORDERS, 1, (&[2, 3], &[2], 2, 7)),
            // Led by 3 with the ISR as the image holds it, in its order.
            partition(ORDERS, 2, (&[3, 1], &[3, 1], 3, 0)),
            // Led by this broker, whose log of it could not be opened.
            partition(ORDERS, 3, (&[1, 3], &[1, 3], 1, 2)),
        ];
        FakeMetadata::new(1, 3, &records)
    }

    fn ids(ids: &[BrokerId]) -> Vec<i32> {
        ids.iter().map(|b| b.0).collect()
    }

    fn ask(
        version: i16,
        topics: Option<&[&str]>,
        allow_auto_create: bool,
    ) -> (RequestHeader, MetadataRequest) {
        let header = RequestHeader::default().with_request_api_version(version);
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                    .collect()
            }))
            .with_allow_auto_topic_creation(allow_auto_create);
        (header, request)
    }

    #[tokio::test]
    async fn brokers_and_partitions_are_answered_as_the_image_holds_them() {
        let metadata = cluster();
        let controller = FakeController::default();
        let mut replicas = FakeReplicas::default();
        replicas.offline.insert("orders".into(), vec![3]);
        let (header, request) = ask(12, None, false);
        let response = handle(
            &metadata,
            &controller,
            &replicas,
            &BrokerProps::default(),
            &header,
            request,
        )
        .await;

        let brokers: Vec<_> = response
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    b.host.to_string(),
                    b.port,
                    b.rack.as_ref().map(ToString::to_string),
                )
            })
            .collect();
        assert_eq!(
            brokers,
            vec![
                (1, "b1".to_owned(), 9092, Some("a".to_owned())),
                (3, "b3".to_owned(), 9094, Some("c".to_owned())),
            ],
            "the fenced broker is left out"
        );
        assert_eq!(response.controller_id.0, 3);
        assert_eq!(response.cluster_id.as_deref(), Some("fake-cluster"));

        assert_eq!(response.topics.len(), 1);
        let topic = &response.topics[0];
        assert_eq!((topic.error_code, topic.topic_id), (0, ORDERS));
        let partitions: Vec<_> = topic
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.error_code,
                    p.leader_id.0,
                    p.leader_epoch,
                    ids(&p.replica_nodes),
                    ids(&p.isr_nodes),
                    ids(&p.offline_replicas),
                )
            })
            .collect();
        let leader_not_available = ResponseError::LeaderNotAvailable.code();
        let storage_error = ResponseError::KafkaStorageError.code();
        assert_eq!(
            partitions,
            vec![
                (0, 0, 1, 4, vec![1, 2, 3], vec![1, 3], vec![2]),
                (1, leader_not_available, -1, 7, vec![2, 3], vec![2], vec![2]),
                (2, 0, 3, 0, vec![3, 1], vec![3, 1], vec![]),
                (3, storage_error, -1, 2, vec![1, 3], vec![1, 3], vec![1]),
            ]
        );
        assert_eq!(controller.created_names(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn unknown_topics_are_created_through_the_controller_only_when_allowed() {
        let metadata = cluster();
        let replicas = FakeReplicas::default();
        let props = BrokerProps::default();
        let wanted: &[&str] = &["orders", "fresh", "__consumer_offsets"];

        // v4+ with the flag set: the unknown, non-internal topic is created with the broker's
        // defaults, and the image applied to the hosted partitions before answering.
        let controller = FakeController::default();
        let (header, request) = ask(12, Some(wanted), true);
        let response = handle(&metadata, &controller, &replicas, &props, &header, request).await;
        assert_eq!(controller.created_names(), vec!["fresh".to_owned()]);
        let created = controller.create_requests.lock()[0].clone();
        assert_eq!(
            (created.num_partitions, created.replication_factor),
            (None, None),
            "broker defaults"
        );
        assert_eq!(replicas.publishes(), 1);
        let codes: Vec<_> = response
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.error_code))
            .collect();
        // The fake controller's creation is not in the fake image: the topic stays unknown.
        let unknown = ResponseError::UnknownTopicOrPartition.code();
        assert_eq!(
            codes,
            vec![
                (Some("orders".to_owned()), 0),
                (Some("fresh".to_owned()), unknown),
                (Some("__consumer_offsets".to_owned()), unknown),
            ]
        );

        // The flag unset (v4+), or auto.create.topics.enable=false: nothing is created.
        let controller = FakeController::default();
        let (header, request) = ask(12, Some(wanted), false);
        handle(&metadata, &controller, &replicas, &props, &header, request).await;
        let disabled = BrokerProps {
            auto_create_topics_enable: false,
            ..BrokerProps::default()
        };
        let (header, request) = ask(3, Some(wanted), false);
        handle(
            &metadata,
            &controller,
            &replicas,
            &disabled,
            &header,
            request,
        )
        .await;
        assert_eq!(controller.created_names(), Vec::<String>::new());

        // Before v4 there is no flag: auto-creation applies.
        let (header, request) = ask(3, Some(wanted), false);
        handle(&metadata, &controller, &replicas, &props, &header, request).await;
        assert_eq!(controller.created_names(), vec!["fresh".to_owned()]);
    }
}
