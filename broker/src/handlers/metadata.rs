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
