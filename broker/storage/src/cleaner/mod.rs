//! Kafka's log cleaner: compaction of logs with `cleanup.policy=compact`, keeping the latest
//! record of each key.
//!
//! - `range`: the clean and dirty parts of a log and whether it needs cleaning
//!   ([`CleanableRange`]);
//! - `offset_map`: the bounded key -> latest offset map ([`OffsetMap`]);
//! - `pass`: one cleaning pass, [`PartitionLog::clean`](crate::PartitionLog::clean);
//! - `filter`: which records and batches a pass keeps;
//! - `writer`: writing a cleaned segment and its indexes;
//! - `swap`: swapping cleaned segments in, and completing a swap a crash interrupted;
//! - `checkpoint`: the per-partition `cleaner-offset-checkpoint`;
//! - `throttle`: `log.cleaner.io.max.bytes.per.second` ([`Throttle`]);
//! - `threads`: the background cleaner threads ([`LogCleaner`]) and their statistics.

mod checkpoint;
mod filter;
mod offset_map;
mod pass;
mod range;
pub(crate) mod swap;
mod throttle;
mod writer;

pub use offset_map::OffsetMap;
pub use pass::CleanOutcome;
pub use range::CleanableRange;
pub use throttle::Throttle;
