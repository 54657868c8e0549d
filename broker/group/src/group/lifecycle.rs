//! Offset commit validation, deletion, offset expiry and the timers of a group.

use super::*;

impl Group {
    /// Whether a commit by this member at this generation is accepted (Kafka's
    /// `doCommitOffsets`); generation < 0 on an empty group is a standalone commit.
    pub(crate) fn validate_offset_commit(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now: i64,
    ) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if let Some(error) = self.validate_member(member_id, group_instance_id) {
            return Err(error);
        }
        if generation_id != self.generation_id {
            return Err(ILLEGAL_GENERATION);
        }
        match self.state {
            // The member got its JoinGroup answer but the assignment is not out yet.
            GroupState::CompletingRebalance => Err(REBALANCE_IN_PROGRESS),
            // During PreparingRebalance a commit is still taken: the member learns about the
            // rebalance from its next heartbeat and commits before revoking.
            GroupState::Stable | GroupState::PreparingRebalance => {
                self.heartbeat_received(member_id, now);
                Ok(())
            }
            GroupState::Empty | GroupState::Dead => Err(UNKNOWN_MEMBER_ID),
        }
    }

    /// DeleteGroups: only an empty group goes (to Dead); its records must be tombstoned.
    pub(crate) fn delete(&mut self, now: i64) -> Result<(), i16> {
        match self.state {
            GroupState::Dead => Err(GROUP_ID_NOT_FOUND),
            GroupState::Empty => {
                self.transition(GroupState::Dead, now);
                Ok(())
            }
            _ => Err(NON_EMPTY_GROUP),
        }
    }

    /// Whether the group would be unused (empty, nobody joining) once `removed` of its offsets
    /// are gone.
    pub(crate) fn unused_without(&self, removed: usize) -> bool {
        self.state == GroupState::Empty
            && self.pending_members.is_empty()
            && self.pending.is_empty()
            && self.offsets.iter().count() == removed
    }

    /// An empty group whose offsets are all gone is dropped (Kafka's `cleanupGroupMetadata`).
    pub(crate) fn dead_if_unused(&mut self, now: i64) -> bool {
        if self.state == GroupState::Empty
            && self.offsets.is_empty()
            && self.pending.is_empty()
            && self.pending_members.is_empty()
        {
            self.transition(GroupState::Dead, now);
            true
        } else {
            false
        }
    }

    /// Offsets past retention (KIP-211): in an empty group, counted from when it became empty
    /// (or from the commit, whichever is later); in a stable consumer group, only offsets of
    /// topics it no longer subscribes to, counted from the commit; standalone groups (no
    /// protocol type) from the commit. A partition with an offset in an open transaction is
    /// kept until the transaction ends, as in Kafka.
    pub(crate) fn expired_offsets(&self, now: i64, retention_ms: i64) -> Vec<(String, i32)> {
        let mut expired = self.expired_committed_offsets(now, retention_ms);
        expired.retain(|(topic, partition)| !self.pending.has_partition(topic, *partition));
        expired
    }

    fn expired_committed_offsets(&self, now: i64, retention_ms: i64) -> Vec<(String, i32)> {
        match (self.protocol_type.as_deref(), self.state) {
            (Some(_), GroupState::Empty) => {
                let empty_since = self.state_timestamp_ms;
                self.offsets.expired(
                    now,
                    retention_ms,
                    |o| o.commit_timestamp.max(empty_since),
                    |_| false,
                )
            }
            (Some(CONSUMER_PROTOCOL_TYPE), GroupState::Stable) => match &self.subscribed_topics {
                Some(topics) => self.offsets.expired(
                    now,
                    retention_ms,
                    |o| o.commit_timestamp,
                    |topic| topics.contains(topic),
                ),
                None => Vec::new(),
            },
            (None, _) => self
                .offsets
                .expired(now, retention_ms, |o| o.commit_timestamp, |_| false),
            _ => Vec::new(),
        }
    }

    /// Earliest moment [`Group::on_deadline`] has something to do.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        let members = self.members.values().map(|m| m.heartbeat_deadline_ms);
        let pending = self.pending_members.values().copied();
        let join = self
            .join_deadline_ms
            .filter(|_| self.state == GroupState::PreparingRebalance);
        let sync = self.sync_deadline_ms;
        members.chain(pending).chain(join).chain(sync).min()
    }

    /// Runs every timer due at `now`: session expiry of members and of members that were told
    /// MEMBER_ID_REQUIRED, the join (rebalance) timeout or initial delay, and the sync timeout.
    pub(crate) fn on_deadline(&mut self, now: i64, t: &Timeouts) -> Vec<Effect> {
        let mut fx = Vec::new();
        let expired_pending: Vec<String> = self
            .pending_members
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired_pending {
            self.pending_members.remove(&id);
        }
        if self.state == GroupState::PreparingRebalance {
            self.try_complete_join(now, &mut fx);
        }

        let due: Vec<String> = self
            .members
            .values()
            .filter(|m| m.heartbeat_deadline_ms <= now)
            .map(|m| m.member_id.clone())
            .collect();
        for id in due {
            let survives = self
                .members
                .get(&id)
                .is_some_and(Member::survives_heartbeat_expiry);
            if survives {
                if let Some(member) = self.members.get_mut(&id) {
                    member.heartbeat_deadline_ms =
                        now.saturating_add(i64::from(member.session_timeout_ms));
                }
            } else {
                tracing::info!(group = %self.group_id, member = %id, "member session expired");
                self.remove_member_and_update_group(&id, now, t, &mut fx);
            }
        }

        if self.state == GroupState::PreparingRebalance
            && self.join_deadline_ms.is_some_and(|d| d <= now)
        {
            match self.initial_delay {
                Some(delay) if delay.new_member_added && delay.remaining_ms > 0 => {
                    // Members keep arriving: wait another delay, within the rebalance timeout.
                    let wait = t.initial_rebalance_delay_ms.min(delay.remaining_ms);
                    self.initial_delay = Some(InitialDelay {
                        remaining_ms: (delay.remaining_ms - wait).max(0),
                        new_member_added: false,
                    });
                    self.join_deadline_ms = Some(now.saturating_add(wait));
                }
                _ => self.complete_join(now, &mut fx),
            }
        }

        if self.sync_deadline_ms.is_some_and(|d| d <= now) {
            self.sync_deadline_ms = None;
            if matches!(
                self.state,
                GroupState::CompletingRebalance | GroupState::Stable
            ) && !self.pending_sync.is_empty()
            {
                // Members that got their JoinGroup answer but never synced are gone.
                let mut missing: Vec<String> = self.pending_sync.drain().collect();
                missing.sort();
                tracing::info!(group = %self.group_id, members = ?missing, "members did not sync in time");
                for id in missing {
                    self.remove_member(&id, &mut fx);
                }
                self.prepare_rebalance(now, t, &mut fx);
            }
        }
        fx
    }
}
