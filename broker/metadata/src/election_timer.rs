//! The election timer of a multi-voter quorum, in place of openraft's own.
//!
//! openraft draws one election timeout per process, when it starts, and waits that same time
//! after every failed campaign. With one leader per term, two voters whose timeouts lie within
//! a round trip of each other campaign in the same term, each votes for itself, neither wins,
//! and they do it again in the next term, and the next: an election that never ends (a 3-voter
//! quorum whose controller was cut off stayed without one for good). Raft draws a new random
//! timeout for every round, so a split vote is followed by a round that one candidate starts
//! first. This timer does that and asks openraft to campaign (`trigger().elect()`) when the
//! timeout runs out:
//!
//! - the wait starts again whenever this node's vote changes (it campaigned, voted for a
//!   candidate, or learned of a leader) and, while it follows a leader, whenever the leader's
//!   entries arrive;
//! - following a leader, it also waits out the leader lease (the longest election timeout),
//!   during which the other voters refuse to vote, as openraft's own timer does;
//! - a node told in this round that a voter holds a longer log waits two more longest
//!   timeouts, so that voter, which can win, campaigns first (openraft's `smaller_log_timeout`).
//!
//! A single voter keeps openraft's timer, which elects it at once.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use rand::Rng;
use tokio::time::Instant;

use crate::grpc::raft_network::PeerStats;
use crate::raft_types::NodeId;
use crate::raft_types::Raft;
use crate::raft_types::Vote;

/// The timeouts the timer draws from, as the quorum options give them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ElectionTimeouts {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

impl ElectionTimeouts {
    /// The timeout of a round after `failed` campaigns of this node in a row that elected no
    /// one: a new random draw, plus a random backoff that doubles with every failed campaign
    /// (up to 16 times the shortest timeout), as KRaft's candidates back off (KIP-595). Draws
    /// closer together than a vote round trip split the votes again; the backoff spreads them.
    fn draw(&self, failed: u32) -> Duration {
        let mut rng = rand::rng();
        let base = if self.max <= self.min {
            self.min
        } else {
            rng.random_range(self.min..self.max)
        };
        if failed == 0 {
            return base;
        }
        let spread = self.min * (1u32 << failed.min(4));
        base + rng.random_range(Duration::ZERO..spread)
    }
}

/// Turns openraft's election timer off on `raft` and runs this one until the node stops.
pub(crate) fn start(raft: Raft, me: NodeId, stats: Arc<PeerStats>, timeouts: ElectionTimeouts) {
    raft.runtime_config().elect(false);
    tokio::spawn(run(raft, me, stats, timeouts));
}

async fn run(raft: Raft, me: NodeId, stats: Arc<PeerStats>, timeouts: ElectionTimeouts) {
    let mut metrics = raft.metrics();
    let mut vote = metrics.borrow().vote;
    let mut round_start = Instant::now();
    let mut failed = 0u32;
    let mut timeout = timeouts.draw(failed);
    // When this round's wait ends, as of now: a leader's entries or a refusal for a longer log
    // that arrive during the wait move it later.
    let deadline = |vote: &Vote, round_start: Instant, timeout: Duration| {
        let mut start = round_start;
        let mut wait = timeout;
        if vote.is_committed() {
            if let Some(contact) = stats.last_leader_contact() {
                start = start.max(Instant::from_std(contact));
            }
            wait += timeouts.max;
        }
        if stats.greater_log_seen_since(round_start.into_std()) {
            wait += timeouts.max * 2;
        }
        start + wait
    };
    loop {
        if metrics.borrow().running_state.is_err() {
            return;
        }
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = metrics.borrow().vote;
                if now != vote {
                    vote = now;
                    if vote.is_committed() {
                        failed = 0;
                    }
                    round_start = Instant::now();
                    timeout = timeouts.draw(failed);
                }
            }
            () = tokio::time::sleep_until(deadline(&vote, round_start, timeout)) => {
                if deadline(&vote, round_start, timeout) > Instant::now() {
                    continue;
                }
                let campaign = {
                    let m = metrics.borrow();
                    m.state != ServerState::Leader
                        && m.membership_config.membership().voter_ids().any(|v| v == me)
                };
                if campaign {
                    // Still a candidate of its own: the last campaign elected no one.
                    if !vote.is_committed() && vote.leader_id().voted_for() == Some(me) {
                        failed = failed.saturating_add(1);
                    }
                    if raft.trigger().elect().await.is_err() {
                        return;
                    }
                }
                round_start = Instant::now();
                timeout = timeouts.draw(failed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_draw_is_within_the_bounds_and_draws_differ() {
        let timeouts = ElectionTimeouts {
            min: Duration::from_millis(1000),
            max: Duration::from_millis(2000),
        };
        let draws: Vec<Duration> = (0..200).map(|_| timeouts.draw(0)).collect();
        assert!(
            draws
                .iter()
                .all(|d| (timeouts.min..timeouts.max).contains(d))
        );
        let distinct: std::collections::BTreeSet<_> = draws.iter().collect();
        assert!(distinct.len() > 100, "a fresh timeout every round");
    }

    #[test]
    fn failed_campaigns_back_off_within_a_bound() {
        let timeouts = ElectionTimeouts {
            min: Duration::from_millis(500),
            max: Duration::from_millis(501),
        };
        for failed in 1..10u32 {
            let spread = timeouts.min * (1u32 << failed.min(4));
            let draws: Vec<Duration> = (0..200).map(|_| timeouts.draw(failed)).collect();
            assert!(
                draws
                    .iter()
                    .all(|d| *d >= timeouts.min && *d < timeouts.max + spread),
                "after {failed} failed campaigns"
            );
            // Spread over the backoff, not bunched at the base timeout.
            let above_half = draws
                .iter()
                .filter(|d| **d > timeouts.min + spread / 2)
                .count();
            assert!(
                (40..160).contains(&above_half),
                "after {failed}: {above_half}"
            );
        }
    }
}
