//! Transactions on this broker: the `strom-txn` coordinator, persisted in the internal topic
//! `__transaction_state` through the broker's own partition logs.
//!
//! As in Kafka, `__transaction_state` is created on the first FindCoordinator for a
//! transactional id, with `transaction.state.log.num.partitions` partitions replicated
//! `transaction.state.log.replication.factor` times (or on every live broker when there are
//! fewer), `min.insync.replicas` of `transaction.state.log.min.isr`, compacted: every state
//! change of a transactional id overwrites its key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use strom_metadata::{ControllerClient, CreateTopicRequest, MetadataQuorum};
use strom_txn::{ProducerIdSource, TransactionCoordinator, TxnConfig, TxnOptions};

use crate::config::BrokerProps;
use crate::coordinator_partitions::PartitionedCoordinator;
use crate::groups::ImageTopicLookup;
use crate::internal_log::InternalTopicLog;
use crate::producer_ids::ProducerIdManager;
use crate::replica::ReplicaManager;
use crate::txn_markers::BrokerMarkerWriter;

pub use strom_txn::TRANSACTION_STATE_TOPIC;

/// The coordinator type the broker runs.
pub type TxnCoordinator = TransactionCoordinator<InternalTopicLog, BrokerMarkerWriter>;

/// Producer ids for transactional producers: the same controller-allocated blocks idempotent
/// producers draw from, so no id is ever handed out twice.
#[derive(Debug)]
pub struct ControllerProducerIds {
    pub(crate) ids: Arc<ProducerIdManager>,
    pub(crate) controller: ControllerClient,
}

impl ProducerIdSource for ControllerProducerIds {
    async fn next_id(&self) -> Result<i64, String> {
        self.ids
            .next_id(&self.controller)
            .await
            .map_err(|error| error.to_string())
    }
}

/// Builds the coordinator from the broker's `transaction.*` settings; `markers` is attached to
/// the broker once it exists.
pub fn coordinator(
    props: &BrokerProps,
    replicas: Arc<ReplicaManager>,
    quorum: MetadataQuorum,
    markers: Arc<BrokerMarkerWriter>,
    producer_ids: ControllerProducerIds,
) -> TxnCoordinator {
    let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
    let config = TxnConfig {
        transaction_state_partitions: props.transaction_state_log_num_partitions,
        max_transaction_timeout: ms(props.transaction_max_timeout_ms),
        transactional_id_expiration: ms(props.transactional_id_expiration_ms),
        abort_timed_out_check_interval: ms(
            props.transaction_abort_timed_out_transaction_cleanup_interval_ms
        ),
        offsets_topic_partitions: props.offsets_topic_num_partitions,
        ..TxnConfig::default()
    };
    let options = TxnOptions {
        topic_lookup: Some(Arc::new(ImageTopicLookup { quorum })),
        ..TxnOptions::default()
    };
    let log = InternalTopicLog::new(TRANSACTION_STATE_TOPIC, replicas);
    TransactionCoordinator::with_options(
        config,
        Arc::new(log),
        markers,
        Arc::new(producer_ids),
        options,
    )
}

impl PartitionedCoordinator for TxnCoordinator {
    fn set_partition_count(&self, count: i32) -> bool {
        TransactionCoordinator::set_partition_count(self, count)
    }

    async fn load_partition(&self, partition: i32, leader_epoch: i32) -> Result<(), String> {
        TransactionCoordinator::load_partition(self, partition, leader_epoch)
            .await
            .map_err(|error| error.to_string())
    }

    async fn unload_partition(&self, partition: i32) {
        TransactionCoordinator::unload_partition(self, partition).await;
    }
}

/// The request to create `__transaction_state`, as Kafka's internal topics are created.
pub fn transaction_state_topic_request(
    props: &BrokerProps,
    live_brokers: usize,
) -> CreateTopicRequest {
    let live = i16::try_from(live_brokers).unwrap_or(i16::MAX).max(1);
    let replication = props.transaction_state_log_replication_factor.min(live);
    let min_isr = props
        .transaction_state_log_min_isr
        .min(i32::from(replication));
    CreateTopicRequest {
        name: TRANSACTION_STATE_TOPIC.to_string(),
        num_partitions: Some(props.transaction_state_log_num_partitions),
        replication_factor: Some(replication),
        assignments: None,
        configs: BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("compression.type".to_string(), "uncompressed".to_string()),
            ("min.insync.replicas".to_string(), min_isr.to_string()),
            (
                "segment.bytes".to_string(),
                props.transaction_state_log_segment_bytes.to_string(),
            ),
        ]),
    }
}
