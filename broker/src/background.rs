//! The broker's background loops, each a struct with `run(self, shutdown)`:
//! - [`MetadataPublisher`]: applies every new metadata image to the hosted partitions;
//! - [`RetentionCleaner`]: deletes segments past `retention.ms` / `retention.bytes`
//!   every `log.retention.check.interval.ms`;
//! - [`LogMaintainer`]: time-based segment rolls (`segment.ms`) and flushes (`flush.ms`);
//! - [`CheckpointWriter`]: the high-watermark and recovery-point checkpoint files every
//!   `replica.high.watermark.checkpoint.interval.ms`;
//! - [`IsrUpdater`]: ISR shrinks and expansions of the partitions led here;
//! - [`ProducerExpirer`]: forgets idempotent producers idle for `producer.id.expiration.ms`,
//!   every `producer.id.expiration.check.interval.ms`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::capabilities::{CoordinatorKind, CoordinatorLookup};
use crate::log_limit::LogLimiter;
use crate::replica::isr::IsrUpdater;
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
    let props = &broker.config.props;
    tracker.spawn(
        ProducerExpirer {
            broker: broker.clone(),
            interval: props.producer_expiration_check_interval(),
            expiration_ms: props.producer_id_expiration_ms,
        }
        .run(shutdown.clone()),
    );
    tracker.spawn(
        CheckpointWriter {
            broker: broker.clone(),
            interval: Duration::from_millis(
                u64::try_from(props.replica_high_watermark_checkpoint_interval_ms).unwrap_or(5000),
            ),
        }
        .run(shutdown.clone()),
    );
    // Shrinks are due after `replica.lag.time.max.ms`; checking at half of it (as Kafka does),
    // and at least every 250 ms so a caught-up follower rejoins the ISR quickly.
    let lag_max_ms = props.replica_lag_time_max_ms;
    tracker.spawn(
        IsrUpdater {
            broker: broker.clone(),
            interval: Duration::from_millis(
                u64::try_from(lag_max_ms / 2).unwrap_or(1).clamp(10, 250),
            ),
            lag_max_ms,
        }
        .run(shutdown.clone()),
    );
}

/// Writes the offset checkpoint files of the data directory.
#[derive(Debug)]
pub struct CheckpointWriter {
    broker: Arc<Broker>,
    interval: Duration,
}

impl CheckpointWriter {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let replicas = self.broker.replicas.clone();
            let written = tokio::task::spawn_blocking(move || replicas.write_checkpoints()).await;
            if let Ok(Err(error)) = written
                && let Some(suppressed) = MAINTENANCE_LOG.check(&error.to_string())
            {
                tracing::error!(%error, suppressed, "writing the offset checkpoints");
            }
        }
    }
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
            // Coordinator state follows the leadership of its internal topic's partitions;
            // loading reads logs, so it runs beside the next images.
            follow_coordinator_topics(&self.broker);
        }
    }
}

/// Loads and unloads the group and transaction coordinators' partitions, in the background,
/// for each of their internal topics that exists.
pub fn follow_coordinator_topics(broker: &Arc<Broker>) {
    let image = broker.image();
    for kind in [CoordinatorKind::Group, CoordinatorKind::Transaction] {
        if image.topic(kind.topic()).is_some() {
            let broker = broker.clone();
            tokio::spawn(async move { broker.ensure_coordinator_topic(kind).await });
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
                    Ok::<(), strom_storage::StorageError>(())
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

/// Forgets the idempotent producers of every hosted partition (leader or follower, so a new
/// leader holds the same state) whose newest batch is older than `producer.id.expiration.ms`.
#[derive(Debug)]
pub struct ProducerExpirer {
    broker: Arc<Broker>,
    interval: Duration,
    expiration_ms: i64,
}

impl ProducerExpirer {
    pub async fn run(self, shutdown: CancellationToken) {
        let expiration_ms = self.expiration_ms;
        every_partition(&self.broker, self.interval, shutdown, move |partition, now| {
            let removed = partition.log().remove_expired_producers(now, expiration_ms);
            if removed > 0 {
                tracing::debug!(topic = %partition.topic, partition = partition.index, removed, "expired idle producers");
            }
        })
        .await;
    }
}
