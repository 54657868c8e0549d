//! Rate limiting for log lines that a loop or a misbehaving peer can repeat without end (a full
//! disk fails every produce and every maintenance tick; a flood of bad connections closes each
//! one): the first line for a key is logged, repeats within the interval are counted, and the
//! next line logged says how many were suppressed. Different keys are limited separately, so
//! one noisy failure never hides another.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many distinct keys one limiter tracks; beyond that, new keys share one slot, so the
/// limiter's memory stays bounded whatever the keys are.
const MAX_KEYS: usize = 256;
/// The slot shared by keys that arrive while [`MAX_KEYS`] are tracked.
const OVERFLOW_KEY: &str = "";

/// One limiter per call site, usually a `static`.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    slots: Mutex<BTreeMap<String, Slot>>,
}

#[derive(Debug)]
struct Slot {
    logged_at: Instant,
    suppressed: u64,
}

impl LogLimiter {
    /// A limiter that logs each key at most once per `interval`.
    pub const fn new(interval: Duration) -> LogLimiter {
        LogLimiter {
            interval,
            slots: Mutex::new(BTreeMap::new()),
        }
    }

    /// `Some(suppressed)` when a line for `key` is due now, with the number of repeats dropped
    /// since the last one; `None` for a repeat within the interval.
    pub fn check(&self, key: &str) -> Option<u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Option<u64> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if !slots.contains_key(key) && slots.len() >= MAX_KEYS {
            let interval = self.interval;
            slots.retain(|_, slot| now.duration_since(slot.logged_at) < interval);
        }
        let key = if slots.contains_key(key) || slots.len() < MAX_KEYS {
            key
        } else {
            OVERFLOW_KEY
        };
        match slots.get_mut(key) {
            Some(slot) if now.duration_since(slot.logged_at) < self.interval => {
                slot.suppressed += 1;
                None
            }
            Some(slot) => {
                let suppressed = slot.suppressed;
                *slot = Slot {
                    logged_at: now,
                    suppressed: 0,
                };
                Some(suppressed)
            }
            None => {
                slots.insert(
                    key.to_string(),
                    Slot {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_interval_are_counted_not_logged() {
        let limiter = LogLimiter::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(limiter.check_at("disk full", start), Some(0));
        for i in 1..=1000 {
            assert_eq!(
                limiter.check_at("disk full", start + Duration::from_millis(i)),
                None
            );
        }
        // Another failure is not hidden by the first.
        assert_eq!(limiter.check_at("other", start), Some(0));
        assert_eq!(
            limiter.check_at("disk full", start + Duration::from_secs(10)),
            Some(1000)
        );
        assert_eq!(
            limiter.check_at("disk full", start + Duration::from_secs(11)),
            None
        );
    }

    #[test]
    fn distinct_keys_beyond_the_bound_share_one_slot() {
        let limiter = LogLimiter::new(Duration::from_secs(10));
        let now = Instant::now();
        let logged = (0..10_000)
            .filter(|i| limiter.check_at(&format!("error {i}"), now).is_some())
            .count();
        assert_eq!(logged, MAX_KEYS + 1);
        let slots = limiter.slots.lock().map(|s| s.len()).unwrap_or_default();
        assert!(slots <= MAX_KEYS + 1, "{slots}");
        // Once the interval passes, stale keys make room again.
        let later = now + Duration::from_secs(10);
        assert_eq!(limiter.check_at("fresh", later), Some(0));
    }
}
