//! What a day-2 plan yields: the next action, and what to report.

use std::collections::BTreeMap;

use strom_admin::TopicPartition;
use strom_crds::cluster::OperationStatus;

/// The one next step of a day-2 operation. A pass runs at most one action; the next pass
/// observes its effect before planning again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do: the cluster matches the spec.
    Idle,
    /// Nothing to do now; the operation waits for what the plan's blockers and operation
    /// message name (a broker catching up, a reassignment completing).
    Wait,
    /// Set the workload to run brokers `0..replicas`: start new ones, or stop the highest
    /// (only once they are drained).
    Scale {
        /// The broker count.
        replicas: i32,
    },
    /// Restart one broker onto the desired revision, gracefully (SIGTERM: a controlled
    /// shutdown moves its leaderships away first).
    Restart {
        /// The broker.
        broker: i32,
    },
    /// Start reassignments (AlterPartitionReassignments), throttled.
    Reassign {
        /// Per partition, its target replicas (preferred leader first).
        moves: BTreeMap<TopicPartition, Vec<i32>>,
        /// Bytes per second per broker to throttle the moves to; `None`: unthrottled.
        throttle: Option<i64>,
    },
    /// Cancel reassignments in progress (a drain reverted by raising `spec.replicas`).
    CancelReassignments {
        /// The partitions.
        partitions: Vec<TopicPartition>,
    },
    /// Preferred-leader election.
    ElectPreferred {
        /// The partitions whose leader is not their preferred replica.
        partitions: Vec<TopicPartition>,
    },
    /// Set cluster-wide dynamic broker configs (IncrementalAlterConfigs on the default broker
    /// resource); an empty value deletes the key.
    AlterBrokerConfigs {
        /// Key to value.
        configs: BTreeMap<String, String>,
    },
    /// Remove the replication throttles a finished batch of moves set.
    ClearThrottles,
}

/// Why an operation cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// Restarting `broker` would leave these partitions below `min.insync.replicas`.
    UnderMinIsr {
        /// The broker the roll wants to restart.
        broker: i32,
        /// The partitions that would drop below `min.insync.replicas`.
        partitions: Vec<TopicPartition>,
    },
    /// Topics whose replication factor is 1 or below `min.insync.replicas`: no restart keeps
    /// them available; `spec.operations.allowUnavailablePartitions` decides.
    UnavailableTopics {
        /// The topics.
        topics: Vec<String>,
    },
    /// A scale-down the plan refuses: fewer brokers than a topic's replication factor, or it
    /// would remove a controller voter.
    ScaleDownRefused {
        /// Why, for the status condition.
        message: String,
    },
    /// A broker failed to come back after `max_restart_attempts` restarts.
    RestartsExhausted {
        /// The broker.
        broker: i32,
    },
}

/// One plan: the action to run now, the operation status to write, and what blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The next action.
    pub action: Action,
    /// The operation in progress after this action (`None`: none).
    pub operation: Option<OperationStatus>,
    /// What blocks the operation, for conditions and Events.
    pub blockers: Vec<Blocker>,
}
