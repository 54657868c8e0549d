//! Partition reassignment (KIP-455): AlterPartitionReassignments and
//! ListPartitionReassignments, as KRaft's controller does them.
//!
//! Starting a reassignment to `target` sets the replicas to the target followed by the
//! original replicas not in it, with `adding_replicas` = target − original and
//! `removing_replicas` = original − target. The new replicas fetch from the leader, and its
//! AlterPartition requests add them to the ISR; the change that puts the last adding replica in
//! the ISR completes the reassignment ([`crate::partition_change`]): the removing replicas
//! leave, and a leader among them hands over to the first target replica in the ISR.
//!
//! Changing a reassignment in progress, or cancelling it, first reverts it to the original
//! replicas (the current ones without the adding ones) with the ISR members among them. When
//! none of those is in the ISR, reverting would elect a replica that may lack records: it is
//! refused unless the topic allows unclean leader election, as in Kafka.

use std::collections::BTreeSet;

use crate::controller::Controller;
use crate::controller_error::ControllerError;
use crate::controller_ops::PartitionReassignment;
use crate::controller_ops::ReassignmentTarget;
use crate::image::MetadataImage;
use crate::image::PartitionImage;
use crate::image::TopicImage;
use crate::partition_change::Election;
use crate::partition_change::PartitionChangeBuilder;
use crate::partition_change::PlannedChange;
use crate::replication_control::Planned;
use crate::replication_control::failover_election;
use crate::replication_control::unclean_allowed;

/// The partition's replicas and ISR with the reassignment in progress undone: (replicas,
/// ISR, whether the ISR had to be made up, which is an unclean election).
fn revert(partition: &PartitionImage) -> (Vec<i32>, Vec<i32>, bool) {
    let adding = &partition.adding_replicas;
    let replicas: Vec<i32> = partition
        .replicas
        .iter()
        .copied()
        .filter(|r| !adding.contains(r))
        .collect();
    let isr: Vec<i32> = partition
        .isr
        .iter()
        .copied()
        .filter(|r| !adding.contains(r))
        .collect();
    match (isr.is_empty(), replicas.first()) {
        (true, Some(first)) => (replicas.clone(), vec![*first], true),
        _ => (replicas, isr, false),
    }
}

fn invalid_target(topic: &str, partition: i32, message: String) -> ControllerError {
    ControllerError::InvalidReplicaAssignment {
        topic: topic.to_owned(),
        message: format!("Invalid target replicas for partition {partition}: {message}"),
    }
}

/// Validates one reassignment (or cancellation) against `image` and plans its change
/// (`None` when the partition already is as asked).
pub(crate) fn plan_reassignment(
    image: &MetadataImage,
    reassignment: &ReassignmentTarget,
    unclean_default: bool,
) -> Result<Option<PlannedChange>, ControllerError> {
    let (name, index, target) = reassignment;
    let (topic, current) = find_partition(image, name, *index)?;
    if target.is_none() && !current.is_reassigning() {
        return Err(ControllerError::NoReassignmentInProgress {
            topic: name.clone(),
            partition: *index,
        });
    }
    if let Some(target) = target {
        if target.is_empty() {
            return Err(invalid_target(
                name,
                *index,
                "the replica list is empty.".to_owned(),
            ));
        }
        let mut seen = BTreeSet::new();
        for broker in target {
            if !seen.insert(*broker) {
                return Err(invalid_target(
                    name,
                    *index,
                    format!("broker {broker} is listed more than once."),
                ));
            }
            if image.broker(*broker).is_none() {
                return Err(invalid_target(
                    name,
                    *index,
                    format!("broker {broker} is not registered."),
                ));
            }
        }
    }
    let (original, isr, unclean) = if current.is_reassigning() {
        revert(current)
    } else {
        (current.replicas.clone(), current.isr.clone(), false)
    };
    if unclean && !unclean_allowed(topic, unclean_default) {
        return Err(ControllerError::InvalidRequest {
            message: format!(
                "Reverting the reassignment of {name}-{index} would elect a leader outside the \
                 ISR, and unclean.leader.election.enable is false for the topic."
            ),
        });
    }
    let (replicas, adding, removing) = match target {
        None => (original, Vec::new(), Vec::new()),
        Some(target) => {
            let adding: Vec<i32> = target
                .iter()
                .copied()
                .filter(|r| !original.contains(r))
                .collect();
            let removing: Vec<i32> = original
                .iter()
                .copied()
                .filter(|r| !target.contains(r))
                .collect();
            let mut replicas = target.clone();
            replicas.extend(&removing);
            (replicas, adding, removing)
        }
    };
    let election = if unclean {
        Election::Unclean
    } else {
        failover_election(topic, unclean_default)
    };
    let mut change = PartitionChangeBuilder::new(image, topic.topic_id, *index, current)
        .isr(isr)
        .replicas(replicas, adding, removing)
        .election(election)
        .build();
    if let Some(change) = change.as_mut() {
        change.unclean = change.unclean || unclean;
    }
    Ok(change)
}

pub(crate) fn find_partition<'a>(
    image: &'a MetadataImage,
    name: &str,
    index: i32,
) -> Result<(&'a TopicImage, &'a PartitionImage), ControllerError> {
    let topic = image
        .topic(name)
        .ok_or_else(|| ControllerError::UnknownTopicOrPartition {
            topic: name.to_owned(),
            partition: None,
        })?;
    let partition =
        topic
            .partitions
            .get(&index)
            .ok_or_else(|| ControllerError::UnknownTopicOrPartition {
                topic: name.to_owned(),
                partition: Some(index),
            })?;
    Ok((topic, partition))
}

/// The reassignments in progress in `image` among `partitions` (all when `None`), in topic
/// and partition order; partitions that do not exist or are not reassigning are left out, as
/// Kafka does.
pub fn list_reassignments(
    image: &MetadataImage,
    partitions: Option<&[(String, i32)]>,
) -> Vec<PartitionReassignment> {
    let wanted: Option<BTreeSet<(&str, i32)>> =
        partitions.map(|list| list.iter().map(|(t, p)| (t.as_str(), *p)).collect());
    let mut found = Vec::new();
    for topic in image.topics.values() {
        for (index, partition) in &topic.partitions {
            if !partition.is_reassigning()
                || wanted
                    .as_ref()
                    .is_some_and(|w| !w.contains(&(topic.name.as_str(), *index)))
            {
                continue;
            }
            found.push(PartitionReassignment {
                topic: topic.name.clone(),
                partition: *index,
                replicas: partition.replicas.clone(),
                adding_replicas: partition.adding_replicas.clone(),
                removing_replicas: partition.removing_replicas.clone(),
            });
        }
    }
    found
}

impl Controller {
    /// AlterPartitionReassignments: one result per reassignment, in request order; the valid
    /// ones are committed together.
    pub async fn alter_partition_reassignments(
        &self,
        reassignments: Vec<ReassignmentTarget>,
    ) -> Vec<Result<(), ControllerError>> {
        let _state = self.inner.state.lock().await;
        let image = match self.leader_image() {
            Ok(image) => image,
            Err(e) => return reassignments.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut seen = BTreeSet::new();
        let duplicates: BTreeSet<(&str, i32)> = reassignments
            .iter()
            .filter(|(t, p, _)| !seen.insert((t.as_str(), *p)))
            .map(|(t, p, _)| (t.as_str(), *p))
            .collect();
        let mut working = MetadataImage::clone(&image);
        let mut planned = Planned::default();
        let mut results: Vec<Result<(), ControllerError>> = Vec::new();
        for reassignment in &reassignments {
            let (topic, partition, _) = reassignment;
            if duplicates.contains(&(topic.as_str(), *partition)) {
                results.push(Err(ControllerError::InvalidRequest {
                    message: format!(
                        "Partition {topic}-{partition} is listed more than once in the request."
                    ),
                }));
                continue;
            }
            match plan_reassignment(&working, reassignment, self.unclean_default()) {
                Ok(change) => {
                    if let Some(change) = change {
                        tracing::info!(
                            %topic,
                            partition,
                            replicas = ?change.next.replicas,
                            adding = ?change.next.adding_replicas,
                            removing = ?change.next.removing_replicas,
                            "partition reassignment changed"
                        );
                        working = working.with_records(std::slice::from_ref(&change.record));
                        planned.push(change);
                    }
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if !planned.records.is_empty()
            && let Err(e) = self.commit_with_changes(Vec::new(), planned).await
        {
            tracing::warn!(error = %e, "AlterPartitionReassignments commit failed");
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(e.clone());
            }
        }
        results
    }

    /// ListPartitionReassignments, from the active controller's image.
    pub fn list_partition_reassignments(
        &self,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<PartitionReassignment>, ControllerError> {
        let image = self.leader_image()?;
        Ok(list_reassignments(&image, partitions))
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::records::ConfigResource;
    use crate::records::MetadataRecord;

    /// Brokers 1..=3 and topic "t" whose partition 0 is being reassigned from [1, 2] to [3]
    /// with only broker 3 in the ISR.
    fn image() -> MetadataImage {
        let mut records = crate::test_images::registrations(1..=3);
        records.push(MetadataRecord::Topic {
            name: "t".into(),
            topic_id: Uuid::from_u128(9),
        });
        records.push(MetadataRecord::Partition {
            topic_id: Uuid::from_u128(9),
            partition: 0,
            replicas: vec![1, 2],
            isr: vec![1, 2],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
        });
        records.push(MetadataRecord::PartitionChange {
            topic_id: Uuid::from_u128(9),
            partition: 0,
            leader: Some(3),
            isr: Some(vec![3]),
            replicas: Some(vec![3, 1, 2]),
            adding_replicas: Some(vec![3]),
            removing_replicas: Some(vec![1, 2]),
        });
        MetadataImage::empty("c").with_records(&records)
    }

    #[test]
    fn reverting_without_an_original_replica_in_sync_needs_unclean_election() {
        let image = image();
        let cancel = ("t".to_owned(), 0, None);
        let refused = plan_reassignment(&image, &cancel, false).expect_err("refused");
        assert_eq!(refused.kafka_error_code(), 42, "{refused}");
        let allowed = image.apply(&MetadataRecord::Config {
            resource: ConfigResource::Topic("t".into()),
            name: crate::topic_config::UNCLEAN_LEADER_ELECTION_ENABLE.into(),
            value: Some("true".into()),
        });
        let change = plan_reassignment(&allowed, &cancel, false)
            .expect("allowed")
            .expect("a change");
        assert!(change.unclean);
        assert_eq!(
            (change.next.replicas, change.next.isr, change.next.leader),
            (vec![1, 2], vec![1], 1)
        );
    }

    #[test]
    fn a_new_target_replaces_the_reassignment_in_progress_from_the_original_replicas() {
        let image = image();
        let change = plan_reassignment(&image, &("t".to_owned(), 0, Some(vec![2, 3])), true)
            .expect("valid")
            .expect("a change");
        // Based on the original [1, 2] (ISR made up as [1], an unclean step).
        assert_eq!(change.next.replicas, vec![2, 3, 1]);
        assert_eq!(change.next.adding_replicas, vec![3]);
        assert_eq!(change.next.removing_replicas, vec![1]);
        assert!(change.unclean);
    }
}
