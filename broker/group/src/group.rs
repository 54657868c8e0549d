//! The classic group state machine: one group's members, generation and committed offsets.
//!
//! Pure: no I/O, no clock. Every operation takes `now` (epoch ms) and returns what must happen
//! as data: an immediate answer, or a wait whose answer arrives later as an [`Effect`], plus
//! writes of the group's metadata the driver has to persist. Semantics follow Kafka's
//! `GroupCoordinator` / `GroupMetadata` (classic protocol) including KIP-345 (static
//! membership) and KIP-394 (member id required on first join).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::{Buf, Bytes};

use crate::codes::*;
use crate::config::Timeouts;
use crate::member::Member;
use crate::offsets::OffsetStore;
use crate::records::{GroupMetadataValue, MemberMetadataValue};
use crate::state::GroupState;

/// Protocol type of Kafka consumers, whose subscriptions the coordinator can read.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// A JoinGroup as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinRequest {
    /// Empty for a member joining for the first time.
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) session_timeout_ms: i32,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) protocol_type: String,
    pub(crate) protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a member without id first gets MEMBER_ID_REQUIRED (KIP-394).
    pub(crate) require_known_member_id: bool,
    /// The id a member gets if this join creates one (made by the driver, so this stays pure).
    pub(crate) fresh_member_id: String,
}

/// One member in the leader's JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinedMember {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) metadata: Bytes,
}

/// Answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinResult {
    pub(crate) error: i16,
    pub(crate) generation_id: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader_id: String,
    pub(crate) member_id: String,
    pub(crate) members: Vec<JoinedMember>,
}

impl JoinResult {
    pub(crate) fn error(member_id: &str, error: i16) -> Self {
        Self {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader_id: String::new(),
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

/// Answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncResult {
    pub(crate) error: i16,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) assignment: Bytes,
}

impl SyncResult {
    pub(crate) fn error(error: i16) -> Self {
        Self { error, protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// Something the driver must do after a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Answer the waiting JoinGroup(s) of `member_id`.
    Join { member_id: String, result: JoinResult },
    /// Answer the waiting SyncGroup(s) of `member_id`.
    Sync { member_id: String, result: SyncResult },
    /// Persist the group's metadata as it is now.
    StoreGroup,
}

/// How a JoinGroup is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JoinOutcome {
    /// Answer now.
    Reply(JoinResult),
    /// Wait for an [`Effect::Join`] addressed to `member_id`.
    Await { member_id: String },
    /// Persist the group's metadata, then answer (a static member replaced in a stable group).
    StoreThenReply(JoinResult),
}

/// How a SyncGroup is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncOutcome {
    /// Answer now.
    Reply(SyncResult),
    /// Wait for an [`Effect::Sync`] addressed to the member.
    Await,
    /// The leader's assignment: persist the group with `assignments`, then report the result
    /// through [`Group::assignment_stored`]; the leader waits like [`SyncOutcome::Await`].
    StoreAssignment { generation: i32, assignments: HashMap<String, Bytes> },
}

/// The first rebalance of an empty group waits `group.initial.rebalance.delay.ms` and extends
/// the wait while members keep arriving, up to the rebalance timeout (Kafka's InitialDelayedJoin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InitialDelay {
    remaining_ms: i64,
    new_member_added: bool,
}

/// What DescribeGroups reports of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberSummary {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) metadata: Bytes,
    pub(crate) assignment: Bytes,
}

/// A classic group.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    group_id: String,
    state: GroupState,
    state_timestamp_ms: i64,
    generation_id: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader_id: Option<String>,
    members: BTreeMap<String, Member>,
    /// group.instance.id → member id (KIP-345).
    static_members: HashMap<String, String>,
    /// Members told MEMBER_ID_REQUIRED that have not joined yet → their expiry (KIP-394).
    pending_members: HashMap<String, i64>,
    /// Members that got their JoinGroup answer but have not sent SyncGroup yet.
    pending_sync: HashSet<String>,
    join_deadline_ms: Option<i64>,
    initial_delay: Option<InitialDelay>,
    sync_deadline_ms: Option<i64>,
    subscribed_topics: Option<BTreeSet<String>>,
    pub(crate) offsets: OffsetStore,
}

impl Group {
    pub(crate) fn new(group_id: &str, now: i64) -> Self {
        Self {
            group_id: group_id.to_owned(),
            state: GroupState::Empty,
            state_timestamp_ms: now,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync: HashSet::new(),
            join_deadline_ms: None,
            initial_delay: None,
            sync_deadline_ms: None,
            subscribed_topics: None,
            offsets: OffsetStore::default(),
        }
    }

    /// A group as persisted in `__consumer_offsets`: Stable with its members, or Empty.
    pub(crate) fn from_metadata(group_id: &str, value: &GroupMetadataValue, now: i64) -> Self {
        let mut group = Self::new(group_id, now);
        group.generation_id = value.generation;
        group.protocol_type =
            (!value.protocol_type.is_empty()).then(|| value.protocol_type.clone());
        group.protocol_name = value.protocol.clone();
        group.leader_id = value.leader.clone();
        if value.current_state_timestamp >= 0 {
            group.state_timestamp_ms = value.current_state_timestamp;
        }
        for m in &value.members {
            let protocols = value
                .protocol
                .clone()
                .map(|p| vec![(p, m.subscription.clone())])
                .unwrap_or_default();
            if let Some(instance) = &m.group_instance_id {
                group.static_members.insert(instance.clone(), m.member_id.clone());
            }
            group.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    protocol_type: value.protocol_type.clone(),
                    protocols,
                    assignment: m.assignment.clone(),
                    awaiting_join: false,
                    awaiting_sync: false,
                    is_new: false,
                    heartbeat_deadline_ms: now.saturating_add(i64::from(m.session_timeout_ms)),
                },
            );
        }
        group.state = if group.members.is_empty() || group.protocol_name.is_none() {
            group.members.clear();
            group.static_members.clear();
            group.leader_id = None;
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        group.subscribed_topics = group.compute_subscribed_topics();
        group
    }

    pub(crate) fn group_id(&self) -> &str {
        &self.group_id
    }

    pub(crate) fn state(&self) -> GroupState {
        self.state
    }

    #[cfg(test)]
    pub(crate) fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub(crate) fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub(crate) fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    #[cfg(test)]
    pub(crate) fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    #[cfg(test)]
    pub(crate) fn has_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    #[cfg(test)]
    pub(crate) fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Nothing left worth keeping: no members, no members about to join, no offsets.
    pub(crate) fn is_disposable(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && self.offsets.is_empty()
    }

    /// Whether the group consumes `topic`; unknown subscriptions count as subscribed, so offsets
    /// are never deleted from under a consumer.
    pub(crate) fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics.as_ref().is_none_or(|topics| topics.contains(topic))
    }

    // ---------------------------------------------------------------- JoinGroup

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

    fn join_inner(
        &mut self,
        req: JoinRequest,
        now: i64,
        t: &Timeouts,
        fx: &mut Vec<Effect>,
    ) -> JoinOutcome {
        if self.state == GroupState::Dead {
            // The group was removed under the member; a retry recreates it.
            return JoinOutcome::Reply(JoinResult::error(&req.member_id, COORDINATOR_NOT_AVAILABLE));
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
                if self.members.get(&member_id).is_some_and(|m| m.matches(&req.protocols)) {
                    // A duplicate join after the rebalance completed: answer with the same
                    // generation, so the member carries on to SyncGroup.
                    JoinOutcome::Reply(self.current_generation_result(&member_id, true))
                } else {
                    self.update_member_and_rebalance(&member_id, req, now, t, fx);
                    JoinOutcome::Await { member_id }
                }
            }
            GroupState::Stable => {
                let unchanged =
                    self.members.get(&member_id).is_some_and(|m| m.matches(&req.protocols));
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

    fn join_new_member(
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

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        req: JoinRequest,
        now: i64,
        t: &Timeouts,
        fx: &mut Vec<Effect>,
    ) {
        if self.state == GroupState::PreparingRebalance && self.generation_id == 0 {
            if let Some(delay) = self.initial_delay.as_mut() {
                delay.new_member_added = true;
            }
        }
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member_id.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), member_id.clone());
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

    fn update_member_and_rebalance(
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
    fn replace_static_member(
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

    fn current_generation_result(&self, member_id: &str, include_members_if_leader: bool) -> JoinResult {
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

    fn current_member_metadata(&self) -> Vec<JoinedMember> {
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

    // ---------------------------------------------------------------- SyncGroup

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
                let assignment =
                    self.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default();
                SyncOutcome::Reply(self.sync_result(assignment))
            }
        }
    }

    fn sync_result(&self, assignment: Bytes) -> SyncResult {
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

    fn reset_and_propagate_assignment_error(&mut self, error: i16, fx: &mut Vec<Effect>) {
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

    // ---------------------------------------------------------------- Heartbeat

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

    fn heartbeat_received(&mut self, member_id: &str, now: i64) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.heartbeat_deadline_ms =
                now.saturating_add(i64::from(member.session_timeout_ms));
        }
    }

    // ---------------------------------------------------------------- LeaveGroup

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

    fn remove_member_and_update_group(
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

    fn remove_member(&mut self, member_id: &str, fx: &mut Vec<Effect>) {
        let Some(member) = self.members.remove(member_id) else { return };
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
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.pending_sync.remove(member_id);
    }

    // ---------------------------------------------------------------- OffsetCommit

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

    // ---------------------------------------------------------------- Deletion and expiry

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
            && self.offsets.iter().count() == removed
    }

    /// An empty group whose offsets are all gone is dropped (Kafka's `cleanupGroupMetadata`).
    pub(crate) fn dead_if_unused(&mut self, now: i64) -> bool {
        if self.state == GroupState::Empty && self.offsets.is_empty() && self.pending_members.is_empty()
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
    /// protocol type) from the commit.
    pub(crate) fn expired_offsets(&self, now: i64, retention_ms: i64) -> Vec<(String, i32)> {
        match (self.protocol_type.as_deref(), self.state) {
            (Some(_), GroupState::Empty) => {
                let empty_since = self.state_timestamp_ms;
                self.offsets.expired(now, retention_ms, |o| o.commit_timestamp.max(empty_since), |_| false)
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
            (None, _) => self.offsets.expired(now, retention_ms, |o| o.commit_timestamp, |_| false),
            _ => Vec::new(),
        }
    }

    // ---------------------------------------------------------------- Timers

    /// Earliest moment [`Group::on_deadline`] has something to do.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        let members = self.members.values().map(|m| m.heartbeat_deadline_ms);
        let pending = self.pending_members.values().copied();
        let join = self.join_deadline_ms.filter(|_| self.state == GroupState::PreparingRebalance);
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
            let survives = self.members.get(&id).is_some_and(Member::survives_heartbeat_expiry);
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
            if matches!(self.state, GroupState::CompletingRebalance | GroupState::Stable)
                && !self.pending_sync.is_empty()
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

    // ---------------------------------------------------------------- Rebalance core

    fn maybe_prepare_rebalance(&mut self, now: i64, t: &Timeouts, fx: &mut Vec<Effect>) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(now, t, fx);
        }
    }

    fn prepare_rebalance(&mut self, now: i64, t: &Timeouts, fx: &mut Vec<Effect>) {
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

    fn rebalance_timeout_ms(&self) -> i64 {
        self.members.values().map(|m| i64::from(m.rebalance_timeout_ms)).max().unwrap_or(0)
    }

    /// Completes the join phase early once everyone is in (not during the initial delay).
    fn try_complete_join(&mut self, now: i64, fx: &mut Vec<Effect>) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay.is_none()
            && self.has_all_members_joined()
        {
            self.complete_join(now, fx);
        }
    }

    fn has_all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join)
    }

    fn complete_join(&mut self, now: i64, fx: &mut Vec<Effect>) {
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
                members: if is_leader { leader_members.clone() } else { Vec::new() },
            };
            if let Some(member) = self.members.get_mut(&id) {
                if member.awaiting_join {
                    member.awaiting_join = false;
                    fx.push(Effect::Join { member_id: id.clone(), result });
                }
                member.is_new = false;
                member.heartbeat_deadline_ms =
                    now.saturating_add(i64::from(member.session_timeout_ms));
            }
            self.pending_sync.insert(id);
        }
        self.sync_deadline_ms = Some(now.saturating_add(self.rebalance_timeout_ms()));
    }

    fn maybe_elect_joined_leader(&mut self) -> bool {
        if let Some(leader) = &self.leader_id {
            if self.members.get(leader).is_some_and(|m| m.awaiting_join) {
                return true;
            }
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
    fn select_protocol(&self) -> Option<String> {
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
    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else { return Vec::new() };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for member in members {
            candidates.retain(|c| member.metadata(c).is_some());
        }
        candidates
    }

    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols.iter().any(|(name, _)| candidates.contains(name))
    }

    fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
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
    fn validate_member(&self, member_id: &str, group_instance_id: Option<&str>) -> Option<i16> {
        if let Some(instance) = group_instance_id {
            if let Some(current) = self.static_members.get(instance) {
                if current != member_id {
                    return Some(FENCED_INSTANCE_ID);
                }
            }
        }
        (!self.members.contains_key(member_id)).then_some(UNKNOWN_MEMBER_ID)
    }

    fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    fn transition(&mut self, to: GroupState, now: i64) {
        debug_assert!(to.may_follow(self.state), "{} -> {}", self.state, to);
        tracing::debug!(group = %self.group_id, from = %self.state, to = %to, generation = self.generation_id, "group state");
        self.state = to;
        self.state_timestamp_ms = now;
    }

    // ---------------------------------------------------------------- Views

    /// The group as `GroupMetadataValue`, with `assignments` replacing the members' current
    /// assignments when given (the leader's assignment being persisted).
    pub(crate) fn metadata_value(
        &self,
        assignments: Option<&HashMap<String, Bytes>>,
    ) -> GroupMetadataValue {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadataValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(protocol).cloned().unwrap_or_default(),
                    assignment: assignments
                        .and_then(|a| a.get(&m.member_id).cloned())
                        .unwrap_or_else(|| m.assignment.clone()),
                })
                .collect(),
        }
    }

    /// Members as DescribeGroups shows them: metadata and assignment only when Stable.
    pub(crate) fn member_summaries(&self) -> Vec<MemberSummary> {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| MemberSummary {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable { m.metadata(protocol).cloned().unwrap_or_default() } else { Bytes::new() },
                assignment: if stable { m.assignment.clone() } else { Bytes::new() },
            })
            .collect()
    }
}

/// Topics of a `ConsumerProtocolSubscription`: an int16 version, then (in every version, none
/// of them flexible) the topics as an int32 count of int16-length strings. Parsed by hand with
/// every length checked against the bytes present: the metadata comes from clients, and a
/// generic decoder would trust a huge count and try to allocate it.
fn decode_subscription(metadata: &Bytes) -> Option<Vec<String>> {
    let mut buf = metadata.as_ref();
    let version = buf.try_get_i16().ok()?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let count = usize::try_from(buf.try_get_i32().ok()?).ok()?;
    // Each topic takes at least its 2-byte length.
    if count > buf.remaining() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::try_from(buf.try_get_i16().ok()?).ok()?;
        if len > buf.remaining() {
            return None;
        }
        let (name, rest) = buf.split_at(len);
        topics.push(std::str::from_utf8(name).ok()?.to_owned());
        buf = rest;
    }
    Some(topics)
}

#[cfg(test)]
mod tests;
