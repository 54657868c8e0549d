//! States of a classic group, as Kafka's `GroupMetadata` names them.

use std::fmt;

/// State of a group (Kafka's classic group state machine).
///
/// ```text
/// Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
///   ▲                 ▲        │                                   │ leader's SyncGroup
///   │                 │        └──no members left──▶ Empty         ▼
///   └──(delete)──▶ Dead          ◀──member change / expiry──── Stable
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; committed offsets may remain.
    Empty,
    /// Waiting for every member to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment in SyncGroup.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Removed (deleted, expired or migrated); kept only until dropped from the cache.
    Dead,
}

impl GroupState {
    /// Kafka's name of the state, as ListGroups and DescribeGroups report it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }

    /// Parses a state name case-insensitively (ListGroups `states_filter`, KIP-518).
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Empty,
            Self::PreparingRebalance,
            Self::CompletingRebalance,
            Self::Stable,
            Self::Dead,
        ]
        .into_iter()
        .find(|state| state.as_str().eq_ignore_ascii_case(name))
    }

    /// Kafka's allowed previous states of each state; a transition from elsewhere is a bug.
    pub(crate) fn may_follow(self, previous: Self) -> bool {
        use GroupState::*;
        match self {
            Empty => matches!(previous, PreparingRebalance),
            PreparingRebalance => matches!(previous, Stable | CompletingRebalance | Empty),
            CompletingRebalance => matches!(previous, PreparingRebalance),
            Stable => matches!(previous, CompletingRebalance),
            Dead => matches!(
                previous,
                Stable | PreparingRebalance | CompletingRebalance | Empty | Dead
            ),
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::GroupState;

    #[test]
    fn names_parse_back_case_insensitively() {
        for state in [
            GroupState::Empty,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
            GroupState::Dead,
        ] {
            assert_eq!(GroupState::parse(state.as_str()), Some(state));
            assert_eq!(
                GroupState::parse(&state.as_str().to_uppercase()),
                Some(state)
            );
        }
        assert_eq!(GroupState::parse("rebalancing"), None);
    }
}
