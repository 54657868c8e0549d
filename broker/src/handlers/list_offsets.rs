//! ListOffsets: earliest (-2), latest (-1, the high watermark), max timestamp (-3, KIP-734: the
//! first record carrying the largest timestamp), earliest local (-4, KIP-405: the log start offset, all data being local), or the first offset
//! whose timestamp is at or after a given time, found through the time index. For a
//! read_committed client (`isolation_level` 1, v2+) "latest" is the last stable offset and no
//! answer lies at or past it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, RequestHeader};

use kafka_protocol::records::RecordBatchDecoder;
use strom_storage::TimestampOffset;

use crate::capabilities::HostedPartitions;
use crate::errors::storage_failure;
use crate::replica::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const READ_COMMITTED: i8 = 1;

pub async fn handle(
    replicas: &impl HostedPartitions,
    header: &RequestHeader,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let read_committed =
        header.request_api_version >= 2 && request.isolation_level == READ_COMMITTED;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    let partition = match replicas.leader_partition(&name, p.partition_index) {
                        Ok(partition) => partition,
                        Err(error) => return response.with_error_code(error.code()),
                    };
                    let epoch = partition.leader_epoch();
                    if p.current_leader_epoch != -1 && p.current_leader_epoch != epoch {
                        let error = if p.current_leader_epoch < epoch {
                            ResponseError::FencedLeaderEpoch
                        } else {
                            ResponseError::UnknownLeaderEpoch
                        };
                        return response.with_error_code(error.code());
                    }
                    // The leader epoch field exists from v4 on (KIP-320).
                    let response = if header.request_api_version >= 4 {
                        response.with_leader_epoch(epoch)
                    } else {
                        response
                    };
                    // A read_committed client (v2+) sees up to the last stable offset, as its
                    // fetches do: every answer is bounded by it.
                    let high_watermark = if read_committed {
                        partition.last_stable_offset()
                    } else {
                        partition.high_watermark()
                    };
                    match p.timestamp {
                        LATEST => response.with_offset(high_watermark),
                        EARLIEST | EARLIEST_LOCAL => {
                            response.with_offset(partition.log_start_offset())
                        }
                        // The time index knows the batch holding the largest timestamp;
                        // Kafka (3.8+, KAFKA-16310) answers the first record carrying it.
                        MAX_TIMESTAMP => match partition.log().latest_timestamp() {
                            Some(found) if found.offset < high_watermark => {
                                let (offset, timestamp) =
                                    first_record_at_or_after(&partition, found, found.timestamp);
                                response.with_offset(offset).with_timestamp(timestamp)
                            }
                            _ => response,
                        },
                        ts if ts >= 0 => match partition.log().offset_for_timestamp(ts) {
                            Ok(Some(found)) if found.offset < high_watermark => {
                                let (offset, timestamp) =
                                    first_record_at_or_after(&partition, found, ts);
                                response.with_offset(offset).with_timestamp(timestamp)
                            }
                            Ok(_) => response,
                            Err(error) => {
                                response.with_error_code(storage_failure(&error).0.code())
                            }
                        },
                        _ => response.with_error_code(ResponseError::InvalidRequest.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// Narrows the batch the time index found to the exact record: the first one at or after the
/// log start whose timestamp is `>= timestamp`, as Kafka answers. Decoding (and decompressing)
/// this one batch happens here only, never on the produce or fetch path. Should the batch not
/// decode, the batch's own offset is still a correct lower bound for the client to seek to.
fn first_record_at_or_after(
    partition: &Partition,
    batch: TimestampOffset,
    timestamp: i64,
) -> (i64, i64) {
    let fallback = (batch.offset, batch.timestamp);
    let Ok(read) = partition.read_committed(batch.offset, 1, true) else {
        return fallback;
    };
    let Ok(mut bytes) = read.read_to_bytes() else {
        return fallback;
    };
    let Ok(sets) = RecordBatchDecoder::decode_all(&mut bytes) else {
        tracing::warn!(topic = %partition.topic, partition = partition.index, offset = batch.offset, "batch does not decode; answering at batch precision");
        return fallback;
    };
    let start = batch.offset.max(partition.log_start_offset());
    sets.iter()
        .flat_map(|set| set.records.iter())
        .find(|record| record.offset >= start && record.timestamp >= timestamp)
        .map_or(fallback, |record| (record.offset, record.timestamp))
}
