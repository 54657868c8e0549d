//! SyncGroup, Heartbeat and LeaveGroup.

use std::collections::HashMap;

use bytes::Bytes;

use super::*;

impl Group {
    /// SyncGroup (Kafka's `doSyncGroup`): followers wait for the leader's assignment, the leader
    /// hands it in to be persisted; in a Stable group the current assignment is returned.
    // The arguments are the request's fields, one for one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sync(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: i64,
    ) -> SyncOutcome {
        if self.state == GroupState::Dead {
            return SyncOutcome::Reply(SyncResult::error(COORDINATOR_NOT_AVAILABLE));
        }
        if let Some(error) = self.validate_member(member_id, group_instance_id) {
            return SyncOutcome::Reply(SyncResult::error(error));
        }
        if generation_id != self.generation_id {
            return SyncOutcome::Reply(SyncResult::error(ILLEGAL_GENERATION));
        }
        if protocol_type.is_some_and(|p| self.protocol_type.as_deref() != Some(p))
            || protocol_name.is_some_and(|p| self.protocol_name.as_deref() != Some(p))
        {
            return SyncOutcome::Reply(SyncResult::error(INCONSISTENT_GROUP_PROTOCOL));
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                SyncOutcome::Reply(SyncResult::error(UNKNOWN_MEMBER_ID))
            }
            GroupState::PreparingRebalance => {
                SyncOutcome::Reply(SyncResult::error(REBALANCE_IN_PROGRESS))
            }
            GroupState::CompletingRebalance => {
                self.pending_sync.remove(member_id);
                self.heartbeat_received(member_id, now);
                if let Some(member) = self.members.get_mut(member_id) {
                    member.awaiting_sync = true;
                }
                if self.is_leader(member_id) {
                    let mut by_member: HashMap<String, Bytes> = assignments
                        .into_iter()
                        .filter(|(id, _)| self.members.contains_key(id))
                        .collect();
                    for id in self.members.keys() {
                        by_member.entry(id.clone()).or_default();
                    }
                    SyncOutcome::StoreAssignment {
                        generation: self.generation_id,
                        assignments: by_member,
                    }
                } else {
                    SyncOutcome::Await
                }
            }
            GroupState::Stable => {
                self.pending_sync.remove(member_id);
                self.heartbeat_received(member_id, now);
                let assignment = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                SyncOutcome::Reply(self.sync_result(assignment))
            }
        }
    }

    pub(super) fn sync_result(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: NONE,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// The leader's assignment was persisted (or not): distribute it if the generation it was
    /// made for is still the one completing.
    pub(crate) fn assignment_stored(
        &mut self,
        generation: i32,
        assignments: HashMap<String, Bytes>,
        result: Result<(), i16>,
        now: i64,
        t: &Timeouts,
    ) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.state != GroupState::CompletingRebalance || self.generation_id != generation {
            // A rebalance started meanwhile; its start already answered the waiting syncs.
            return fx;
        }
        match result {
            Ok(()) => {
                let mut assignments = assignments;
                for member in self.members.values_mut() {
                    member.assignment = assignments.remove(&member.member_id).unwrap_or_default();
                }
                let waiting: Vec<(String, Bytes)> = self
                    .members
                    .values_mut()
                    .filter(|m| m.awaiting_sync)
                    .map(|m| {
                        m.awaiting_sync = false;
                        (m.member_id.clone(), m.assignment.clone())
                    })
                    .collect();
                for (member_id, assignment) in waiting {
                    let result = self.sync_result(assignment);
                    fx.push(Effect::Sync { member_id, result });
                }
                self.transition(GroupState::Stable, now);
            }
            Err(error) => {
                self.reset_and_propagate_assignment_error(error, &mut fx);
                self.maybe_prepare_rebalance(now, t, &mut fx);
            }
        }
        fx
    }

    pub(super) fn reset_and_propagate_assignment_error(
        &mut self,
        error: i16,
        fx: &mut Vec<Effect>,
    ) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
            if member.awaiting_sync {
                member.awaiting_sync = false;
                fx.push(Effect::Sync {
                    member_id: member.member_id.clone(),
                    result: SyncResult::error(error),
                });
            }
        }
    }

    /// Heartbeat: refreshes the member's session; REBALANCE_IN_PROGRESS tells it to rejoin.
    pub(crate) fn heartbeat(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
        now: i64,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if let Some(error) = self.validate_member(member_id, group_instance_id) {
            return error;
        }
        if generation_id != self.generation_id {
            return ILLEGAL_GENERATION;
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => UNKNOWN_MEMBER_ID,
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.heartbeat_received(member_id, now);
                NONE
            }
            GroupState::PreparingRebalance => {
                self.heartbeat_received(member_id, now);
                REBALANCE_IN_PROGRESS
            }
        }
    }

    pub(super) fn heartbeat_received(&mut self, member_id: &str, now: i64) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.heartbeat_deadline_ms = now.saturating_add(i64::from(member.session_timeout_ms));
        }
    }

    /// One leaving member; an empty `member_id` with an instance id removes that static member
    /// (the admin path of KIP-345).
    pub(crate) fn leave(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        now: i64,
        t: &Timeouts,
        fx: &mut Vec<Effect>,
    ) -> i16 {
        if self.state == GroupState::Dead {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if member_id.is_empty() {
            let current = group_instance_id.and_then(|i| self.static_members.get(i).cloned());
            return match current {
                Some(current) => {
                    self.remove_member_and_update_group(&current, now, t, fx);
                    NONE
                }
                None => UNKNOWN_MEMBER_ID,
            };
        }
        if self.pending_members.remove(member_id).is_some() {
            if self.state == GroupState::PreparingRebalance {
                self.try_complete_join(now, fx);
            }
            return NONE;
        }
        if let Some(error) = self.validate_member(member_id, group_instance_id) {
            return error;
        }
        self.remove_member_and_update_group(member_id, now, t, fx);
        NONE
    }

    pub(super) fn remove_member_and_update_group(
        &mut self,
        member_id: &str,
        now: i64,
        t: &Timeouts,
        fx: &mut Vec<Effect>,
    ) {
        self.remove_member(member_id, fx);
        match self.state {
            GroupState::Dead | GroupState::Empty => {}
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(now, t, fx)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, fx),
        }
    }

    pub(super) fn remove_member(&mut self, member_id: &str, fx: &mut Vec<Effect>) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        if member.awaiting_join {
            fx.push(Effect::Join {
                member_id: member_id.to_owned(),
                result: JoinResult::error(member_id, UNKNOWN_MEMBER_ID),
            });
        }
        if member.awaiting_sync {
            fx.push(Effect::Sync {
                member_id: member_id.to_owned(),
                result: SyncResult::error(UNKNOWN_MEMBER_ID),
            });
        }
        if let Some(instance) = &member.group_instance_id
            && self.static_members.get(instance).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(instance);
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.pending_sync.remove(member_id);
    }
}
