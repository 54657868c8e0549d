//! The cleaner threads (Kafka's `LogCleaner` and `LogCleanerManager`): plain OS threads named
//! `log-cleaner-N`, each with its own offset map, that repeatedly pick the compacted log most
//! in need of cleaning and run one pass on it.
//!
//! A log is picked when its dirty ratio reached `min.cleanable.dirty.ratio`, when its oldest
//! uncleaned record is older than `max.compaction.lag.ms`, or when a kept tombstone's delete
//! horizon passed; among those, the one with the highest dirty ratio. A log is cleaned by one
//! thread at a time. A pass that fails with an error marks the log uncleanable: it is skipped
//! while the source keeps returning it (as Kafka does until the log is reloaded), never retried
//! in a loop. A pass that made no progress, or found nothing to do, leaves the log alone for
//! `backoff`; with nothing to clean a thread sleeps `backoff`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

use super::stats::CleanerStats;
use super::{OffsetMap, Throttle};
use crate::error::StorageError;
use crate::log::PartitionLog;

/// A log the cleaner may clean, as the broker hands it over.
pub trait CleanableLog: Send + Sync {
    /// The log.
    fn log(&self) -> &PartitionLog;
    /// The offset the cleaner must not clean at or past (the broker passes the high
    /// watermark). The cleaner never touches the active segment either.
    fn cleanable_end(&self) -> i64;
    /// A stable name for logs and statistics, e.g. `topic-partition`.
    fn name(&self) -> String;
}

/// Where the cleaner finds the logs to consider: called at each look for work.
pub type LogSource = Arc<dyn Fn() -> Vec<Arc<dyn CleanableLog>> + Send + Sync>;

/// The cleaner's settings (Kafka's `log.cleaner.*` broker configs).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.threads`.
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: the memory of all offset maps together (each thread
    /// gets its share).
    pub dedupe_buffer_bytes: usize,
    /// `log.cleaner.io.max.bytes.per.second`, shared by all threads.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: the sleep when there is nothing to clean.
    pub backoff: Duration,
    /// `log.cleaner.enable`.
    pub enabled: bool,
}

impl Default for CleanerConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        CleanerConfig {
            threads: 1,
            dedupe_buffer_bytes: 134_217_728,
            io_max_bytes_per_second: f64::MAX,
            backoff: Duration::from_millis(15_000),
            enabled: true,
        }
    }
}

/// The running cleaner. Dropping it (or [`LogCleaner::shutdown`]) stops and joins the threads;
/// a pass in progress finishes its current step first.
pub struct LogCleaner {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for LogCleaner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogCleaner")
            .field("threads", &self.threads.len())
            .field("stats", &self.stats())
            .finish()
    }
}

struct Shared {
    config: CleanerConfig,
    source: LogSource,
    throttle: Throttle,
    stopping: Mutex<bool>,
    wake: Condvar,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    in_progress: HashSet<String>,
    uncleanable: HashSet<String>,
    /// Logs left alone until then (nothing to do, or no progress).
    resting: HashMap<String, Instant>,
    totals: CleanerStats,
    /// Per thread: (clean time ms, buffer utilisation percent) of its last pass.
    last_runs: Vec<(u64, f64)>,
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

impl LogCleaner {
    /// Starts `config.threads` cleaner threads (none when `config.enabled` is false) over the
    /// logs `source` returns.
    pub fn start(config: CleanerConfig, source: LogSource) -> LogCleaner {
        let threads = if config.enabled { config.threads } else { 0 };
        let shared = Arc::new(Shared {
            throttle: Throttle::new(config.io_max_bytes_per_second),
            config,
            source,
            stopping: Mutex::new(false),
            wake: Condvar::new(),
            state: Mutex::new(State {
                totals: CleanerStats {
                    last_run_end_ms: -1,
                    last_check_ms: wall_clock_ms(),
                    ..CleanerStats::default()
                },
                last_runs: vec![(0, 0.0); threads],
                ..State::default()
            }),
        });
        let threads = (0..threads)
            .filter_map(|n| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("log-cleaner-{n}"))
                    .spawn(move || shared.run(n, threads))
                    .map_err(|e| tracing::error!(error = %e, "cannot start a log cleaner thread"))
                    .ok()
            })
            .collect();
        LogCleaner { shared, threads }
    }

    /// The statistics now.
    pub fn stats(&self) -> CleanerStats {
        let state = self.shared.state.lock();
        let mut stats = state.totals;
        stats.uncleanable_partitions = state.uncleanable.len();
        stats.max_clean_time_ms = state.last_runs.iter().map(|r| r.0).max().unwrap_or(0);
        stats.max_buffer_utilization_percent =
            state.last_runs.iter().map(|r| r.1).fold(0.0, f64::max);
        stats
    }

    /// Stops the threads and waits for them.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        *self.shared.stopping.lock() = true;
        self.shared.wake.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for LogCleaner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Counts its thread as dead when the thread unwinds from a panic (Kafka's `DeadThreadCount`),
/// so that a cleaner that stopped shows in the metrics instead of going quiet.
struct DeathWatch<'a>(&'a Shared);

impl Drop for DeathWatch<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("a log cleaner thread stopped on a panic");
            self.0.state.lock().totals.dead_threads += 1;
        }
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        *self.stopping.lock()
    }

    fn run(&self, thread: usize, threads: usize) {
        let _watch = DeathWatch(self);
        // Allocated on first use: a broker without compacted logs never pays for it.
        let mut map: Option<OffsetMap> = None;
        while !self.stopping() {
            let cleaned = match self.pick() {
                Some(log) => {
                    let map = map.get_or_insert_with(|| {
                        OffsetMap::new(self.config.dedupe_buffer_bytes / threads.max(1))
                    });
                    self.clean(thread, log.as_ref(), map);
                    true
                }
                None => false,
            };
            if !cleaned {
                let mut stopping = self.stopping.lock();
                if !*stopping {
                    self.wake.wait_for(&mut stopping, self.config.backoff);
                }
            }
        }
    }

    /// The log most in need of cleaning, marked in progress.
    fn pick(&self) -> Option<Arc<dyn CleanableLog>> {
        let logs = (self.source)();
        let now_ms = wall_clock_ms();
        let skip: HashSet<String> = {
            let mut state = self.state.lock();
            let now = Instant::now();
            state.resting.retain(|_, until| *until > now);
            // A log that is gone (deleted, or moved away) is forgotten: created again, it is a
            // new log (Kafka's `maintainUncleanablePartitions`).
            let present: HashSet<String> = logs.iter().map(|l| l.name()).collect();
            state.uncleanable.retain(|name| present.contains(name));
            state.uncleanable.iter().cloned().collect()
        };
        // Looked at without the state lock: it costs a checkpoint read and a header read.
        let mut candidates = Vec::new();
        let mut failed = Vec::new();
        let mut max_dirty = 0.0f64;
        for log in logs {
            let config = log.log().config();
            let name = log.name();
            if !config.cleanup_policy.compact || skip.contains(&name) {
                continue;
            }
            match log.log().cleanable_range(log.cleanable_end(), now_ms) {
                Ok(range) => {
                    max_dirty = max_dirty.max(range.dirty_ratio);
                    if range.needs_cleaning(&config, now_ms) {
                        candidates.push((range.dirty_ratio, name, log));
                    }
                }
                Err(e) => {
                    tracing::error!(log = %name, error = %e, "cannot tell how dirty a log is; it is marked uncleanable");
                    failed.push(name);
                }
            }
        }
        let mut state = self.state.lock();
        state.uncleanable.extend(failed);
        state.totals.max_dirty_percent = max_dirty * 100.0;
        state.totals.last_check_ms = now_ms;
        let (_, name, log) = candidates
            .into_iter()
            .filter(|(_, name, _)| {
                !state.in_progress.contains(name) && !state.resting.contains_key(name)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))?;
        state.in_progress.insert(name);
        Some(log)
    }

    fn clean(&self, thread: usize, log: &dyn CleanableLog, map: &mut OffsetMap) {
        let name = log.name();
        let started = Instant::now();
        let result = log
            .log()
            .clean(log.cleanable_end(), wall_clock_ms(), map, &self.throttle);
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut state = self.state.lock();
        state.in_progress.remove(&name);
        match result {
            Ok(outcome) => {
                let totals = &mut state.totals;
                totals.runs_completed += 1;
                totals.bytes_read += outcome.bytes_read;
                totals.bytes_written += outcome.bytes_after;
                totals.records_removed += outcome.records_removed;
                totals.last_run_end_ms = wall_clock_ms();
                state.last_runs[thread] = (elapsed, outcome.map_utilization * 100.0);
                let progressed = outcome.first_dirty_offset_after > outcome.first_dirty_offset
                    || outcome.records_removed > 0;
                if !progressed {
                    state
                        .resting
                        .insert(name, Instant::now() + self.config.backoff);
                }
            }
            Err(StorageError::CleaningAborted { reason, .. }) => {
                tracing::debug!(log = %name, reason, "cleaning pass aborted");
                state.totals.runs_aborted += 1;
                state
                    .resting
                    .insert(name, Instant::now() + self.config.backoff);
            }
            Err(e) => {
                tracing::error!(log = %name, error = %e, "cleaning failed; the log is marked uncleanable");
                state.uncleanable.insert(name);
            }
        }
    }
}
