//! DeleteRecords: advance a partition's log start offset (offset -1 means the high watermark);
//! whole segments below it are deleted, and consumers can no longer read before it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, RequestHeader};

use crate::capabilities::HostedPartitions;
use crate::errors::storage_failure;

pub async fn handle(
    replicas: &impl HostedPartitions,
    _header: &RequestHeader,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let partition = match replicas.leader_partition(&name, p.partition_index) {
                Ok(partition) => partition,
                Err(error) => {
                    partitions.push(result.with_error_code(error.code()));
                    continue;
                }
            };
            let high_watermark = partition.high_watermark();
            let offset = if p.offset == -1 {
                high_watermark
            } else {
                p.offset
            };
            if offset < 0 || offset > high_watermark {
                partitions.push(result.with_error_code(ResponseError::OffsetOutOfRange.code()));
                continue;
            }
            // Deleting segments and writing the checkpoint is disk work: the partition's I/O
            // worker does it, after the appends queued before.
            let deleted = partition
                .run_io(move |partition| partition.log().delete_records_before(offset))
                .await;
            partitions.push(match deleted {
                Ok(low_watermark) => result.with_low_watermark(low_watermark),
                Err(error) => result.with_error_code(storage_failure(&error).0.code()),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
