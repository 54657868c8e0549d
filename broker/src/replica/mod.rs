//! Partition replicas hosted by this broker and the rules that govern them: the high
//! watermark, in-sync replicas and `acks` on the leader ([`partition`], [`followers`],
//! [`isr`]), and the fetchers that copy leaders' logs to followers ([`fetcher`]).

pub mod fetcher;
pub mod followers;
pub mod isr;
pub mod log_io;
pub mod manager;
pub mod partition;

pub use manager::{ReplicaError, ReplicaManager};
pub use partition::{
    AppendError, CommitWait, LeaderAppend, LeaderAppendResult, Partition, ReplicaState, Transition,
    now_ms,
};
