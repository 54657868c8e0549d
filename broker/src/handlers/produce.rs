//! Produce: validate and append each partition's record batches as they came (compressed
//! batches stay compressed), then answer according to `acks`:
//! - `acks=0`: no response at all;
//! - `acks=1`: once the leader's log holds the batches;
//! - `acks=-1` (all): once the high watermark passed them, provided the ISR had at least
//!   `min.insync.replicas` members when the batches arrived (else NOT_ENOUGH_REPLICAS).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
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

    // Every partition's append is handed to its I/O worker first, then the results are
    // awaited in request order: partitions on different workers are written in parallel, and
    // a partition listed twice is appended in the order listed (one worker, FIFO).
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        // Per-topic series only for topics that exist: names from clients are unbounded.
        let metrics = image.topic(&name).map(|_| broker.metrics.topic(&name));
        if let Some(metrics) = &metrics {
            metrics.produce_request();
        }
        let pending: Vec<_> = topic
            .partition_data
            .into_iter()
            .map(|data| {
                let started = start_append(broker, &name, data.index, data.records, acks, now);
                (data.index, started)
            })
            .collect();
        topics.push((topic.name, metrics, pending));
    }

    let mut responses = Vec::with_capacity(topics.len());
    // acks=all waits happen after every partition was appended, so they overlap.
    let mut waits: Vec<(usize, usize, Arc<Partition>, i64)> = Vec::new();
    for (name, metrics, pending) in topics {
        let mut partitions = Vec::with_capacity(pending.len());
        for (index, started) in pending {
            let mut response = PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let result = match started {
                Ok((partition, appending)) => {
                    finish_append(appending.await).map(|info| (partition, info))
                }
                Err(failure) => Err(failure),
            };
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
                .with_name(name)
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

/// Checks what can be checked before touching the log, then hands the append to the
/// partition's I/O worker; the future resolves when the log holds the batches.
fn start_append(
    broker: &Broker,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    acks: i16,
    now: i64,
) -> Result<
    (
        Arc<Partition>,
        impl Future<Output = Result<AppendInfo, StorageError>> + Send + 'static + use<>,
    ),
    Failure,
> {
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
    let appending = partition.append_as_leader(records, now);
    Ok((partition, appending))
}

/// The outcome of an append as the produce response needs it.
fn finish_append(result: Result<AppendInfo, StorageError>) -> Result<AppendInfo, Failure> {
    match result {
        Ok(info) => Ok(info),
        // A retry of a batch already in the log (idempotent producer): acknowledge it again
        // with the offsets it got the first time, writing nothing.
        Err(StorageError::DuplicateSequence {
            first_offset,
            last_offset,
            ..
        }) => Ok(AppendInfo {
            first_offset,
            last_offset,
            log_append_time: -1,
            record_count: 0,
            bytes: 0,
            batches: Vec::new(),
        }),
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
