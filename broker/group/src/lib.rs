//! The group coordinator of the Strom broker: Kafka's classic consumer group protocol.
//!
//! Several consumers in a group share a topic's partitions and resume where they left off.
//! The coordinator answers JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, ListGroups, DescribeGroups, DeleteGroups, OffsetDelete and TxnOffsetCommit for
//! the groups that hash onto the `__consumer_offsets` partitions this broker leads
//! ([`GroupCoordinator::partition_for`], which the broker's FindCoordinator uses). Assignment
//! is the clients' business (range, roundrobin, cooperative-sticky): the coordinator picks a
//! protocol all members support and relays the leader's assignment.
//!
//! Layout:
//! - [`state`], `member`, `group/` (`join`, `membership`, `rebalance`, `lifecycle`): the pure
//!   state machine (Kafka's `GroupMetadata` states, static membership KIP-345, member id
//!   required KIP-394), driven by explicit `now` timestamps and answering with effects as data;
//!   unit-tested without I/O.
//! - `offsets`: committed offsets of a group and their retention (KIP-211).
//! - `txn_offsets`: offsets of open transactions (TxnOffsetCommit), pending per producer until
//!   its COMMIT or ABORT marker ([`GroupCoordinator::complete_transaction`]).
//! - [`records`]: Kafka's own key/value schemas of `__consumer_offsets`, written as v2 record
//!   batches, so the topic reads like Kafka's.
//! - [`GroupCoordinator`] (`coordinator/`, one file per API): the async driver that parks
//!   JoinGroup/SyncGroup on oneshot channels, persists through [`OffsetsLog`] (implemented by
//!   the broker on its partition logs), loads partitions when this broker becomes coordinator,
//!   and runs timers in [`GroupTimer`].
//! - [`log`]: the [`OffsetsLog`] capability and an in-memory implementation for tests.
//! - `config`, `clock`: [`GroupConfig`] with Kafka's defaults, and the injected [`Clock`].
//!
//! Wiring (the broker): build one [`GroupCoordinator`] over an [`OffsetsLog`] on the
//! `__consumer_offsets` partitions, spawn [`GroupCoordinator::timer`]'s `run` on the task
//! tracker, call [`GroupCoordinator::load_partition`] for each partition this broker leads (and
//! [`GroupCoordinator::unload_partition`] when it stops leading one), call
//! [`GroupCoordinator::complete_transaction`] after writing a transaction marker to a
//! `__consumer_offsets` partition, answer FindCoordinator with the leader of
//! [`GroupCoordinator::partition_for`], and advertise
//! [`GroupCoordinator::supported_versions`] in ApiVersions.

mod clock;
mod codes;
mod config;
mod coordinator;
mod error;
mod group;
pub mod log;
mod member;
mod offsets;
pub mod records;
pub mod state;
mod txn_offsets;

pub use clock::{Clock, TokioClock};
pub use config::{GroupConfig, coordinator_partition};
pub use coordinator::{
    ClientInfo, CommittedOffset, CoordinatorOptions, GroupCoordinator, GroupTimer, TopicLookup,
};
pub use error::{GroupError, OffsetsLogError, RecordError};
pub use log::{MemoryOffsetsLog, OffsetsLog};
