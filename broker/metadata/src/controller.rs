//! The controller (KRaft's `QuorumController`): validates admin operations against the current
//! image and proposes the records that carry them out.
//!
//! Operations are serialized by one async mutex held from validation through commit, so two
//! concurrent requests can never both pass validation against the same image (two creates of
//! one topic: exactly one wins). Each operation validates against a working image to which the
//! records planned so far in the same request are applied, so items of one request see each
//! other (two names that collide within one CreateTopics are caught).
//!
//! Configs: topic configs are those of [`crate::topic_config`]; a broker's dynamic configs
//! (`ConfigResource::Broker`) and the cluster-wide defaults of them
//! (`ConfigResource::BrokerDefault`) are those of [`crate::broker_config`], and any other broker key
//! is refused with INVALID_REQUEST: it comes from the broker's configuration file, and
//! accepting a value the broker would not apply would mislead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use tokio::sync::Mutex;
use uuid::Uuid;

use crate::controller_error::ControllerError;
use crate::image::MetadataImage;
use crate::plan::config_def;
use crate::plan::config_record;
use crate::plan::duplicate_names;
use crate::plan::plan_partitions;
use crate::plan::plan_topic;
use crate::plan::resource_configs;
use crate::plan::validate_config;
use crate::quorum::MetadataQuorum;
use crate::records::ConfigResource;
use crate::records::MetadataRecord;
use crate::topic_config::ConfigKind;
use crate::topic_config::TopicConfigEntry;
use crate::topic_config::list_items;

/// The most partitions one topic may have. Kafka sets no such bound, but a request for
/// billions of partitions must be refused, not attempted.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;

/// Broker defaults applied when a CreateTopics request leaves counts unset (-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicDefaults {
    /// Kafka's `num.partitions`.
    pub num_partitions: i32,
    /// Kafka's `default.replication.factor`.
    pub default_replication_factor: i16,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        Self {
            num_partitions: 1,
            default_replication_factor: 1,
        }
    }
}

/// One topic of a CreateTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CreateTopicRequest {
    pub name: String,
    /// `None` or `-1`: the broker default.
    pub num_partitions: Option<i32>,
    /// `None` or `-1`: the broker default.
    pub replication_factor: Option<i16>,
    /// Manual assignment: (partition index, replicas with the preferred leader first), as the
    /// request lists them (a partition listed twice is refused). Excludes `num_partitions` and
    /// `replication_factor`.
    pub assignments: Option<Vec<(i32, Vec<i32>)>>,
    pub configs: BTreeMap<String, String>,
}

/// A topic created (or, with `validate_only`, that would be created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Every supported topic config with its effective value (CreateTopics v5+ returns them).
    pub configs: Vec<TopicConfigEntry>,
}

/// The outcome for one topic of a CreateTopics request, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicResult {
    pub name: String,
    pub result: Result<CreatedTopic, ControllerError>,
}

/// One topic of a CreatePartitions request: (topic, new total partition count, optional
/// replicas of each new partition).
pub type NewPartitions = (String, i32, Option<Vec<Vec<i32>>>);

/// One operation of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConfigOp {
    Set(String, String),
    /// Remove the explicit value so the default applies again.
    Delete(String),
    /// Add items to a list config (items already present are kept once).
    Append(String, String),
    /// Remove items from a list config.
    Subtract(String, String),
}

impl ConfigOp {
    pub fn key(&self) -> &str {
        match self {
            Self::Set(k, _) | Self::Delete(k) | Self::Append(k, _) | Self::Subtract(k, _) => k,
        }
    }
}

/// The controller's settings, from the configuration of the broker it runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerOptions {
    pub defaults: TopicDefaults,
    /// Kafka's `broker.session.timeout.ms`: a broker without a heartbeat for this long is
    /// fenced.
    pub session_timeout: std::time::Duration,
    /// Kafka's broker-level `unclean.leader.election.enable`: whether a partition whose ISR
    /// has no live member may elect a replica outside it, for topics that do not set it.
    pub unclean_leader_election_enable: bool,
    /// Kafka's `auto.leader.rebalance.enable`: the controller moves leaders back to their
    /// preferred replicas when a broker leads too few of the partitions it is preferred for.
    pub auto_leader_rebalance_enable: bool,
    /// Kafka's `leader.imbalance.per.broker.percentage`: the share (in percent) of a broker's
    /// preferred partitions it may not lead before a rebalance.
    pub leader_imbalance_per_broker_percentage: u32,
    /// Kafka's `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval: std::time::Duration,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        Self {
            defaults: TopicDefaults::default(),
            session_timeout: std::time::Duration::from_millis(9000),
            unclean_leader_election_enable: false,
            auto_leader_rebalance_enable: true,
            leader_imbalance_per_broker_percentage: 10,
            leader_imbalance_check_interval: std::time::Duration::from_secs(300),
        }
    }
}

/// The controller. Cheap to clone; clones share the proposal lock.
#[derive(Debug, Clone)]
pub struct Controller {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) quorum: MetadataQuorum,
    pub(crate) options: ControllerOptions,
    /// Held from validation to commit; guards the placement rotation.
    pub(crate) state: Mutex<State>,
    /// When each broker last sent a heartbeat to this node as the active controller.
    pub(crate) heartbeats: parking_lot::Mutex<crate::broker_lifecycle::Heartbeats>,
    /// Leaders elected from outside the ISR by this node, since it started.
    pub(crate) unclean_elections: AtomicU64,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Rotates the broker that gets the first replica of each new topic, so topics created one
    /// after the other do not all lead on the same broker.
    placement_rotation: usize,
}

impl Controller {
    pub fn new(quorum: MetadataQuorum, defaults: TopicDefaults) -> Controller {
        Self::with_options(
            quorum,
            ControllerOptions {
                defaults,
                ..ControllerOptions::default()
            },
        )
    }

    pub fn with_options(quorum: MetadataQuorum, options: ControllerOptions) -> Controller {
        Controller {
            inner: Arc::new(Inner {
                quorum,
                options,
                state: Mutex::new(State::default()),
                heartbeats: parking_lot::Mutex::default(),
                unclean_elections: AtomicU64::new(0),
            }),
        }
    }

    pub fn quorum(&self) -> &MetadataQuorum {
        &self.inner.quorum
    }

    pub fn defaults(&self) -> TopicDefaults {
        self.inner.options.defaults
    }

    /// How many unclean leader elections this node committed as the active controller since
    /// it started (Kafka's `UncleanLeaderElectionsPerSec` counts the same events).
    pub fn unclean_leader_elections(&self) -> u64 {
        self.inner.unclean_elections.load(Ordering::Relaxed)
    }

    /// Commits partition changes planned alongside `records` (a broker change) in one batch,
    /// and counts the unclean elections among them once committed. Returns the offset.
    pub(crate) async fn commit_with_changes(
        &self,
        mut records: Vec<MetadataRecord>,
        changes: crate::replication_control::Planned,
    ) -> Result<u64, ControllerError> {
        records.extend(changes.records);
        let offset = self.inner.quorum.propose(records).await?;
        if changes.unclean_elections > 0 {
            tracing::warn!(
                count = changes.unclean_elections,
                "elected leaders from outside the ISR (unclean leader election)"
            );
            self.inner
                .unclean_elections
                .fetch_add(changes.unclean_elections, Ordering::Relaxed);
        }
        Ok(offset)
    }

    /// The image to validate against, refusing when this node is not the active controller
    /// (its image may be behind).
    pub(crate) fn leader_image(&self) -> Result<Arc<MetadataImage>, ControllerError> {
        let quorum = &self.inner.quorum;
        if !quorum.is_leader() {
            return Err(ControllerError::NotController {
                leader: quorum.leader_id(),
            });
        }
        Ok(quorum.image())
    }

    /// Hands `node_id` a block of `count` producer ids (KIP-730's AllocateProducerIds): returns
    /// the first id of the block; the block is committed before it is used.
    pub async fn allocate_producer_ids(
        &self,
        node_id: i32,
        count: i64,
    ) -> Result<i64, ControllerError> {
        let _state = self.inner.state.lock().await;
        let image = self.leader_image()?;
        let first = image.next_producer_id;
        let next_producer_id = first
            .checked_add(count.max(1))
            .ok_or_else(|| ControllerError::Internal("producer ids are exhausted".to_string()))?;
        self.commit(
            vec![MetadataRecord::ProducerIds {
                node_id,
                next_producer_id,
            }],
            false,
        )
        .await?;
        Ok(first)
    }

    /// CreateTopics. Valid topics are committed together in one entry; each topic gets its own
    /// result in request order.
    pub async fn create_topics(
        &self,
        requests: Vec<CreateTopicRequest>,
        validate_only: bool,
    ) -> Vec<CreateTopicResult> {
        let mut state = self.inner.state.lock().await;
        let image = match self.leader_image() {
            Ok(image) => image,
            Err(e) => {
                return requests
                    .into_iter()
                    .map(|r| CreateTopicResult {
                        name: r.name,
                        result: Err(e.clone()),
                    })
                    .collect();
            }
        };
        let duplicates = duplicate_names(requests.iter().map(|r| r.name.as_str()));
        let mut working = MetadataImage::clone(&image);
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(requests.len());
        for request in requests {
            let result = if duplicates.contains(&request.name) {
                Err(ControllerError::InvalidRequest {
                    message: format!("Duplicate topic name '{}' in the request.", request.name),
                })
            } else {
                let start = state.placement_rotation;
                plan_topic(&working, &request, self.inner.options.defaults, start).map(
                    |(planned, created)| {
                        state.placement_rotation = state.placement_rotation.wrapping_add(1);
                        working = working.apply_batch(working.offset, &planned);
                        records.extend(planned);
                        created
                    },
                )
            };
            results.push(CreateTopicResult {
                name: request.name,
                result,
            });
        }
        if !validate_only
            && !records.is_empty()
            && let Err(e) = self.inner.quorum.propose(records).await
        {
            let e = ControllerError::from(e);
            tracing::warn!(error = %e, "CreateTopics commit failed");
            for r in results.iter_mut().filter(|r| r.result.is_ok()) {
                r.result = Err(e.clone());
            }
        }
        results
    }

    /// DeleteTopics: one result per name, in request order.
    pub async fn delete_topics(&self, names: Vec<String>) -> Vec<Result<Uuid, ControllerError>> {
        let _state = self.inner.state.lock().await;
        let image = match self.leader_image() {
            Ok(image) => image,
            Err(e) => return names.iter().map(|_| Err(e.clone())).collect(),
        };
        let duplicates = duplicate_names(names.iter().map(String::as_str));
        let mut records = Vec::new();
        let mut results: Vec<Result<Uuid, ControllerError>> = names
            .iter()
            .map(|name| {
                if duplicates.contains(name) {
                    return Err(ControllerError::InvalidRequest {
                        message: format!("Duplicate topic name '{name}' in the request."),
                    });
                }
                let topic =
                    image
                        .topic(name)
                        .ok_or_else(|| ControllerError::UnknownTopicOrPartition {
                            topic: name.clone(),
                            partition: None,
                        })?;
                records.push(MetadataRecord::RemoveTopic {
                    topic_id: topic.topic_id,
                });
                Ok(topic.topic_id)
            })
            .collect();
        if !records.is_empty()
            && let Err(e) = self.inner.quorum.propose(records).await
        {
            let e = ControllerError::from(e);
            tracing::warn!(error = %e, "DeleteTopics commit failed");
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(e.clone());
            }
        }
        results
    }

    /// CreatePartitions: grows topics to the requested total partition count.
    pub async fn create_partitions(
        &self,
        requests: Vec<NewPartitions>,
        validate_only: bool,
    ) -> Vec<Result<(), ControllerError>> {
        let _state = self.inner.state.lock().await;
        let image = match self.leader_image() {
            Ok(image) => image,
            Err(e) => return requests.iter().map(|_| Err(e.clone())).collect(),
        };
        let duplicates = duplicate_names(requests.iter().map(|(name, _, _)| name.as_str()));
        let mut records = Vec::new();
        let mut results: Vec<Result<(), ControllerError>> = requests
            .iter()
            .map(|(name, count, assignments)| {
                if duplicates.contains(name) {
                    return Err(ControllerError::InvalidRequest {
                        message: format!("Duplicate topic name '{name}' in the request."),
                    });
                }
                let planned = plan_partitions(&image, name, *count, assignments.as_deref())?;
                records.extend(planned);
                Ok(())
            })
            .collect();
        if !validate_only
            && !records.is_empty()
            && let Err(e) = self.inner.quorum.propose(records).await
        {
            let e = ControllerError::from(e);
            tracing::warn!(error = %e, "CreatePartitions commit failed");
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(e.clone());
            }
        }
        results
    }

    /// Legacy AlterConfigs: the given configs replace all explicit configs of the resource.
    pub async fn alter_configs(
        &self,
        resource: ConfigResource,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        let _state = self.inner.state.lock().await;
        let image = self.leader_image()?;
        let current = resource_configs(&image, &resource)?;
        for (key, value) in &configs {
            validate_config(&resource, key, value)?;
        }
        let mut records = Vec::new();
        for key in current.keys().filter(|k| !configs.contains_key(*k)) {
            records.push(config_record(&resource, key, None));
        }
        for (key, value) in configs.iter().filter(|(k, v)| current.get(*k) != Some(*v)) {
            records.push(config_record(&resource, key, Some(value.clone())));
        }
        self.commit(records, validate_only).await
    }

    /// IncrementalAlterConfigs: applies `ops` to the explicit configs of the resource.
    pub async fn incremental_alter_configs(
        &self,
        resource: ConfigResource,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        let _state = self.inner.state.lock().await;
        let image = self.leader_image()?;
        let current = resource_configs(&image, &resource)?;
        if let Some(key) = duplicate_names(ops.iter().map(ConfigOp::key))
            .into_iter()
            .next()
        {
            return Err(ControllerError::InvalidRequest {
                message: format!(
                    "Error due to duplicate config keys: '{key}' appears more than once."
                ),
            });
        }
        let mut records = Vec::new();
        for op in &ops {
            let key = op.key();
            let def = config_def(&resource, key)?;
            let new_value = match op {
                ConfigOp::Set(_, value) => Some(value.clone()),
                ConfigOp::Delete(_) => None,
                ConfigOp::Append(_, value) | ConfigOp::Subtract(_, value) => {
                    let (ConfigKind::List { .. } | ConfigKind::ReplicaList) = def.kind else {
                        let verb = if matches!(op, ConfigOp::Append(..)) {
                            "append"
                        } else {
                            "subtract"
                        };
                        return Err(ControllerError::InvalidConfig {
                            key: key.to_owned(),
                            reason: format!(
                                "Config value {verb} is not allowed for config key: {key}; it is not a list"
                            ),
                        });
                    };
                    let base = current.get(key).map_or(def.default, String::as_str);
                    let mut items: Vec<&str> = list_items(base);
                    let changes = list_items(value);
                    if matches!(op, ConfigOp::Append(..)) {
                        for item in changes {
                            if !items.contains(&item) {
                                items.push(item);
                            }
                        }
                    } else {
                        items.retain(|item| !changes.contains(item));
                    }
                    Some(items.join(","))
                }
            };
            if let Some(value) = &new_value {
                validate_config(&resource, key, value)?;
            }
            if current.get(key) != new_value.as_ref() {
                records.push(config_record(&resource, key, new_value));
            }
        }
        self.commit(records, validate_only).await
    }

    pub(crate) async fn commit(
        &self,
        records: Vec<MetadataRecord>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        if validate_only || records.is_empty() {
            return Ok(());
        }
        self.inner.quorum.propose(records).await?;
        Ok(())
    }
}
