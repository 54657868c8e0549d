//! TxnOffsetCommit validation and the end of a transaction's offsets in one group.

use super::*;

impl Group {
    /// Whether a TxnOffsetCommit by this member at this generation is accepted (Kafka's
    /// `validateOffsetCommit` for transactional commits). Without member id, instance id and
    /// generation (versions 0-2, or a producer outside the group) it is accepted in any state;
    /// with them (KIP-447, v3+) the member must be current and the generation match. Unlike a
    /// plain commit, a group completing a rebalance still takes it.
    pub(crate) fn validate_txn_offset_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || group_instance_id.is_some() {
            // An empty member id names no member (a producer outside the group): only the
            // generation is checked then, as Kafka's `validateOffsetCommit` does.
            if !member_id.is_empty() {
                if let Some(error) = self.validate_member(member_id, group_instance_id) {
                    return Err(error);
                }
            } else if group_instance_id.is_some_and(|i| self.static_members.contains_key(i)) {
                return Err(FENCED_INSTANCE_ID);
            }
            if generation_id != self.generation_id {
                return Err(ILLEGAL_GENERATION);
            }
        }
        Ok(())
    }

    /// Ends `producer_id`'s transaction for this group: on commit its pending offsets become
    /// committed, except where a commit written later in the log already holds the partition;
    /// on abort they are dropped. Returns whether the producer had pending offsets here.
    pub(crate) fn complete_transaction(&mut self, producer_id: i64, commit: bool) -> bool {
        let Some(pending) = self.pending.take(producer_id) else {
            return false;
        };
        if commit {
            for ((topic, partition), entry) in pending {
                self.offsets.put_if_newer(topic, partition, entry);
            }
        }
        true
    }

    /// Forgets the partition's offset, committed and pending alike (a tombstone was written).
    pub(crate) fn remove_offset(&mut self, topic: &str, partition: i32) {
        self.offsets.remove(topic, partition);
        self.pending.remove_partition(topic, partition);
    }
}
