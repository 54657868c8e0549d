//! One member of a classic group.

use bytes::Bytes;

/// A member as the coordinator tracks it between requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) member_id: String,
    /// Static membership id (KIP-345).
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) rebalance_timeout_ms: i32,
    pub(crate) session_timeout_ms: i32,
    pub(crate) protocol_type: String,
    /// Supported protocols (assignor name, subscription metadata) in the member's preference order.
    pub(crate) protocols: Vec<(String, Bytes)>,
    /// Assignment of the current generation.
    pub(crate) assignment: Bytes,
    /// A JoinGroup of this member is waiting for the rebalance to complete.
    pub(crate) awaiting_join: bool,
    /// A SyncGroup of this member is waiting for the leader's assignment.
    pub(crate) awaiting_sync: bool,
    /// Joined but not yet through a completed rebalance (KIP-394: expires after
    /// `new_member_join_timeout` instead of being kept alive by the pending join).
    pub(crate) is_new: bool,
    /// When the member expires unless it heartbeats (epoch ms).
    pub(crate) heartbeat_deadline_ms: i64,
}

impl Member {
    pub(crate) fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    /// Same protocols in the same order with the same metadata: a rejoin that changes nothing.
    pub(crate) fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    pub(crate) fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata)
    }

    /// The member's most preferred protocol among `candidates`.
    pub(crate) fn vote<'a>(&'a self, candidates: &[&str]) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| candidates.contains(name))
    }

    /// A member that has not heartbeated by its deadline is expired, except that a member waiting
    /// in a rebalance is kept alive by that wait (Kafka's `hasSatisfiedHeartbeat`); a new member
    /// is not, so one that vanished during its first join goes.
    pub(crate) fn survives_heartbeat_expiry(&self) -> bool {
        !self.is_new && (self.awaiting_join || self.awaiting_sync)
    }
}
