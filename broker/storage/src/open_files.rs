//! The bounded cache of open sealed-segment files. Active segments keep their files open; a
//! sealed segment's files stay open only while they are among the most recently opened
//! [`MAX_OPEN_SEALED_SEGMENTS`] (first in, first out) or a read holds them, so a broker's open
//! descriptors do not grow with the number of segments it keeps. One cache per process: the
//! descriptor limit is per process too.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::segment::SegmentFiles;

/// Sealed segments whose files the cache keeps open (three descriptors each).
pub const MAX_OPEN_SEALED_SEGMENTS: usize = 512;

static OPEN: Mutex<VecDeque<Arc<SegmentFiles>>> = Mutex::new(VecDeque::new());

/// Keeps `files` open until `MAX_OPEN_SEALED_SEGMENTS` newer ones have been admitted.
pub(crate) fn admit(files: Arc<SegmentFiles>) {
    let evicted = {
        let mut open = OPEN.lock();
        open.push_back(files);
        let excess = open.len().saturating_sub(MAX_OPEN_SEALED_SEGMENTS);
        open.drain(..excess).collect::<Vec<_>>()
    };
    // Closing happens outside the lock (the last holder of an evicted entry closes it).
    drop(evicted);
}

/// Stops keeping `files` open (their segment left its log): they close once the reads holding
/// them are done, which frees the space of deleted files.
pub(crate) fn forget(files: &Arc<SegmentFiles>) {
    // The caller holds `files`, so nothing closes under the lock.
    OPEN.lock().retain(|open| !Arc::ptr_eq(open, files));
}
