//! Fakes of the handler capabilities, for handler tests without a quorum, a controller or
//! partition logs: an image built from metadata records, a controller whose answers a test
//! sets per topic, and hosted partitions that refuse lookups with the error a test names.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;
use strom_metadata::controller_ops::{ElectionOutcome, QuorumDescription, ReassignmentTarget};
use strom_metadata::{
    ConfigOp, ConfigResource, ControllerError, CreateTopicRequest, CreateTopicResult, CreatedTopic,
    MetadataImage, MetadataRecord, NewPartitions, PartitionReassignment,
};
use uuid::Uuid;

use crate::capabilities::{CoordinatorKind, CoordinatorLookup, HostedPartitions, MetadataView};
use crate::controller_channel::ControllerChannel;
use crate::replica::Partition;
use crate::replica::quota::{ReplicationQuota, ReplicationQuotas};

/// A broker registration record: `fenced` brokers are registered but not live.
pub(crate) fn broker(
    node_id: i32,
    host: &str,
    port: u16,
    rack: Option<&str>,
    fenced: bool,
) -> MetadataRecord {
    MetadataRecord::RegisterBroker {
        node_id,
        host: host.into(),
        port,
        rack: rack.map(Into::into),
        incarnation: Uuid::from_u128(u128::from(node_id.unsigned_abs())),
        fenced,
    }
}

/// A partition record: `(replicas, isr, leader, leader_epoch)`.
pub(crate) fn partition(
    topic_id: Uuid,
    index: i32,
    (replicas, isr, leader, leader_epoch): (&[i32], &[i32], i32, i32),
) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id,
        partition: index,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader,
        leader_epoch,
        partition_epoch: 0,
    }
}

/// The metadata view of broker `node_id` holding the image of `records`.
#[derive(Debug)]
pub(crate) struct FakeMetadata {
    image: Arc<MetadataImage>,
    node_id: i32,
    controller_id: i32,
}

impl FakeMetadata {
    pub(crate) fn new(node_id: i32, controller_id: i32, records: &[MetadataRecord]) -> Self {
        FakeMetadata {
            image: Arc::new(MetadataImage::empty("fake-cluster").with_records(records)),
            node_id,
            controller_id,
        }
    }
}

impl MetadataView for FakeMetadata {
    fn image(&self) -> Arc<MetadataImage> {
        self.image.clone()
    }

    fn node_id(&self) -> i32 {
        self.node_id
    }

    fn controller_id(&self) -> i32 {
        self.controller_id
    }

    fn metadata_controller_id(&self) -> i32 {
        self.controller_id
    }
}

/// A controller that records the topics it is asked to create and delete and answers with
/// what the test set: per topic of CreateTopics a refusal or a creation; every other
/// operation succeeds without effect.
#[derive(Debug, Default)]
pub(crate) struct FakeController {
    /// CreateTopics answers by topic name; a topic not named is created with one partition.
    pub(crate) create_answers: Mutex<HashMap<String, Result<CreatedTopic, ControllerError>>>,
    /// Every CreateTopics item received, in order.
    pub(crate) create_requests: Mutex<Vec<CreateTopicRequest>>,
    /// Every topic DeleteTopics was asked to delete, in order.
    pub(crate) deleted: Mutex<Vec<String>>,
}

impl FakeController {
    pub(crate) fn answer_create(&self, topic: &str, answer: Result<CreatedTopic, ControllerError>) {
        self.create_answers.lock().insert(topic.to_owned(), answer);
    }

    /// The names of the topics CreateTopics was asked for.
    pub(crate) fn created_names(&self) -> Vec<String> {
        self.create_requests
            .lock()
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }
}

impl ControllerChannel for FakeController {
    async fn create_topics(
        &self,
        topics: Vec<CreateTopicRequest>,
        _validate_only: bool,
    ) -> Vec<CreateTopicResult> {
        let answers = self.create_answers.lock();
        let results = topics
            .iter()
            .map(|topic| CreateTopicResult {
                name: topic.name.clone(),
                result: answers.get(&topic.name).cloned().unwrap_or_else(|| {
                    Ok(CreatedTopic {
                        topic_id: Uuid::from_u128(1),
                        num_partitions: 1,
                        replication_factor: 1,
                        configs: Vec::new(),
                    })
                }),
            })
            .collect();
        self.create_requests.lock().extend(topics);
        results
    }

    async fn delete_topics(&self, names: Vec<String>) -> Vec<Result<Uuid, ControllerError>> {
        let results = names.iter().map(|_| Ok(Uuid::nil())).collect();
        self.deleted.lock().extend(names);
        results
    }

    async fn create_partitions(
        &self,
        topics: Vec<NewPartitions>,
        _validate_only: bool,
    ) -> Vec<Result<(), ControllerError>> {
        topics.iter().map(|_| Ok(())).collect()
    }

    async fn alter_configs(
        &self,
        _resource: ConfigResource,
        _configs: BTreeMap<String, String>,
        _validate_only: bool,
    ) -> Result<(), ControllerError> {
        Ok(())
    }

    async fn incremental_alter_configs(
        &self,
        _resource: ConfigResource,
        _ops: Vec<ConfigOp>,
        _validate_only: bool,
    ) -> Result<(), ControllerError> {
        Ok(())
    }

    async fn allocate_producer_ids(
        &self,
        _node_id: i32,
        _count: i64,
    ) -> Result<i64, ControllerError> {
        Ok(0)
    }

    async fn alter_partition_reassignments(
        &self,
        reassignments: Vec<ReassignmentTarget>,
    ) -> Vec<Result<(), ControllerError>> {
        reassignments.iter().map(|_| Ok(())).collect()
    }

    async fn list_partition_reassignments(
        &self,
        _partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<PartitionReassignment>, ControllerError> {
        Ok(Vec::new())
    }

    async fn elect_leaders(
        &self,
        _preferred: bool,
        _partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<ElectionOutcome>, ControllerError> {
        Ok(Vec::new())
    }

    async fn describe_quorum(&self) -> Result<QuorumDescription, ControllerError> {
        Ok(QuorumDescription {
            leader_id: -1,
            leader_epoch: 0,
            high_watermark: 0,
            voters: Vec::new(),
            observers: Vec::new(),
        })
    }
}

/// Hosted partitions with no open log: a lookup answers the error the test set for the
/// partition (UNKNOWN_TOPIC_OR_PARTITION when none), as the replica manager answers for a
/// partition it follows, does not host or could not open.
#[derive(Debug, Default)]
pub(crate) struct FakeReplicas {
    pub(crate) refusals: HashMap<(String, i32), ResponseError>,
    /// Per topic, the partitions whose logs could not be opened.
    pub(crate) offline: HashMap<String, Vec<i32>>,
    pub(crate) quotas: ReplicationQuotas,
    /// How many times the image was applied to the hosted partitions.
    pub(crate) publishes: AtomicUsize,
    /// Real partitions to serve, by topic and index.
    pub(crate) hosted: HashMap<(String, i32), Arc<Partition>>,
}

impl FakeReplicas {
    pub(crate) fn refusing(mut self, topic: &str, index: i32, error: ResponseError) -> Self {
        self.refusals.insert((topic.to_owned(), index), error);
        self
    }

    pub(crate) fn publishes(&self) -> usize {
        self.publishes.load(Ordering::Relaxed)
    }

    pub(crate) fn hosting(mut self, partition: Arc<Partition>) -> Self {
        self.hosted
            .insert((partition.topic.to_string(), partition.index), partition);
        self
    }

    fn lookup(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, ResponseError> {
        if let Some(hosted) = self.hosted.get(&(topic.to_owned(), partition)) {
            return Ok(Arc::clone(hosted));
        }
        Err(self
            .refusals
            .get(&(topic.to_owned(), partition))
            .copied()
            .unwrap_or(ResponseError::UnknownTopicOrPartition))
    }
}

impl HostedPartitions for FakeReplicas {
    fn leader_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, ResponseError> {
        self.lookup(topic, partition)
    }

    fn readable_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<Partition>, ResponseError> {
        self.lookup(topic, partition)
    }

    fn offline_partitions(&self, topic: &str) -> Vec<i32> {
        self.offline.get(topic).cloned().unwrap_or_default()
    }

    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        Vec::new()
    }

    fn leader_quota(&self) -> &ReplicationQuota {
        &self.quotas.leader
    }

    async fn publish_metadata(&self) {
        self.publishes.fetch_add(1, Ordering::Relaxed);
    }
}

/// The topic of [`led_elsewhere`].
pub(crate) const ORDERS_ID: Uuid = Uuid::from_u128(0x0d);

/// Broker 1 (this one) and broker 2 (`b2:9093`, rack `r2`); `orders`-0 on both, led by 2 at
/// leader epoch 7; the hosted replica refuses clients with NOT_LEADER_OR_FOLLOWER.
pub(crate) fn led_elsewhere() -> (FakeMetadata, FakeReplicas) {
    let metadata = FakeMetadata::new(
        1,
        2,
        &[
            broker(1, "b1", 9092, None, false),
            broker(2, "b2", 9093, Some("r2"), false),
            MetadataRecord::Topic {
                name: "orders".into(),
                topic_id: ORDERS_ID,
            },
            partition(ORDERS_ID, 0, (&[1, 2], &[1, 2], 2, 7)),
        ],
    );
    let replicas =
        FakeReplicas::default().refusing("orders", 0, ResponseError::NotLeaderOrFollower);
    (metadata, replicas)
}

/// Broker 1 leading `orders` partition 0 (the only replica) over a real log in `dir`, its
/// writes on `io`.
pub(crate) fn led_here(
    dir: &std::path::Path,
    io: &crate::replica::log_io::LogIo,
) -> (FakeMetadata, FakeReplicas, Arc<Partition>) {
    let metadata = FakeMetadata::new(
        1,
        1,
        &[
            broker(1, "b1", 9092, None, false),
            MetadataRecord::Topic {
                name: "orders".into(),
                topic_id: ORDERS_ID,
            },
            partition(ORDERS_ID, 0, (&[1], &[1], 1, 0)),
        ],
    );
    let log = strom_storage::PartitionLog::open(dir, strom_storage::LogConfig::default(), 1_000)
        .expect("log opens");
    let state = crate::replica::ReplicaState {
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        replicas: vec![1],
        isr: vec![1],
    };
    let hosted = Partition::started(Partition::new(
        Arc::from("orders"),
        ORDERS_ID,
        0,
        1,
        log,
        io.assign(),
        state,
        1,
        None,
    ));
    let replicas = FakeReplicas::default().hosting(Arc::clone(&hosted));
    (metadata, replicas, hosted)
}

/// Groups hashed onto `__consumer_offsets` partitions as the test says (partition 0 for any
/// other group).
#[derive(Debug, Default)]
pub(crate) struct FakeCoordinators {
    pub(crate) partitions: HashMap<String, i32>,
    /// The internal topics made sure of, in order.
    pub(crate) ensured: Mutex<Vec<CoordinatorKind>>,
}

impl CoordinatorLookup for FakeCoordinators {
    async fn ensure_coordinator_topic(&self, kind: CoordinatorKind) {
        self.ensured.lock().push(kind);
    }

    fn partition_for(&self, _kind: CoordinatorKind, key: &str) -> i32 {
        self.partitions.get(key).copied().unwrap_or(0)
    }
}

/// A transaction coordinator that confirms every partition.
#[derive(Debug, Default)]
pub(crate) struct FakeVerifier;

impl crate::capabilities::TransactionVerifier for FakeVerifier {
    async fn verify_partitions(
        &self,
        _transactional_id: &str,
        _producer_id: i64,
        _producer_epoch: i16,
        _partitions: Vec<(String, i32)>,
    ) -> HashMap<(String, i32), ResponseError> {
        HashMap::new()
    }
}
