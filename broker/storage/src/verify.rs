//! Which bytes of a segment hold valid batches, so reads that send file ranges to a socket
//! without copying them (`sendfile`) never send a damaged batch.
//!
//! A segment keeps a verified prefix: batches this process appended were validated on the
//! produce path and extend it as they are written; bytes that were on disk when the segment
//! was opened are checked once ([`validate_stored_batch`]: framing, CRC, header, records of
//! uncompressed batches) by the first read that reaches them, which then extends the prefix.
//! The first read of an old segment after a restart so reads it once up to where it reads;
//! later reads of those bytes cost nothing. A damaged batch stops the prefix; reads beyond it
//! check their own range each time (a damaged log is rare, and is reported on every read of
//! the damaged offset).

use std::sync::atomic::Ordering;

use crate::batch::RecordBatch;
use crate::error::StorageError;
use crate::segment::Segment;
use crate::validate::validate_stored_batch;

impl Segment {
    /// The end of the valid batches of `[from, end)` (both batch boundaries), walking from
    /// `from`: `end` when all are valid, the position of the first damaged batch otherwise
    /// (`from` itself when the first batch is damaged).
    pub(crate) fn verified_end(&self, from: u64, end: u64) -> Result<u64, StorageError> {
        let verified = self.verified_to.load(Ordering::Acquire);
        if end <= verified {
            return Ok(end);
        }
        let prefix_end = self.check_batches(verified, end)?;
        self.verified_to.fetch_max(prefix_end, Ordering::AcqRel);
        if prefix_end >= end {
            return Ok(end);
        }
        if from < prefix_end {
            return Ok(prefix_end);
        }
        // The read starts at or beyond a damaged batch: check its own range.
        self.check_batches(from, end)
    }

    /// Walks the batches of `[from, end)`; returns where the valid ones end.
    fn check_batches(&self, from: u64, end: u64) -> Result<u64, StorageError> {
        let mut position = from;
        let mut buf = Vec::new();
        while let Some(header) = self.header_at(position, end)? {
            buf.resize(header.size, 0);
            if self.read_at(&mut buf, position)? < header.size {
                break;
            }
            let valid =
                RecordBatch::parse(&buf).is_ok_and(|batch| validate_stored_batch(&batch).is_ok());
            if !valid {
                break;
            }
            position += header.size as u64;
        }
        Ok(position)
    }
}
