//! Coordinators whose state lives in the partitions of an internal topic (the group coordinator
//! on `__consumer_offsets`, the transaction coordinator on `__transaction_state`): the topic is
//! created on first need, and the coordinator serves exactly the partitions this broker leads,
//! loading one when its leadership arrives and unloading it when it moves away.
//!
//! A partition is loaded per leader epoch: if leadership leaves and comes back between two
//! checks, the state is loaded again, because the other leader may have written to it (and the
//! transaction coordinator stamps its markers with the epoch it loaded under).

use std::collections::HashMap;
use std::future::Future;

use strom_metadata::CreateTopicRequest;
use tokio::sync::Mutex;

use crate::broker::Broker;

/// What a coordinator over an internal topic's partitions offers the broker.
pub trait PartitionedCoordinator: Send + Sync {
    /// Adopts the topic's partition count (keys hash onto the partitions the topic has); true
    /// when it changed, so everything loaded under the old count must be loaded again.
    fn set_partition_count(&self, count: i32) -> bool;

    /// Loads the state of `partition`, which this broker leads in `leader_epoch`.
    fn load_partition(
        &self,
        partition: i32,
        leader_epoch: i32,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Forgets the state of `partition`: its keys answer NOT_COORDINATOR.
    fn unload_partition(&self, partition: i32) -> impl Future<Output = ()> + Send;
}

/// The partitions of one internal topic a coordinator has loaded, by the leader epoch they
/// were loaded in. The async mutex also serializes the topic's creation.
#[derive(Debug)]
pub struct CoordinatorPartitions {
    topic: &'static str,
    loaded: Mutex<HashMap<i32, i32>>,
}

impl CoordinatorPartitions {
    pub fn new(topic: &'static str) -> Self {
        Self {
            topic,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Creates the topic with `request` if the image does not have it yet. Idempotent; a
    /// creation another broker won is fine.
    pub async fn ensure_created(
        &self,
        broker: &Broker,
        request: impl FnOnce() -> CreateTopicRequest,
    ) {
        let _creating = self.loaded.lock().await;
        if broker.image().topic(self.topic).is_some() {
            return;
        }
        for created in broker
            .controller
            .create_topics(vec![request()], false)
            .await
        {
            if let Err(error) = created.result {
                tracing::debug!(%error, topic = self.topic, "creating an internal topic");
            }
        }
        broker.publish_metadata().await;
    }

    /// Loads into `coordinator` every partition of the topic this broker leads (again when its
    /// leader epoch changed) and unloads those it stopped leading. Idempotent.
    pub async fn follow_leadership(
        &self,
        broker: &Broker,
        coordinator: &impl PartitionedCoordinator,
    ) {
        let mut loaded = self.loaded.lock().await;
        let image = broker.image();
        let Some(topic) = image.topic(self.topic) else {
            return;
        };
        let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if coordinator.set_partition_count(count) {
            for (partition, _) in loaded.drain() {
                coordinator.unload_partition(partition).await;
            }
        }
        let led: HashMap<i32, i32> = topic
            .partitions
            .keys()
            .filter_map(|&p| {
                let partition = broker.replicas.partition(self.topic, p)?;
                partition.is_leader().then(|| (p, partition.leader_epoch()))
            })
            .collect();
        let stale: Vec<i32> = loaded
            .iter()
            .filter(|(partition, epoch)| led.get(partition) != Some(epoch))
            .map(|(partition, _)| *partition)
            .collect();
        for partition in stale {
            tracing::info!(
                topic = self.topic,
                partition,
                "unloading coordinator state: leadership moved"
            );
            coordinator.unload_partition(partition).await;
            loaded.remove(&partition);
        }
        let mut to_load: Vec<(i32, i32)> = led
            .into_iter()
            .filter(|(partition, _)| !loaded.contains_key(partition))
            .collect();
        to_load.sort_unstable();
        for (partition, epoch) in to_load {
            match coordinator.load_partition(partition, epoch).await {
                Ok(()) => {
                    loaded.insert(partition, epoch);
                }
                Err(error) => {
                    tracing::error!(topic = self.topic, partition, %error, "loading coordinator state");
                }
            }
        }
    }
}
