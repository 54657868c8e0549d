//! Writing transaction markers to the partitions this broker leads: what WriteTxnMarkers asks
//! of a partition leader, and what the local transaction coordinator does for the partitions of
//! a transaction led here (`crate::transactions`).
//!
//! A marker is appended as leader and acknowledged once every in-sync replica has it (Kafka
//! writes markers with acks=all): only then may the coordinator record the transaction as
//! complete, since a marker lost with its leader would leave the transaction undecided on the
//! new one. A marker on a `__consumer_offsets` partition also completes the group coordinator's
//! pending transactional offsets of that producer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use strom_storage::TxnMarker;
use strom_txn::{MarkerError, MarkerRequest, MarkerResult, MarkerWriter};

use crate::capabilities::{HostedPartitions, TransactionalOffsets};
use crate::errors::storage_failure;
use crate::groups::OFFSETS_TOPIC;
use crate::replica::{AppendError, CommitWait, now_ms};

/// How long a marker waits for the in-sync replicas (Kafka's `request.timeout.ms` of the
/// coordinator's marker requests).
const MARKER_COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes `marker` to `topic`-`partition`, which this broker must lead; waits until it is
/// replicated to the ISR. The error is the Kafka code the partition answers.
pub async fn write_local_marker(
    replicas: &impl HostedPartitions,
    offsets: &impl TransactionalOffsets,
    topic: &str,
    partition: i32,
    marker: TxnMarker,
) -> Result<(), ResponseError> {
    let target = replicas.leader_partition(topic, partition)?;
    let append = target
        .append_txn_marker(marker, now_ms())
        .await
        .map_err(|error| match error {
            AppendError::NotLeader => ResponseError::NotLeaderOrFollower,
            AppendError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
            AppendError::Storage(error) => storage_failure(&error).0,
        })?;
    target
        .wait_for_commit(
            append.info.last_offset + 1,
            append.leader_epoch,
            MARKER_COMMIT_TIMEOUT,
        )
        .await
        .map_err(|failed| match failed {
            CommitWait::NotLeader => ResponseError::NotLeaderOrFollower,
            CommitWait::NotEnoughReplicasAfterAppend => ResponseError::NotEnoughReplicasAfterAppend,
            CommitWait::TimedOut => ResponseError::RequestTimedOut,
        })?;
    if topic == OFFSETS_TOPIC {
        offsets
            .complete_transaction(
                partition,
                marker.producer_id,
                marker.producer_epoch,
                marker.commit,
            )
            .await;
    }
    Ok(())
}

/// The transaction coordinator's way to its partitions' leaders: markers for partitions led
/// here are written directly, the others go to their leaders as WriteTxnMarkers requests, one
/// per leader, over the broker's peer connections.
#[derive(Debug, Default)]
pub struct BrokerMarkerWriter {
    /// The broker this coordinator runs in, set once it exists (it owns the coordinator).
    broker: std::sync::OnceLock<std::sync::Weak<crate::broker::Broker>>,
}

impl BrokerMarkerWriter {
    /// Points the writer at the broker that runs its coordinator.
    pub fn attach(&self, broker: &Arc<crate::broker::Broker>) {
        let _ = self.broker.set(Arc::downgrade(broker));
    }

    fn broker(&self) -> Option<Arc<crate::broker::Broker>> {
        self.broker.get().and_then(std::sync::Weak::upgrade)
    }
}

/// Sends one WriteTxnMarkers request for `partitions` to broker `leader`.
async fn send_remote(
    broker: &crate::broker::Broker,
    leader: i32,
    request: &MarkerRequest,
    partitions: &[(String, i32)],
) -> Vec<MarkerResult> {
    let fail = |reason: String| -> Vec<MarkerResult> {
        partitions
            .iter()
            .map(|tp| (tp.clone(), Err(MarkerError::Retriable(reason.clone()))))
            .collect()
    };
    let Some(node) = broker.image().broker(leader).cloned() else {
        return fail(format!("leader {leader} is not registered"));
    };
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let wire = WriteTxnMarkersRequest::default().with_markers(vec![
        WritableTxnMarker::default()
            .with_producer_id(ProducerId(request.producer_id))
            .with_producer_epoch(request.producer_epoch)
            .with_transaction_result(request.commit)
            .with_coordinator_epoch(request.coordinator_epoch)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(topic, indexes)| {
                        WritableTxnMarkerTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partition_indexes(indexes)
                    })
                    .collect(),
            ),
    ]);
    let address = format!("{}:{}", node.host, node.port);
    let response = match broker.peers.send(leader, &address, wire, None).await {
        Ok(response) => response,
        Err(error) => return fail(error.to_string()),
    };
    let mut answered: HashMap<(String, i32), i16> = HashMap::new();
    for marker in response.markers {
        for topic in marker.topics {
            for partition in topic.partitions {
                answered.insert(
                    (topic.name.0.to_string(), partition.partition_index),
                    partition.error_code,
                );
            }
        }
    }
    partitions
        .iter()
        .map(|tp| {
            let outcome = match answered.get(tp) {
                Some(0) => Ok(()),
                Some(&code) => Err(marker_error(code)),
                None => Err(MarkerError::Retriable(format!(
                    "broker {leader} did not answer for the partition"
                ))),
            };
            (tp.clone(), outcome)
        })
        .collect()
}

/// What a partition's error code means to the coordinator: a stale coordinator or producer
/// epoch stops it (a newer coordinator owns the transaction), a partition that no longer exists
/// is done, anything else is retried.
fn marker_error(code: i16) -> MarkerError {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::UnknownTopicOrPartition) => MarkerError::UnknownPartition,
        Some(ResponseError::TransactionCoordinatorFenced | ResponseError::InvalidProducerEpoch) => {
            MarkerError::CoordinatorFenced
        }
        other => MarkerError::Retriable(format!("error {code} ({other:?})")),
    }
}

impl MarkerWriter for BrokerMarkerWriter {
    async fn write_markers(&self, request: MarkerRequest) -> Vec<MarkerResult> {
        let Some(broker) = self.broker() else {
            return request
                .partitions
                .iter()
                .map(|tp| {
                    (
                        tp.clone(),
                        Err(MarkerError::Retriable("shutting down".into())),
                    )
                })
                .collect();
        };
        let image = broker.image();
        let marker = TxnMarker {
            producer_id: request.producer_id,
            producer_epoch: request.producer_epoch,
            coordinator_epoch: request.coordinator_epoch,
            commit: request.commit,
        };
        let mut local = Vec::new();
        let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        let mut results = Vec::with_capacity(request.partitions.len());
        for (topic, partition) in &request.partitions {
            match image.partition(topic, *partition).map(|p| p.leader) {
                None => results.push((
                    (topic.clone(), *partition),
                    Err(MarkerError::UnknownPartition),
                )),
                Some(leader) if leader == broker.node_id => local.push((topic.clone(), *partition)),
                Some(leader) if leader >= 0 => remote
                    .entry(leader)
                    .or_default()
                    .push((topic.clone(), *partition)),
                Some(_) => results.push((
                    (topic.clone(), *partition),
                    Err(MarkerError::Retriable("the partition has no leader".into())),
                )),
            }
        }
        let local_writes = local.into_iter().map(|(topic, partition)| {
            let broker = &broker;
            async move {
                let outcome = write_local_marker(&**broker, &**broker, &topic, partition, marker)
                    .await
                    .map_err(|error| marker_error(error.code()));
                ((topic, partition), outcome)
            }
        });
        let remote_writes = remote
            .iter()
            .map(|(leader, partitions)| send_remote(&broker, *leader, &request, partitions));
        let (local_results, remote_results) =
            futures::join!(join_all(local_writes), join_all(remote_writes));
        results.extend(local_results);
        results.extend(remote_results.into_iter().flatten());
        results
    }
}
