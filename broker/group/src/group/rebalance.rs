//! The rebalance core: preparing, completing a join, electing a leader, picking the protocol.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

impl Group {
    pub(super) fn maybe_prepare_rebalance(&mut self, now: i64, t: &Timeouts, fx: &mut Vec<Effect>) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(now, t, fx);
        }
    }

    pub(super) fn prepare_rebalance(&mut self, now: i64, t: &Timeouts, fx: &mut Vec<Effect>) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_error(REBALANCE_IN_PROGRESS, fx);
        }
        self.pending_sync.clear();
        self.sync_deadline_ms = None;
        let rebalance_timeout = self.rebalance_timeout_ms();
        if self.state == GroupState::Empty && t.initial_rebalance_delay_ms > 0 {
            self.initial_delay = Some(InitialDelay {
                remaining_ms: (rebalance_timeout - t.initial_rebalance_delay_ms).max(0),
                new_member_added: false,
            });
            self.join_deadline_ms = Some(now.saturating_add(t.initial_rebalance_delay_ms));
        } else {
            self.initial_delay = None;
            self.join_deadline_ms = Some(now.saturating_add(rebalance_timeout));
        }
        self.transition(GroupState::PreparingRebalance, now);
        self.try_complete_join(now, fx);
    }

    pub(super) fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// Completes the join phase early once everyone is in (not during the initial delay).
    pub(super) fn try_complete_join(&mut self, now: i64, fx: &mut Vec<Effect>) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.has_all_members_joined()
        {
            self.complete_join(now, fx);
        }
    }

    pub(super) fn has_all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join)
    }

    pub(super) fn complete_join(&mut self, now: i64, fx: &mut Vec<Effect>) {
        // Dynamic members that did not rejoin in time are out; static members stay (KIP-345)
        // and are expired by their session timeout if they never return.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join && !m.is_static())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id, fx);
        }
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if !self.maybe_elect_joined_leader() && !self.members.is_empty() {
            // Only static members that have not rejoined remain: keep waiting until they
            // rejoin or their sessions expire.
            self.initial_delay = None;
            self.join_deadline_ms = Some(now.saturating_add(self.rebalance_timeout_ms()));
            return;
        }
        self.join_deadline_ms = None;
        self.initial_delay = None;
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = None;
            self.transition(GroupState::Empty, now);
            fx.push(Effect::StoreGroup);
            return;
        }
        self.protocol_name = self.select_protocol();
        self.subscribed_topics = self.compute_subscribed_topics();
        self.transition(GroupState::CompletingRebalance, now);
        let leader_members = self.current_member_metadata();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let is_leader = self.is_leader(&id);
            let result = JoinResult {
                error: NONE,
                generation_id: self.generation_id,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol_name.clone(),
                leader_id: self.leader_id.clone().unwrap_or_default(),
                member_id: id.clone(),
                members: if is_leader {
                    leader_members.clone()
                } else {
                    Vec::new()
                },
            };
            if let Some(member) = self.members.get_mut(&id) {
                if member.awaiting_join {
                    member.awaiting_join = false;
                    fx.push(Effect::Join {
                        member_id: id.clone(),
                        result,
                    });
                }
                member.is_new = false;
                member.heartbeat_deadline_ms =
                    now.saturating_add(i64::from(member.session_timeout_ms));
            }
            self.pending_sync.insert(id);
        }
        self.sync_deadline_ms = Some(now.saturating_add(self.rebalance_timeout_ms()));
    }

    pub(super) fn maybe_elect_joined_leader(&mut self) -> bool {
        if let Some(leader) = &self.leader_id
            && self.members.get(leader).is_some_and(|m| m.awaiting_join)
        {
            return true;
        }
        match self.members.values().find(|m| m.awaiting_join) {
            Some(member) => {
                self.leader_id = Some(member.member_id.clone());
                true
            }
            None => {
                self.leader_id = None;
                false
            }
        }
    }

    /// The protocol every member supports that most members prefer (Kafka's `selectProtocol`:
    /// each member votes for its most preferred candidate).
    pub(super) fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(choice) = member.vote(&candidates) {
                *votes.entry(choice).or_default() += 1;
            }
        }
        // Ties go to the candidate listed first, so the choice is deterministic.
        let best = votes.values().copied().max()?;
        candidates
            .iter()
            .find(|c| votes.get(**c) == Some(&best))
            .map(|c| (*c).to_owned())
    }

    /// Protocols supported by every member, in the first member's preference order.
    pub(super) fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for member in members {
            candidates.retain(|c| member.metadata(c).is_some());
        }
        candidates
    }

    pub(super) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols.iter().any(|(name, _)| candidates.contains(name))
    }

    pub(super) fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            let metadata = member.metadata(protocol)?;
            topics.extend(decode_subscription(metadata)?);
        }
        Some(topics)
    }

    /// KIP-345: an instance id bound to another member id is fenced; otherwise the member must
    /// exist.
    pub(super) fn validate_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Option<i16> {
        if let Some(instance) = group_instance_id
            && let Some(current) = self.static_members.get(instance)
            && current != member_id
        {
            return Some(FENCED_INSTANCE_ID);
        }
        (!self.members.contains_key(member_id)).then_some(UNKNOWN_MEMBER_ID)
    }

    pub(super) fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub(super) fn transition(&mut self, to: GroupState, now: i64) {
        debug_assert!(to.may_follow(self.state), "{} -> {}", self.state, to);
        tracing::debug!(group = %self.group_id, from = %self.state, to = %to, generation = self.generation_id, "group state");
        self.state = to;
        self.state_timestamp_ms = now;
    }
}
