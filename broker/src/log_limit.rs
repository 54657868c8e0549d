//! Rate limits for log lines that a client can repeat at will (a consumer retrying a damaged
//! offset fetches many times a second): the first occurrence is logged, then at most one line
//! per interval, carrying how many were left out in between.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// One limited log line.
#[derive(Debug)]
pub struct LogLimit {
    interval_ms: i64,
    last_ms: AtomicI64,
    suppressed: AtomicU64,
}

impl LogLimit {
    /// A limit of one line per `interval_ms`.
    pub const fn new(interval_ms: i64) -> Self {
        LogLimit {
            interval_ms,
            last_ms: AtomicI64::new(i64::MIN),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be written now, `n` being the occurrences left out since the
    /// previous line; `None` when this one is to be left out.
    pub fn allow(&self, now_ms: i64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < self.interval_ms
            || self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counting_the_rest() {
        let limit = LogLimit::new(1000);
        assert_eq!(limit.allow(10_000), Some(0));
        assert_eq!(limit.allow(10_001), None);
        assert_eq!(limit.allow(10_999), None);
        assert_eq!(limit.allow(11_000), Some(2));
        assert_eq!(limit.allow(11_500), None);
        assert_eq!(limit.allow(20_000), Some(1));
    }
}
