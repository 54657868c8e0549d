//! Per-object retry backoff for failed reconcile passes: 5 s, 10 s, 20 s, ... up to 5 minutes,
//! reset by the next success, so a broken object neither hammers the API server nor waits
//! long once fixed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const FIRST: Duration = Duration::from_secs(5);
const MAX: Duration = Duration::from_secs(300);

/// Delay before the next attempt after `failures` consecutive failures (at least 1).
pub fn delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(MAX)
}

/// Consecutive failures per object key (`Kind/namespace/name`).
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Records a failure of `key` and returns how long to wait.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        delay(*count)
    }

    /// Forgets the failures of `key` after a successful pass.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_five_minutes_and_resets() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (0..9)
            .map(|_| backoff.failed("Topic/ns/a").as_secs())
            .collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(
            backoff.failed("Topic/ns/b").as_secs(),
            5,
            "keys are independent"
        );
        backoff.succeeded("Topic/ns/a");
        assert_eq!(backoff.failed("Topic/ns/a").as_secs(), 5);
    }
}
