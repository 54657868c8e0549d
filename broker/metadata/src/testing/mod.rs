//! Multi-voter metadata quorums in one process, for fast tests (feature `testing`).
//!
//! - [`router`]: [`Router`], a transport that hands openraft's AppendEntries, Vote and
//!   InstallSnapshot straight to the target node's Raft, with isolation, one-way cuts and
//!   per-link delays.
//! - [`cluster`]: [`TestCluster`], voters and observers on temporary directories over one
//!   router, stopped and restarted on their directories, with waits that have a deadline.
//! - [`leader_log`]: who every node saw lead in which term, for split-brain checks.

pub mod cluster;
pub mod leader_log;
pub mod router;

pub use cluster::TestCluster;
pub use cluster::TestClusterError;
pub use cluster::test_options;
pub use leader_log::LeaderLog;
pub use router::Router;
pub use router::Rpc;
