//! DescribeLogDirs (API 35) on one broker: its log directories and the replicas in them.

use kafka_protocol::messages::DescribeLogDirsRequest;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;

use crate::AdminRequest;
use crate::client::{KafkaAdmin, Target};
use crate::error::{AdminError, KafkaError, check};
use crate::replica_admin::{LogDir, LogDirReplica, TopicPartition, by_topic};
use crate::topics::topic_name;

impl KafkaAdmin {
    pub(crate) async fn log_dirs_of(
        &self,
        broker_id: i32,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<LogDir>, AdminError> {
        let topics = partitions.map(|partitions| {
            by_topic(partitions)
                .into_iter()
                .map(|(topic, indexes)| {
                    DescribableLogDirTopic::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(indexes)
                })
                .collect()
        });
        // Log directories are a broker's own: the request goes to that broker, not the
        // controller.
        let (version, response) = self
            .send_to(Target::Node(broker_id), |_| {
                DescribeLogDirsRequest::default().with_topics(topics)
            })
            .await?;
        // v3+ carries a top-level error (e.g. CLUSTER_AUTHORIZATION_FAILED).
        check(DescribeLogDirsRequest::NAME, response.error_code, None)?;
        let mut dirs: Vec<LogDir> = response
            .results
            .into_iter()
            .map(|result| {
                let mut replicas: Vec<LogDirReplica> = result
                    .topics
                    .into_iter()
                    .flat_map(|topic| {
                        let name = topic.name.0.to_string();
                        topic.partitions.into_iter().map(move |p| LogDirReplica {
                            partition: TopicPartition::new(name.clone(), p.partition_index),
                            size_bytes: p.partition_size,
                            offset_lag: p.offset_lag,
                            is_future: p.is_future_key,
                        })
                    })
                    .collect();
                replicas
                    .sort_by(|a, b| (&a.partition, a.is_future).cmp(&(&b.partition, b.is_future)));
                // Below v4 the fields are absent (decoded as their default -1); from v4 a
                // broker that cannot tell sends -1 too.
                let known = |bytes: i64| (version >= 4 && bytes >= 0).then_some(bytes);
                LogDir {
                    path: result.log_dir.to_string(),
                    error: KafkaError::check(result.error_code, None).err(),
                    total_bytes: known(result.total_bytes),
                    usable_bytes: known(result.usable_bytes),
                    replicas,
                }
            })
            .collect();
        dirs.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(dirs)
    }
}
