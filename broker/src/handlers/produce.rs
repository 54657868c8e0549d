//! Produce: validate and append each partition's record batches as they came (compressed
//! batches stay compressed), then answer according to `acks`:
//! - `acks=0`: no response at all;
//! - `acks=1`: once the leader's log holds the batches;
//! - `acks=-1` (all): once the high watermark passed them (every in-sync replica holds them),
//!   provided the ISR had at least `min.insync.replicas` members when the batches were
//!   appended (else NOT_ENOUGH_REPLICAS, and nothing is written) and still has when they are
//!   committed (else NOT_ENOUGH_REPLICAS_AFTER_APPEND). Leadership lost while waiting gives
//!   NOT_LEADER_OR_FOLLOWER; the wait is bounded by the request's timeout (REQUEST_TIMED_OUT).
//!
//! A transactional producer's first batch on a partition in a transaction is appended only
//! once its transaction coordinator confirmed the partition is in that transaction (KIP-890),
//! so a late batch cannot open a transaction that already ended.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{
    BrokerId, ProduceRequest, ProduceResponse, RequestHeader, TopicName,
};

use super::auto_create::auto_create_topics;
use super::leader_hint::LeaderHints;
use super::metadata::is_internal;
use crate::capabilities::{HostedPartitions, MetadataView, TransactionVerifier};
use crate::config::BrokerProps;
use crate::controller_channel::ControllerChannel;
use crate::errors::{record_errors, storage_failure};
use crate::metrics::{BrokerMetrics, TopicMetrics};
use crate::replica::{AppendError, CommitWait, LeaderAppendResult, Partition, now_ms};
use strom_storage::batch::BatchHeader;
use strom_storage::{AppendInfo, StorageError, TxnGuard};

/// [`start`], [`Started::appended`] and [`Appended::respond`] in one, as the handler tests
/// drive a request; the connection runs them apart (`protocol::start_frame`).
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub async fn handle(
    metadata: &impl MetadataView,
    controller: &impl ControllerChannel,
    replicas: &impl HostedPartitions,
    verifier: &impl TransactionVerifier,
    metrics: &BrokerMetrics,
    props: &BrokerProps,
    header: &RequestHeader,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    start(
        metadata, controller, replicas, verifier, metrics, props, header, request,
    )
    .await
    .appended()
    .await
    .respond(metadata)
    .await
}

/// A produce request whose batches were appended (or refused), to be answered by
/// [`respond`](Appended::respond): at once for `acks=0` and `acks=1`, once the batches are
/// committed for `acks=all`.
#[derive(Debug)]
pub struct Appended {
    acks: i16,
    timeout: Duration,
    leader_hints: bool,
    responses: Vec<TopicProduceResponse>,
    /// (topic index, partition index in the response, partition, offset the high watermark
    /// must pass, leader epoch of the append)
    waits: Vec<(usize, usize, Arc<Partition>, i64, i32)>,
}

/// Whether `request` carries batches of a producer id (an idempotent or transactional
/// producer), judged by the first batch of each partition; an unreadable batch counts as one.
pub fn has_producer_ids(request: &ProduceRequest) -> bool {
    request.topic_data.iter().any(|topic| {
        topic.partition_data.iter().any(|data| {
            data.records.as_ref().is_some_and(|records| {
                BatchHeader::parse(records).map_or(true, |h| h.producer_id >= 0)
            })
        })
    })
}

/// A produce request whose appends were handed to the partitions' I/O workers, in the order
/// listed; [`appended`](Started::appended) waits for them.
///
/// The appends are queued when `start` returns, so a connection may start its next produce
/// request before this one's batches are written: each partition's worker runs them in the
/// order they were queued.
pub struct Started {
    acks: i16,
    timeout: Duration,
    leader_hints: bool,
    topics: Vec<PendingTopic>,
}

/// A topic of the request: its name, its metrics (for topics that exist) and each partition's
/// append.
type PendingTopic = (TopicName, Option<TopicMetrics>, Vec<(i32, Pending)>);

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("acks", &self.acks)
            .field("topics", &self.topics.len())
            .finish_non_exhaustive()
    }
}

/// One partition's append: queued on its I/O worker, or refused before.
type Pending = Result<(Arc<Partition>, BoxFuture<'static, LeaderAppendResult>), Failure>;

/// Validates every partition's batches of `request` and queues their appends, in the order
/// listed.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    metadata: &impl MetadataView,
    controller: &impl ControllerChannel,
    replicas: &impl HostedPartitions,
    verifier: &impl TransactionVerifier,
    metrics: &BrokerMetrics,
    props: &BrokerProps,
    header: &RequestHeader,
    request: ProduceRequest,
) -> Started {
    let acks = request.acks;
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    let now = now_ms();

    // Auto-create unknown topics first, in one controller round trip.
    let image = metadata.image();
    let missing: Vec<String> = request
        .topic_data
        .iter()
        .map(|t| t.name.0.to_string())
        .filter(|name| image.topic(name).is_none() && !is_internal(name))
        .collect();
    let image = if missing.is_empty() {
        image
    } else {
        auto_create_topics(props, metadata, controller, replicas, missing).await
    };

    let (unverified, guards) = verify_transactional(verifier, replicas, &request).await;

    // Every partition's append is handed to its I/O worker here; `Started::appended` awaits
    // the results in request order. Partitions on different workers are written in parallel,
    // and a partition listed twice is appended in the order listed (one worker, FIFO).
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        // Per-topic series only for topics that exist: names from clients are unbounded.
        let topic_metrics = image.topic(&name).map(|_| metrics.topic(&name));
        if let Some(metrics) = &topic_metrics {
            metrics.produce_request();
        }
        let pending: Vec<_> = topic
            .partition_data
            .into_iter()
            .map(|data| {
                let started = match unverified.get(&(name.clone(), data.index)) {
                    Some(&error) => Err((
                        error,
                        Some("the transaction coordinator did not verify this partition".into()),
                        Vec::new(),
                    )),
                    None => {
                        let guard = guards.get(&(name.clone(), data.index)).copied();
                        start_append(replicas, &name, data.index, data.records, acks, now, guard)
                            .map(|(partition, appending)| (partition, appending.boxed()))
                    }
                };
                (data.index, started)
            })
            .collect();
        topics.push((topic.name, topic_metrics, pending));
    }
    Started {
        acks,
        timeout,
        leader_hints: header.request_api_version >= 10,
        topics,
    }
}

impl Started {
    /// Waits for every queued append, in request order.
    pub async fn appended(self) -> Appended {
        let Started {
            acks,
            timeout,
            leader_hints,
            topics,
        } = self;
        let mut responses = Vec::with_capacity(topics.len());
        // acks=all waits happen after every partition was appended, so they overlap.
        let mut waits: Vec<(usize, usize, Arc<Partition>, i64, i32)> = Vec::new();
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
                    Ok((partition, (info, leader_epoch))) => {
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
                                leader_epoch,
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

        Appended {
            acks,
            timeout,
            leader_hints,
            responses,
            waits,
        }
    }
}

impl Appended {
    /// Whether the answer waits for appended batches to be committed (`acks=all`).
    pub fn waits_for_commit(&self) -> bool {
        self.acks == -1 && !self.waits.is_empty()
    }

    /// The response, once every `acks=all` batch is committed (or failed to be); `None` for
    /// `acks=0`.
    pub async fn respond(self, metadata: &impl MetadataView) -> Option<ProduceResponse> {
        let Appended {
            acks,
            timeout,
            leader_hints,
            mut responses,
            waits,
        } = self;
        if acks == 0 {
            return None;
        }
        wait_for_commits(&mut responses, waits, timeout).await;
        let mut response = ProduceResponse::default().with_responses(responses);
        if leader_hints {
            add_leader_hints(&metadata.image(), &mut response);
        }
        Some(response)
    }
}

/// Waits for each partition's appended batches to be committed; a partition whose wait fails
/// gets the error in its response.
async fn wait_for_commits(
    responses: &mut [TopicProduceResponse],
    waits: Vec<(usize, usize, Arc<Partition>, i64, i32)>,
    timeout: Duration,
) {
    for (t, p, partition, required, leader_epoch) in waits {
        let Err(failed) = partition
            .wait_for_commit(required, leader_epoch, timeout)
            .await
        else {
            continue;
        };
        if let Some(response) = responses
            .get_mut(t)
            .and_then(|topic| topic.partition_responses.get_mut(p))
        {
            let error = match failed {
                CommitWait::NotLeader => ResponseError::NotLeaderOrFollower,
                CommitWait::NotEnoughReplicasAfterAppend => {
                    ResponseError::NotEnoughReplicasAfterAppend
                }
                CommitWait::TimedOut => ResponseError::RequestTimedOut,
            };
            response.error_code = error.code();
        }
    }
}

/// KIP-890: the partitions where this request would begin its producer's transaction (a
/// transactional batch, and no open transaction of that producer there yet) are asked about
/// to the transaction coordinator. Returns the error of each it did not confirm, and for each
/// it confirmed the guard taken before asking, under which the append must happen. Batches
/// that are not transactional, or that validation or leadership refuse anyway, are not asked
/// about.
async fn verify_transactional(
    verifier: &impl TransactionVerifier,
    replicas: &impl HostedPartitions,
    request: &ProduceRequest,
) -> (
    HashMap<(String, i32), ResponseError>,
    HashMap<(String, i32), TxnGuard>,
) {
    let Some(transactional_id) = request
        .transactional_id
        .as_ref()
        .map(|id| id.0.to_string())
        .filter(|id| !id.is_empty())
    else {
        return Default::default();
    };
    let mut producer = None;
    let mut guards = HashMap::new();
    for topic in &request.topic_data {
        let name = topic.name.0.to_string();
        for data in &topic.partition_data {
            let Some(header) = data
                .records
                .as_deref()
                .and_then(|records| BatchHeader::parse(records).ok())
            else {
                continue;
            };
            if !header.is_transactional() || header.producer_id < 0 {
                continue;
            }
            let Ok(partition) = replicas.leader_partition(&name, data.index) else {
                continue;
            };
            // The guard is taken before the question: a marker written after it means the
            // transaction the answer speaks of is over.
            if let Some(guard) = partition.log().txn_guard(header.producer_id) {
                producer.get_or_insert((header.producer_id, header.producer_epoch));
                guards.insert((name.clone(), data.index), guard);
            }
        }
    }
    let Some((producer_id, producer_epoch)) = producer else {
        return Default::default();
    };
    let refused = verifier
        .verify_partitions(
            &transactional_id,
            producer_id,
            producer_epoch,
            guards.keys().cloned().collect(),
        )
        .await;
    guards.retain(|partition, _| !refused.contains_key(partition));
    (refused, guards)
}

/// KIP-951: partitions refused because leadership moved name the new leader.
fn add_leader_hints(image: &strom_metadata::MetadataImage, response: &mut ProduceResponse) {
    let mut hints = LeaderHints::default();
    for topic in &mut response.responses {
        for partition in &mut topic.partition_responses {
            if let Some((leader_id, leader_epoch)) =
                hints.note(image, &topic.name.0, partition.index, partition.error_code)
            {
                partition.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(leader_id))
                    .with_leader_epoch(leader_epoch);
            }
        }
    }
    response.node_endpoints = hints
        .endpoints()
        .into_iter()
        .map(|hint| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(hint.leader_id))
                .with_host(super::str_bytes(hint.host))
                .with_port(hint.port)
                .with_rack(hint.rack.map(super::str_bytes))
        })
        .collect();
}

/// Error code, message, and the records at fault (KIP-467).
type Failure = (
    ResponseError,
    Option<String>,
    Vec<BatchIndexAndErrorMessage>,
);

/// Checks what can be checked before touching the log, then hands the append to the
/// partition's I/O worker; the future resolves when the log holds the batches.
fn start_append<R: HostedPartitions>(
    replicas: &R,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    acks: i16,
    now: i64,
    guard: Option<TxnGuard>,
) -> Result<
    (
        Arc<Partition>,
        impl Future<Output = LeaderAppendResult> + Send + 'static + use<R>,
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
    let partition = replicas
        .leader_partition(topic, index)
        .map_err(|error| (error, None, Vec::new()))?;
    let records = records.filter(|r| !r.is_empty()).ok_or((
        ResponseError::CorruptMessage,
        Some("no record batch".into()),
        Vec::new(),
    ))?;
    // Leadership and min.insync.replicas are checked on the log's I/O worker, right before
    // the append, under the state whose leader epoch the batches get.
    let appending = partition.append_as_leader(records, acks == -1, now, guard);
    Ok((partition, appending))
}

/// The outcome of an append as the produce response needs it: where the records went and the
/// leader epoch they were appended in.
fn finish_append(result: LeaderAppendResult) -> Result<(AppendInfo, i32), Failure> {
    match result {
        Ok(append) => Ok((append.info, append.leader_epoch)),
        Err(AppendError::NotLeader) => Err((ResponseError::NotLeaderOrFollower, None, Vec::new())),
        Err(AppendError::NotEnoughReplicas { isr, min }) => Err((
            ResponseError::NotEnoughReplicas,
            Some(format!(
                "{isr} in-sync replicas, min.insync.replicas is {min}"
            )),
            Vec::new(),
        )),
        Err(AppendError::Storage(error)) => storage_outcome(error),
    }
}

fn storage_outcome(error: StorageError) -> Result<(AppendInfo, i32), Failure> {
    match error {
        // A retry of a batch already in the log (idempotent producer): acknowledge it again
        // with the offsets it got the first time, writing nothing.
        StorageError::DuplicateSequence {
            first_offset,
            last_offset,
            ..
        } => Ok((
            AppendInfo {
                first_offset,
                last_offset,
                log_append_time: -1,
                record_count: 0,
                bytes: 0,
                batches: Vec::new(),
            },
            // Waiting for the commit of a duplicate waits for the current epoch's high watermark.
            -1,
        )),
        error => {
            let (code, message) = storage_failure(&error);
            Err((code, message, record_errors(&error)))
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};

    use super::*;
    use crate::handlers::fakes::{FakeController, FakeVerifier, led_elsewhere, led_here};
    use crate::replica::log_io::LogIo;
    use crate::test_batches::batch;

    fn produce(partitions: &[i32]) -> ProduceRequest {
        ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(super::super::str_bytes("orders")))
                    .with_partition_data(
                        partitions
                            .iter()
                            .map(|&index| {
                                PartitionProduceData::default()
                                    .with_index(index)
                                    .with_records(Some(Bytes::from_static(b"batch")))
                            })
                            .collect(),
                    ),
            ])
    }

    /// `orders` partition 0 with `records`.
    fn produce_records(records: Vec<u8>) -> ProduceRequest {
        let mut request = produce(&[0]);
        request.topic_data[0].partition_data[0].records = Some(Bytes::from(records));
        request
    }

    /// A produce request's appends are queued on the partition's I/O worker when `start`
    /// returns, not written yet: the connection starts its next produce request while the
    /// previous one's batches are being written, and the log holds both in request order.
    #[tokio::test]
    async fn appends_are_queued_before_they_are_written_and_keep_request_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let io = LogIo::start(1).expect("threads");
        let (metadata, replicas, partition) = led_here(dir.path(), &io);
        let controller = FakeController::default();
        let metrics = BrokerMetrics::new(1, "test", "fake-cluster");
        let props = BrokerProps::default();
        let header = RequestHeader::default().with_request_api_version(9);
        // The partition's I/O worker is busy until the test lets it go.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let busy = partition.run_io(move |_| {
            let _ = held.recv();
            Ok::<(), StorageError>(())
        });
        let start = |tag: u8| {
            let (metadata, controller, replicas) = (&metadata, &controller, &replicas);
            let (metrics, props, header) = (&metrics, &props, &header);
            async move {
                let request = produce_records(batch(3, tag));
                let started = start(
                    metadata,
                    controller,
                    replicas,
                    &FakeVerifier,
                    metrics,
                    props,
                    header,
                    request,
                );
                tokio::time::timeout(Duration::from_secs(10), started)
                    .await
                    .expect("start returns while the worker is busy")
            }
        };
        let first = start(1).await;
        let second = start(2).await;
        assert_eq!(partition.log_end_offset(), 0, "nothing is written yet");

        release.send(()).expect("the worker waits");
        busy.await.expect("the held work ran");
        let offsets = |appended: Appended| -> Vec<(i16, i64)> {
            appended.responses[0]
                .partition_responses
                .iter()
                .map(|p| (p.error_code, p.base_offset))
                .collect()
        };
        assert_eq!(offsets(first.appended().await), vec![(0, 0)]);
        assert_eq!(offsets(second.appended().await), vec![(0, 3)]);
        let log = partition
            .log()
            .read_file_records(0, 1 << 20, i64::MAX, true)
            .expect("reads")
            .read_to_bytes()
            .expect("bytes");
        let at = |tag: u8| log.windows(300).position(|w| w == [tag; 300]);
        assert!(at(1) < at(2) && at(1).is_some(), "request order in the log");
    }

    #[tokio::test]
    async fn a_partition_led_elsewhere_is_refused_with_the_leader_from_the_image() {
        let (metadata, replicas) = led_elsewhere();
        let controller = FakeController::default();
        let metrics = BrokerMetrics::new(1, "test", "fake-cluster");
        let props = BrokerProps::default();
        let answer = |version: i16| {
            let header = RequestHeader::default().with_request_api_version(version);
            let (metadata, controller, replicas) = (&metadata, &controller, &replicas);
            let (metrics, props) = (&metrics, &props);
            async move {
                handle(
                    metadata,
                    controller,
                    replicas,
                    &FakeVerifier,
                    metrics,
                    props,
                    &header,
                    produce(&[0, 5]),
                )
                .await
            }
        };

        let response = answer(10).await.expect("acks=1 is answered");
        let partitions = &response.responses[0].partition_responses;
        let summary: Vec<_> = partitions
            .iter()
            .map(|p| {
                (
                    p.index,
                    p.error_code,
                    p.base_offset,
                    p.current_leader.leader_id.0,
                    p.current_leader.leader_epoch,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, ResponseError::NotLeaderOrFollower.code(), -1, 2, 7),
                // Not in the image: no leader to name.
                (5, ResponseError::UnknownTopicOrPartition.code(), -1, -1, -1),
            ]
        );
        let endpoints: Vec<_> = response
            .node_endpoints
            .iter()
            .map(|e| {
                (
                    e.node_id.0,
                    e.host.to_string(),
                    e.port,
                    e.rack.as_ref().map(ToString::to_string),
                )
            })
            .collect();
        assert_eq!(
            endpoints,
            vec![(2, "b2".to_owned(), 9093, Some("r2".to_owned()))]
        );
        assert_eq!(
            controller.created_names(),
            Vec::<String>::new(),
            "the topic exists"
        );

        // Before v10 (KIP-951) the response has no place for the hint.
        let response = answer(9).await.expect("acks=1 is answered");
        let refused = &response.responses[0].partition_responses[0];
        assert_eq!(
            refused.error_code,
            ResponseError::NotLeaderOrFollower.code()
        );
        assert_eq!(refused.current_leader.leader_id.0, -1);
        assert!(response.node_endpoints.is_empty());
    }
}
