//! Pure validation and planning of controller operations: from the image and a request to
//! the records that carry it out, or the error to return. No I/O, so every rule is unit-testable
//! without a quorum; [`crate::controller`] serializes, commits and reports.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use uuid::Uuid;

use crate::broker_config::dynamic_broker_config_def;
use crate::broker_config::not_dynamic;
use crate::broker_config::validate_broker_config;
use crate::controller::CreateTopicRequest;
use crate::controller::CreatedTopic;
use crate::controller::MAX_PARTITIONS_PER_TOPIC;
use crate::controller::TopicDefaults;
use crate::controller_error::ControllerError;
use crate::image::MetadataImage;
use crate::placement::BrokerInfo;
use crate::placement::PlacementError;
use crate::placement::assign_replicas;
use crate::placement::start_index_of;
use crate::records::ConfigResource;
use crate::records::MetadataRecord;
use crate::topic_config::ConfigDef;
use crate::topic_config::effective_topic_configs;
use crate::topic_config::topic_config_def;
use crate::topic_config::validate_topic_config;
use crate::topic_name::collision_key;
use crate::topic_name::validate_topic_name;

/// Names that occur more than once.
pub(crate) fn duplicate_names<'a>(names: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut duplicates = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            duplicates.insert(name.to_owned());
        }
    }
    duplicates
}

/// The explicit configs of a resource: a topic's, or a broker's dynamic configs.
pub(crate) fn resource_configs(
    image: &MetadataImage,
    resource: &ConfigResource,
) -> Result<BTreeMap<String, String>, ControllerError> {
    match resource {
        ConfigResource::Topic(name) => {
            image.topic(name).map(|t| t.configs.clone()).ok_or_else(|| {
                ControllerError::UnknownTopicOrPartition {
                    topic: name.clone(),
                    partition: None,
                }
            })
        }
        ConfigResource::Broker(node_id) if *node_id < 0 => Err(ControllerError::InvalidRequest {
            message: format!("Invalid negative broker ID {node_id}."),
        }),
        ConfigResource::Broker(node_id) => {
            Ok(image.broker_config(*node_id).cloned().unwrap_or_default())
        }
        ConfigResource::BrokerDefault => Ok(image.broker_default_config().clone()),
    }
}

/// The definition of config `key` of a resource of this kind.
pub(crate) fn config_def(
    resource: &ConfigResource,
    key: &str,
) -> Result<&'static ConfigDef, ControllerError> {
    let def = match resource {
        ConfigResource::Topic(_) => topic_config_def(key),
        ConfigResource::Broker(_) | ConfigResource::BrokerDefault => dynamic_broker_config_def(key),
    };
    def.ok_or_else(|| match resource {
        ConfigResource::Topic(_) => ControllerError::InvalidConfig {
            key: key.to_owned(),
            reason: format!("Unknown topic config name: {key}"),
        },
        ConfigResource::Broker(_) | ConfigResource::BrokerDefault => not_dynamic(key).into(),
    })
}

/// Checks one config value of a resource of this kind.
pub(crate) fn validate_config(
    resource: &ConfigResource,
    key: &str,
    value: &str,
) -> Result<(), ControllerError> {
    match resource {
        ConfigResource::Topic(_) => validate_topic_config(key, value)?,
        ConfigResource::Broker(_) | ConfigResource::BrokerDefault => {
            validate_broker_config(key, value)?
        }
    }
    Ok(())
}

pub(crate) fn config_record(
    resource: &ConfigResource,
    name: &str,
    value: Option<String>,
) -> MetadataRecord {
    MetadataRecord::Config {
        resource: resource.clone(),
        name: name.to_owned(),
        value,
    }
}

/// The brokers new replicas are placed on, with their racks: the registered, unfenced ones.
/// Manual assignments may name any registered broker; only these become leaders and in-sync
/// replicas.
pub(crate) fn live_brokers(image: &MetadataImage) -> Vec<BrokerInfo> {
    image
        .live_brokers()
        .map(|b| BrokerInfo {
            node_id: b.node_id,
            rack: b.rack.clone(),
        })
        .collect()
}

/// Checks the replicas of one partition of a manual assignment (non-empty, no broker twice,
/// every broker registered, `expected_replicas` of them when given) and returns those on live
/// brokers, in assignment order, of which there must be one.
fn validate_replicas(
    topic: &str,
    image: &MetadataImage,
    live: &[BrokerInfo],
    partition: i32,
    replicas: &[i32],
    expected_replicas: Option<usize>,
) -> Result<Vec<i32>, ControllerError> {
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
                "The manual partition assignment for partition {partition} includes broker \
                 {broker}, but no such broker is registered."
            )));
        }
    }
    if let Some(expected) = expected_replicas
        && replicas.len() != expected
    {
        return Err(invalid(format!(
            "The manual partition assignment includes a partition ({partition}) with {} \
             replica(s), but this is not consistent with previous partitions, which have \
             {expected} replica(s).",
            replicas.len()
        )));
    }
    let isr: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|r| live.iter().any(|b| b.node_id == *r))
        .collect();
    if isr.is_empty() {
        return Err(invalid(format!(
            "All brokers specified in the manual partition assignment for partition {partition} \
             are fenced."
        )));
    }
    Ok(isr)
}

/// The replicas of a new partition (preferred leader first) and those of them on live
/// brokers, the first of which leads.
struct NewPartition {
    replicas: Vec<i32>,
    live: Vec<i32>,
}

/// A new partition's record, as Kafka creates it: every replica on an active broker is in
/// the ISR (a new partition holds no records, so all are in sync), and the first of them leads.
fn partition_record(topic_id: Uuid, partition: i32, new: NewPartition) -> MetadataRecord {
    MetadataRecord::Partition {
        topic_id,
        partition,
        leader: new.live.first().copied().unwrap_or(-1),
        isr: new.live,
        replicas: new.replicas,
        leader_epoch: 0,
        partition_epoch: 0,
    }
}

/// INVALID_REPLICATION_FACTOR for `replication_factor` over `live` brokers, in Kafka's words
/// (`ReplicationControlManager` prefixes the placer's message), saying how many registered
/// brokers are fenced when some are.
pub(crate) fn replication_factor_error(
    topic: &str,
    replication_factor: usize,
    live: usize,
    registered: usize,
) -> ControllerError {
    let fenced = registered.saturating_sub(live);
    let brokers = if fenced == 0 {
        format!("{live} broker(s) are registered")
    } else {
        format!("{live} broker(s) are registered and unfenced ({fenced} more are fenced)")
    };
    ControllerError::InvalidReplicationFactor {
        topic: topic.to_owned(),
        message: format!(
            "Unable to replicate the partition {replication_factor} time(s): The target \
             replication factor of {replication_factor} cannot be reached because only \
             {brokers}."
        ),
    }
}

/// Places `partitions` new partitions numbered from `first_partition` over the live brokers.
fn place(
    topic: &str,
    image: &MetadataImage,
    live: &[BrokerInfo],
    first_partition: i32,
    partitions: i32,
    replication_factor: usize,
    start_index: usize,
) -> Result<Vec<NewPartition>, ControllerError> {
    match assign_replicas(
        live,
        first_partition,
        partitions,
        replication_factor,
        start_index,
    ) {
        // Placed replicas are all live.
        Ok(assignment) => Ok(assignment
            .into_iter()
            .map(|replicas| NewPartition {
                live: replicas.clone(),
                replicas,
            })
            .collect()),
        Err(PlacementError::TooFewBrokers { brokers, .. }) => Err(replication_factor_error(
            topic,
            replication_factor,
            brokers,
            image.brokers.len(),
        )),
        Err(e @ PlacementError::ZeroReplicationFactor) => {
            Err(ControllerError::InvalidReplicationFactor {
                topic: topic.to_owned(),
                message: e.to_string(),
            })
        }
    }
}

/// Validates one new topic against `image` and plans its records.
pub(crate) fn plan_topic(
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
    let live = live_brokers(image);

    let assignment = match &request.assignments {
        Some(assignments) => {
            if num_partitions.is_some() || replication_factor.is_some() {
                return Err(ControllerError::InvalidRequest {
                    message: "Both numPartitions or replicationFactor and replicasAssignments \
                              were set. Both cannot be used at the same time."
                        .to_owned(),
                });
            }
            plan_manual_assignment(name, image, &live, assignments)?
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
            place(name, image, &live, 0, partitions, rf, start_index)?
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
    let replication_factor = assignment.first().map_or(0, |p| p.replicas.len());
    let num_partitions = assignment.len();
    for (partition, new) in (0..).zip(assignment) {
        records.push(partition_record(topic_id, partition, new));
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

/// Validates the manual assignment of a new topic, as Kafka does: every partition from 0 up
/// listed once, each with the same number of replicas. Returns each partition's replicas and
/// in-sync replicas, in partition order.
fn plan_manual_assignment(
    name: &str,
    image: &MetadataImage,
    live: &[BrokerInfo],
    assignments: &[(i32, Vec<i32>)],
) -> Result<Vec<NewPartition>, ControllerError> {
    let invalid = |message: String| ControllerError::InvalidReplicaAssignment {
        topic: name.to_owned(),
        message,
    };
    if assignments.is_empty() {
        return Err(invalid(
            "The manual partition assignment is empty.".to_owned(),
        ));
    }
    if assignments.len() > MAX_PARTITIONS_PER_TOPIC as usize {
        return Err(ControllerError::InvalidPartitions {
            topic: name.to_owned(),
            message: format!(
                "Number of partitions exceeds the limit of {MAX_PARTITIONS_PER_TOPIC} per topic."
            ),
        });
    }
    let mut planned: BTreeMap<i32, NewPartition> = BTreeMap::new();
    let mut replication_factor = None;
    for (partition, replicas) in assignments {
        if planned.contains_key(partition) {
            return Err(invalid(format!(
                "Found multiple manual partition assignments for partition {partition}."
            )));
        }
        let live_replicas =
            validate_replicas(name, image, live, *partition, replicas, replication_factor)?;
        replication_factor = Some(replicas.len());
        planned.insert(
            *partition,
            NewPartition {
                replicas: replicas.clone(),
                live: live_replicas,
            },
        );
    }
    // Indexes are distinct, so they are 0..len exactly when none is outside that range.
    if let Some(outside) = planned
        .keys()
        .find(|p| usize::try_from(**p).map_or(true, |p| p >= planned.len()))
    {
        return Err(invalid(format!(
            "The manual partition assignment lists partition {outside}, but partitions must be \
             numbered consecutively from 0 (here 0 to {}).",
            planned.len() - 1
        )));
    }
    Ok(planned.into_values().collect())
}

/// Validates growing `name` to `count` partitions and plans the new partitions' records.
pub(crate) fn plan_partitions(
    image: &MetadataImage,
    name: &str,
    count: i32,
    assignments: Option<&[Vec<i32>]>,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| ControllerError::UnknownTopicOrPartition {
            topic: name.to_owned(),
            partition: None,
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
    let live = live_brokers(image);
    let new_assignment = match assignments {
        Some(assignments) => {
            if assignments.len() != added as usize {
                return Err(ControllerError::InvalidReplicaAssignment {
                    topic: name.to_owned(),
                    message: format!(
                        "Attempted to add {added} additional partition(s), but {} \
                         assignment(s) were specified.",
                        assignments.len()
                    ),
                });
            }
            (current..)
                .zip(assignments)
                .map(|(partition, replicas)| {
                    validate_replicas(name, image, &live, partition, replicas, Some(rf)).map(
                        |live_replicas| NewPartition {
                            replicas: replicas.clone(),
                            live: live_replicas,
                        },
                    )
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        None => {
            // Continue the topic's rotation of leaders from where partition 0's leader sits,
            // as Kafka does when adding partitions.
            let start_index = topic
                .partitions
                .get(&0)
                .and_then(|p| p.replicas.first())
                .and_then(|leader| start_index_of(&live, *leader))
                .unwrap_or(0);
            place(name, image, &live, current, added, rf, start_index)?
        }
    };
    Ok((current..)
        .zip(new_assignment)
        .map(|(partition, new)| partition_record(topic.topic_id, partition, new))
        .collect())
}

#[cfg(test)]
mod tests;
