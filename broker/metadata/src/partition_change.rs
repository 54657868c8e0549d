//! The next state of one partition (KRaft's `PartitionChangeBuilder`): from the current
//! partition, a target ISR and replica list and an election rule, the leader it gets and the
//! `partition_change` record that carries the change, or nothing when nothing changes.
//!
//! A reassignment in progress completes inside any change, as in Kafka: once every adding
//! replica is in the ISR, the removing replicas leave the replicas and the ISR, and a leader
//! among them hands over to the first target replica in the ISR. It waits while that would
//! leave no eligible leader.
//!
//! Pure: every rule is tested here without a quorum. Liveness comes from the image the change
//! is planned against: a leader or ISR member must be active (registered, unfenced, not in
//! controlled shutdown).

use uuid::Uuid;

use crate::image::MetadataImage;
use crate::image::PartitionDelta;
use crate::image::PartitionImage;
use crate::records::MetadataRecord;

/// How the leader is chosen when the current one cannot stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Election {
    /// The current leader stays while it is active, a replica and in the ISR; otherwise the
    /// first replica (in replica order) that is active and in the ISR leads, or none (-1).
    Clean,
    /// As [`Election::Clean`]; when no ISR member is active, the first active replica leads
    /// and becomes the whole ISR (`unclean.leader.election.enable`).
    Unclean,
    /// The preferred replica (the first) leads if it is active and in the ISR; otherwise as
    /// [`Election::Clean`].
    Preferred,
}

/// A planned change of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedChange {
    pub(crate) record: MetadataRecord,
    /// The partition once the record is applied.
    pub(crate) next: PartitionImage,
    /// The leader was elected from outside the ISR.
    pub(crate) unclean: bool,
}

/// Builds the change of one partition; start with [`PartitionChangeBuilder::new`], set targets,
/// then [`PartitionChangeBuilder::build`].
#[derive(Debug, Clone)]
pub(crate) struct PartitionChangeBuilder<'a> {
    image: &'a MetadataImage,
    topic_id: Uuid,
    partition: i32,
    current: &'a PartitionImage,
    isr: Vec<i32>,
    replicas: Vec<i32>,
    adding: Vec<i32>,
    removing: Vec<i32>,
    election: Election,
}

impl<'a> PartitionChangeBuilder<'a> {
    /// A builder that keeps the partition as it is, electing by [`Election::Clean`].
    pub(crate) fn new(
        image: &'a MetadataImage,
        topic_id: Uuid,
        partition: i32,
        current: &'a PartitionImage,
    ) -> Self {
        Self {
            image,
            topic_id,
            partition,
            current,
            isr: current.isr.clone(),
            replicas: current.replicas.clone(),
            adding: current.adding_replicas.clone(),
            removing: current.removing_replicas.clone(),
            election: Election::Clean,
        }
    }

    pub(crate) fn isr(mut self, isr: Vec<i32>) -> Self {
        self.isr = isr;
        self
    }

    /// The replicas, with the reassignment's adding and removing replicas (empty when none is
    /// in progress).
    pub(crate) fn replicas(
        mut self,
        replicas: Vec<i32>,
        adding: Vec<i32>,
        removing: Vec<i32>,
    ) -> Self {
        self.replicas = replicas;
        self.adding = adding;
        self.removing = removing;
        self
    }

    pub(crate) fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// Whether `node` may lead under the target replicas and ISR.
    fn eligible(&self, node: i32) -> bool {
        node >= 0
            && self.replicas.contains(&node)
            && self.isr.contains(&node)
            && self.image.is_active(node)
    }

    /// The leader and ISR after the election, and whether it was unclean.
    fn elect(&self) -> (i32, Vec<i32>, bool) {
        if self.election == Election::Preferred
            && let Some(&preferred) = self.replicas.first()
            && self.eligible(preferred)
        {
            return (preferred, self.isr.clone(), false);
        }
        if self.eligible(self.current.leader) {
            return (self.current.leader, self.isr.clone(), false);
        }
        if let Some(&leader) = self.replicas.iter().find(|r| self.eligible(**r)) {
            return (leader, self.isr.clone(), false);
        }
        if self.election == Election::Unclean
            && let Some(&leader) = self.replicas.iter().find(|r| self.image.is_active(**r))
        {
            return (leader, vec![leader], true);
        }
        (-1, self.isr.clone(), false)
    }

    /// Completes the reassignment in progress when every adding replica is in the ISR and the
    /// target keeps an eligible leader (KRaft's `maybeCompleteReassignment`).
    fn complete_reassignment(&mut self) {
        if self.adding.is_empty() && self.removing.is_empty() {
            return;
        }
        if !self.adding.iter().all(|r| self.isr.contains(r)) {
            return;
        }
        let keep = |r: &i32| !self.removing.contains(r);
        let replicas: Vec<i32> = self.replicas.iter().copied().filter(keep).collect();
        let isr: Vec<i32> = self.isr.iter().copied().filter(keep).collect();
        let has_leader = replicas
            .iter()
            .any(|r| isr.contains(r) && self.image.is_active(*r));
        if isr.is_empty() || !has_leader {
            return;
        }
        self.replicas = replicas;
        self.isr = isr;
        self.adding.clear();
        self.removing.clear();
    }

    /// The change, or `None` when the partition would stay exactly as it is (so no epoch moves
    /// and no follower is fenced needlessly).
    pub(crate) fn build(mut self) -> Option<PlannedChange> {
        self.complete_reassignment();
        let (leader, isr, unclean) = self.elect();
        let current = self.current;
        let leader = (leader != current.leader).then_some(leader);
        let isr = (isr != current.isr).then_some(isr);
        let replicas = (self.replicas != current.replicas).then(|| self.replicas.clone());
        let adding = (self.adding != current.adding_replicas).then(|| self.adding.clone());
        let removing = (self.removing != current.removing_replicas).then(|| self.removing.clone());
        if leader.is_none()
            && isr.is_none()
            && replicas.is_none()
            && adding.is_none()
            && removing.is_none()
        {
            return None;
        }
        let mut next = current.clone();
        next.apply_change(&PartitionDelta {
            leader,
            isr: isr.as_deref(),
            replicas: replicas.as_deref(),
            adding_replicas: adding.as_deref(),
            removing_replicas: removing.as_deref(),
        });
        Some(PlannedChange {
            record: MetadataRecord::PartitionChange {
                topic_id: self.topic_id,
                partition: self.partition,
                leader,
                isr,
                replicas,
                adding_replicas: adding,
                removing_replicas: removing,
            },
            next,
            unclean,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brokers 1..=4: 1-3 active, 4 fenced.
    fn image() -> MetadataImage {
        let mut image = MetadataImage::empty("c");
        for id in 1..=4 {
            image = image.apply(&MetadataRecord::RegisterBroker {
                node_id: id,
                host: "h".into(),
                port: 9092,
                rack: None,
                incarnation: Uuid::from_u128(id as u128),
                fenced: id == 4,
            });
        }
        image
    }

    fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionImage {
        PartitionImage {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 5,
            partition_epoch: 7,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    fn build(
        current: &PartitionImage,
        isr: &[i32],
        election: Election,
    ) -> Option<(i32, Vec<i32>, i32, i32, bool)> {
        let image = image();
        PartitionChangeBuilder::new(&image, Uuid::nil(), 0, current)
            .isr(isr.to_vec())
            .election(election)
            .build()
            .map(|c| {
                (
                    c.next.leader,
                    c.next.isr,
                    c.next.leader_epoch,
                    c.next.partition_epoch,
                    c.unclean,
                )
            })
    }

    #[test]
    fn an_unchanged_partition_plans_nothing() {
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        assert_eq!(build(&p, &[1, 2, 3], Election::Clean), None);
        assert_eq!(build(&p, &[1, 2, 3], Election::Preferred), None);
    }

    #[test]
    fn an_isr_change_keeps_the_leader_and_bumps_only_the_partition_epoch() {
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        assert_eq!(
            build(&p, &[1, 3], Election::Clean),
            Some((1, vec![1, 3], 5, 8, false))
        );
    }

    #[test]
    fn a_leader_leaving_the_isr_is_replaced_by_the_next_live_isr_member_in_replica_order() {
        // Replica order decides, not ISR order; fenced broker 4 is skipped.
        let p = partition(&[4, 3, 2, 1], &[1, 2, 3, 4], 1);
        assert_eq!(
            build(&p, &[2, 3, 4], Election::Clean),
            Some((3, vec![2, 3, 4], 6, 8, false))
        );
    }

    #[test]
    fn without_a_live_isr_member_the_partition_goes_offline_unless_unclean() {
        let p = partition(&[4, 2], &[4], 4);
        assert_eq!(
            build(&p, &[4], Election::Clean),
            Some((-1, vec![4], 6, 8, false))
        );
        assert_eq!(
            build(&p, &[4], Election::Unclean),
            Some((2, vec![2], 6, 8, true))
        );
        // Unclean election needs some live replica.
        let p = partition(&[4], &[4], 4);
        assert_eq!(
            build(&p, &[4], Election::Unclean),
            Some((-1, vec![4], 6, 8, false))
        );
    }

    #[test]
    fn a_leaderless_partition_gets_a_live_isr_member_back() {
        let p = partition(&[2, 1], &[1], -1);
        assert_eq!(
            build(&p, &[1], Election::Clean),
            Some((1, vec![1], 6, 8, false))
        );
    }

    #[test]
    fn preferred_election_moves_leadership_to_the_first_replica_when_it_is_in_sync() {
        let p = partition(&[2, 1, 3], &[1, 2, 3], 1);
        assert_eq!(
            build(&p, &[1, 2, 3], Election::Preferred),
            Some((2, vec![1, 2, 3], 6, 8, false))
        );
        // Not in the ISR: the current leader stays.
        assert_eq!(
            build(&p, &[1, 3], Election::Preferred).map(|c| c.0),
            Some(1)
        );
    }

    fn reassigning(
        replicas: &[i32],
        isr: &[i32],
        leader: i32,
        adding: &[i32],
        removing: &[i32],
    ) -> PartitionImage {
        PartitionImage {
            adding_replicas: adding.to_vec(),
            removing_replicas: removing.to_vec(),
            ..partition(replicas, isr, leader)
        }
    }

    /// (replicas, isr, leader, adding, removing) after the ISR becomes `isr`.
    fn with_isr(
        current: &PartitionImage,
        isr: &[i32],
    ) -> (Vec<i32>, Vec<i32>, i32, Vec<i32>, Vec<i32>) {
        let image = image();
        let next = PartitionChangeBuilder::new(&image, Uuid::nil(), 0, current)
            .isr(isr.to_vec())
            .build()
            .map_or_else(|| current.clone(), |c| c.next);
        (
            next.replicas,
            next.isr,
            next.leader,
            next.adding_replicas,
            next.removing_replicas,
        )
    }

    #[test]
    fn a_reassignment_completes_once_every_adding_replica_is_in_sync() {
        // {1,2} to {2,3}: replicas are the target then the removed ones.
        let p = reassigning(&[2, 3, 1], &[1, 2], 1, &[3], &[1]);
        assert_eq!(
            with_isr(&p, &[1, 2]),
            (vec![2, 3, 1], vec![1, 2], 1, vec![3], vec![1])
        );
        // Broker 3 caught up: 1 leaves the replicas and the ISR, and hands over its leadership.
        assert_eq!(
            with_isr(&p, &[1, 2, 3]),
            (vec![2, 3], vec![2, 3], 2, vec![], vec![])
        );
    }

    #[test]
    fn a_reassignment_waits_while_the_target_has_no_live_isr_member() {
        // Broker 4 (fenced) is the only target replica in the ISR besides the adding one.
        let p = reassigning(&[4, 1], &[1, 4], 1, &[], &[1]);
        assert_eq!(with_isr(&p, &[1, 4]).4, vec![1], "still reassigning");
    }
}
