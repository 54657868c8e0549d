//! The election timer of a voter in a multi-voter quorum.
//!
//! The quorum elects at most one leader per term, so candidates that time out together split
//! the vote and must try again. openraft draws a voter's election timeout once, when the node
//! starts, and keeps it: voters whose timeouts lie closer together than a message takes to
//! arrive collide in every round, and on a loaded machine they stayed leaderless for good.
//! This timer draws a new timeout from `[election_timeout_min, election_timeout_max)` every
//! time it restarts, as Raft prescribes and as KRaft backs off at random after a lost
//! election, so a collision is not repeated.
//!
//! It restarts whenever the node's vote changes (it campaigned, granted a vote, or learned of
//! a leader), whenever a leader's AppendEntries is accepted, and while the node leads. A node
//! following a leader waits the leader lease (`election_timeout_max`) on top, as openraft
//! does, because the other voters refuse a vote while their own lease runs. openraft's own
//! timer is switched off; a single voter keeps it, having no one to collide with.

use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use openraft::ServerState;
use rand::Rng;

use crate::grpc::raft_network::PeerStats;
use crate::raft_types::NodeId;
use crate::raft_types::Raft;
use crate::raft_types::Vote;

/// The election timeouts of a voter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub min: Duration,
    pub max: Duration,
}

impl Timeouts {
    /// A fresh timeout for a node whose vote is `vote`.
    fn draw(&self, vote: &Vote) -> Duration {
        let spread = self.max.saturating_sub(self.min);
        let jitter = if spread.is_zero() {
            Duration::ZERO
        } else {
            rand::rng().random_range(Duration::ZERO..spread)
        };
        let lease = if vote.is_committed() {
            self.max
        } else {
            Duration::ZERO
        };
        lease + self.min + jitter
    }
}

/// Takes over elections of `raft` (node `me`) from openraft's fixed-timeout timer; the timer
/// ends when the Raft node stops.
pub(crate) fn start(raft: Raft, stats: Arc<PeerStats>, me: NodeId, timeouts: Timeouts) {
    raft.runtime_config().elect(false);
    tokio::spawn(run(raft, stats, me, timeouts));
}

async fn run(raft: Raft, stats: Arc<PeerStats>, me: NodeId, timeouts: Timeouts) {
    let mut metrics = raft.metrics();
    let mut vote = metrics.borrow().vote;
    let mut restarted = Instant::now();
    let mut timeout = timeouts.draw(&vote);
    // Fine enough that an election starts within a few percent of its timeout.
    let tick = (timeouts.min / 20).max(Duration::from_millis(5));
    loop {
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(tick) => {}
        }
        let (running, leading, voter, current) = {
            let m = metrics.borrow_and_update();
            (
                m.running_state.is_ok(),
                m.state == ServerState::Leader,
                m.membership_config
                    .membership()
                    .voter_ids()
                    .any(|v| v == me),
                m.vote,
            )
        };
        if !running {
            return;
        }
        let now = Instant::now();
        if current != vote || leading || !voter {
            vote = current;
            restarted = now;
            timeout = timeouts.draw(&vote);
            continue;
        }
        if let Some(contact) = stats
            .since_leader_contact()
            .and_then(|since| now.checked_sub(since))
            && contact > restarted
        {
            restarted = contact;
        }
        if now.duration_since(restarted) >= timeout {
            tracing::debug!(
                waited_ms = now.duration_since(restarted).as_millis(),
                "no leader heard from within the election timeout: campaigning"
            );
            if raft.trigger().elect().await.is_err() {
                return;
            }
            restarted = Instant::now();
            timeout = timeouts.draw(&vote);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_draw_is_within_the_range_and_draws_differ() {
        let timeouts = Timeouts {
            min: Duration::from_millis(500),
            max: Duration::from_millis(1000),
        };
        let candidate = Vote::new(3, 1);
        let draws: Vec<Duration> = (0..200).map(|_| timeouts.draw(&candidate)).collect();
        assert!(
            draws
                .iter()
                .all(|d| *d >= timeouts.min && *d < timeouts.max),
            "{draws:?}"
        );
        let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
        assert!(distinct.len() > 100, "{} distinct draws", distinct.len());
    }

    #[test]
    fn a_follower_of_a_leader_waits_the_lease_on_top() {
        let timeouts = Timeouts {
            min: Duration::from_millis(500),
            max: Duration::from_millis(1000),
        };
        let follower = Vote::new_committed(3, 1);
        for _ in 0..50 {
            let d = timeouts.draw(&follower);
            assert!(d >= Duration::from_millis(1500) && d < Duration::from_millis(2000));
        }
        let fixed = Timeouts {
            min: Duration::from_millis(700),
            max: Duration::from_millis(700),
        };
        assert_eq!(fixed.draw(&Vote::new(1, 1)), Duration::from_millis(700));
    }
}
