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
use crate::txn_offsets::PendingOffsets;

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
        Self {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// Something the driver must do after a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Answer the waiting JoinGroup(s) of `member_id`.
    Join {
        member_id: String,
        result: JoinResult,
    },
    /// Answer the waiting SyncGroup(s) of `member_id`.
    Sync {
        member_id: String,
        result: SyncResult,
    },
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
    StoreAssignment {
        generation: i32,
        assignments: HashMap<String, Bytes>,
    },
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
    /// Offsets of open transactions (TxnOffsetCommit), not visible until committed.
    pub(crate) pending: PendingOffsets,
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
            pending: PendingOffsets::default(),
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
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
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

    /// Nothing left worth keeping: no members, no members about to join, no offsets (committed
    /// or in an open transaction).
    pub(crate) fn is_disposable(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && self.offsets.is_empty()
            && self.pending.is_empty()
    }

    /// Whether the group consumes `topic`; unknown subscriptions count as subscribed, so offsets
    /// are never deleted from under a consumer.
    pub(crate) fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_none_or(|topics| topics.contains(topic))
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
                metadata: if stable {
                    m.metadata(protocol).cloned().unwrap_or_default()
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
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

mod join;
mod lifecycle;
mod membership;
mod rebalance;
mod transactions;

#[cfg(test)]
mod tests;
