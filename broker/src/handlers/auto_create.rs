//! Auto-creation of the topics a client names that do not exist (Metadata, Produce), when
//! `auto.create.topics.enable` allows it, as Kafka does.

use std::sync::Arc;

use strom_metadata::{CreateTopicRequest, MetadataImage};

use crate::capabilities::{HostedPartitions, MetadataView};
use crate::config::BrokerProps;
use crate::controller_channel::ControllerChannel;

/// Creates `names` with the broker's defaults through the controller and applies the result
/// to the hosted partitions; returns the image after it.
pub async fn auto_create_topics(
    props: &BrokerProps,
    metadata: &impl MetadataView,
    controller: &impl ControllerChannel,
    replicas: &impl HostedPartitions,
    names: Vec<String>,
) -> Arc<MetadataImage> {
    if !props.auto_create_topics_enable || names.is_empty() {
        return metadata.image();
    }
    let requests = names
        .into_iter()
        .map(|name| CreateTopicRequest {
            name,
            num_partitions: None,
            replication_factor: None,
            assignments: None,
            configs: Default::default(),
        })
        .collect();
    for created in controller.create_topics(requests, false).await {
        if let Err(error) = created.result {
            // Another request may have created it first; anything else the client sees as
            // UNKNOWN_TOPIC_OR_PARTITION (or INVALID_TOPIC_EXCEPTION) in the response.
            tracing::debug!(%error, "auto-creating a topic");
        }
    }
    replicas.publish_metadata().await;
    metadata.image()
}
