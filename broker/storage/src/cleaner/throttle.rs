//! `log.cleaner.io.max.bytes.per.second`: one rate shared by all cleaner threads (Kafka's
//! `Throttler`). A thread that finds the observed rate above the limit sleeps, holding the
//! throttle, so every thread slows down together.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How often the observed rate is compared with the limit.
const CHECK_INTERVAL: Duration = Duration::from_millis(300);

/// A byte-rate limit shared by the cleaner threads.
#[derive(Debug)]
pub struct Throttle {
    max_bytes_per_second: f64,
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Instant,
    bytes: f64,
}

impl Throttle {
    /// A limit of `max_bytes_per_second`; `f64::MAX` (Kafka's default) or any non-finite or
    /// non-positive value means none.
    pub fn new(max_bytes_per_second: f64) -> Throttle {
        Throttle {
            max_bytes_per_second,
            state: Mutex::new(Window {
                start: Instant::now(),
                bytes: 0.0,
            }),
        }
    }

    /// No limit.
    pub fn unlimited() -> Throttle {
        Throttle::new(f64::MAX)
    }

    fn limited(&self) -> bool {
        self.max_bytes_per_second.is_finite()
            && self.max_bytes_per_second > 0.0
            && self.max_bytes_per_second < f64::MAX
    }

    /// Accounts `bytes` of cleaner I/O; sleeps (blocking) while the rate is above the limit.
    pub fn acquire(&self, bytes: u64) {
        if !self.limited() {
            return;
        }
        let mut window = self.state.lock();
        window.bytes += bytes as f64;
        let elapsed = window.start.elapsed();
        if elapsed < CHECK_INTERVAL {
            return;
        }
        let needed = Duration::from_secs_f64(window.bytes / self.max_bytes_per_second);
        if needed > elapsed {
            std::thread::sleep(needed - elapsed);
        }
        window.start = Instant::now();
        window.bytes = 0.0;
    }
}
