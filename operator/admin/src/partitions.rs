//! Per-partition state (leader, leader epoch, replicas, ISR) of topics, from Metadata.

use std::collections::BTreeMap;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{BrokerId, MetadataRequest};

use crate::AdminRequest;
use crate::client::{KafkaAdmin, Target};
use crate::error::{AdminError, KafkaError, check};
use crate::replica_admin::PartitionState;
use crate::topics::topic_name;

fn broker_ids(ids: Vec<BrokerId>) -> Vec<i32> {
    ids.into_iter().map(|id| id.0).collect()
}

impl KafkaAdmin {
    pub(crate) async fn partition_states(
        &self,
        topics: Option<&[&str]>,
    ) -> Result<BTreeMap<String, Result<Vec<PartitionState>, KafkaError>>, AdminError> {
        let requested: Option<Vec<MetadataRequestTopic>> = topics.map(|topics| {
            topics
                .iter()
                .map(|name| MetadataRequestTopic::default().with_name(Some(topic_name(name))))
                .collect()
        });
        let (version, response) = self
            .send_to(Target::Any, |_| {
                MetadataRequest::default()
                    .with_topics(requested)
                    .with_allow_auto_topic_creation(false)
            })
            .await?;
        check(MetadataRequest::NAME, response.error_code, None)?;
        let mut described = BTreeMap::new();
        for topic in response.topics {
            // Topics are named in every version this client sends (v4..=13); a nameless
            // entry (a topic-id lookup) is not an answer to this request.
            let Some(name) = topic.name else { continue };
            let state = KafkaError::check(topic.error_code, None).map(|()| {
                let mut partitions: Vec<PartitionState> = topic
                    .partitions
                    .into_iter()
                    .map(|p| PartitionState {
                        partition: p.partition_index,
                        leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
                        // Metadata carries the leader epoch from v7 (KIP-320).
                        leader_epoch: (version >= 7 && p.leader_epoch >= 0)
                            .then_some(p.leader_epoch),
                        replicas: broker_ids(p.replica_nodes),
                        isr: broker_ids(p.isr_nodes),
                        offline_replicas: broker_ids(p.offline_replicas),
                        error: KafkaError::check(p.error_code, None).err(),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                partitions
            });
            described.insert(name.0.to_string(), state);
        }
        if let Some(topics) = topics
            && let Some(missing) = topics.iter().find(|t| !described.contains_key(**t))
        {
            return Err(AdminError::Protocol {
                broker: self.bootstrap().to_owned(),
                api: MetadataRequest::NAME,
                reason: format!("the response has no entry for topic {missing:?}"),
            });
        }
        Ok(described)
    }
}
