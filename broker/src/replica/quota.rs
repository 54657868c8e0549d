//! Replication quotas (KIP-73, Kafka's `ReplicationQuotaManager`): a bound on the bytes per
//! second a broker sends to followers as a leader (`leader.replication.throttled.rate`) and
//! fetches as a follower (`follower.replication.throttled.rate`), applied only to the replicas
//! its topics list in `leader.replication.throttled.replicas` /
//! `follower.replication.throttled.replicas` (`partition:brokerId` pairs naming this broker, or
//! `*`).
//!
//! The bytes of every listed replica are recorded, whatever its state, into a [`Rate`] over
//! eleven one-second samples, as Kafka's `SimpleRate` measures it. While that rate is above the
//! bound, listed replicas that are not in sync are left out: the leader answers their fetches
//! with no records, the follower leaves them out of its requests. In-sync replicas are never
//! held back, so a throttle cannot shrink the ISR (Kafka's `shouldLeaderThrottle`).
//!
//! The rates come from the broker's dynamic configs in the metadata image, else its static
//! properties; the lists from the topics' configs. [`ReplicationQuotas::update`] reads both
//! from each image, so a change applies without a restart.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use strom_group::{Clock, TokioClock};
use strom_metadata::MetadataImage;
use strom_metadata::broker_config::{
    FOLLOWER_REPLICATION_THROTTLED_RATE, LEADER_REPLICATION_THROTTLED_RATE, UNTHROTTLED_RATE,
    configured_rate,
};
use strom_metadata::topic_config::{
    FOLLOWER_REPLICATION_THROTTLED_REPLICAS, LEADER_REPLICATION_THROTTLED_REPLICAS,
    parse_replica_list,
};

/// Kafka's `replication.quota.window.num` default: ten whole windows and the current one.
pub const QUOTA_SAMPLES: usize = 11;
/// Kafka's `replication.quota.window.size.seconds` default.
pub const QUOTA_WINDOW_MS: i64 = 1000;

/// One sample of a [`Rate`].
#[derive(Debug, Clone, Copy)]
struct Sample {
    start_ms: i64,
    last_event_ms: i64,
    bytes: u64,
}

impl Sample {
    fn new(now_ms: i64) -> Sample {
        Sample {
            start_ms: now_ms,
            last_event_ms: now_ms,
            bytes: 0,
        }
    }
}

/// Bytes per second over a ring of samples, each `window_ms` long (Kafka's `SimpleRate` over a
/// `WindowedSum`): the bytes of the samples still in the monitored span, divided by the time
/// since the oldest of them started, or by one window when less has passed (so a first burst
/// does not read as an unbounded rate). Pure: time is passed in.
#[derive(Debug, Clone)]
pub struct Rate {
    samples: Vec<Sample>,
    current: usize,
    num_samples: usize,
    window_ms: i64,
}

impl Rate {
    pub fn new(num_samples: usize, window_ms: i64) -> Rate {
        Rate {
            samples: Vec::new(),
            current: 0,
            num_samples: num_samples.max(1),
            window_ms: window_ms.max(1),
        }
    }

    pub fn record(&mut self, bytes: u64, now_ms: i64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now_ms));
        }
        if now_ms - self.samples[self.current].start_ms >= self.window_ms {
            // One sample more than the monitored span: the oldest may still overlap it.
            self.current = (self.current + 1) % (self.num_samples + 1);
            match self.samples.get_mut(self.current) {
                Some(sample) => *sample = Sample::new(now_ms),
                None => self.samples.push(Sample::new(now_ms)),
            }
        }
        let sample = &mut self.samples[self.current];
        sample.bytes = sample.bytes.saturating_add(bytes);
        sample.last_event_ms = now_ms;
    }

    /// Samples with no event in the monitored span start over empty.
    fn purge(&mut self, now_ms: i64) {
        let expire = self.window_ms * self.num_samples as i64;
        for sample in &mut self.samples {
            if now_ms - sample.last_event_ms >= expire {
                *sample = Sample::new(now_ms);
            }
        }
    }

    /// The bytes in the monitored span and the time since its oldest sample started.
    fn totals(&mut self, now_ms: i64) -> (u64, i64) {
        self.purge(now_ms);
        let bytes = self.samples.iter().map(|s| s.bytes).sum();
        let oldest = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        (bytes, now_ms - oldest)
    }

    /// Bytes per second at `now_ms`.
    pub fn measure(&mut self, now_ms: i64) -> f64 {
        let (bytes, elapsed_ms) = self.totals(now_ms);
        bytes as f64 * 1000.0 / elapsed_ms.max(self.window_ms) as f64
    }

    /// How long from `now_ms`, with nothing more recorded, until the rate is at most `bound`
    /// bytes per second: the span must grow to the time the bytes take at the bound.
    pub fn time_to_bound(&mut self, bound: i64, now_ms: i64) -> Duration {
        let (bytes, elapsed_ms) = self.totals(now_ms);
        if bound <= 0 {
            return Duration::from_millis(self.window_ms as u64);
        }
        let span_ms = (bytes as f64 * 1000.0 / bound as f64).ceil();
        if span_ms <= self.window_ms as f64 {
            return Duration::ZERO;
        }
        Duration::from_millis((span_ms - elapsed_ms as f64).max(0.0) as u64)
    }
}

/// The partitions of one topic a quota applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttled {
    All,
    Partitions(BTreeSet<i32>),
}

impl Throttled {
    fn contains(&self, partition: i32) -> bool {
        match self {
            Self::All => true,
            Self::Partitions(partitions) => partitions.contains(&partition),
        }
    }
}

/// One direction's quota: its bound, its measured rate and the replicas it applies to.
#[derive(Debug)]
pub struct ReplicationQuota {
    clock: Arc<dyn Clock>,
    /// Bytes per second; [`UNTHROTTLED_RATE`] never holds anything back.
    bound: AtomicI64,
    rate: Mutex<Rate>,
    throttled: RwLock<HashMap<String, Throttled>>,
    /// Every byte recorded, for the metrics.
    recorded: AtomicU64,
}

impl ReplicationQuota {
    pub fn new(clock: Arc<dyn Clock>) -> ReplicationQuota {
        ReplicationQuota {
            clock,
            bound: AtomicI64::new(UNTHROTTLED_RATE),
            rate: Mutex::new(Rate::new(QUOTA_SAMPLES, QUOTA_WINDOW_MS)),
            throttled: RwLock::new(HashMap::new()),
            recorded: AtomicU64::new(0),
        }
    }

    pub fn bound(&self) -> i64 {
        self.bound.load(Ordering::Relaxed)
    }

    pub fn set_bound(&self, bytes_per_second: i64) {
        self.bound.store(bytes_per_second, Ordering::Relaxed);
    }

    /// Replaces the throttled replicas of every topic.
    pub fn set_throttled(&self, throttled: HashMap<String, Throttled>) {
        *self.throttled.write() = throttled;
    }

    /// Whether the topic's config lists this replica.
    pub fn is_throttled(&self, topic: &str, partition: i32) -> bool {
        self.throttled
            .read()
            .get(topic)
            .is_some_and(|t| t.contains(partition))
    }

    /// Whether the measured rate is above the bound now.
    pub fn is_exceeded(&self) -> bool {
        let bound = self.bound();
        bound != UNTHROTTLED_RATE && self.rate.lock().measure(self.clock.now_ms()) > bound as f64
    }

    /// Whether a listed replica that is not in sync is held back now.
    pub fn holds_back(&self, topic: &str, partition: i32, in_sync: bool) -> bool {
        !in_sync && self.is_throttled(topic, partition) && self.is_exceeded()
    }

    /// Counts bytes of throttled replicas, whether or not the quota is exceeded.
    pub fn record(&self, bytes: u64) {
        if bytes == 0 {
            return;
        }
        self.recorded.fetch_add(bytes, Ordering::Relaxed);
        self.rate.lock().record(bytes, self.clock.now_ms());
    }

    /// The measured rate of throttled replicas, bytes per second (Kafka's `byte-rate`).
    pub fn byte_rate(&self) -> f64 {
        self.rate.lock().measure(self.clock.now_ms())
    }

    /// Bytes of throttled replicas recorded since start.
    pub fn recorded_bytes(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// How long until the rate falls back within the bound (zero when it is within).
    pub fn time_to_bound(&self) -> Duration {
        let bound = self.bound();
        if bound == UNTHROTTLED_RATE {
            return Duration::ZERO;
        }
        self.rate.lock().time_to_bound(bound, self.clock.now_ms())
    }
}

/// The leader and follower quotas of this broker.
#[derive(Debug)]
pub struct ReplicationQuotas {
    pub leader: Arc<ReplicationQuota>,
    pub follower: Arc<ReplicationQuota>,
}

impl Default for ReplicationQuotas {
    fn default() -> Self {
        ReplicationQuotas::new(Arc::new(TokioClock::new()))
    }
}

impl ReplicationQuotas {
    pub fn new(clock: Arc<dyn Clock>) -> ReplicationQuotas {
        ReplicationQuotas {
            leader: Arc::new(ReplicationQuota::new(clock.clone())),
            follower: Arc::new(ReplicationQuota::new(clock)),
        }
    }

    /// Takes the rates of broker `node_id` (its dynamic configs in `image`, else the
    /// cluster-wide dynamic defaults, else `static_rates` as (leader, follower)) and the
    /// replicas listed for it by every topic.
    pub fn update(&self, image: &MetadataImage, node_id: i32, static_rates: (i64, i64)) {
        let rate = |name| configured_rate(image, node_id, name);
        self.leader
            .set_bound(rate(LEADER_REPLICATION_THROTTLED_RATE).unwrap_or(static_rates.0));
        self.follower
            .set_bound(rate(FOLLOWER_REPLICATION_THROTTLED_RATE).unwrap_or(static_rates.1));
        self.leader.set_throttled(throttled_replicas(
            image,
            node_id,
            LEADER_REPLICATION_THROTTLED_REPLICAS,
        ));
        self.follower.set_throttled(throttled_replicas(
            image,
            node_id,
            FOLLOWER_REPLICATION_THROTTLED_REPLICAS,
        ));
    }
}

/// The replicas on `node_id` that topics list in config `key`. Values were validated when set;
/// one that does not parse throttles nothing.
fn throttled_replicas(
    image: &MetadataImage,
    node_id: i32,
    key: &str,
) -> HashMap<String, Throttled> {
    let mut out = HashMap::new();
    for (name, topic) in image.topics.iter() {
        let Some(list) = topic
            .configs
            .get(key)
            .and_then(|v| parse_replica_list(v).ok())
        else {
            continue;
        };
        match list.partitions_of(node_id) {
            None => {
                out.insert(name.clone(), Throttled::All);
            }
            Some(partitions) if !partitions.is_empty() => {
                out.insert(
                    name.clone(),
                    Throttled::Partitions(partitions.into_iter().collect()),
                );
            }
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
