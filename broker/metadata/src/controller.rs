//! The controller (KRaft's `QuorumController`): validates admin operations against the current
//! image and proposes the records that carry them out.
//!
//! Operations are serialized by one async mutex held from validation through commit, so two
//! concurrent requests can never both pass validation against the same image (two creates of
//! one topic: exactly one wins). Each operation validates against a working image to which the
//! records planned so far in the same request are applied, so items of one request see each
//! other (two names that collide within one CreateTopics are caught).
//!
//! Configs: topic configs are those of [`crate::topic_config`]. Broker-level dynamic configs
//! (`ConfigResource::Broker`) are refused with INVALID_REQUEST: broker settings come from the
//! broker's configuration file, and accepting a value the broker would not apply would mislead.
//! The image still applies broker config records, so enabling a validated set later needs no
//! log format change.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::Mutex;
use uuid::Uuid;

use crate::controller_error::ControllerError;
use crate::error::MetadataError;
use crate::image::MetadataImage;
use crate::placement::assign_replicas;
use crate::quorum::MetadataQuorum;
use crate::records::ConfigResource;
use crate::records::MetadataRecord;
use crate::topic_config::ConfigKind;
use crate::topic_config::TopicConfigEntry;
use crate::topic_config::effective_topic_configs;
use crate::topic_config::list_items;
use crate::topic_config::topic_config_def;
use crate::topic_config::validate_topic_config;
use crate::topic_name::collision_key;
use crate::topic_name::validate_topic_name;

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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateTopicRequest {
    pub name: String,
    /// `None` or `-1`: the broker default.
    pub num_partitions: Option<i32>,
    /// `None` or `-1`: the broker default.
    pub replication_factor: Option<i16>,
    /// Manual assignment: partition index -> replicas (first = preferred leader). Excludes
    /// `num_partitions` and `replication_factor`.
    pub assignments: Option<BTreeMap<i32, Vec<i32>>>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// The controller. Cheap to clone; clones share the proposal lock.
#[derive(Debug, Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    quorum: MetadataQuorum,
    defaults: TopicDefaults,
    /// Held from validation to commit; guards the placement rotation.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Rotates the broker that gets the first replica of each new topic, so topics created one
    /// after the other do not all lead on the same broker.
    placement_rotation: usize,
}

impl Controller {
    pub fn new(quorum: MetadataQuorum, defaults: TopicDefaults) -> Controller {
        Controller {
            inner: Arc::new(Inner {
                quorum,
                defaults,
                state: Mutex::new(State::default()),
            }),
        }
    }

    pub fn quorum(&self) -> &MetadataQuorum {
        &self.inner.quorum
    }

    pub fn defaults(&self) -> TopicDefaults {
        self.inner.defaults
    }

    /// The image to validate against, refusing when this node is not the active controller
    /// (its image may be behind).
    fn leader_image(&self) -> Result<Arc<MetadataImage>, ControllerError> {
        let quorum = &self.inner.quorum;
        if !quorum.is_leader() {
            return Err(ControllerError::NotController {
                leader: quorum.leader_id(),
            });
        }
        Ok(quorum.image())
    }

    /// Registers (or re-registers after a restart) a broker with a fresh incarnation.
    pub async fn register_broker(
        &self,
        node_id: i32,
        host: String,
        port: u16,
        rack: Option<String>,
    ) -> Result<(), MetadataError> {
        let invalid = |reason: &str| MetadataError::InvalidRegistration {
            node_id,
            reason: reason.to_owned(),
        };
        if node_id < 0 {
            return Err(invalid("the node id must be non-negative"));
        }
        if host.trim().is_empty() {
            return Err(invalid("the advertised host must not be empty"));
        }
        if port == 0 {
            return Err(invalid("the advertised port must not be 0"));
        }
        let _state = self.inner.state.lock().await;
        let record = MetadataRecord::RegisterBroker {
            node_id,
            host,
            port,
            rack,
            incarnation: Uuid::new_v4(),
        };
        self.inner.quorum.propose(vec![record]).await?;
        Ok(())
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
                plan_topic(&working, &request, self.inner.defaults, start).map(
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
        let current = topic_configs(&image, &resource)?;
        for (key, value) in &configs {
            validate_topic_config(key, value)?;
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
        let current = topic_configs(&image, &resource)?;
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
            let def = topic_config_def(key).ok_or_else(|| ControllerError::InvalidConfig {
                key: key.to_owned(),
                reason: format!("Unknown topic config name: {key}"),
            })?;
            let new_value = match op {
                ConfigOp::Set(_, value) => Some(value.clone()),
                ConfigOp::Delete(_) => None,
                ConfigOp::Append(_, value) | ConfigOp::Subtract(_, value) => {
                    let ConfigKind::List { .. } = def.kind else {
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
                validate_topic_config(key, value)?;
            }
            if current.get(key) != new_value.as_ref() {
                records.push(config_record(&resource, key, new_value));
            }
        }
        self.commit(records, validate_only).await
    }

    async fn commit(
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

/// Names that occur more than once.
fn duplicate_names<'a>(names: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut duplicates = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            duplicates.insert(name.to_owned());
        }
    }
    duplicates
}

/// The explicit configs of a topic resource; broker resources are refused.
fn topic_configs(
    image: &MetadataImage,
    resource: &ConfigResource,
) -> Result<BTreeMap<String, String>, ControllerError> {
    match resource {
        ConfigResource::Topic(name) => {
            image.topic(name).map(|t| t.configs.clone()).ok_or_else(|| {
                ControllerError::UnknownTopicOrPartition {
                    topic: name.clone(),
                }
            })
        }
        ConfigResource::Broker(node_id) => Err(ControllerError::InvalidRequest {
            message: format!(
                "Dynamic broker configs are not supported (broker {node_id}); set broker \
                 configs in the broker's configuration file and restart it."
            ),
        }),
    }
}

fn config_record(resource: &ConfigResource, name: &str, value: Option<String>) -> MetadataRecord {
    MetadataRecord::Config {
        resource: resource.clone(),
        name: name.to_owned(),
        value,
    }
}

fn registered_brokers(image: &MetadataImage) -> Vec<i32> {
    image.brokers.keys().copied().collect()
}

/// Checks manual replica lists: non-empty, no broker twice, every broker registered.
fn validate_replicas(
    topic: &str,
    image: &MetadataImage,
    partition: i32,
    replicas: &[i32],
) -> Result<(), ControllerError> {
    let invalid = |message: String| ControllerError::InvalidReplicaAssignment {
        topic: topic.to_owned(),
        message,
    };
    if replicas.is_empty() {
        return Err(invalid(format!(
            "The manual partition assignment for partition {partition} is an empty replica list."
        )));
    }
    let mut seen = BTreeSet::new();
    for broker in replicas {
        if !seen.insert(broker) {
            return Err(invalid(format!(
                "The manual partition assignment for partition {partition} includes broker \
                 {broker} more than once."
            )));
        }
        if image.broker(*broker).is_none() {
            return Err(invalid(format!(
                "The manual partition assignment includes broker {broker}, but no such broker \
                 is registered."
            )));
        }
    }
    Ok(())
}

fn partition_record(topic_id: Uuid, partition: i32, replicas: Vec<i32>) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id,
        partition,
        leader: replicas.first().copied().unwrap_or(-1),
        isr: replicas.clone(),
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
    }
}

fn replication_factor_error(
    topic: &str,
    replication_factor: usize,
    brokers: usize,
) -> ControllerError {
    ControllerError::InvalidReplicationFactor {
        topic: topic.to_owned(),
        message: format!(
            "Unable to replicate the partition {replication_factor} time(s): The target \
             replication factor of {replication_factor} cannot be reached because only \
             {brokers} broker(s) are registered."
        ),
    }
}

/// Validates one new topic against `image` and plans its records.
fn plan_topic(
    image: &MetadataImage,
    request: &CreateTopicRequest,
    defaults: TopicDefaults,
    start_index: usize,
) -> Result<(Vec<MetadataRecord>, CreatedTopic), ControllerError> {
    let name = request.name.as_str();
    validate_topic_name(name).map_err(|message| ControllerError::InvalidTopic {
        topic: name.to_owned(),
        message,
    })?;
    if image.topic(name).is_some() {
        return Err(ControllerError::TopicAlreadyExists {
            topic: name.to_owned(),
        });
    }
    let key = collision_key(name);
    if let Some(existing) = image.topics.keys().find(|t| collision_key(t) == key) {
        return Err(ControllerError::InvalidTopic {
            topic: name.to_owned(),
            message: format!(
                "Topic '{name}' collides with existing topic: {existing}; topic names that \
                 differ only in '.' and '_' collide."
            ),
        });
    }
    let num_partitions = request.num_partitions.filter(|n| *n != -1);
    let replication_factor = request.replication_factor.filter(|r| *r != -1);
    let brokers = registered_brokers(image);

    let assignment: Vec<Vec<i32>> = match &request.assignments {
        Some(assignments) => {
            if num_partitions.is_some() || replication_factor.is_some() {
                return Err(ControllerError::InvalidRequest {
                    message: "Both numPartitions or replicationFactor and replicasAssignments \
                              were set. Both cannot be used at the same time."
                        .to_owned(),
                });
            }
            plan_manual_assignment(name, image, assignments)?
        }
        None => {
            let partitions = num_partitions.unwrap_or(defaults.num_partitions);
            if partitions <= 0 {
                return Err(ControllerError::InvalidPartitions {
                    topic: name.to_owned(),
                    message: "Number of partitions was set to an invalid non-positive value."
                        .to_owned(),
                });
            }
            if partitions > MAX_PARTITIONS_PER_TOPIC {
                return Err(ControllerError::InvalidPartitions {
                    topic: name.to_owned(),
                    message: format!(
                        "Number of partitions {partitions} exceeds the limit of \
                         {MAX_PARTITIONS_PER_TOPIC} per topic."
                    ),
                });
            }
            let rf = replication_factor.unwrap_or(defaults.default_replication_factor);
            if rf <= 0 {
                return Err(ControllerError::InvalidReplicationFactor {
                    topic: name.to_owned(),
                    message: "Replication factor must be larger than 0, or -1 to use the \
                              default value."
                        .to_owned(),
                });
            }
            let rf = usize::try_from(rf).unwrap_or(usize::MAX);
            if rf > brokers.len() {
                return Err(replication_factor_error(name, rf, brokers.len()));
            }
            assign_replicas(&brokers, 0, partitions, rf, start_index)
        }
    };

    for (key, value) in &request.configs {
        validate_topic_config(key, value)?;
    }

    let topic_id = Uuid::new_v4();
    let mut records = vec![MetadataRecord::Topic {
        name: name.to_owned(),
        topic_id,
    }];
    let replication_factor = assignment.first().map_or(0, Vec::len);
    let num_partitions = assignment.len();
    for (partition, replicas) in (0..).zip(assignment) {
        records.push(partition_record(topic_id, partition, replicas));
    }
    let resource = ConfigResource::Topic(name.to_owned());
    for (key, value) in &request.configs {
        records.push(config_record(&resource, key, Some(value.clone())));
    }
    let created = CreatedTopic {
        topic_id,
        num_partitions: i32::try_from(num_partitions).unwrap_or(i32::MAX),
        replication_factor: i16::try_from(replication_factor).unwrap_or(i16::MAX),
        configs: effective_topic_configs(&request.configs),
    };
    Ok((records, created))
}

fn plan_manual_assignment(
    name: &str,
    image: &MetadataImage,
    assignments: &BTreeMap<i32, Vec<i32>>,
) -> Result<Vec<Vec<i32>>, ControllerError> {
    let invalid = |message: &str| ControllerError::InvalidReplicaAssignment {
        topic: name.to_owned(),
        message: message.to_owned(),
    };
    if assignments.is_empty() {
        return Err(invalid("The manual partition assignment is empty."));
    }
    if assignments.len() > MAX_PARTITIONS_PER_TOPIC as usize {
        return Err(ControllerError::InvalidPartitions {
            topic: name.to_owned(),
            message: format!(
                "Number of partitions exceeds the limit of {MAX_PARTITIONS_PER_TOPIC} per topic."
            ),
        });
    }
    if assignments.keys().copied().ne(0..assignments.len() as i32) {
        return Err(invalid(
            "Partitions should be a consecutive 0-based integer sequence.",
        ));
    }
    let rf = assignments.values().next().map_or(0, Vec::len);
    for (partition, replicas) in assignments {
        validate_replicas(name, image, *partition, replicas)?;
        if replicas.len() != rf {
            return Err(invalid(
                "All partitions in the manual partition assignment must have the same number \
                 of replicas.",
            ));
        }
    }
    Ok(assignments.values().cloned().collect())
}

/// Validates growing `name` to `count` partitions and plans the new partitions' records.
fn plan_partitions(
    image: &MetadataImage,
    name: &str,
    count: i32,
    assignments: Option<&[Vec<i32>]>,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| ControllerError::UnknownTopicOrPartition {
            topic: name.to_owned(),
        })?;
    let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    let invalid_partitions = |message: String| ControllerError::InvalidPartitions {
        topic: name.to_owned(),
        message,
    };
    if count < current {
        return Err(invalid_partitions(format!(
            "The topic {name} currently has {current} partition(s); {count} would not be an increase."
        )));
    }
    if count == current {
        return Err(invalid_partitions(format!(
            "Topic already has {current} partition(s)."
        )));
    }
    if count > MAX_PARTITIONS_PER_TOPIC {
        return Err(invalid_partitions(format!(
            "Number of partitions {count} exceeds the limit of {MAX_PARTITIONS_PER_TOPIC} per topic."
        )));
    }
    let added = count - current;
    let rf = topic.replication_factor();
    let brokers = registered_brokers(image);
    let new_assignment: Vec<Vec<i32>> = match assignments {
        Some(assignments) => {
            if assignments.len() != added as usize {
                return Err(ControllerError::InvalidReplicaAssignment {
                    topic: name.to_owned(),
                    message: format!(
                        "Attempted to add {added} additional partition(s), but only {} \
                         assignment(s) were specified.",
                        assignments.len()
                    ),
                });
            }
            for (partition, replicas) in (current..).zip(assignments) {
                validate_replicas(name, image, partition, replicas)?;
                if replicas.len() != rf {
                    return Err(ControllerError::InvalidReplicaAssignment {
                        topic: name.to_owned(),
                        message: format!(
                            "The manual partition assignment includes a partition with {} \
                             replica(s), but this is not consistent with previous partitions, \
                             which have {rf} replica(s).",
                            replicas.len()
                        ),
                    });
                }
            }
            assignments.to_vec()
        }
        None => {
            if rf == 0 || rf > brokers.len() {
                return Err(replication_factor_error(name, rf, brokers.len()));
            }
            // Continue the topic's placement: start where partition 0's leader sits, as Kafka
            // does when adding partitions.
            let start_index = topic
                .partitions
                .get(&0)
                .and_then(|p| p.replicas.first())
                .and_then(|leader| brokers.iter().position(|b| b == leader))
                .unwrap_or(0);
            assign_replicas(&brokers, current, added, rf, start_index)
        }
    };
    Ok((current..)
        .zip(new_assignment)
        .map(|(partition, replicas)| partition_record(topic.topic_id, partition, replicas))
        .collect())
}
