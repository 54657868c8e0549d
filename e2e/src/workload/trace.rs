//! The live consumer's own account of what it did: librdkafka's debug log of fetches,
//! metadata and offset validation, kept in a bounded ring and printed only when that consumer
//! fails to reach the acknowledged records, so a stuck fetch can be told from a slow one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;

/// How many log lines are kept (the newest).
const CAPACITY: usize = 4000;

/// The librdkafka debug contexts the live consumer logs.
pub const DEBUG_CONTEXTS: &str = "consumer,fetch,topic,metadata";

/// A client context that keeps the newest [`CAPACITY`] librdkafka log lines.
#[derive(Debug, Clone, Default)]
pub struct LogRing {
    lines: Arc<Mutex<VecDeque<String>>>,
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
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == CAPACITY {
                lines.pop_front();
            }
            lines.push_back(format!("{} {facility} {message}", clock()));
        }
    }
}

impl ConsumerContext for LogRing {}
