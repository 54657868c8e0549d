//! Leaders and ISRs after broker state changes (KRaft's `ReplicationControlManager`): what
//! the controller commits with a fencing, a controlled shutdown, a new registration or an
//! unfencing, so partitions never keep a leader that is gone.
//!
//! - A broker that stops being active leaves every ISR it is in, except where it is the last
//!   member: that ISR stays as it is, so the partition waits for it (the only replica known to
//!   hold every acknowledged record) instead of electing one that may lack records.
//! - Where it led, the first replica in replica order that is active and still in the ISR
//!   takes over, else the partition has no leader (-1), unless unclean election is enabled.
//! - A partition without a leader gets one as soon as an ISR member is active again (or,
//!   with unclean election, any replica is).
//!
//! Pure planning over the image; the controller commits the records with the broker change.

use crate::image::MetadataImage;
use crate::image::TopicImage;
use crate::partition_change::Election;
use crate::partition_change::PartitionChangeBuilder;
use crate::records::MetadataRecord;
use crate::topic_config::UNCLEAN_LEADER_ELECTION_ENABLE;
use crate::topic_config::parse_bool;

/// Partition changes to commit, and how many of them were unclean elections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) records: Vec<MetadataRecord>,
    pub(crate) unclean_elections: u64,
}

impl Planned {
    pub(crate) fn push(&mut self, change: crate::partition_change::PlannedChange) {
        if change.unclean {
            self.unclean_elections += 1;
        }
        self.records.push(change.record);
    }

    pub(crate) fn extend(&mut self, other: Planned) {
        self.records.extend(other.records);
        self.unclean_elections += other.unclean_elections;
    }
}

/// Whether `topic` may elect a leader from outside its ISR: its own
/// `unclean.leader.election.enable`, else the controller's broker setting.
pub(crate) fn unclean_allowed(topic: &TopicImage, broker_default: bool) -> bool {
    topic
        .configs
        .get(UNCLEAN_LEADER_ELECTION_ENABLE)
        .and_then(|v| parse_bool(v))
        .unwrap_or(broker_default)
}

/// The election rule of a partition of `topic` that has lost its leader.
pub(crate) fn failover_election(topic: &TopicImage, broker_default: bool) -> Election {
    if unclean_allowed(topic, broker_default) {
        Election::Unclean
    } else {
        Election::Clean
    }
}

/// The partition changes after `broker` stopped being active; `image` already shows it
/// fenced, shutting down or re-registered.
pub(crate) fn after_broker_inactive(
    image: &MetadataImage,
    broker: i32,
    unclean_default: bool,
) -> Planned {
    let mut planned = Planned::default();
    for topic in image.topics.values() {
        let election = failover_election(topic, unclean_default);
        for (index, partition) in &topic.partitions {
            if partition.leader != broker && !partition.isr.contains(&broker) {
                continue;
            }
            let isr = if partition.isr.len() > 1 {
                partition
                    .isr
                    .iter()
                    .copied()
                    .filter(|r| *r != broker)
                    .collect()
            } else {
                partition.isr.clone()
            };
            if let Some(change) =
                PartitionChangeBuilder::new(image, topic.topic_id, *index, partition)
                    .isr(isr)
                    .election(election)
                    .build()
            {
                planned.push(change);
            }
        }
    }
    planned
}

/// The partition changes after each of `brokers` stopped being active, in turn, on top of
/// `image` (which already shows them inactive).
pub(crate) fn after_brokers_inactive(
    image: &MetadataImage,
    brokers: impl IntoIterator<Item = i32>,
    unclean_default: bool,
) -> Planned {
    let mut working = image.clone();
    let mut planned = Planned::default();
    for broker in brokers {
        let step = after_broker_inactive(&working, broker, unclean_default);
        working = working.with_records(&step.records);
        planned.extend(step);
    }
    planned
}

/// Elections for partitions without a leader that can get one in `image`: after a broker was
/// unfenced, or once unclean election was enabled.
pub(crate) fn elect_leaderless(image: &MetadataImage, unclean_default: bool) -> Planned {
    let mut planned = Planned::default();
    for topic in image.topics.values() {
        let election = failover_election(topic, unclean_default);
        for (index, partition) in topic.partitions.iter().filter(|(_, p)| p.leader < 0) {
            if let Some(change) =
                PartitionChangeBuilder::new(image, topic.topic_id, *index, partition)
                    .election(election)
                    .build()
            {
                planned.push(change);
            }
        }
    }
    planned
}

/// How many partitions `broker` leads in `image`.
pub(crate) fn leadership_count(image: &MetadataImage, broker: i32) -> usize {
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.leader == broker)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ConfigResource;
    use crate::test_images::incarnation;

    fn image(partitions: &[(&[i32], &[i32], i32)]) -> MetadataImage {
        crate::test_images::topic_image(partitions)
    }

    fn fence(image: &MetadataImage, id: i32) -> MetadataImage {
        image.apply(&MetadataRecord::BrokerChange {
            node_id: id,
            incarnation: incarnation(id),
            fenced: Some(true),
            in_controlled_shutdown: None,
        })
    }

    fn state(image: &MetadataImage, partition: i32) -> (i32, Vec<i32>, i32) {
        let p = image.partition("t", partition).expect("partition exists");
        (p.leader, p.isr.clone(), p.leader_epoch)
    }

    #[test]
    fn fencing_moves_leadership_and_shrinks_isrs_but_never_empties_one() {
        let before = image(&[
            (&[1, 2, 3], &[1, 2, 3], 1),
            (&[2, 1, 3], &[2, 1], 2),
            (&[1, 3], &[1], 1),
            (&[3, 2], &[3, 2], 3),
        ]);
        let fenced = fence(&before, 1);
        let planned = after_broker_inactive(&fenced, 1, false);
        let after = fenced.with_records(&planned.records);
        assert_eq!(
            state(&after, 0),
            (2, vec![2, 3], 1),
            "next in replica order"
        );
        assert_eq!(state(&after, 1), (2, vec![2], 0), "follower leaves the ISR");
        assert_eq!(state(&after, 2), (-1, vec![1], 1), "last ISR member stays");
        assert_eq!(state(&after, 3), (3, vec![3, 2], 0), "untouched");
        assert_eq!(planned.records.len(), 3);
        assert_eq!(planned.unclean_elections, 0);
        assert_eq!(leadership_count(&after, 1), 0);
    }

    #[test]
    fn two_brokers_fenced_together_leave_the_last_isr_member_in_place() {
        let before = image(&[(&[1, 2, 3], &[1, 2], 1)]);
        let fenced = fence(&fence(&before, 1), 2);
        let planned = after_brokers_inactive(&fenced, [1, 2], false);
        let after = fenced.with_records(&planned.records);
        // Clean election never picks 3, which was out of the ISR.
        assert_eq!(state(&after, 0).0, -1);
        assert_eq!(state(&after, 0).1, vec![2]);
    }

    #[test]
    fn unclean_election_follows_the_topic_config_then_the_broker_default() {
        let before = image(&[(&[1, 2], &[1], 1)]);
        let fenced = fence(&before, 1);
        let clean = after_broker_inactive(&fenced, 1, false);
        assert_eq!(
            state(&fenced.with_records(&clean.records), 0),
            (-1, vec![1], 1)
        );
        let unclean = after_broker_inactive(&fenced, 1, true);
        assert_eq!(unclean.unclean_elections, 1);
        assert_eq!(
            state(&fenced.with_records(&unclean.records), 0),
            (2, vec![2], 1)
        );
        // The topic config overrides the broker default either way.
        let set = |value: &str| MetadataRecord::Config {
            resource: ConfigResource::Topic("t".into()),
            name: UNCLEAN_LEADER_ELECTION_ENABLE.into(),
            value: Some(value.into()),
        };
        let off = fenced.apply(&set("false"));
        assert_eq!(after_broker_inactive(&off, 1, true).unclean_elections, 0);
        let on = fenced.apply(&set("true"));
        assert_eq!(after_broker_inactive(&on, 1, false).unclean_elections, 1);
    }

    #[test]
    fn leaderless_partitions_get_their_isr_member_back_when_it_is_unfenced() {
        let before = image(&[(&[2, 1], &[1], 1)]);
        let fenced = fence(&before, 1);
        let offline = fenced.with_records(&after_broker_inactive(&fenced, 1, false).records);
        assert_eq!(state(&offline, 0), (-1, vec![1], 1));
        assert!(elect_leaderless(&offline, false).records.is_empty());
        let back = offline.apply(&MetadataRecord::BrokerChange {
            node_id: 1,
            incarnation: incarnation(1),
            fenced: Some(false),
            in_controlled_shutdown: None,
        });
        let planned = elect_leaderless(&back, false);
        assert_eq!(
            state(&back.with_records(&planned.records), 0),
            (1, vec![1], 2)
        );
    }
}
