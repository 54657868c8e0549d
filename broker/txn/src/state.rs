//! States of a transactional id, as Kafka's `TransactionState` names and numbers them.

use std::fmt;

/// State of a transactional id's current transaction.
///
/// ```text
/// Empty ──AddPartitions──▶ Ongoing ──EndTxn──▶ PrepareCommit ──markers──▶ CompleteCommit
///   ▲                        │                                               │
///   │                        └──EndTxn(abort) / fence / timeout──▶ PrepareAbort ──markers──▶ CompleteAbort
///   └──InitProducerId (epoch bump) from Empty, CompleteCommit or CompleteAbort ◀──┘
/// ```
/// `Dead` is an expired transactional id (written as a tombstone); `PrepareEpochFence` is
/// Kafka's in-memory state while a fencing abort is prepared and is never stored by this
/// coordinator, which writes the `PrepareAbort` with the bumped epoch directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction in progress; the producer id and epoch are assigned.
    Empty,
    /// Partitions have been added; data may be written.
    Ongoing,
    /// Commit decided and logged; markers being written.
    PrepareCommit,
    /// Abort decided and logged; markers being written.
    PrepareAbort,
    /// Every COMMIT marker is written.
    CompleteCommit,
    /// Every ABORT marker is written.
    CompleteAbort,
    /// The transactional id expired.
    Dead,
    /// An ongoing transaction is being fenced by a new producer.
    PrepareEpochFence,
}

impl TxnState {
    /// Every state, in code order.
    pub const ALL: [Self; 8] = [
        Self::Empty,
        Self::Ongoing,
        Self::PrepareCommit,
        Self::PrepareAbort,
        Self::CompleteCommit,
        Self::CompleteAbort,
        Self::Dead,
        Self::PrepareEpochFence,
    ];

    /// `TransactionStatus` byte of `__transaction_state` values.
    pub fn code(self) -> i8 {
        match self {
            Self::Empty => 0,
            Self::Ongoing => 1,
            Self::PrepareCommit => 2,
            Self::PrepareAbort => 3,
            Self::CompleteCommit => 4,
            Self::CompleteAbort => 5,
            Self::Dead => 6,
            Self::PrepareEpochFence => 7,
        }
    }

    /// The state of a `TransactionStatus` byte.
    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Kafka's name, as DescribeTransactions and ListTransactions report it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
            Self::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Parses a state name exactly as Kafka spells it (ListTransactions `state_filters`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether markers are being written (the transaction's outcome is decided).
    pub fn is_prepare(self) -> bool {
        matches!(self, Self::PrepareCommit | Self::PrepareAbort)
    }

    /// Whether no transaction is in flight, so a new one may start.
    pub fn is_idle(self) -> bool {
        matches!(
            self,
            Self::Empty | Self::CompleteCommit | Self::CompleteAbort
        )
    }
}

impl fmt::Display for TxnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::TxnState;

    #[test]
    fn codes_and_names_are_kafkas() {
        let expected = [
            (0, "Empty"),
            (1, "Ongoing"),
            (2, "PrepareCommit"),
            (3, "PrepareAbort"),
            (4, "CompleteCommit"),
            (5, "CompleteAbort"),
            (6, "Dead"),
            (7, "PrepareEpochFence"),
        ];
        for (state, (code, name)) in TxnState::ALL.into_iter().zip(expected) {
            assert_eq!(state.code(), code);
            assert_eq!(state.as_str(), name);
            assert_eq!(TxnState::from_code(code), Some(state));
            assert_eq!(TxnState::parse(name), Some(state));
        }
        assert_eq!(TxnState::from_code(8), None);
        assert_eq!(TxnState::parse("ongoing"), None);
    }
}
