//! Partition replicas hosted by this broker and the rules that govern them: the high
//! watermark, in-sync replicas and `acks` on the leader ([`partition`], [`followers`],
//! [`isr`]), the fetchers that copy leaders' logs to followers ([`fetcher`]), and the
//! replication throttles both sides apply ([`quota`]).

pub mod fetcher;
pub mod followers;
pub mod isr;
pub mod log_io;
pub mod manager;
pub mod partition;
pub mod quota;
pub mod selector;

pub use manager::{ReplicaError, ReplicaManager};
pub use partition::{
    AppendError, CommitWait, LeaderAppend, LeaderAppendResult, Partition, ReplicaState, Transition,
    now_ms,
};
