//! The broker's background loops, each a struct with `run(self, shutdown)`:
//! - [`MetadataPublisher`]: applies every new metadata image to the hosted partitions;
//! - [`RetentionCleaner`]: deletes segments past `retention.ms` / `retention.bytes`
//!   every `log.retention.check.interval.ms`;
//! - [`LogMaintainer`]: time-based segment rolls (`segment.ms`) and flushes (`flush.ms`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::log_limit::LogLimiter;
use crate::replica::{Partition, now_ms};

/// A failing log directory fails every partition on every tick: one line per distinct failure
/// per interval.
static MAINTENANCE_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(60));

/// Starts every loop on `tracker`.
pub fn spawn_all(broker: &Arc<Broker>, shutdown: &CancellationToken, tracker: &TaskTracker) {
    tracker.spawn(
        MetadataPublisher {
            broker: broker.clone(),
        }
        .run(shutdown.clone()),
    );
    tracker.spawn(
        RetentionCleaner {
            broker: broker.clone(),
            interval: broker.config.props.retention_check_interval(),
        }
        .run(shutdown.clone()),
    );
    tracker.spawn(
        LogMaintainer {
            broker: broker.clone(),
            interval: Duration::from_millis(500),
        }
        .run(shutdown.clone()),
    );
}

/// Applies metadata images to the replica manager as the quorum commits them.
#[derive(Debug)]
pub struct MetadataPublisher {
    broker: Arc<Broker>,
}

impl MetadataPublisher {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut images = self.broker.quorum.subscribe();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = images.changed() => if changed.is_err() { return },
            }
            self.broker.publish_metadata().await;
        }
    }
}

/// Runs `work` on every hosted partition each `interval` until shutdown, on the partitions'
/// I/O workers (it deletes files and fsyncs), waiting for one round to finish before the next.
async fn every_partition(
    broker: &Broker,
    interval: Duration,
    shutdown: CancellationToken,
    work: impl Fn(&Partition, i64) + Clone + Send + 'static,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = now_ms();
        let round: Vec<_> = broker
            .replicas
            .all_partitions()
            .iter()
            .map(|partition| {
                let work = work.clone();
                partition.run_io(move |partition| {
                    work(partition, now);
                    Ok(())
                })
            })
            .collect();
        // An error here only means the worker stopped (shutdown).
        for done in round {
            let _ = done.await;
        }
    }
}

/// Enforces retention on every hosted partition.
#[derive(Debug)]
pub struct RetentionCleaner {
    broker: Arc<Broker>,
    interval: Duration,
}

impl RetentionCleaner {
    pub async fn run(self, shutdown: CancellationToken) {
        every_partition(&self.broker, self.interval, shutdown, |partition, now| {
            match partition.log().apply_retention(now) {
                Ok(outcome) => {
                    tracing::debug!(topic = %partition.topic, partition = partition.index, ?outcome, "retention")
                }
                Err(error) => {
                    if let Some(suppressed) = MAINTENANCE_LOG.check(&error.to_string()) {
                        tracing::error!(topic = %partition.topic, partition = partition.index, %error, suppressed, "retention failed")
                    }
                }
            }
        })
        .await;
    }
}

/// Rolls idle segments older than `segment.ms` and flushes per `flush.ms`.
#[derive(Debug)]
pub struct LogMaintainer {
    broker: Arc<Broker>,
    interval: Duration,
}

impl LogMaintainer {
    pub async fn run(self, shutdown: CancellationToken) {
        every_partition(&self.broker, self.interval, shutdown, |partition, now| {
            let log = partition.log();
            if let Err(error) = log.maybe_roll(now).and_then(|_| log.maybe_flush(now))
                && let Some(suppressed) = MAINTENANCE_LOG.check(&error.to_string())
            {
                tracing::error!(topic = %partition.topic, partition = partition.index, %error, suppressed, "log maintenance");
            }
        })
        .await;
    }
}
