//! Partition replicas hosted by this broker and the rules that govern them (high watermark,
//! in-sync replicas, `acks`). Replication to followers extends this module.

pub mod log_io;
pub mod manager;
pub mod partition;

pub use manager::{ReplicaError, ReplicaManager, now_ms};
pub use partition::{Partition, ReplicaState};
