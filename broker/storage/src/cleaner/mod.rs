//! Kafka's log cleaner: compaction of logs with `cleanup.policy=compact`, keeping the latest
//! record of each key.
//!
//! - `range`: the clean and dirty parts of a log and whether it needs cleaning
//!   ([`CleanableRange`]);
//! - `offset_map`: the bounded key -> latest offset map ([`OffsetMap`]);
//! - `pass`: one cleaning pass, [`PartitionLog::clean`](crate::PartitionLog::clean);
//! - `filter`: which records and batches a pass keeps; `transactions`: which transactions
//!   committed, aborted or are still open;
//! - `writer`: writing a cleaned segment and its indexes;
//! - `swap`: swapping cleaned segments in, and completing a swap a crash interrupted;
//! - `checkpoint`: the per-partition `cleaner-offset-checkpoint`;
//! - `throttle`: `log.cleaner.io.max.bytes.per.second` ([`Throttle`]);
//! - `threads`: the background cleaner threads ([`LogCleaner`]); `stats`: their statistics
//!   ([`CleanerStats`]).

pub(crate) mod checkpoint;
mod filter;
mod offset_map;
mod pass;
mod range;
mod stats;
pub(crate) mod swap;
mod threads;
mod throttle;
mod transactions;
mod writer;

pub use offset_map::OffsetMap;
pub use pass::CleanOutcome;
pub use range::CleanableRange;
pub use stats::CleanerStats;
pub use threads::{CleanableLog, CleanerConfig, LogCleaner, LogSource};
pub use throttle::Throttle;
