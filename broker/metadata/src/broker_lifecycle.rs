//! Broker lifecycle on the active controller (KIP-631): registration, heartbeats, fencing,
//! unfencing and controlled shutdown.
//!
//! - A broker registers at every start with a fresh incarnation; the registration is fenced.
//! - It heartbeats every `broker.heartbeat.interval.ms` with the metadata offset it applied;
//!   once that offset passes the point where it was (last) fenced, it is unfenced: it has
//!   caught up with the log and may appear in Metadata and lead partitions.
//! - A broker whose last heartbeat is older than `broker.session.timeout.ms` is fenced by the
//!   controller's duty loop. Heartbeat times live only in the active controller's memory; a
//!   newly elected controller gives every broker a fresh session instead of fencing brokers
//!   whose heartbeats went to its predecessor.
//! - A heartbeat that asks to shut down marks the broker in controlled shutdown and fences it,
//!   so clients stop being sent to it. It may exit (`shutdown_ready`) once it leads nothing and
//!   every other active broker has applied the metadata that moved its leaderships, so the new
//!   leaders already serve when it stops (Kafka's controlled shutdown).
//!
//! Every change that makes a broker inactive (fencing, a new registration of its id,
//! controlled shutdown) is committed in one batch with the leader elections and ISR changes
//! it causes, and an unfencing with the elections of partitions that were left without a
//! leader ([`crate::replication_control`]).

use std::collections::HashMap;
use std::time::Duration;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::controller::Controller;
use crate::controller_error::ControllerError;
use crate::controller_ops::BrokerRegistrationRequest;
use crate::controller_ops::HeartbeatReply;
use crate::controller_ops::HeartbeatRequest;
use crate::controller_ops::QuorumDescription;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;
use crate::replication_control::Planned;
use crate::replication_control::after_broker_inactive;
use crate::replication_control::after_brokers_inactive;
use crate::replication_control::elect_leaderless;
use crate::replication_control::leadership_count;

/// How often the active controller checks sessions.
const DUTY_INTERVAL: Duration = Duration::from_millis(250);

/// What one heartbeat changes: the broker's own records, the elections and ISR changes they
/// cause, and the fenced state the broker is told.
#[derive(Debug)]
struct HeartbeatPlan {
    records: Vec<MetadataRecord>,
    changes: Planned,
    fenced: bool,
    unfences: bool,
}

impl HeartbeatPlan {
    fn changes_nothing(&self) -> bool {
        self.records.is_empty() && self.changes.records.is_empty()
    }
}

/// Heartbeat times, valid for one term of this node as the active controller.
#[derive(Debug, Default)]
pub(crate) struct Heartbeats {
    /// The Raft term in which these times were collected; `None` when not the leader.
    term: Option<u64>,
    last: HashMap<i32, Instant>,
    /// The metadata offset each broker reported applying in its last heartbeat.
    applied: HashMap<i32, u64>,
}

impl Controller {
    /// Registers (or re-registers after a restart) a broker with its incarnation; the new
    /// registration is fenced until the broker's heartbeats show it caught up.
    pub async fn register(
        &self,
        request: BrokerRegistrationRequest,
    ) -> Result<(), ControllerError> {
        let invalid = |reason: &str| ControllerError::InvalidRequest {
            message: format!(
                "Invalid registration of broker {}: {reason}",
                request.node_id
            ),
        };
        if request.node_id < 0 {
            return Err(invalid("the node id must be non-negative"));
        }
        if request.host.trim().is_empty() {
            return Err(invalid("the advertised host must not be empty"));
        }
        if request.port == 0 {
            return Err(invalid("the advertised port must not be 0"));
        }
        let _state = self.inner.state.lock().await;
        let image = self.leader_image()?;
        if image
            .broker(request.node_id)
            .is_some_and(|b| b.incarnation == request.incarnation)
        {
            // A retry of a registration that was committed.
            return Ok(());
        }
        let node_id = request.node_id;
        let previous = image.broker(node_id).is_some();
        let record = MetadataRecord::RegisterBroker {
            node_id,
            host: request.host,
            port: request.port,
            rack: request.rack,
            incarnation: request.incarnation,
            fenced: true,
        };
        // A new incarnation of a registered broker restarted: what its previous life led
        // or kept in sync moves as for a fencing, since its log may have lost a tail.
        let changes = if previous {
            let working = image.with_records(std::slice::from_ref(&record));
            after_broker_inactive(&working, node_id, self.unclean_default())
        } else {
            Default::default()
        };
        self.commit_with_changes(vec![record], changes).await?;
        let mut heartbeats = self.inner.heartbeats.lock();
        heartbeats.last.insert(node_id, Instant::now());
        heartbeats.applied.remove(&node_id);
        Ok(())
    }

    /// A broker's heartbeat: renews its session, unfences it once caught up, and carries out a
    /// controlled shutdown it asks for.
    ///
    /// The session is renewed as soon as the heartbeat arrives, before anything waits on the
    /// controller's state lock: a commit that holds the lock (an election, a batch of ISR
    /// changes on a slow disk) must not make the brokers it keeps waiting look dead. A
    /// heartbeat that changes nothing (the common case) is answered from the committed image
    /// without taking the lock at all.
    pub async fn heartbeat(
        &self,
        request: HeartbeatRequest,
    ) -> Result<HeartbeatReply, ControllerError> {
        let image = self.leader_image()?;
        let plan = self.plan_heartbeat(&image, &request)?;
        self.touch(request.node_id, request.metadata_offset);
        let (fenced, controller_offset) = if plan.changes_nothing() {
            (plan.fenced, image.offset)
        } else {
            let _state = self.inner.state.lock().await;
            let image = self.leader_image()?;
            let plan = self.plan_heartbeat(&image, &request)?;
            if plan.changes_nothing() {
                (plan.fenced, image.offset)
            } else {
                if plan.unfences {
                    tracing::info!(
                        node_id = request.node_id,
                        "unfencing a broker that caught up"
                    );
                }
                let fenced = plan.fenced;
                let offset = self.commit_with_changes(plan.records, plan.changes).await?;
                (fenced, offset)
            }
        };
        let shutdown_ready = request.want_shutdown && self.shutdown_ready(request.node_id);
        Ok(HeartbeatReply {
            fenced,
            controller_offset,
            shutdown_ready,
        })
    }

    /// Records that `node_id` was heard from, having applied the log up to `metadata_offset`.
    fn touch(&self, node_id: i32, metadata_offset: u64) {
        let mut heartbeats = self.inner.heartbeats.lock();
        heartbeats.last.insert(node_id, Instant::now());
        heartbeats.applied.insert(node_id, metadata_offset);
    }

    /// What `request` changes when `image` is the committed state.
    fn plan_heartbeat(
        &self,
        image: &MetadataImage,
        request: &HeartbeatRequest,
    ) -> Result<HeartbeatPlan, ControllerError> {
        let broker = image
            .broker(request.node_id)
            .filter(|b| b.incarnation == request.incarnation)
            .ok_or(ControllerError::StaleBrokerEpoch {
                node_id: request.node_id,
            })?;
        let change = |fenced, shutdown| MetadataRecord::BrokerChange {
            node_id: request.node_id,
            incarnation: request.incarnation,
            fenced,
            in_controlled_shutdown: shutdown,
        };
        let unclean = self.unclean_default();
        let plan = if request.want_shutdown {
            let records: Vec<MetadataRecord> = (!broker.fenced || !broker.in_controlled_shutdown)
                .then(|| change(Some(true), Some(true)))
                .into_iter()
                .collect();
            // Planned on every shutdown heartbeat, not only the first, so a leadership it
            // still holds is always moved; once all moved this plans nothing.
            let working = image.with_records(&records);
            let changes = after_broker_inactive(&working, request.node_id, unclean);
            HeartbeatPlan {
                records,
                changes,
                fenced: true,
                unfences: false,
            }
        } else if broker.fenced
            && !broker.in_controlled_shutdown
            && request.metadata_offset >= broker.fenced_at
        {
            let records = vec![change(Some(false), None)];
            let changes = elect_leaderless(&image.with_records(&records), unclean);
            HeartbeatPlan {
                records,
                changes,
                fenced: false,
                unfences: true,
            }
        } else {
            HeartbeatPlan {
                records: Vec::new(),
                changes: Planned::default(),
                fenced: broker.fenced,
                unfences: false,
            }
        };
        Ok(plan)
    }

    /// Whether a broker in controlled shutdown may exit: it leads no partition and every
    /// other active broker has applied the metadata that took its leaderships (the offset at
    /// which it was fenced), as Kafka's controller decides `SHUTDOWN_NOW`.
    fn shutdown_ready(&self, node_id: i32) -> bool {
        let image = self.inner.quorum.image();
        let Some(broker) = image.broker(node_id) else {
            return true;
        };
        if leadership_count(&image, node_id) > 0 {
            return false;
        }
        let heartbeats = self.inner.heartbeats.lock();
        image
            .brokers
            .values()
            .filter(|b| b.node_id != node_id && image.is_active(b.node_id))
            .all(|b| {
                heartbeats
                    .applied
                    .get(&b.node_id)
                    .is_some_and(|applied| *applied >= broker.fenced_at)
            })
    }

    /// The broker-level `unclean.leader.election.enable` this controller applies.
    pub(crate) fn unclean_default(&self) -> bool {
        self.inner.options.unclean_leader_election_enable
    }

    /// Adds a `broker`-only node as an observer of the metadata log.
    pub async fn add_observer(&self, node_id: u64, address: String) -> Result<(), ControllerError> {
        self.leader_image()?;
        Ok(self.inner.quorum.add_observer(node_id, address).await?)
    }

    /// DescribeQuorum, answered by the active controller.
    pub fn describe_quorum(&self) -> Result<QuorumDescription, ControllerError> {
        Ok(self.inner.quorum.describe()?)
    }

    /// The active controller's periodic duties, on every node (they act only while it leads):
    /// commit the cluster id if missing, fence brokers whose session expired, elect leaders
    /// for leaderless partitions that can have one (unclean election enabled meanwhile), and
    /// every `leader.imbalance.check.interval.seconds` the preferred leader rebalance.
    pub async fn run_duties(self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(DUTY_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_rebalance = Instant::now();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.inner.quorum.ensure_cluster_id().await;
            self.fence_expired_brokers().await;
            self.elect_offline_leaders().await;
            last_rebalance = self.maybe_rebalance_leaders(last_rebalance).await;
        }
    }

    /// Fences every unfenced broker whose last heartbeat is older than the session timeout.
    pub async fn fence_expired_brokers(&self) {
        let quorum = &self.inner.quorum;
        let term = quorum.raft().metrics().borrow().current_term;
        if !quorum.is_leader() {
            self.inner.heartbeats.lock().term = None;
            return;
        }
        let _state = self.inner.state.lock().await;
        let image = quorum.image();
        let now = Instant::now();
        let expired: Vec<MetadataRecord> = {
            let mut heartbeats = self.inner.heartbeats.lock();
            if heartbeats.term != Some(term) {
                // A new term as leader: every broker gets a full session from now.
                heartbeats.term = Some(term);
                heartbeats.last = image.brokers.keys().map(|id| (*id, now)).collect();
            }
            image
                .live_brokers()
                .filter(|b| {
                    let last = *heartbeats.last.entry(b.node_id).or_insert(now);
                    now.duration_since(last) > self.inner.options.session_timeout
                })
                .map(|b| MetadataRecord::BrokerChange {
                    node_id: b.node_id,
                    incarnation: b.incarnation,
                    fenced: Some(true),
                    in_controlled_shutdown: None,
                })
                .collect()
        };
        if expired.is_empty() {
            return;
        }
        for record in &expired {
            if let MetadataRecord::BrokerChange { node_id, .. } = record {
                tracing::warn!(
                    node_id,
                    session_timeout_ms = self.inner.options.session_timeout.as_millis(),
                    "fencing a broker that stopped heartbeating"
                );
            }
        }
        let working = image.with_records(&expired);
        let fenced = expired.iter().filter_map(|r| match r {
            MetadataRecord::BrokerChange { node_id, .. } => Some(*node_id),
            _ => None,
        });
        let changes = after_brokers_inactive(&working, fenced, self.unclean_default());
        if let Err(error) = self.commit_with_changes(expired, changes).await {
            tracing::warn!(%error, "fencing brokers");
        }
    }

    /// Elects leaders for partitions without one where that became possible without a broker
    /// change: `unclean.leader.election.enable` was turned on for their topic.
    pub async fn elect_offline_leaders(&self) {
        if !self.inner.quorum.is_leader() {
            return;
        }
        let _state = self.inner.state.lock().await;
        let image = self.inner.quorum.image();
        let changes = elect_leaderless(&image, self.unclean_default());
        if changes.records.is_empty() {
            return;
        }
        if let Err(error) = self.commit_with_changes(Vec::new(), changes).await {
            tracing::warn!(%error, "electing leaders of offline partitions");
        }
    }
}

#[cfg(test)]
#[path = "broker_lifecycle_tests.rs"]
mod tests;
