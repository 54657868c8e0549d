//! Fetch: whole record batches from each requested partition, up to the high watermark, within
//! `partition_max_bytes` and the request's `max_bytes` (the first batch may exceed both, KIP-74,
//! so a consumer always makes progress). With `min_bytes` unmet the request long-polls: it waits
//! for any of its partitions to grow, up to `max_wait_ms`.
//!
//! Both limits are capped by the broker's `fetch.max.bytes` (a negative request limit counts as
//! 0), so a small request cannot ask for an unbounded response. A partition named more than once
//! in one request is served once, at the position of its first mention with the fields of its
//! last, as Kafka's `FetchRequest.fetchData` map does.
//!
//! The record sets are not read into memory: each partition's batches come back as ranges of
//! its segment files ([`FileRecords`]), which the connection writes to the socket with
//! `sendfile` after the encoded fields before them (see `protocol::zero_copy`). Finding the
//! ranges reads indexes and batch headers, so it runs on tokio's blocking pool.
//!
//! A read_committed consumer (`isolation_level` 1, v4+) reads up to the partition's last stable
//! offset instead, and gets the aborted transactions in that range, whose records it drops.
//!
//! A fetch from a follower (a replica id set: the `replica_id` field before v15, KIP-903's
//! `ReplicaState` from v15) reads up to the log end instead of the high watermark, long-polls on
//! the log end, and reports the follower's log end (its fetch offset) to the partition, which
//! may advance the high watermark. A replica id that is not a follower of the partition gets
//! NOT_LEADER_OR_FOLLOWER.
//!
//! Replication throttles (KIP-73, [`crate::replica::quota`]): the bytes a follower gets of a
//! replica listed in `leader.replication.throttled.replicas` count against the leader quota,
//! and while it is exceeded such replicas of a follower outside the ISR come back with no
//! records (no error), so they neither fill the response nor satisfy `min_bytes`.
//!
//! A consumer's fetch from v11 on may be served by a follower replica, up to that replica's
//! high watermark (KIP-392); with `replica.selector.class` set to the rack-aware selector the
//! leader sends a consumer that names its rack to the replica there (`preferred_read_replica`).
//!
//! Fetch sessions (KIP-227) are not created: every response carries session id 0, which clients
//! treat as "sessionless" and answer with full requests; an incremental request for a session id
//! gets FETCH_SESSION_ID_NOT_FOUND.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, RequestHeader};
use uuid::Uuid;

use strom_storage::FileRecords;

use super::leader_hint::LeaderHints;
use super::topic_name;
use crate::capabilities::{HostedPartitions, MetadataView};
use crate::config::BrokerProps;
use crate::errors::storage_failure;
use crate::metrics::BrokerMetrics;
use crate::replica::Partition;
use crate::replica::selector::{RACK_AWARE_SELECTOR, preferred_read_replica};

/// A Fetch response whose record sets are still in the segment files: `records[t][p]` belongs
/// to `response.responses[t].partitions[p]`, whose own `records` field is left empty.
#[derive(Debug, Default)]
pub struct FetchReply {
    pub response: FetchResponse,
    pub records: Vec<Vec<FileRecords>>,
}

/// A requested partition resolved against the hosted partitions.
struct Target {
    topic: usize,
    partition: Option<Arc<Partition>>,
    index: i32,
    fetch_offset: i64,
    max_bytes: usize,
    /// An error known before reading (unknown topic, fenced epoch).
    error: Option<ResponseError>,
    /// A follower's fetch of a replica the leader quota throttles.
    throttled: bool,
    /// The follower is in the ISR: never held back.
    in_sync: bool,
    /// KIP-392: the replica this consumer should read from instead (no records are read).
    preferred_replica: Option<i32>,
}

pub async fn handle(
    metadata: &impl MetadataView,
    replicas: &impl HostedPartitions,
    metrics: &BrokerMetrics,
    props: &BrokerProps,
    header: &RequestHeader,
    request: FetchRequest,
) -> FetchReply {
    let version = header.request_api_version;
    if request.session_id != 0 {
        return FetchReply {
            response: FetchResponse::default()
                .with_error_code(ResponseError::FetchSessionIdNotFound.code())
                .with_session_id(0),
            records: Vec::new(),
        };
    }
    let image = metadata.image();
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let follower = (replica_id >= 0).then_some(replica_id);
    // KIP-392: consumers that name their rack (v11+) may be sent to a replica in it.
    let selects_replicas =
        version >= 11 && follower.is_none() && props.replica_selector_class == RACK_AWARE_SELECTOR;
    let quota = replicas.leader_quota();
    let now_ms = crate::replica::now_ms();
    let by_id = version >= 13;
    let mut topics: Vec<(String, Uuid)> = Vec::with_capacity(request.topics.len());
    let fetch_max_bytes = props.fetch_max_bytes;
    let mut targets: Vec<Target> = Vec::new();
    // (topic id or name, partition) → index in `targets`.
    let mut seen: HashMap<(Uuid, String, i32), usize> = HashMap::new();
    for topic in &request.topics {
        let resolved = if by_id {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        let unknown = if by_id {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        // Per-topic series only for topics that exist: names from clients are unbounded.
        if let Some(name) = resolved.as_deref().filter(|n| image.topic(n).is_some()) {
            metrics.topic(name).fetch_request();
        }
        for p in &topic.partitions {
            let (partition, error) = match resolved.as_deref() {
                None => (None, Some(unknown)),
                Some(name) => match readable(replicas, name, p.partition, follower, version) {
                    Ok(partition) => {
                        let mut error =
                            epoch_error(p.current_leader_epoch, partition.leader_epoch());
                        if let Some(replica) = follower
                            && error.is_none()
                            && !partition.record_follower_fetch(replica, p.fetch_offset, now_ms)
                        {
                            error = Some(ResponseError::NotLeaderOrFollower);
                        }
                        (Some(partition), error)
                    }
                    Err(error) => (None, Some(error)),
                },
            };
            let throttled = follower.is_some()
                && partition
                    .as_ref()
                    .is_some_and(|p| quota.is_throttled(&p.topic, p.index));
            let in_sync = match (follower, &partition) {
                (Some(replica), Some(p)) if throttled => p.state().isr.contains(&replica),
                _ => true,
            };
            let preferred_replica = match (&partition, follower, error) {
                (Some(partition), None, None) if selects_replicas => preferred_read_replica(
                    &image,
                    partition,
                    &request.rack_id,
                    p.fetch_offset,
                    now_ms,
                    props.replica_lag_time_max_ms,
                ),
                _ => None,
            };
            let target = Target {
                topic: topics.len(),
                partition,
                index: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: capped(p.partition_max_bytes, fetch_max_bytes),
                error,
                throttled,
                in_sync,
                preferred_replica,
            };
            let key = if by_id {
                (topic.topic_id, String::new(), p.partition)
            } else {
                (Uuid::nil(), topic.topic.0.to_string(), p.partition)
            };
            match seen.get(&key) {
                Some(&first) => {
                    targets[first] = Target {
                        topic: targets[first].topic,
                        ..target
                    }
                }
                None => {
                    seen.insert(key, targets.len());
                    targets.push(target);
                }
            }
        }
        topics.push((topic.topic.0.to_string(), topic.topic_id));
    }

    let max_wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let deadline = Instant::now() + max_wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_bytes = capped(request.max_bytes, fetch_max_bytes);
    let may_hold_back = targets.iter().any(|t| t.throttled && !t.in_sync);
    let hold_back = || may_hold_back && quota.is_exceeded();
    let bound = ReadBound::of(follower, version, request.isolation_level);
    let targets = Arc::new(targets);
    let results = loop {
        // Subscribe before reading so an append between the read and the wait is not missed.
        let mut watches: Vec<_> = targets
            .iter()
            .filter(|t| t.error.is_none())
            .filter_map(|t| {
                t.partition.as_ref().map(|p| match follower {
                    Some(_) => p.subscribe_log_end(),
                    None => p.subscribe_high_watermark(),
                })
            })
            .collect();
        let (results, bytes, answer_now) =
            read_off_runtime(&targets, max_bytes, bound, hold_back()).await;
        let now = Instant::now();
        if bytes >= min_bytes || answer_now || now >= deadline || watches.is_empty() {
            break results;
        }
        let any_growth =
            futures::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout(deadline - now, any_growth)
            .await
            .is_err()
        {
            break read_off_runtime(&targets, max_bytes, bound, hold_back())
                .await
                .0;
        }
    };

    let mut responses: Vec<FetchableTopicResponse> = topics
        .iter()
        .map(|(name, id)| {
            FetchableTopicResponse::default()
                .with_topic(topic_name(name))
                .with_topic_id(*id)
        })
        .collect();
    let mut records: Vec<Vec<FileRecords>> = vec![Vec::new(); responses.len()];
    for (target, (data, file_records)) in targets.iter().zip(results) {
        if let Some(partition) = &target.partition
            && !file_records.is_empty()
        {
            if target.throttled {
                quota.record(file_records.len() as u64);
            }
            // Kafka counts replication apart from consumers' bytes out.
            match follower {
                Some(_) => metrics.replication_bytes_out(file_records.len() as u64),
                None => metrics
                    .topic(&partition.topic)
                    .bytes_out(file_records.len() as u64),
            }
        }
        // A read the log could not serve (a corrupt batch, a failing disk): Kafka's
        // failedFetchRequestRate.
        if let Some(partition) = &target.partition
            && (data.error_code == ResponseError::CorruptMessage.code()
                || data.error_code == ResponseError::KafkaStorageError.code())
        {
            metrics.topic(&partition.topic).failed_fetch();
        }
        if let (Some(topic), Some(slot)) = (
            responses.get_mut(target.topic),
            records.get_mut(target.topic),
        ) {
            topic.partitions.push(data);
            slot.push(file_records);
        }
    }
    // A topic entry whose partitions were all repeats of earlier ones has nothing left to say.
    let (responses, records): (Vec<_>, Vec<_>) = responses
        .into_iter()
        .zip(records)
        .filter(|(topic, _)| !topic.partitions.is_empty())
        .unzip();
    let mut response = FetchResponse::default()
        .with_session_id(0)
        .with_responses(responses);
    if version >= 16 {
        add_leader_hints(&image, &mut response);
    }
    FetchReply { response, records }
}

/// KIP-951: partitions refused because leadership moved name the new leader.
fn add_leader_hints(image: &strom_metadata::MetadataImage, response: &mut FetchResponse) {
    let mut hints = LeaderHints::default();
    for topic in &mut response.responses {
        let name = if topic.topic.0.is_empty() {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        let Some(name) = name else { continue };
        for partition in &mut topic.partitions {
            if let Some((leader_id, leader_epoch)) = hints.note(
                image,
                &name,
                partition.partition_index,
                partition.error_code,
            ) {
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

/// The partition a fetch reads: a follower's fetch and a consumer's before v11 need the leader;
/// a consumer from v11 on may read a follower replica (KIP-392).
fn readable(
    replicas: &impl HostedPartitions,
    topic: &str,
    partition: i32,
    follower: Option<i32>,
    version: i16,
) -> Result<Arc<Partition>, ResponseError> {
    if follower.is_none() && version >= 11 {
        replicas.readable_partition(topic, partition)
    } else {
        replicas.leader_partition(topic, partition)
    }
}

/// How far a fetch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadBound {
    /// A follower: up to the log end.
    LogEnd,
    /// A read_uncommitted consumer: up to the high watermark.
    HighWatermark,
    /// A read_committed consumer (v4+ `isolation_level` 1): up to the last stable offset, with
    /// the aborted transactions in range so the client drops their records.
    StableOffset,
}

impl ReadBound {
    fn of(follower: Option<i32>, version: i16, isolation_level: i8) -> Self {
        match follower {
            Some(_) => ReadBound::LogEnd,
            None if version >= 4 && isolation_level == READ_COMMITTED => ReadBound::StableOffset,
            None => ReadBound::HighWatermark,
        }
    }
}

/// `isolation_level` of a read_committed consumer.
const READ_COMMITTED: i8 = 1;

/// [`read_all`] on tokio's blocking pool.
async fn read_off_runtime(
    targets: &Arc<Vec<Target>>,
    max_bytes: usize,
    bound: ReadBound,
    hold_back: bool,
) -> (Vec<(PartitionData, FileRecords)>, usize, bool) {
    let targets = Arc::clone(targets);
    let read = move || read_all(&targets, max_bytes, bound, hold_back);
    match tokio::task::spawn_blocking(read).await {
        Ok(read) => read,
        Err(error) => {
            tracing::error!(%error, "fetch read task failed");
            (Vec::new(), 0, true)
        }
    }
}

/// A requested byte limit within the broker's `fetch.max.bytes`; a negative one counts as 0
/// (the first batch is still returned, KIP-74, so the consumer progresses).
fn capped(requested: i32, fetch_max_bytes: i32) -> usize {
    usize::try_from(requested.clamp(0, fetch_max_bytes.max(0))).unwrap_or(0)
}

/// KIP-320: a client that knows a newer or older leader epoch than ours is told so.
pub(crate) fn epoch_error(client_epoch: i32, leader_epoch: i32) -> Option<ResponseError> {
    match client_epoch {
        -1 => None,
        e if e < leader_epoch => Some(ResponseError::FencedLeaderEpoch),
        e if e > leader_epoch => Some(ResponseError::UnknownLeaderEpoch),
        _ => None,
    }
}

/// Reads every target once (up to the log end for a follower, else the high watermark; a
/// target sent to another replica reads nothing and makes the answer immediate);
/// returns the partition data (with empty `records`) and the file ranges of each partition's
/// batches, the bytes found and whether the answer must go now (a partition failed, or was
/// sent to another replica). With `hold_back`, throttled
/// targets of followers outside the ISR are answered without records.
fn read_all(
    targets: &[Target],
    max_bytes: usize,
    bound: ReadBound,
    hold_back: bool,
) -> (Vec<(PartitionData, FileRecords)>, usize, bool) {
    let mut total = 0usize;
    let mut answer_now = false;
    let mut out = Vec::with_capacity(targets.len());
    for target in targets {
        let data = PartitionData::default()
            .with_partition_index(target.index)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_preferred_read_replica(BrokerId(-1))
            .with_records(Some(Bytes::new()));
        let partition = match (&target.partition, target.error) {
            (None, _) | (_, Some(_)) => {
                answer_now = true;
                let error = target
                    .error
                    .unwrap_or(ResponseError::UnknownTopicOrPartition);
                out.push((data.with_error_code(error.code()), FileRecords::default()));
                continue;
            }
            (Some(partition), None) => partition,
        };
        let high_watermark = partition.high_watermark();
        let last_stable = partition.last_stable_offset();
        let data = data
            .with_high_watermark(high_watermark)
            .with_last_stable_offset(last_stable)
            .with_log_start_offset(partition.log_start_offset());
        if let Some(replica) = target.preferred_replica {
            // Answered at once, without records: the consumer moves to that replica.
            answer_now = true;
            out.push((
                data.with_preferred_read_replica(BrokerId(replica)),
                FileRecords::default(),
            ));
            continue;
        }
        if hold_back && target.throttled && !target.in_sync {
            out.push((data, FileRecords::default()));
            continue;
        }
        let budget = target.max_bytes.min(max_bytes.saturating_sub(total));
        let first = total == 0;
        let read = match bound {
            ReadBound::LogEnd => partition.read_for_follower(target.fetch_offset, budget, first),
            ReadBound::HighWatermark => {
                partition.read_committed(target.fetch_offset, budget, first)
            }
            ReadBound::StableOffset => partition.read_stable(target.fetch_offset, budget, first),
        };
        // Records without the list of their aborted transactions would show aborted data to
        // a read_committed consumer: a failure to read the list fails the partition.
        let (data, read) = if bound == ReadBound::StableOffset {
            match partition.aborted_transactions(target.fetch_offset, last_stable) {
                Ok(aborted) => {
                    let aborted = aborted
                        .into_iter()
                        .map(|txn| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(txn.producer_id))
                                .with_first_offset(txn.first_offset)
                        })
                        .collect();
                    (data.with_aborted_transactions(Some(aborted)), read)
                }
                Err(error) => (data, Err(error)),
            }
        } else {
            (data, read)
        };
        match read {
            Ok(read) => {
                total += read.len();
                out.push((data, read));
            }
            Err(error) => {
                answer_now = true;
                let (code, _) = storage_failure(&error);
                out.push((data.with_error_code(code.code()), FileRecords::default()));
            }
        }
    }
    (out, total, answer_now)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};

    use super::*;
    use crate::handlers::fakes::{ORDERS_ID, led_elsewhere};

    #[test]
    fn leader_epoch_fencing_follows_kip_320() {
        assert_eq!(epoch_error(-1, 5), None);
        assert_eq!(epoch_error(5, 5), None);
        assert_eq!(epoch_error(4, 5), Some(ResponseError::FencedLeaderEpoch));
        assert_eq!(epoch_error(6, 5), Some(ResponseError::UnknownLeaderEpoch));
    }

    #[test]
    fn request_limits_are_capped_by_fetch_max_bytes() {
        let cap = 57_671_680;
        assert_eq!(capped(-1, cap), 0);
        assert_eq!(capped(i32::MIN, cap), 0);
        assert_eq!(capped(i32::MAX, cap), cap as usize);
        assert_eq!(capped(1024, cap), 1024);
    }

    fn fetch(replica_id: i32) -> FetchRequest {
        FetchRequest::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_replica_state(ReplicaState::default().with_replica_id(BrokerId(replica_id)))
            .with_replica_id(BrokerId(replica_id))
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(topic_name("orders"))
                    .with_topic_id(ORDERS_ID)
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(10)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ])
    }

    /// A refused partition: error code, leader id, leader epoch.
    type Refused = (i16, i32, i32);
    /// A leader endpoint named: node id, host, port.
    type Endpoint = (i32, String, i32);

    /// The one partition's refusal and the endpoints named.
    fn refusal(reply: &FetchReply) -> (Refused, Vec<Endpoint>) {
        let topic = &reply.response.responses[0];
        let p = &topic.partitions[0];
        let endpoints = reply
            .response
            .node_endpoints
            .iter()
            .map(|e| (e.node_id.0, e.host.to_string(), e.port))
            .collect();
        (
            (
                p.error_code,
                p.current_leader.leader_id.0,
                p.current_leader.leader_epoch,
            ),
            endpoints,
        )
    }

    #[tokio::test]
    async fn a_partition_led_elsewhere_is_refused_with_the_leader_from_the_image() {
        let (metadata, replicas) = led_elsewhere();
        let metrics = BrokerMetrics::new(1, "test", "fake-cluster");
        let props = BrokerProps::default();
        let not_leader = ResponseError::NotLeaderOrFollower.code();
        let b2 = vec![(2, "b2".to_owned(), 9093)];

        // A follower's fetch (KIP-903's replica state, v15+) and a consumer's, by topic id.
        for replica_id in [3, -1] {
            let header = RequestHeader::default().with_request_api_version(16);
            let reply = handle(
                &metadata,
                &replicas,
                &metrics,
                &props,
                &header,
                fetch(replica_id),
            )
            .await;
            assert_eq!(
                refusal(&reply),
                ((not_leader, 2, 7), b2.clone()),
                "replica id {replica_id}"
            );
            assert!(reply.records[0][0].is_empty(), "nothing read");
        }

        // Before v16 (KIP-951) there is no hint.
        let header = RequestHeader::default().with_request_api_version(12);
        let reply = handle(&metadata, &replicas, &metrics, &props, &header, fetch(3)).await;
        assert_eq!(refusal(&reply), ((not_leader, -1, -1), vec![]));
    }
}
