//! WriteTxnMarkers (API 27): a transaction coordinator asks this broker, as leader of the
//! partitions named, to write the COMMIT or ABORT marker of each transaction (v0–v1; v1 is the
//! flexible form). Every partition answers on its own: an error on one does not stop the
//! others, and the coordinator retries those that failed.

use futures::future::join_all;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{RequestHeader, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use strom_storage::TxnMarker;

use crate::capabilities::{HostedPartitions, TransactionalOffsets};
use crate::txn_markers::write_local_marker;

pub async fn handle(
    replicas: &impl HostedPartitions,
    offsets: &impl TransactionalOffsets,
    _header: &RequestHeader,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let mut results = Vec::with_capacity(request.markers.len());
    for entry in request.markers {
        let marker = TxnMarker {
            producer_id: entry.producer_id.0,
            producer_epoch: entry.producer_epoch,
            coordinator_epoch: entry.coordinator_epoch,
            commit: entry.transaction_result,
        };
        let mut topics = Vec::with_capacity(entry.topics.len());
        for topic in entry.topics {
            let name = topic.name.0.to_string();
            let written = join_all(topic.partition_indexes.iter().map(|&partition| {
                let name = name.as_str();
                async move {
                    let code = write_local_marker(replicas, offsets, name, partition, marker)
                        .await
                        .err()
                        .map_or(0, |error| error.code());
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(partition)
                        .with_error_code(code)
                }
            }))
            .await;
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(written),
            );
        }
        results.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(entry.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}
