//! A consumer's own account of what it did: librdkafka's debug log of fetches, metadata and
//! offset validation, kept in a bounded ring and printed only when that consumer fails (the
//! workload's live consumer, the transactional processor), so a stuck fetch can be told from a
//! slow one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;

/// How many log lines are kept (the newest).
const CAPACITY: usize = 4000;

/// The librdkafka debug contexts a traced consumer logs.
pub const DEBUG_CONTEXTS: &str = "consumer,fetch,topic,metadata";

/// How long a consumer may show no activity at all (no fetch, no metadata request) before it
/// counts as stuck inside librdkafka. A lock-order inversion in librdkafka between a broker it
/// decommissions and an OffsetForLeaderEpoch to that broker (confluentinc/librdkafka#5476)
/// stops every fetch of the client for good; fenced brokers leave the Metadata response, as in
/// Kafka, so broker crashes can set it off.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);

/// Log facilities that show the consumer at work: fetching, or looking for leaders.
const ACTIVITY: [&str; 4] = ["FETCH", "FETCHERR", "CONSUME", "METADATA"];

/// A client context that keeps the newest [`CAPACITY`] librdkafka log lines, and when the
/// consumer last showed activity.
#[derive(Debug, Clone)]
pub struct LogRing {
    lines: Arc<Mutex<VecDeque<String>>>,
    active_at: Arc<Mutex<Instant>>,
}

impl Default for LogRing {
    fn default() -> Self {
        LogRing {
            lines: Arc::default(),
            active_at: Arc::new(Mutex::new(Instant::now())),
        }
    }
}

/// The wall clock as `HH:MM:SS.mmm` UTC, to line the client's log up with the brokers'.
pub fn clock() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, millis) = (now.as_secs(), now.subsec_millis());
    format!(
        "{:02}:{:02}:{:02}.{millis:03}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

impl LogRing {
    /// How long since the consumer last fetched or asked for metadata (its debug log says,
    /// with the contexts of [`DEBUG_CONTEXTS`]); a working consumer does either every few
    /// hundred milliseconds, even with every broker down.
    pub fn idle_for(&self) -> Duration {
        self.active_at
            .lock()
            .map(|at| at.elapsed())
            .unwrap_or_default()
    }

    /// Counts now as activity: a consumer just created has not logged yet.
    pub fn mark_active(&self) {
        if let Ok(mut at) = self.active_at.lock() {
            *at = Instant::now();
        }
    }

    /// The newest `count` lines, oldest first.
    pub fn tail(&self, count: usize) -> Vec<String> {
        self.lines
            .lock()
            .map(|lines| {
                let skip = lines.len().saturating_sub(count);
                lines.iter().skip(skip).cloned().collect()
            })
            .unwrap_or_default()
    }
}

impl ClientContext for LogRing {
    fn log(&self, _level: RDKafkaLogLevel, facility: &str, message: &str) {
        if ACTIVITY.contains(&facility)
            && let Ok(mut at) = self.active_at.lock()
        {
            *at = Instant::now();
        }
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == CAPACITY {
                lines.pop_front();
            }
            lines.push_back(format!("{} {facility} {message}", clock()));
        }
    }
}

impl ConsumerContext for LogRing {}
