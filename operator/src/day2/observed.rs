//! What a day-2 plan observes: the workload's brokers and the cluster as the Kafka admin API
//! reports it.

use std::collections::BTreeMap;

use strom_admin::TopicPartition;

/// One broker as the workload sees it: a pod of the StatefulSet, or a local process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadBroker {
    /// The broker id (pod ordinal, or the local process's `node.id`).
    pub id: i32,
    /// The revision it runs (see [`super::Desired::revision`]); `None` while it has none, e.g.
    /// a pod being created.
    pub revision: Option<String>,
    /// It runs and passes its readiness check (pod Ready; the local process's `/readyz`).
    pub ready: bool,
    /// It is being stopped or started by a restart the workload has not finished.
    pub restarting: bool,
    /// It keeps failing to start (CrashLoopBackOff; a local process that exited more than
    /// once since its last start).
    pub crash_looping: bool,
    /// Its data volume grew and the filesystem grows only when it restarts (its claim reports
    /// `FileSystemResizePending=True`); never for a local process.
    pub resize_pending: bool,
}

/// The workload: how many brokers it is set to run and the ones that exist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkloadState {
    /// The broker count the workload runs now (StatefulSet `spec.replicas`; local processes
    /// wanted), brokers `0..replicas`.
    pub replicas: i32,
    /// The brokers that exist, sorted by id.
    pub brokers: Vec<WorkloadBroker>,
}

/// A broker registered with the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredBroker {
    /// Its node id.
    pub id: i32,
    /// Fenced by the controller: not heartbeating, or not caught up on the metadata log. An
    /// unfenced broker has caught up on the metadata log.
    pub fenced: bool,
    /// Its `broker.rack`.
    pub rack: Option<String>,
}

/// One partition as the metadata reports it, with its topic's `min.insync.replicas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    /// The partition.
    pub partition: TopicPartition,
    /// The assigned replicas, preferred leader first (during a reassignment: the current and
    /// the adding ones).
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// The leader, `None` when offline.
    pub leader: Option<i32>,
    /// The topic's effective `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// Replicas a reassignment in progress is adding (ListPartitionReassignments).
    pub adding: Vec<i32>,
    /// Replicas a reassignment in progress is removing.
    pub removing: Vec<i32>,
}

impl PartitionView {
    /// Whether a reassignment of this partition is in progress.
    pub fn reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replica set the partition ends with once its reassignment completes.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|id| !self.removing.contains(id))
            .collect()
    }
}

/// The cluster as the Kafka admin API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdminState {
    /// The active controller's id.
    pub controller: Option<i32>,
    /// The registered brokers, sorted by id.
    pub brokers: Vec<RegisteredBroker>,
    /// Every partition of every topic, internal ones included, sorted by partition.
    pub partitions: Vec<PartitionView>,
    /// Per broker that answered DescribeLogDirs, the partitions it holds on disk and their
    /// bytes. A broker missing here did not answer.
    pub log_dirs: BTreeMap<i32, BTreeMap<TopicPartition, i64>>,
    /// The dynamic broker configs set cluster-wide (DescribeConfigs of the default broker
    /// resource, only the keys set there, with their values).
    pub dynamic_config: BTreeMap<String, String>,
}

/// Everything one plan reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// The workload's brokers.
    pub workload: WorkloadState,
    /// The admin API's view; `None` when no broker answered (nothing that needs it may run).
    pub admin: Option<AdminState>,
}
