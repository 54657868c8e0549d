//! [`FileRecords`]: whole record batches of a read, described as byte ranges of segment files
//! rather than copied out of them, so the broker can hand them to the socket with `sendfile`
//! (Kafka's `FileRecords`). Each range keeps its file open: a segment deleted by retention
//! while a response is being sent stays readable until the range is dropped.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::Batches;
use crate::error::{StorageError, io_err};
use crate::segment::{Segment, read_full_at};

/// `len` bytes of a segment's log file from `position`, holding whole batches.
#[derive(Debug, Clone)]
pub struct FileRange {
    file: Arc<File>,
    path: Arc<PathBuf>,
    position: u64,
    len: usize,
}

impl FileRange {
    pub(crate) fn new(
        segment: &Segment,
        position: u64,
        len: usize,
    ) -> Result<FileRange, StorageError> {
        Ok(FileRange {
            file: segment.log_file()?,
            path: segment.shared_log_path(),
            position,
            len,
        })
    }

    /// The open log file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the range starts in the file.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Length of the range in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty range.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Path of the file, for error messages.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Reads the range into `dst` (exactly `self.len()` bytes); returns the bytes read, short
    /// only when the file was truncated meanwhile.
    pub fn read_into(&self, dst: &mut [u8]) -> Result<usize, StorageError> {
        let len = self.len.min(dst.len());
        read_full_at(&self.file, &mut dst[..len], self.position).map_err(io_err("read", &self.path))
    }
}

/// The batches of one read, in log order, as file ranges.
#[derive(Debug, Clone, Default)]
pub struct FileRecords {
    /// Consecutive ranges, one per segment touched.
    pub ranges: Vec<FileRange>,
    /// Sum of the ranges' lengths.
    pub len: usize,
    /// Base offset of the first batch (which may be below the fetch offset).
    pub first_offset: Option<i64>,
}

impl FileRecords {
    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the read found nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the ranges into one 64-byte aligned buffer (copying from the page cache into an
    /// aligned destination is several times faster than into a misaligned one). If a file
    /// shrank under the read (truncation), only the whole batches that remain are returned.
    pub fn read_to_bytes(&self) -> Result<Bytes, StorageError> {
        if self.len == 0 {
            return Ok(Bytes::new());
        }
        let (mut buf, at) = aligned_buffer(self.len);
        let mut filled = 0;
        for range in &self.ranges {
            let n = range.read_into(&mut buf[at + filled..at + filled + range.len])?;
            filled += n;
            if n < range.len {
                break;
            }
        }
        let mut valid = filled;
        if filled < self.len {
            valid = 0;
            for item in Batches::new(&buf[at..at + filled]) {
                match item {
                    Ok((position, batch)) => valid = position + batch.size(),
                    Err(_) => break,
                }
            }
        }
        Ok(Bytes::from(buf).slice(at..at + valid))
    }
}

/// A zeroed buffer of `len + 63` bytes and the index at which a 64-byte aligned run of `len`
/// bytes starts.
fn aligned_buffer(len: usize) -> (Vec<u8>, usize) {
    const ALIGN: usize = 64;
    let buf = vec![0u8; len + ALIGN - 1];
    let misalignment = buf.as_ptr() as usize % ALIGN;
    (buf, (ALIGN - misalignment) % ALIGN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_buffer_is_aligned() {
        for len in [0, 1, 63, 64, 4096, 1 << 20] {
            let (buf, at) = aligned_buffer(len);
            assert_eq!((buf.as_ptr() as usize + at) % 64, 0);
            assert!(buf.len() >= at + len);
        }
    }
}
