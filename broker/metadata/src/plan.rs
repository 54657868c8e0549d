//! Pure validation and planning of controller operations: from the image and a request to
//! the records that carry it out, or the error to return. No I/O, so every rule is unit-testable
//! without a quorum; [`crate::controller`] serializes, commits and reports.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use uuid::Uuid;

use crate::controller::CreateTopicRequest;
use crate::controller::CreatedTopic;
use crate::controller::MAX_PARTITIONS_PER_TOPIC;
use crate::controller::TopicDefaults;
use crate::controller_error::ControllerError;
use crate::image::MetadataImage;
use crate::placement::assign_replicas;
use crate::records::ConfigResource;
use crate::records::MetadataRecord;
use crate::topic_config::effective_topic_configs;
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

/// The explicit configs of a topic resource; broker resources are refused.
pub(crate) fn topic_configs(
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

pub(crate) fn registered_brokers(image: &MetadataImage) -> Vec<i32> {
    image.brokers.keys().copied().collect()
}

/// Checks manual replica lists: non-empty, no broker twice, every broker registered.
pub(crate) fn validate_replicas(
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

pub(crate) fn partition_record(
    topic_id: Uuid,
    partition: i32,
    replicas: Vec<i32>,
) -> MetadataRecord {
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

pub(crate) fn replication_factor_error(
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

pub(crate) fn plan_manual_assignment(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with_brokers(brokers: &[i32]) -> MetadataImage {
        brokers.iter().fold(MetadataImage::empty("c"), |image, id| {
            image.apply(&MetadataRecord::RegisterBroker {
                node_id: *id,
                host: "h".into(),
                port: 9092,
                rack: None,
                incarnation: Uuid::new_v4(),
                fenced: false,
            })
        })
    }

    #[test]
    fn a_planned_topic_is_one_self_contained_batch() {
        let image = image_with_brokers(&[1, 2]);
        let request = CreateTopicRequest {
            name: "t".into(),
            num_partitions: Some(3),
            replication_factor: Some(2),
            configs: BTreeMap::from([("retention.ms".to_owned(), "1".to_owned())]),
            ..Default::default()
        };
        let (records, created) =
            plan_topic(&image, &request, TopicDefaults::default(), 0).expect("valid");
        // Topic first, then its partitions, then its configs: applying the batch in order
        // yields the whole topic at once.
        assert!(matches!(records[0], MetadataRecord::Topic { .. }));
        assert!(
            records[1..4]
                .iter()
                .all(|r| matches!(r, MetadataRecord::Partition { .. }))
        );
        assert!(matches!(records[4], MetadataRecord::Config { .. }));
        assert_eq!(records.len(), 5);
        let applied = image.apply_batch(1, &records);
        let topic = applied.topic("t").expect("created");
        assert_eq!(topic.topic_id, created.topic_id);
        assert_eq!(topic.partitions.len(), 3);
        assert_eq!(topic.configs.len(), 1);
    }

    #[test]
    fn new_partitions_continue_the_topic_placement() {
        let image = image_with_brokers(&[1, 2, 3]);
        let request = CreateTopicRequest {
            name: "t".into(),
            num_partitions: Some(3),
            replication_factor: Some(1),
            ..Default::default()
        };
        let (records, _) =
            plan_topic(&image, &request, TopicDefaults::default(), 1).expect("valid");
        let image = image.apply_batch(1, &records);
        let leaders = |image: &MetadataImage| -> Vec<i32> {
            image
                .topic("t")
                .map(|t| t.partitions.values().map(|p| p.leader).collect())
                .unwrap_or_default()
        };
        assert_eq!(leaders(&image), vec![2, 3, 1]);
        let grown = plan_partitions(&image, "t", 6, None).expect("valid");
        let image = image.apply_batch(2, &grown);
        assert_eq!(leaders(&image), vec![2, 3, 1, 2, 3, 1]);
    }
}
