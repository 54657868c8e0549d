//! JoinGroup: new, known and static members (KIP-345, KIP-394).

use bytes::Bytes;

use super::*;

impl Group {
    /// JoinGroup (Kafka's `handleJoinGroup`): a new member, a known member rejoining, or a
    /// static member coming back under a new member id. The group must exist (the driver creates
    /// it for a member without id).
    pub(crate) fn join(
        &mut self,
        req: JoinRequest,
        now: i64,
        t: &Timeouts,
    ) -> (JoinOutcome, Vec<Effect>) {
        let mut fx = Vec::new();
        let outcome = self.join_inner(req, now, t, &mut fx);
        if self.state == GroupState::PreparingRebalance {
            self.try_complete_join(now, &mut fx);
        }
        (outcome, fx)
    }

    pub(super) fn join_inner(
        &mut self,
        req: JoinRequest,
        now: i64,
        t: &Timeouts,
        fx: &mut Vec<Effect>,
    ) -> JoinOutcome {
        if self.state == GroupState::Dead {
            // The group was removed under the member; a retry recreates it.
            return JoinOutcome::Reply(JoinResult::error(
                &req.member_id,
                COORDINATOR_NOT_AVAILABLE,
            ));
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return JoinOutcome::Reply(JoinResult::error(
                &req.member_id,
                INCONSISTENT_GROUP_PROTOCOL,
            ));
        }
        if req.member_id.is_empty() {
            return self.join_new_member(req, now, t, fx);
        }
        let member_id = req.member_id.clone();
        if self.pending_members.contains_key(&member_id) {
            self.add_member_and_rebalance(member_id.clone(), req, now, t, fx);
            return JoinOutcome::Await { member_id };
        }
        if let Some(error) = self.validate_member(&member_id, req.group_instance_id.as_deref()) {
            return JoinOutcome::Reply(JoinResult::error(&member_id, error));
        }
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_and_rebalance(&member_id, req, now, t, fx);
                JoinOutcome::Await { member_id }
            }
            GroupState::CompletingRebalance => {
                if self
                    .members
                    .get(&member_id)
                    .is_some_and(|m| m.matches(&req.protocols))
                {
                    // A duplicate join after the rebalance completed: answer with the same
                    // generation, so the member carries on to SyncGroup.
                    JoinOutcome::Reply(self.current_generation_result(&member_id, true))
                } else {
                    self.update_member_and_rebalance(&member_id, req, now, t, fx);
                    JoinOutcome::Await { member_id }
                }
            }
            GroupState::Stable => {
                let unchanged = self
                    .members
                    .get(&member_id)
                    .is_some_and(|m| m.matches(&req.protocols));
                if self.is_leader(&member_id) || !unchanged {
                    // The leader rejoining means its subscription view changed (new topics or
                    // partitions): rebalance. So does any member changing its metadata.
                    self.update_member_and_rebalance(&member_id, req, now, t, fx);
                    JoinOutcome::Await { member_id }
                } else {
                    JoinOutcome::Reply(self.current_generation_result(&member_id, false))
                }
            }
            GroupState::Empty | GroupState::Dead => {
                JoinOutcome::Reply(JoinResult::error(&member_id, UNKNOWN_MEMBER_ID))
            }
        }
    }

    pub(super) fn join_new_member(
        &mut self,
        req: JoinRequest,
        now: i64,
        t: &Timeouts,
        fx: &mut Vec<Effect>,
    ) -> JoinOutcome {
        let new_id = req.fresh_member_id.clone();
        if let Some(instance) = req.group_instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(&old_id, new_id, req, now, t, fx);
            }
            self.add_member_and_rebalance(new_id.clone(), req, now, t, fx);
            return JoinOutcome::Await { member_id: new_id };
        }
        if req.require_known_member_id {
            // KIP-394: hand out the id first, so a client that times out and retries reuses it
            // instead of leaving an orphan member behind.
            let deadline = now.saturating_add(i64::from(req.session_timeout_ms));
            self.pending_members.insert(new_id.clone(), deadline);
            return JoinOutcome::Reply(JoinResult::error(&new_id, MEMBER_ID_REQUIRED));
        }
        self.add_member_and_rebalance(new_id.clone(), req, now, t, fx);
        JoinOutcome::Await { member_id: new_id }
    }

    pub(super) fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        req: JoinRequest,
        now: i64,
        t: &Timeouts,
        fx: &mut Vec<Effect>,
    ) {
        if self.state == GroupState::PreparingRebalance
            && self.generation_id == 0
            && let Some(delay) = self.initial_delay.as_mut()
        {
            delay.new_member_added = true;
        }
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member_id.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.pending_members.remove(&member_id);
        self.members.insert(
            member_id.clone(),
            Member {
                member_id,
                group_instance_id: req.group_instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                session_timeout_ms: req.session_timeout_ms,
                protocol_type: req.protocol_type,
                protocols: req.protocols,
                assignment: Bytes::new(),
                awaiting_join: true,
                awaiting_sync: false,
                is_new: true,
                heartbeat_deadline_ms: now.saturating_add(t.new_member_join_timeout_ms),
            },
        );
        self.maybe_prepare_rebalance(now, t, fx);
    }

    pub(super) fn update_member_and_rebalance(
        &mut self,
        member_id: &str,
        req: JoinRequest,
        now: i64,
        t: &Timeouts,
        fx: &mut Vec<Effect>,
    ) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.protocols = req.protocols;
            member.rebalance_timeout_ms = req.rebalance_timeout_ms;
            member.session_timeout_ms = req.session_timeout_ms;
            member.client_id = req.client_id;
            member.client_host = req.client_host;
            member.awaiting_join = true;
        }
        self.maybe_prepare_rebalance(now, t, fx);
    }

    /// KIP-345: a static member rejoining with an unknown member id takes over the old member's
    /// place (and assignment); the old member id is fenced.
    pub(super) fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        req: JoinRequest,
        now: i64,
        t: &Timeouts,
        fx: &mut Vec<Effect>,
    ) -> JoinOutcome {
        let current_leader = self.leader_id.clone().unwrap_or_default();
        let Some(mut member) = self.members.remove(old_id) else {
            return JoinOutcome::Reply(JoinResult::error(&new_id, UNKNOWN_MEMBER_ID));
        };
        if member.awaiting_join {
            fx.push(Effect::Join {
                member_id: old_id.to_owned(),
                result: JoinResult::error(old_id, FENCED_INSTANCE_ID),
            });
        }
        if member.awaiting_sync {
            fx.push(Effect::Sync {
                member_id: old_id.to_owned(),
                result: SyncResult::error(FENCED_INSTANCE_ID),
            });
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader_id.as_deref() == Some(old_id) {
            self.leader_id = Some(new_id.clone());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        member.member_id = new_id.clone();
        member.protocols = req.protocols;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.awaiting_join = true;
        member.awaiting_sync = false;
        member.heartbeat_deadline_ms = now.saturating_add(i64::from(member.session_timeout_ms));
        self.members.insert(new_id.clone(), member);

        match self.state {
            GroupState::Stable => {
                let next_protocol = self.select_protocol();
                if next_protocol.is_some() && next_protocol == self.protocol_name {
                    // Nothing the assignment depends on changed: no rebalance. The old leader id
                    // is returned so the member does not run an assignment a stable group would
                    // never distribute.
                    if let Some(member) = self.members.get_mut(&new_id) {
                        member.awaiting_join = false;
                    }
                    JoinOutcome::StoreThenReply(JoinResult {
                        error: NONE,
                        generation_id: self.generation_id,
                        protocol_type: self.protocol_type.clone(),
                        protocol_name: self.protocol_name.clone(),
                        leader_id: current_leader,
                        member_id: new_id,
                        members: Vec::new(),
                    })
                } else {
                    self.maybe_prepare_rebalance(now, t, fx);
                    JoinOutcome::Await { member_id: new_id }
                }
            }
            GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(now, t, fx);
                JoinOutcome::Await { member_id: new_id }
            }
            GroupState::PreparingRebalance => JoinOutcome::Await { member_id: new_id },
            GroupState::Empty | GroupState::Dead => {
                JoinOutcome::Reply(JoinResult::error(&new_id, UNKNOWN_MEMBER_ID))
            }
        }
    }

    pub(super) fn current_generation_result(
        &self,
        member_id: &str,
        include_members_if_leader: bool,
    ) -> JoinResult {
        let members = if include_members_if_leader && self.is_leader(member_id) {
            self.current_member_metadata()
        } else {
            Vec::new()
        };
        JoinResult {
            error: NONE,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_owned(),
            members,
        }
    }

    pub(super) fn current_member_metadata(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol).cloned().unwrap_or_default(),
            })
            .collect()
    }
}
