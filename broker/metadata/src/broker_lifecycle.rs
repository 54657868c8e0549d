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
//!   so clients stop being sent to it; then the broker may exit.

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
use crate::records::MetadataRecord;

/// How often the active controller checks sessions.
const DUTY_INTERVAL: Duration = Duration::from_millis(250);

/// Heartbeat times, valid for one term of this node as the active controller.
#[derive(Debug, Default)]
pub(crate) struct Heartbeats {
    /// The Raft term in which these times were collected; `None` when not the leader.
    term: Option<u64>,
    last: HashMap<i32, Instant>,
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
        self.commit(
            vec![MetadataRecord::RegisterBroker {
                node_id: request.node_id,
                host: request.host,
                port: request.port,
                rack: request.rack,
                incarnation: request.incarnation,
                fenced: true,
            }],
            false,
        )
        .await?;
        self.inner
            .heartbeats
            .lock()
            .last
            .insert(request.node_id, Instant::now());
        Ok(())
    }

    /// A broker's heartbeat: renews its session, unfences it once caught up, and carries out a
    /// controlled shutdown it asks for.
    pub async fn heartbeat(
        &self,
        request: HeartbeatRequest,
    ) -> Result<HeartbeatReply, ControllerError> {
        let _state = self.inner.state.lock().await;
        let image = self.leader_image()?;
        let broker = image
            .broker(request.node_id)
            .filter(|b| b.incarnation == request.incarnation)
            .ok_or(ControllerError::StaleBrokerEpoch {
                node_id: request.node_id,
            })?;
        self.inner
            .heartbeats
            .lock()
            .last
            .insert(request.node_id, Instant::now());
        let change = |fenced, shutdown| MetadataRecord::BrokerChange {
            node_id: request.node_id,
            incarnation: request.incarnation,
            fenced,
            in_controlled_shutdown: shutdown,
        };
        let (record, fenced) = if request.want_shutdown {
            let needed = !broker.fenced || !broker.in_controlled_shutdown;
            (needed.then(|| change(Some(true), Some(true))), true)
        } else if broker.fenced
            && !broker.in_controlled_shutdown
            && request.metadata_offset >= broker.fenced_at
        {
            tracing::info!(
                node_id = request.node_id,
                "unfencing a broker that caught up"
            );
            (Some(change(Some(false), None)), false)
        } else {
            (None, broker.fenced)
        };
        let controller_offset = match record {
            Some(record) => self.inner.quorum.propose(vec![record]).await?,
            None => image.offset,
        };
        Ok(HeartbeatReply {
            fenced,
            controller_offset,
            shutdown_ready: request.want_shutdown,
        })
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
    /// commit the cluster id if missing, fence brokers whose session expired.
    pub async fn run_duties(self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(DUTY_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.inner.quorum.ensure_cluster_id().await;
            self.fence_expired_brokers().await;
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
        if let Err(error) = quorum.propose(expired).await {
            tracing::warn!(%error, "fencing brokers");
        }
    }
}
