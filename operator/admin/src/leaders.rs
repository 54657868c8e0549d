//! ElectLeaders (API 43, KIP-460) on the controller: preferred or unclean leader election.

use kafka_protocol::messages::ElectLeadersRequest;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::protocol::VersionRange;

use crate::AdminRequest;
use crate::client::KafkaAdmin;
use crate::error::{AdminError, KafkaError, check};
use crate::replica_admin::{ElectionType, PartitionResults, TopicPartition, by_topic};
use crate::topics::topic_name;

impl KafkaAdmin {
    pub(crate) async fn elect(
        &self,
        election: ElectionType,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<PartitionResults, AdminError> {
        let api = ElectLeadersRequest::NAME;
        let topics: Option<Vec<TopicPartitions>> = partitions.map(|partitions| {
            by_topic(partitions)
                .into_iter()
                .map(|(topic, indexes)| {
                    TopicPartitions::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(indexes)
                })
                .collect()
        });
        let response = self
            .try_to_controller(|version| {
                // v0 elects the preferred leader only; it has no `election_type`.
                if version == 0 && election != ElectionType::Preferred {
                    return Err(AdminError::UnsupportedApi {
                        broker: self.bootstrap().to_owned(),
                        api,
                        broker_versions: Some(VersionRange { min: 0, max: 0 }),
                        client_versions: VersionRange {
                            min: 1,
                            max: ElectLeadersRequest::CLIENT_VERSIONS.max,
                        },
                    });
                }
                Ok(ElectLeadersRequest::default()
                    .with_election_type(election.code())
                    .with_topic_partitions(topics.clone())
                    .with_timeout_ms(self.timeout_ms()))
            })
            .await?;
        // v1+ carries a top-level error (e.g. CLUSTER_AUTHORIZATION_FAILED).
        check(api, response.error_code, None)?;
        let mut results = PartitionResults::new();
        for topic in response.replica_election_results {
            let name = topic.topic.0.to_string();
            for p in topic.partition_result {
                results.insert(
                    TopicPartition::new(name.clone(), p.partition_id),
                    KafkaError::check(p.error_code, p.error_message.as_deref()),
                );
            }
        }
        if let Some(partitions) = partitions {
            self.expect_every_partition(api, partitions, &results)?;
        }
        Ok(results)
    }
}
