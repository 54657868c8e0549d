//! Leader elections on request (KIP-460's ElectLeaders) and the automatic preferred leader
//! rebalance (`auto.leader.rebalance.enable`).
//!
//! - Preferred: the first replica becomes leader if it is active and in the ISR
//!   (ELECTION_NOT_NEEDED when it already leads, PREFERRED_LEADER_NOT_AVAILABLE when it
//!   cannot).
//! - Unclean: a partition without a leader gets one, from the ISR if a member is active, else
//!   the first active replica (ELECTION_NOT_NEEDED when it has a leader,
//!   ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is active).
//! - Rebalance, Kafka's imbalance check: for each broker, the share of the partitions it is
//!   the preferred replica of that it does not lead; above
//!   `leader.imbalance.per.broker.percentage`, those of them whose preferred replica can lead
//!   get a preferred election. Partitions being reassigned are left alone.

use std::collections::BTreeMap;
use std::time::Instant;

use uuid::Uuid;

use crate::controller::Controller;
use crate::controller_error::ControllerError;
use crate::controller_ops::ElectionOutcome;
use crate::image::MetadataImage;
use crate::image::PartitionImage;
use crate::partition_change::Election;
use crate::partition_change::PartitionChangeBuilder;
use crate::partition_change::PlannedChange;
use crate::reassignment::find_partition;
use crate::replication_control::Planned;

/// Plans the election ElectLeaders asks for on one partition.
pub(crate) fn plan_election(
    image: &MetadataImage,
    name: &str,
    index: i32,
    preferred: bool,
) -> Result<PlannedChange, ControllerError> {
    let (topic, partition) = find_partition(image, name, index)?;
    let not_needed = || ControllerError::ElectionNotNeeded {
        topic: name.to_owned(),
        partition: index,
    };
    let builder = PartitionChangeBuilder::new(image, topic.topic_id, index, partition);
    if preferred {
        if partition.leader >= 0 && partition.replicas.first() == Some(&partition.leader) {
            return Err(not_needed());
        }
        builder
            .election(Election::Preferred)
            .build()
            .filter(|c| c.next.leader >= 0)
            .ok_or_else(|| ControllerError::PreferredLeaderNotAvailable {
                topic: name.to_owned(),
                partition: index,
            })
    } else {
        if partition.leader >= 0 {
            return Err(not_needed());
        }
        builder
            .election(Election::Unclean)
            .build()
            .filter(|c| c.next.leader >= 0)
            .ok_or_else(|| ControllerError::EligibleLeadersNotAvailable {
                topic: name.to_owned(),
                partition: index,
            })
    }
}

/// Preferred elections the imbalance check calls for in `image`, given the allowed share of
/// a broker's preferred partitions it may not lead, in percent.
pub(crate) fn plan_rebalance(image: &MetadataImage, percentage: u32) -> Vec<PlannedChange> {
    // Per preferred broker: (partitions it is preferred for, those it does not lead).
    type Preferred<'a> = (usize, Vec<(Uuid, i32, &'a PartitionImage)>);
    let mut by_broker: BTreeMap<i32, Preferred<'_>> = BTreeMap::new();
    for topic in image.topics.values() {
        for (index, partition) in &topic.partitions {
            let Some(&preferred) = partition.replicas.first() else {
                continue;
            };
            let entry = by_broker.entry(preferred).or_default();
            entry.0 += 1;
            if partition.leader != preferred {
                entry.1.push((topic.topic_id, *index, partition));
            }
        }
    }
    let mut changes = Vec::new();
    for (broker, (total, not_led)) in by_broker {
        // ratio > percentage / 100, in integers.
        let imbalanced = not_led.len().saturating_mul(100)
            > total.saturating_mul(usize::try_from(percentage).unwrap_or(usize::MAX));
        if !imbalanced {
            continue;
        }
        for (topic_id, index, partition) in not_led {
            if partition.is_reassigning() {
                continue;
            }
            let change = PartitionChangeBuilder::new(image, topic_id, index, partition)
                .election(Election::Preferred)
                .build();
            if let Some(change) = change.filter(|c| c.next.leader == broker) {
                changes.push(change);
            }
        }
    }
    changes
}

impl Controller {
    /// ElectLeaders: the outcome per partition asked for, in request order, or for every
    /// partition that needed an election when `partitions` is `None`.
    pub async fn elect_leaders(
        &self,
        preferred: bool,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<ElectionOutcome>, ControllerError> {
        let _state = self.inner.state.lock().await;
        let image = self.leader_image()?;
        let all = partitions.is_none();
        let targets: Vec<(String, i32)> = partitions.unwrap_or_else(|| {
            image
                .topics
                .values()
                .flat_map(|t| t.partitions.keys().map(|p| (t.name.clone(), *p)))
                .collect()
        });
        let mut working = MetadataImage::clone(&image);
        let mut planned = Planned::default();
        let mut outcomes: Vec<ElectionOutcome> = Vec::new();
        for (topic, partition) in targets {
            let result = plan_election(&working, &topic, partition, preferred).map(|change| {
                working = working.with_records(std::slice::from_ref(&change.record));
                planned.push(change);
            });
            if all && matches!(result, Err(ControllerError::ElectionNotNeeded { .. })) {
                continue;
            }
            outcomes.push((topic, partition, result));
        }
        if !planned.records.is_empty()
            && let Err(e) = self.commit_with_changes(Vec::new(), planned).await
        {
            tracing::warn!(error = %e, "ElectLeaders commit failed");
            for (_, _, r) in outcomes.iter_mut().filter(|(_, _, r)| r.is_ok()) {
                *r = Err(e.clone());
            }
        }
        Ok(outcomes)
    }

    /// Kafka's leader imbalance check, then preferred elections where it finds brokers over
    /// `leader.imbalance.per.broker.percentage`. Returns how many leaders moved.
    pub async fn rebalance_leaders(&self) -> usize {
        if !self.inner.quorum.is_leader() {
            return 0;
        }
        let _state = self.inner.state.lock().await;
        let image = self.inner.quorum.image();
        let changes = plan_rebalance(
            &image,
            self.inner.options.leader_imbalance_per_broker_percentage,
        );
        if changes.is_empty() {
            return 0;
        }
        let moved = changes.len();
        let mut planned = Planned::default();
        for change in changes {
            planned.push(change);
        }
        match self.commit_with_changes(Vec::new(), planned).await {
            Ok(_) => {
                tracing::info!(moved, "moved leaders back to their preferred replicas");
                moved
            }
            Err(error) => {
                tracing::warn!(%error, "preferred leader rebalance");
                0
            }
        }
    }

    /// Runs the imbalance check when auto rebalance is on and the check interval has passed
    /// since `last`; returns when it last ran.
    pub(crate) async fn maybe_rebalance_leaders(&self, last: Instant) -> Instant {
        let options = &self.inner.options;
        if !options.auto_leader_rebalance_enable
            || last.elapsed() < options.leader_imbalance_check_interval
        {
            return last;
        }
        self.rebalance_leaders().await;
        Instant::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(partitions: &[(&[i32], &[i32], i32)]) -> MetadataImage {
        crate::test_images::topic_image(partitions)
    }

    fn code(result: Result<PlannedChange, ControllerError>) -> Result<i32, i16> {
        result
            .map(|c| c.next.leader)
            .map_err(|e| e.kafka_error_code())
    }

    #[test]
    fn elections_answer_with_kafka_codes() {
        let image = image(&[
            (&[1, 2], &[1, 2], 1),
            (&[1, 2], &[1, 2], 2),
            (&[1, 2], &[2], 2),
            (&[1, 2], &[1], -1),
            (&[1, 9], &[9], -1),
        ]);
        let cases = [
            (0, true, Err(84)),
            (1, true, Ok(1)),
            (2, true, Err(80)),
            (3, true, Ok(1)),
            (4, true, Err(80)),
            (0, false, Err(84)),
            (3, false, Ok(1)),
            (4, false, Ok(1)),
            (7, false, Err(3)),
        ];
        for (partition, preferred, expected) in cases {
            assert_eq!(
                code(plan_election(&image, "t", partition, preferred)),
                expected,
                "partition {partition}, preferred {preferred}"
            );
        }
        assert_eq!(code(plan_election(&image, "nope", 0, true)), Err(3));
    }

    #[test]
    fn rebalance_moves_leaders_only_for_brokers_over_the_threshold() {
        // Broker 1 is preferred for 4 partitions and leads 3 (25% not led); broker 2 is
        // preferred for 2 and leads 2.
        let partitions: &[(&[i32], &[i32], i32)] = &[
            (&[1, 2], &[1, 2], 1),
            (&[1, 2], &[1, 2], 1),
            (&[1, 2], &[1, 2], 1),
            (&[1, 2], &[1, 2], 2),
            (&[2, 1], &[1, 2], 2),
            (&[2, 1], &[1, 2], 2),
        ];
        let image = image(partitions);
        let moves = |percentage| {
            plan_rebalance(&image, percentage)
                .into_iter()
                .map(|c| c.next.leader)
                .collect::<Vec<_>>()
        };
        assert_eq!(moves(10), vec![1]);
        assert_eq!(moves(25), Vec::<i32>::new(), "25% is not above 25%");
        // A preferred replica out of the ISR is not elected.
        let out_of_sync = super::tests::image(&[(&[1, 2], &[2], 2)]);
        assert!(plan_rebalance(&out_of_sync, 10).is_empty());
    }
}
