//! The fate of the transactions in a log, read from its markers, so a pass handles
//! transactional data as Kafka does: committed data is compacted like any other, aborted data
//! is removed (and never mapped), data of a transaction still open (no marker below the
//! cleanable end) is kept as written and not mapped. Markers themselves are kept: a consumer
//! reading from the start needs the marker of every transaction whose data it may see.

use std::collections::HashMap;

use crate::batch::BatchHeader;
use crate::error::StorageError;
use crate::log::LogSnapshot;
use crate::records;

/// What became of the transaction a batch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Not transactional, or committed: compacted like any data.
    Visible,
    /// Aborted: removed.
    Aborted,
    /// No marker yet: kept as written.
    Open,
}

/// Per producer id, its aborted transactions (first offset, marker offset) and the first
/// offset of its open one. Transactions with a commit marker need no entry: a transactional
/// batch in neither is committed. Memory grows with aborted transactions only.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    aborted: HashMap<i64, Vec<(i64, i64)>>,
    open: HashMap<i64, i64>,
}

impl Transactions {
    /// Walks the batch headers below `end` (reading the records of control batches only).
    pub(crate) fn collect(snap: &LogSnapshot, end: i64) -> Result<Transactions, StorageError> {
        let mut txns = Transactions::default();
        let mut buf = Vec::new();
        for (i, segment) in snap.segments.iter().enumerate() {
            if segment.base_offset() >= end {
                break;
            }
            let limit = snap.end_of(i);
            let mut position = 0;
            while let Some(header) = segment.header_at(position, limit)? {
                if header.base_offset >= end {
                    break;
                }
                if header.is_transactional() && !header.is_control() {
                    txns.open
                        .entry(header.producer_id)
                        .or_insert(header.base_offset);
                } else if header.is_control() && txns.open.contains_key(&header.producer_id) {
                    buf.resize(header.size, 0);
                    segment.read_at(&mut buf, position)?;
                    // Another kind of control record does not end the transaction.
                    let ends = crate::batch::RecordBatch::parse(&buf)
                        .ok()
                        .and_then(|b| records::read_marker(&b));
                    if let Some(marker) = ends
                        && let Some(first) = txns.open.remove(&header.producer_id)
                        && !marker.commit
                    {
                        txns.aborted
                            .entry(header.producer_id)
                            .or_default()
                            .push((first, header.base_offset));
                    }
                }
                position += header.size as u64;
            }
        }
        Ok(txns)
    }

    /// The fate of the transaction `header`'s batch belongs to.
    pub(crate) fn fate(&self, header: &BatchHeader) -> Fate {
        if !header.is_transactional() || header.is_control() {
            return Fate::Visible;
        }
        let pid = header.producer_id;
        let offset = header.base_offset;
        if self.aborted.get(&pid).is_some_and(|ranges| {
            ranges
                .iter()
                .any(|(first, marker)| (*first..*marker).contains(&offset))
        }) {
            Fate::Aborted
        } else if self.open.get(&pid).is_some_and(|first| offset >= *first) {
            Fate::Open
        } else {
            Fate::Visible
        }
    }
}
