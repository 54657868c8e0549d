//! The metadata image: the state of the cluster after applying the metadata log up to `offset`.
//!
//! An image is immutable once published; request handlers hold an `Arc<MetadataImage>` and read
//! a consistent snapshot while newer images are published beside it. The maps sit behind `Arc`
//! (and topics behind another `Arc` each), so deriving the next image copies only the map that a
//! record touches and shares everything else.
//!
//! Applying a record never fails: the controller validated it before it was committed, and a
//! record that no longer fits (a partition change for a topic deleted meanwhile) is ignored, so
//! every replica of the log derives the same image.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde::Serialize;
use uuid::Uuid;

use crate::records::ConfigResource;
use crate::records::MetadataRecord;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub incarnation: Uuid,
    /// The broker epoch: the metadata offset at which this registration was applied (KIP-631).
    pub epoch: u64,
    /// A fenced broker is left out of Metadata responses, leads nothing and joins no ISR; the
    /// controller moves its leaderships and ISR memberships in the batch that fences it.
    #[serde(default)]
    pub fenced: bool,
    /// The metadata offset at which the broker was last fenced: it is unfenced once it has
    /// applied the log past it.
    #[serde(default)]
    pub fenced_at: u64,
    /// The broker asked for a controlled shutdown (and was fenced for it).
    #[serde(default)]
    pub in_controlled_shutdown: bool,
}

/// One partition's replica assignment and leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// `-1` when the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// During a reassignment (KIP-455): the target replicas not yet in the original replicas.
    /// They are listed in `replicas` and join the ISR as they catch up.
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    /// During a reassignment: the original replicas not in the target, dropped from
    /// `replicas` once the reassignment completes.
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
}

impl PartitionImage {
    /// Whether a reassignment of this partition is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// Applies a `partition_change` record's fields (`None` keeps the value): the
    /// `partition_epoch` moves on any change, the `leader_epoch` when the leader changes, as in
    /// Kafka's `PartitionChangeRecord`. Returns whether anything changed.
    pub fn apply_change(&mut self, change: &PartitionDelta<'_>) -> bool {
        let PartitionDelta {
            leader,
            isr,
            replicas,
            adding_replicas,
            removing_replicas,
        } = *change;
        let mut changed = false;
        if let Some(leader) = leader
            && leader != self.leader
        {
            self.leader = leader;
            self.leader_epoch = self.leader_epoch.saturating_add(1);
            changed = true;
        }
        if let Some(isr) = isr
            && isr != self.isr.as_slice()
        {
            self.isr = isr.to_vec();
            changed = true;
        }
        if let Some(replicas) = replicas
            && replicas != self.replicas.as_slice()
        {
            self.replicas = replicas.to_vec();
            changed = true;
        }
        if let Some(adding) = adding_replicas
            && adding != self.adding_replicas.as_slice()
        {
            self.adding_replicas = adding.to_vec();
            changed = true;
        }
        if let Some(removing) = removing_replicas
            && removing != self.removing_replicas.as_slice()
        {
            self.removing_replicas = removing.to_vec();
            changed = true;
        }
        if changed {
            self.partition_epoch = self.partition_epoch.saturating_add(1);
        }
        changed
    }
}

/// The fields of a `partition_change` record; `None` keeps the value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionDelta<'a> {
    pub leader: Option<i32>,
    pub isr: Option<&'a [i32]>,
    pub replicas: Option<&'a [i32]>,
    pub adding_replicas: Option<&'a [i32]>,
    pub removing_replicas: Option<&'a [i32]>,
}

/// A topic with its partitions and the configs set explicitly on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
    /// Only explicitly set topic configs; the defaults live in
    /// [`TOPIC_CONFIGS`](crate::topic_config::TOPIC_CONFIGS).
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    /// The replication factor: the replica count of partition 0 (all partitions of a topic are
    /// created with the same count), or 0 for a topic without partitions.
    pub fn replication_factor(&self) -> usize {
        self.partitions
            .values()
            .next()
            .map_or(0, |p| p.replicas.len())
    }
}

/// Where a broker's dynamic config value was set (Kafka's `DYNAMIC_BROKER_CONFIG` and
/// `DYNAMIC_DEFAULT_BROKER_CONFIG` sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicLevel {
    /// On this broker.
    Broker,
    /// Cluster-wide, for every broker.
    ClusterDefault,
}

fn is_empty_map(map: &Arc<BTreeMap<String, String>>) -> bool {
    map.is_empty()
}

/// The cluster metadata at one point of the metadata log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub cluster_id: String,
    /// The Raft log index of the last entry applied to this image (0 for an empty log).
    pub offset: u64,
    pub brokers: Arc<BTreeMap<i32, BrokerRegistration>>,
    /// Topics by name.
    pub topics: Arc<BTreeMap<String, Arc<TopicImage>>>,
    /// Topic names by topic id.
    pub topic_ids: Arc<BTreeMap<Uuid, String>>,
    /// Dynamic configs set per broker.
    pub broker_configs: Arc<BTreeMap<i32, BTreeMap<String, String>>>,
    /// Dynamic configs set cluster-wide, for every broker that has none of its own. Left out
    /// of the serialized image while empty, so images without any keep their checksum.
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub broker_default_configs: Arc<BTreeMap<String, String>>,
    /// The first producer id not yet handed out.
    #[serde(default)]
    pub next_producer_id: i64,
}

impl MetadataImage {
    /// The image of an empty metadata log.
    pub fn empty(cluster_id: impl Into<String>) -> Self {
        Self {
            cluster_id: cluster_id.into(),
            offset: 0,
            brokers: Arc::default(),
            topics: Arc::default(),
            topic_ids: Arc::default(),
            broker_configs: Arc::default(),
            broker_default_configs: Arc::default(),
            next_producer_id: 0,
        }
    }

    /// The image after `record`. Pure: `self` is unchanged.
    pub fn apply(&self, record: &MetadataRecord) -> MetadataImage {
        let mut next = self.clone();
        next.apply_in_place(record);
        next
    }

    /// The image after the records of the log entry at `offset`, applied in order.
    pub fn apply_batch(&self, offset: u64, records: &[MetadataRecord]) -> MetadataImage {
        let mut next = self.clone();
        next.offset = offset;
        for record in records {
            next.apply_in_place(record);
        }
        next
    }

    /// A CRC32C of the image's serialized content: replicas that applied the same log agree on
    /// it. Computed on demand (metrics scrapes, tests), never on the request path.
    pub fn checksum(&self) -> u32 {
        serde_json::to_vec(self).map_or(0, |bytes| crc32c::crc32c(&bytes))
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name).map(Arc::as_ref)
    }

    pub fn topic_by_id(&self, topic_id: &Uuid) -> Option<&TopicImage> {
        self.topic_ids
            .get(topic_id)
            .and_then(|name| self.topic(name))
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionImage> {
        self.topic(topic).and_then(|t| t.partitions.get(&partition))
    }

    pub fn broker(&self, node_id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&node_id)
    }

    /// Registered brokers that are not fenced: the ones clients are told about and that
    /// replicas are placed on.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Whether `node_id` is registered and not fenced.
    pub fn is_live(&self, node_id: i32) -> bool {
        self.brokers.get(&node_id).is_some_and(|b| !b.fenced)
    }

    /// Whether `node_id` may lead or join an ISR: registered, unfenced and not in controlled
    /// shutdown (Kafka's "active" broker).
    pub fn is_active(&self, node_id: i32) -> bool {
        self.brokers
            .get(&node_id)
            .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
    }

    /// The image after `records`, keeping this image's offset: a controller's working view
    /// of records it plans to commit in one batch.
    pub fn with_records(&self, records: &[MetadataRecord]) -> MetadataImage {
        self.apply_batch(self.offset, records)
    }

    /// Dynamic configs set on `node_id` (empty when none).
    pub fn broker_config(&self, node_id: i32) -> Option<&BTreeMap<String, String>> {
        self.broker_configs.get(&node_id)
    }

    /// Dynamic configs set cluster-wide (empty when none).
    pub fn broker_default_config(&self) -> &BTreeMap<String, String> {
        &self.broker_default_configs
    }

    /// The dynamic value of broker config `name` on `node_id`: its own if set, else the
    /// cluster-wide default, with which of the two it is. `None`: only static config applies.
    pub fn dynamic_broker_value(&self, node_id: i32, name: &str) -> Option<(&str, DynamicLevel)> {
        if let Some(value) = self.broker_config(node_id).and_then(|c| c.get(name)) {
            return Some((value, DynamicLevel::Broker));
        }
        self.broker_default_configs
            .get(name)
            .map(|value| (value.as_str(), DynamicLevel::ClusterDefault))
    }

    fn apply_in_place(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::RegisterBroker {
                node_id,
                host,
                port,
                rack,
                incarnation,
                fenced,
            } => {
                let registration = BrokerRegistration {
                    node_id: *node_id,
                    host: host.clone(),
                    port: *port,
                    rack: rack.clone(),
                    incarnation: *incarnation,
                    epoch: self.offset,
                    fenced: *fenced,
                    fenced_at: self.offset,
                    in_controlled_shutdown: false,
                };
                Arc::make_mut(&mut self.brokers).insert(*node_id, registration);
            }
            MetadataRecord::BrokerChange {
                node_id,
                incarnation,
                fenced,
                in_controlled_shutdown,
            } => {
                let offset = self.offset;
                let brokers = Arc::make_mut(&mut self.brokers);
                let Some(broker) = brokers
                    .get_mut(node_id)
                    .filter(|b| b.incarnation == *incarnation)
                else {
                    tracing::debug!(node_id, %incarnation, "ignoring a change of a past broker incarnation");
                    return;
                };
                if let Some(fenced) = fenced {
                    if *fenced && !broker.fenced {
                        broker.fenced_at = offset;
                    }
                    broker.fenced = *fenced;
                }
                if let Some(shutdown) = in_controlled_shutdown {
                    broker.in_controlled_shutdown = *shutdown;
                }
            }
            MetadataRecord::ClusterId { cluster_id } => {
                if self.cluster_id.is_empty() {
                    self.cluster_id = cluster_id.clone();
                } else if self.cluster_id != *cluster_id {
                    tracing::warn!(current = %self.cluster_id, ignored = %cluster_id, "ignoring a second cluster id");
                }
            }
            MetadataRecord::Topic { name, topic_id } => {
                if self.topics.contains_key(name) || self.topic_ids.contains_key(topic_id) {
                    tracing::warn!(topic = %name, %topic_id, "ignoring topic record for an existing topic");
                    return;
                }
                let topic = TopicImage {
                    name: name.clone(),
                    topic_id: *topic_id,
                    partitions: BTreeMap::new(),
                    configs: BTreeMap::new(),
                };
                Arc::make_mut(&mut self.topics).insert(name.clone(), Arc::new(topic));
                Arc::make_mut(&mut self.topic_ids).insert(*topic_id, name.clone());
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                let image = PartitionImage {
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                    adding_replicas: Vec::new(),
                    removing_replicas: Vec::new(),
                };
                self.update_topic_by_id(topic_id, |topic| {
                    topic.partitions.insert(*partition, image);
                });
            }
            MetadataRecord::PartitionChange {
                topic_id,
                partition,
                leader,
                isr,
                replicas,
                adding_replicas,
                removing_replicas,
            } => {
                self.update_topic_by_id(topic_id, |topic| {
                    let Some(current) = topic.partitions.get_mut(partition) else {
                        tracing::warn!(topic = %topic.name, partition, "ignoring change of an unknown partition");
                        return;
                    };
                    current.apply_change(&PartitionDelta {
                        leader: *leader,
                        isr: isr.as_deref(),
                        replicas: replicas.as_deref(),
                        adding_replicas: adding_replicas.as_deref(),
                        removing_replicas: removing_replicas.as_deref(),
                    });
                });
            }
            MetadataRecord::Config {
                resource,
                name,
                value,
            } => match resource {
                ConfigResource::Topic(topic) => {
                    if !self.topics.contains_key(topic) {
                        tracing::warn!(%topic, config = %name, "ignoring config of an unknown topic");
                        return;
                    }
                    let topics = Arc::make_mut(&mut self.topics);
                    if let Some(topic) = topics.get_mut(topic) {
                        let topic = Arc::make_mut(topic);
                        set_or_remove(&mut topic.configs, name, value.as_deref());
                    }
                }
                ConfigResource::Broker(node_id) => {
                    let all = Arc::make_mut(&mut self.broker_configs);
                    let configs = all.entry(*node_id).or_default();
                    set_or_remove(configs, name, value.as_deref());
                    if configs.is_empty() {
                        all.remove(node_id);
                    }
                }
                ConfigResource::BrokerDefault => {
                    let configs = Arc::make_mut(&mut self.broker_default_configs);
                    set_or_remove(configs, name, value.as_deref());
                }
            },
            MetadataRecord::RemoveTopic { topic_id } => {
                let Some(name) = Arc::make_mut(&mut self.topic_ids).remove(topic_id) else {
                    tracing::warn!(%topic_id, "ignoring removal of an unknown topic");
                    return;
                };
                Arc::make_mut(&mut self.topics).remove(&name);
            }
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                // Ids only move forward, whatever order blocks were granted in.
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
        }
    }

    fn update_topic_by_id(&mut self, topic_id: &Uuid, update: impl FnOnce(&mut TopicImage)) {
        let Some(name) = self.topic_ids.get(topic_id).cloned() else {
            tracing::warn!(%topic_id, "ignoring record for an unknown topic id");
            return;
        };
        let topics = Arc::make_mut(&mut self.topics);
        if let Some(topic) = topics.get_mut(&name) {
            update(Arc::make_mut(topic));
        }
    }
}

fn set_or_remove(configs: &mut BTreeMap<String, String>, name: &str, value: Option<&str>) {
    match value {
        Some(value) => {
            configs.insert(name.to_owned(), value.to_owned());
        }
        None => {
            configs.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn producer_id_blocks_only_move_forward() {
        let image = MetadataImage::empty("c")
            .apply(&MetadataRecord::ProducerIds {
                node_id: 0,
                next_producer_id: 2000,
            })
            .apply(&MetadataRecord::ProducerIds {
                node_id: 1,
                next_producer_id: 1000,
            });
        assert_eq!(image.next_producer_id, 2000);
    }

    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn topic(name: &str, n: u128) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            topic_id: id(n),
        }
    }

    fn partition(n: u128, partition: i32, replicas: &[i32]) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id: id(n),
            partition,
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            leader: replicas[0],
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    fn config(topic: &str, name: &str, value: Option<&str>) -> MetadataRecord {
        MetadataRecord::Config {
            resource: ConfigResource::Topic(topic.into()),
            name: name.into(),
            value: value.map(str::to_owned),
        }
    }

    fn change(
        n: u128,
        leader: Option<i32>,
        isr: Option<&[i32]>,
        replicas: Option<&[i32]>,
    ) -> MetadataRecord {
        MetadataRecord::PartitionChange {
            topic_id: id(n),
            partition: 0,
            leader,
            isr: isr.map(<[i32]>::to_vec),
            replicas: replicas.map(<[i32]>::to_vec),
            adding_replicas: None,
            removing_replicas: None,
        }
    }

    fn apply_all(records: &[MetadataRecord]) -> MetadataImage {
        records
            .iter()
            .fold(MetadataImage::empty("c"), |image, r| image.apply(r))
    }

    #[test]
    fn create_topic_with_partitions() {
        let image = apply_all(&[
            topic("orders", 1),
            partition(1, 0, &[1, 2]),
            partition(1, 1, &[2, 1]),
        ]);
        let t = image.topic("orders").expect("topic exists");
        assert_eq!(t.topic_id, id(1));
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.replication_factor(), 2);
        let p1 = image.partition("orders", 1).expect("partition 1 exists");
        assert_eq!((p1.leader, p1.isr.clone()), (2, vec![2, 1]));
        assert_eq!(
            image.topic_by_id(&id(1)).map(|t| &t.name[..]),
            Some("orders")
        );
        assert!(image.topic_by_id(&id(2)).is_none());
    }

    #[test]
    fn apply_is_pure() {
        let before = apply_all(&[topic("a", 1)]);
        let after = before.apply(&topic("b", 2));
        assert!(before.topic("b").is_none());
        assert!(after.topic("a").is_some() && after.topic("b").is_some());
    }

    #[test]
    fn config_set_and_delete() {
        struct Case {
            records: Vec<MetadataRecord>,
            expect: &'static [(&'static str, &'static str)],
        }
        let cases = [
            Case {
                records: vec![config("t", "retention.ms", Some("1000"))],
                expect: &[("retention.ms", "1000")],
            },
            Case {
                records: vec![
                    config("t", "retention.ms", Some("1000")),
                    config("t", "retention.ms", Some("2000")),
                ],
                expect: &[("retention.ms", "2000")],
            },
            Case {
                records: vec![
                    config("t", "retention.ms", Some("1000")),
                    config("t", "segment.ms", Some("5")),
                    config("t", "retention.ms", None),
                ],
                expect: &[("segment.ms", "5")],
            },
            Case {
                records: vec![config("unknown-topic", "retention.ms", Some("1"))],
                expect: &[],
            },
        ];
        for (i, case) in cases.into_iter().enumerate() {
            let mut records = vec![topic("t", 1)];
            records.extend(case.records);
            let image = apply_all(&records);
            let got: Vec<(&str, &str)> = image
                .topic("t")
                .expect("topic exists")
                .configs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(got, case.expect, "case {i}");
        }
    }

    #[test]
    fn broker_configs_set_and_delete() {
        let set = MetadataRecord::Config {
            resource: ConfigResource::Broker(3),
            name: "log.retention.ms".into(),
            value: Some("5".into()),
        };
        let image = MetadataImage::empty("c").apply(&set);
        assert_eq!(
            image
                .broker_config(3)
                .and_then(|c| c.get("log.retention.ms")),
            Some(&"5".to_owned())
        );
        let delete = MetadataRecord::Config {
            resource: ConfigResource::Broker(3),
            name: "log.retention.ms".into(),
            value: None,
        };
        assert!(image.apply(&delete).broker_config(3).is_none());
    }

    #[test]
    fn a_broker_value_overrides_the_cluster_default_which_applies_to_every_other_broker() {
        let rate = "leader.replication.throttled.rate";
        let record = |resource: ConfigResource, value: Option<&str>| MetadataRecord::Config {
            resource,
            name: rate.into(),
            value: value.map(str::to_owned),
        };
        let image = apply_all(&[
            record(ConfigResource::BrokerDefault, Some("100")),
            record(ConfigResource::Broker(1), Some("7")),
        ]);
        assert_eq!(
            image.dynamic_broker_value(1, rate),
            Some(("7", DynamicLevel::Broker))
        );
        assert_eq!(
            image.dynamic_broker_value(2, rate),
            Some(("100", DynamicLevel::ClusterDefault))
        );
        assert_eq!(image.broker_default_config().len(), 1);

        // Without its own value a broker inherits the default again.
        let image = image.apply(&record(ConfigResource::Broker(1), None));
        assert_eq!(
            image.dynamic_broker_value(1, rate),
            Some(("100", DynamicLevel::ClusterDefault))
        );
        assert!(image.broker_config(1).is_none());

        // Deleting the default leaves only static config.
        let image = image.apply(&record(ConfigResource::BrokerDefault, None));
        assert_eq!(image.dynamic_broker_value(1, rate), None);
        assert!(image.broker_default_config().is_empty());
    }

    #[test]
    fn images_without_cluster_defaults_serialize_as_before_and_with_them_round_trip() {
        let empty = MetadataImage::empty("c");
        let json = serde_json::to_string(&empty).expect("serializes");
        assert!(!json.contains("broker_default_configs"), "{json}");
        let back: MetadataImage = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, empty);

        let with = empty.apply(&MetadataRecord::Config {
            resource: ConfigResource::BrokerDefault,
            name: "follower.replication.throttled.rate".into(),
            value: Some("1".into()),
        });
        let json = serde_json::to_string(&with).expect("serializes");
        let back: MetadataImage = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, with);
    }

    #[test]
    fn remove_topic_drops_partitions_configs_and_id() {
        let image = apply_all(&[
            topic("t", 1),
            partition(1, 0, &[1]),
            config("t", "retention.ms", Some("1")),
            topic("other", 2),
            MetadataRecord::RemoveTopic { topic_id: id(1) },
        ]);
        assert!(image.topic("t").is_none());
        assert!(image.topic_by_id(&id(1)).is_none());
        assert!(image.topic("other").is_some());
        // A topic of the same name can be created again, with a new id and no old configs.
        let again = image.apply(&topic("t", 3));
        let t = again.topic("t").expect("recreated");
        assert_eq!(
            (t.topic_id, t.configs.len(), t.partitions.len()),
            (id(3), 0, 0)
        );
    }

    #[test]
    fn partition_change_bumps_epochs() {
        struct Case {
            change: MetadataRecord,
            leader: i32,
            leader_epoch: i32,
            partition_epoch: i32,
            isr: &'static [i32],
            replicas: &'static [i32],
        }
        let cases = [
            Case {
                change: change(1, Some(2), None, None),
                leader: 2,
                leader_epoch: 1,
                partition_epoch: 1,
                isr: &[1, 2, 3],
                replicas: &[1, 2, 3],
            },
            Case {
                change: change(1, None, Some(&[1, 2]), None),
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 1,
                isr: &[1, 2],
                replicas: &[1, 2, 3],
            },
            Case {
                change: change(1, Some(3), Some(&[3]), Some(&[3, 4])),
                leader: 3,
                leader_epoch: 1,
                partition_epoch: 1,
                isr: &[3],
                replicas: &[3, 4],
            },
            Case {
                // Nothing changes: no epoch moves, so fetchers are not fenced needlessly.
                change: change(1, Some(1), Some(&[1, 2, 3]), None),
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                isr: &[1, 2, 3],
                replicas: &[1, 2, 3],
            },
            Case {
                change: change(1, Some(-1), Some(&[]), None),
                leader: -1,
                leader_epoch: 1,
                partition_epoch: 1,
                isr: &[],
                replicas: &[1, 2, 3],
            },
            Case {
                // Unknown topic: ignored.
                change: change(9, Some(2), None, None),
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                isr: &[1, 2, 3],
                replicas: &[1, 2, 3],
            },
        ];
        for (i, case) in cases.into_iter().enumerate() {
            let image = apply_all(&[topic("t", 1), partition(1, 0, &[1, 2, 3]), case.change]);
            let p = image.partition("t", 0).expect("partition exists");
            assert_eq!(p.leader, case.leader, "case {i} leader");
            assert_eq!(p.leader_epoch, case.leader_epoch, "case {i} leader_epoch");
            assert_eq!(
                p.partition_epoch, case.partition_epoch,
                "case {i} partition_epoch"
            );
            assert_eq!(p.isr, case.isr, "case {i} isr");
            assert_eq!(p.replicas, case.replicas, "case {i} replicas");
        }
    }

    #[test]
    fn register_broker_records_the_epoch_and_replaces_earlier_registration() {
        let register = |port| MetadataRecord::RegisterBroker {
            node_id: 1,
            host: "h".into(),
            port,
            rack: Some("r1".into()),
            incarnation: Uuid::from_u128(u128::from(port)),
            fenced: false,
        };
        let image = MetadataImage::empty("c").apply_batch(5, &[register(9092)]);
        assert_eq!(image.broker(1).map(|b| (b.port, b.epoch)), Some((9092, 5)));
        let image = image.apply_batch(9, &[register(9093)]);
        assert_eq!(image.broker(1).map(|b| (b.port, b.epoch)), Some((9093, 9)));
        assert_eq!(image.brokers.len(), 1);
        assert_eq!(image.offset, 9);
    }

    #[test]
    fn a_partition_stored_before_reassignments_decodes_without_one() {
        let json =
            r#"{"replicas":[1,2],"isr":[1],"leader":1,"leader_epoch":3,"partition_epoch":4}"#;
        let partition: PartitionImage = serde_json::from_str(json).expect("older snapshot decodes");
        assert!(!partition.is_reassigning());
        assert_eq!((partition.leader_epoch, partition.partition_epoch), (3, 4));
    }

    #[test]
    fn image_round_trips_through_json() {
        let image = apply_all(&[
            topic("t", 1),
            partition(1, 0, &[1]),
            config("t", "retention.ms", Some("1")),
        ]);
        let json = serde_json::to_vec(&image).expect("serialize");
        let back: MetadataImage = serde_json::from_slice(&json).expect("deserialize");
        assert_eq!(back, image);
    }
}
