//! Produce: validate and append each partition's record batches as they came (compressed
//! batches stay compressed), then answer according to `acks`:
//! - `acks=0`: no response at all;
//! - `acks=1`: once the leader's log holds the batches;
//! - `acks=-1` (all): once the high watermark passed them, provided the ISR had at least
//!   `min.insync.replicas` members when the batches arrived (else NOT_ENOUGH_REPLICAS).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader};

use super::metadata::is_internal;
use crate::broker::Broker;
use crate::errors::{record_errors, storage_failure};
use crate::replica::{Partition, now_ms};
use strom_storage::{AppendInfo, StorageError};

pub async fn handle(
    broker: &Broker,
    _header: &RequestHeader,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    let now = now_ms();

    // Auto-create unknown topics first, in one controller round trip.
    let image = broker.image();
    let missing: Vec<String> = request
        .topic_data
        .iter()
        .map(|t| t.name.0.to_string())
        .filter(|name| image.topic(name).is_none() && !is_internal(name))
        .collect();
    let image = if missing.is_empty() {
        image
    } else {
        broker.auto_create_topics(missing).await
    };

    let mut responses = Vec::with_capacity(request.topic_data.len());
    // acks=all waits happen after every partition was appended, so they overlap.
    let mut waits: Vec<(usize, usize, Arc<Partition>, i64)> = Vec::new();
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        // Per-topic series only for topics that exist: names from clients are unbounded.
        let metrics = image.topic(&name).map(|_| broker.metrics.topic(&name));
        if let Some(metrics) = &metrics {
            metrics.produce_request();
        }
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let mut response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let result = append(
                broker,
                &name,
                data.index,
                data.records.as_deref(),
                acks,
                now,
            );
            match result {
                Ok((partition, info)) => {
                    if let Some(metrics) = &metrics {
                        metrics.bytes_in(info.bytes);
                        metrics.messages_in(info.record_count);
                    }
                    response = response
                        .with_base_offset(info.first_offset)
                        .with_log_append_time_ms(info.log_append_time)
                        .with_log_start_offset(partition.log_start_offset());
                    if acks == -1 {
                        waits.push((
                            responses.len(),
                            partitions.len(),
                            partition,
                            info.last_offset + 1,
                        ));
                    }
                }
                Err((error, message, record_errors)) => {
                    if let Some(metrics) = &metrics {
                        metrics.failed_produce();
                    }
                    response = response
                        .with_error_code(error.code())
                        .with_error_message(message.map(super::str_bytes))
                        .with_record_errors(record_errors);
                }
            }
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }

    if acks == 0 {
        return None;
    }
    for (t, p, partition, required) in waits {
        if !wait_for_high_watermark(&partition, required, timeout).await
            && let Some(response) = responses
                .get_mut(t)
                .and_then(|topic| topic.partition_responses.get_mut(p))
        {
            response.error_code = ResponseError::RequestTimedOut.code();
        }
    }
    Some(ProduceResponse::default().with_responses(responses))
}

/// Error code, message, and the records at fault (KIP-467).
type Failure = (
    ResponseError,
    Option<String>,
    Vec<BatchIndexAndErrorMessage>,
);

fn append(
    broker: &Broker,
    topic: &str,
    index: i32,
    records: Option<&[u8]>,
    acks: i16,
    now: i64,
) -> Result<(Arc<Partition>, AppendInfo), Failure> {
    if !matches!(acks, -1..=1) {
        return Err((ResponseError::InvalidRequiredAcks, None, Vec::new()));
    }
    if is_internal(topic) {
        return Err((
            ResponseError::InvalidTopicException,
            Some(format!("{topic} is an internal topic")),
            Vec::new(),
        ));
    }
    let partition = broker
        .leader_partition(topic, index)
        .map_err(|error| (error, None, Vec::new()))?;
    let records = records.filter(|r| !r.is_empty()).ok_or((
        ResponseError::CorruptMessage,
        Some("no record batch".into()),
        Vec::new(),
    ))?;
    if acks == -1 && (partition.isr_len() as i64) < i64::from(partition.min_insync_replicas()) {
        return Err((
            ResponseError::NotEnoughReplicas,
            Some(format!(
                "{} in-sync replicas, min.insync.replicas is {}",
                partition.isr_len(),
                partition.min_insync_replicas()
            )),
            Vec::new(),
        ));
    }
    match partition.append_as_leader(records, now) {
        Ok(info) => Ok((partition, info)),
        // A retry of a batch already in the log (idempotent producer): acknowledge it again
        // with the offsets it got the first time, writing nothing.
        Err(StorageError::DuplicateSequence {
            first_offset,
            last_offset,
            ..
        }) => Ok((
            partition,
            AppendInfo {
                first_offset,
                last_offset,
                log_append_time: -1,
                record_count: 0,
                bytes: 0,
                batches: Vec::new(),
            },
        )),
        Err(error) => {
            let (code, message) = storage_failure(&error);
            Err((code, message, record_errors(&error)))
        }
    }
}

/// Waits until the partition's high watermark reaches `required` or `timeout` passes.
async fn wait_for_high_watermark(partition: &Partition, required: i64, timeout: Duration) -> bool {
    let mut changes = partition.subscribe_high_watermark();
    if partition.high_watermark() >= required {
        return true;
    }
    tokio::time::timeout(timeout, changes.wait_for(|hw| *hw >= required))
        .await
        .is_ok_and(|r| r.is_ok())
}
