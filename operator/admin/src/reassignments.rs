//! AlterPartitionReassignments (API 45) and ListPartitionReassignments (API 46, KIP-455), both
//! on the controller.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use crate::AdminRequest;
use crate::client::KafkaAdmin;
use crate::error::{AdminError, KafkaError, check};
use crate::replica_admin::{OngoingReassignment, PartitionResults, TopicPartition, by_topic};
use crate::topics::topic_name;

fn broker_ids(ids: Vec<BrokerId>) -> Vec<i32> {
    ids.into_iter().map(|id| id.0).collect()
}

impl KafkaAdmin {
    pub(crate) async fn reassign(
        &self,
        reassignments: &BTreeMap<TopicPartition, Option<Vec<i32>>>,
    ) -> Result<PartitionResults, AdminError> {
        if reassignments.is_empty() {
            return Ok(PartitionResults::new());
        }
        let mut topics: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for (tp, replicas) in reassignments {
            topics.entry(&tp.topic).or_default().push(
                ReassignablePartition::default()
                    .with_partition_index(tp.partition)
                    .with_replicas(
                        replicas
                            .as_ref()
                            .map(|ids| ids.iter().copied().map(BrokerId).collect()),
                    ),
            );
        }
        let topics: Vec<ReassignableTopic> = topics
            .into_iter()
            .map(|(name, partitions)| {
                ReassignableTopic::default()
                    .with_name(topic_name(name))
                    .with_partitions(partitions)
            })
            .collect();
        let response = self
            .to_controller(|_| {
                AlterPartitionReassignmentsRequest::default()
                    .with_timeout_ms(self.timeout_ms())
                    // v1 (KIP-860): a reassignment may change the replica count, which is how
                    // a topic's replication factor changes.
                    .with_allow_replication_factor_change(true)
                    .with_topics(topics.clone())
            })
            .await?;
        read_alter(self, reassignments, response)
    }

    pub(crate) async fn ongoing_reassignments(
        &self,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, OngoingReassignment>, AdminError> {
        let topics: Option<Vec<ListPartitionReassignmentsTopics>> = partitions.map(|partitions| {
            by_topic(partitions)
                .into_iter()
                .map(|(topic, indexes)| {
                    ListPartitionReassignmentsTopics::default()
                        .with_name(topic_name(topic))
                        .with_partition_indexes(indexes)
                })
                .collect()
        });
        let response: ListPartitionReassignmentsResponse = self
            .to_controller(|_| {
                ListPartitionReassignmentsRequest::default()
                    .with_timeout_ms(self.timeout_ms())
                    .with_topics(topics.clone())
            })
            .await?;
        check(
            ListPartitionReassignmentsRequest::NAME,
            response.error_code,
            response.error_message.as_deref(),
        )?;
        let mut ongoing = BTreeMap::new();
        for topic in response.topics {
            let name = topic.name.0.to_string();
            for p in topic.partitions {
                ongoing.insert(
                    TopicPartition::new(name.clone(), p.partition_index),
                    OngoingReassignment {
                        replicas: broker_ids(p.replicas),
                        adding_replicas: broker_ids(p.adding_replicas),
                        removing_replicas: broker_ids(p.removing_replicas),
                    },
                );
            }
        }
        Ok(ongoing)
    }
}

fn read_alter(
    admin: &KafkaAdmin,
    asked: &BTreeMap<TopicPartition, Option<Vec<i32>>>,
    response: AlterPartitionReassignmentsResponse,
) -> Result<PartitionResults, AdminError> {
    let api = AlterPartitionReassignmentsRequest::NAME;
    check(api, response.error_code, response.error_message.as_deref())?;
    let mut results = PartitionResults::new();
    for topic in response.responses {
        let name = topic.name.0.to_string();
        for p in topic.partitions {
            results.insert(
                TopicPartition::new(name.clone(), p.partition_index),
                KafkaError::check(p.error_code, p.error_message.as_deref()),
            );
        }
    }
    admin.expect_every_partition(api, asked.keys(), &results)?;
    Ok(results)
}
