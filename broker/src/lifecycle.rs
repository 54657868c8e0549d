//! This broker's side of the broker lifecycle (KIP-631): register with a fresh incarnation,
//! heartbeat every `broker.heartbeat.interval.ms`, and ask for a controlled shutdown before
//! exiting. What the heartbeats learn is what `/readyz` reports.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strom_metadata::ControllerClient;
use strom_metadata::ControllerError;
use strom_metadata::controller_ops::BrokerRegistrationRequest;
use strom_metadata::controller_ops::HeartbeatRequest;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A broker this far behind the controller's metadata offset reports not ready rather than
/// serving stale metadata as current.
pub const MAX_METADATA_LAG: u64 = 1000;

/// What the last heartbeats said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleStatus {
    /// The controller acknowledged a heartbeat within the session timeout.
    pub in_session: bool,
    pub fenced: bool,
    /// The controller's metadata offset at the last heartbeat.
    pub controller_offset: u64,
}

/// Registration and heartbeats of this broker. Cheap to clone.
/// How often a shutting-down broker asks whether its leaderships have moved.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct BrokerLifecycle {
    client: ControllerClient,
    registration: BrokerRegistrationRequest,
    interval: Duration,
    session_timeout: Duration,
    last_ack: Arc<Mutex<Option<(tokio::time::Instant, LifecycleStatus)>>>,
}

impl BrokerLifecycle {
    pub fn new(
        client: ControllerClient,
        node_id: i32,
        host: String,
        port: u16,
        rack: Option<String>,
        interval: Duration,
        session_timeout: Duration,
    ) -> BrokerLifecycle {
        BrokerLifecycle {
            client,
            registration: BrokerRegistrationRequest {
                node_id,
                incarnation: Uuid::new_v4(),
                host,
                port,
                rack,
            },
            interval,
            session_timeout,
            last_ack: Arc::default(),
        }
    }

    pub fn incarnation(&self) -> Uuid {
        self.registration.incarnation
    }

    /// Registers and heartbeats until the controller has unfenced this broker, for at most
    /// `deadline`. A heartbeat that fails on the way is retried: the controller may be changing
    /// hands while this broker starts, and a controller elected after the registration that
    /// does not know it yet is sent the registration again. Only a failed local metadata log
    /// ends the wait early.
    pub async fn register_and_unfence(&self, deadline: Duration) -> Result<(), ControllerError> {
        let until = tokio::time::Instant::now() + deadline;
        self.client.register(self.registration.clone()).await?;
        loop {
            match self.heartbeat(false).await {
                Ok(reply) if !reply.fenced => return Ok(()),
                // Caught up at a later heartbeat: the image moves as the log is applied.
                Ok(_) => {}
                Err(ControllerError::StaleBrokerEpoch { .. }) => self.register_again().await,
                Err(error @ ControllerError::MetadataLogFailed) => return Err(error),
                Err(error) => tracing::warn!(%error, "heartbeat while starting; retrying"),
            }
            if tokio::time::Instant::now() >= until {
                return Err(ControllerError::ControllerUnavailable {
                    timeout_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                });
            }
            tokio::time::sleep(self.interval.min(Duration::from_millis(100))).await;
        }
    }

    /// Sends this incarnation's registration again, to a controller that does not know it (one
    /// elected since, or one that lost it).
    async fn register_again(&self) {
        tracing::warn!("the controller does not know this incarnation; registering again");
        if let Err(error) = self.client.register(self.registration.clone()).await {
            tracing::warn!(%error, "registering again");
        }
    }

    /// Heartbeats until `cancel` fires; re-registers if the controller lost this incarnation.
    pub async fn run(self, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.heartbeat(false).await {
                Ok(_) => {}
                Err(ControllerError::StaleBrokerEpoch { .. }) => self.register_again().await,
                Err(error) => tracing::warn!(%error, "broker heartbeat failed"),
            }
        }
    }

    /// Asks the controller to fence this broker for shutdown, so clients stop being sent to
    /// it, and to move every leadership it holds to another in-sync replica; repeats the request
    /// until the controller says nothing is led here any more. Gives up after `deadline` (the
    /// broker exits anyway, and its session expires) and says so.
    pub async fn controlled_shutdown(&self, deadline: Duration) {
        let started = tokio::time::Instant::now();
        let outcome: Result<Result<(), ()>, _> = tokio::time::timeout(deadline, async {
            loop {
                match self.heartbeat(true).await {
                    Ok(reply) if reply.shutdown_ready => return Ok(()),
                    Ok(_) => {}
                    Err(error) => tracing::debug!(%error, "controlled shutdown heartbeat"),
                }
                tokio::time::sleep(SHUTDOWN_POLL).await;
            }
        })
        .await;
        match outcome {
            Ok(Ok(())) => tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "controlled shutdown complete: leaderships moved to other replicas"
            ),
            Ok(Err(())) | Err(_) => tracing::warn!(
                ?deadline,
                "controlled shutdown did not complete in time; exiting anyway"
            ),
        }
    }

    async fn heartbeat(
        &self,
        want_shutdown: bool,
    ) -> Result<strom_metadata::controller_ops::HeartbeatReply, ControllerError> {
        let request = HeartbeatRequest {
            node_id: self.registration.node_id,
            incarnation: self.registration.incarnation,
            metadata_offset: self.client.quorum().image().offset,
            want_shutdown,
        };
        // A heartbeat stuck on an unreachable controller must not outlast the session: the
        // next one goes to the controller the quorum names by then.
        let within = (self.session_timeout / 2).max(self.interval);
        let reply = self.client.heartbeat(request, within).await?;
        *self.last_ack.lock() = Some((
            tokio::time::Instant::now(),
            LifecycleStatus {
                in_session: true,
                fenced: reply.fenced,
                controller_offset: reply.controller_offset,
            },
        ));
        Ok(reply)
    }

    /// The state the last acknowledged heartbeat left, aged by the session timeout.
    pub fn status(&self) -> LifecycleStatus {
        match *self.last_ack.lock() {
            Some((at, status)) => LifecycleStatus {
                in_session: at.elapsed() <= self.session_timeout,
                ..status
            },
            None => LifecycleStatus {
                in_session: false,
                fenced: true,
                controller_offset: 0,
            },
        }
    }
}
