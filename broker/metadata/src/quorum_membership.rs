//! The quorum's membership as the controller manages and reports it: observers joining, and
//! DescribeQuorum (KIP-595).

use std::time::SystemTime;

use openraft::BasicNode;
use openraft::error::ChangeMembershipError;
use openraft::error::ClientWriteError;
use openraft::error::RaftError;

use crate::controller_ops::QuorumDescription;
use crate::controller_ops::QuorumReplica;
use crate::error::MetadataError;
use crate::quorum::MetadataQuorum;
use crate::raft_types::NodeId;

/// How long an observer's join waits for a membership change already running.
const MEMBERSHIP_CHANGE_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
/// The pause between attempts while a membership change runs.
const MEMBERSHIP_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

impl MetadataQuorum {
    /// On the leader: adds `node_id` as an observer (a Raft learner) replicated at `address`,
    /// or updates its address. Voters cannot become observers.
    pub async fn add_observer(
        &self,
        node_id: NodeId,
        address: String,
    ) -> Result<(), MetadataError> {
        if !self.is_leader() {
            return Err(MetadataError::NotLeader {
                leader: self.leader_id(),
            });
        }
        let membership = self.raft().metrics().borrow().membership_config.clone();
        if membership.membership().voter_ids().any(|v| v == node_id) {
            return Err(MetadataError::InvalidConfig {
                reason: format!(
                    "node {node_id} is a metadata voter; it cannot join as an observer"
                ),
            });
        }
        if membership
            .membership()
            .get_node(&node_id)
            .is_some_and(|n| n.addr == address)
        {
            return Ok(());
        }
        tracing::info!(node_id, %address, "adding a metadata observer");
        // One membership change runs at a time: an observer that asks while the quorum is
        // still committing its first configuration, or while another observer joins, waits
        // for that change instead of failing its start.
        let deadline = tokio::time::Instant::now() + MEMBERSHIP_CHANGE_WAIT;
        loop {
            match self
                .raft()
                .add_learner(
                    node_id,
                    BasicNode {
                        addr: address.clone(),
                    },
                    false,
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    return Err(MetadataError::NotLeader {
                        leader: forward.leader_id,
                    });
                }
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(busy),
                ))) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(node_id, %busy, "waiting for a membership change to finish");
                    tokio::time::sleep(MEMBERSHIP_RETRY).await;
                }
                Err(e) => return Err(MetadataError::raft(e)),
            }
        }
    }

    /// On the leader: voters and observers with how far each has replicated the log.
    ///
    /// Offsets are exclusive ends, as Kafka reports them: a replica that holds entries up to
    /// index `i` has log end offset `i + 1`; the high watermark is the committed end.
    pub fn describe(&self) -> Result<QuorumDescription, MetadataError> {
        let metrics = self.raft().metrics().borrow().clone();
        let me = self.node_id();
        if self.leader_id() != Some(me) {
            return Err(MetadataError::NotLeader {
                leader: self.leader_id(),
            });
        }
        let end = |index: Option<u64>| index.map_or(0, |i| to_i64(i) + 1);
        let leader_end = end(metrics.last_log_index);
        let now = now_ms();
        let stats = self.peer_stats();
        let membership = metrics.membership_config.membership();
        let address = |id: NodeId| membership.get_node(&id).map(|n| n.addr.clone());
        let replica = |id: NodeId| {
            if id == me {
                return QuorumReplica {
                    node_id: to_i32(id),
                    log_end_offset: leader_end,
                    last_fetch_timestamp: now,
                    last_caught_up_timestamp: now,
                    address: address(id),
                };
            }
            let matched = metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).copied().flatten());
            let log_end_offset = matched.map_or(-1, |log_id| to_i64(log_id.index) + 1);
            let last_fetch = stats.last_ack_ms(id);
            QuorumReplica {
                node_id: to_i32(id),
                log_end_offset,
                last_fetch_timestamp: last_fetch,
                last_caught_up_timestamp: if log_end_offset >= leader_end {
                    last_fetch
                } else {
                    -1
                },
                address: address(id),
            }
        };
        Ok(QuorumDescription {
            leader_id: to_i32(me),
            leader_epoch: i32::try_from(metrics.current_term).unwrap_or(i32::MAX),
            high_watermark: end(metrics.last_applied.map(|l| l.index)),
            voters: membership.voter_ids().map(replica).collect(),
            observers: membership.learner_ids().map(replica).collect(),
        })
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_i32(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
