//! The `cleaner-offset-checkpoint` file of a partition directory: where the dirty part of the
//! log starts, and the earliest delete horizon (KIP-534) of a tombstone kept in the clean
//! part, which makes the log worth cleaning again once it passes.
//!
//! Format (text, replaced atomically like the other checkpoints): a version line `0`, the
//! first dirty offset, the earliest delete horizon in ms (-1 when there is none).

use std::fs;
use std::io;
use std::path::Path;

use crate::checkpoint::{TEMP_SUFFIX, write_atomically};
use crate::error::{StorageError, io_err};

pub(crate) const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// What one cleaning pass leaves for the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CleanerCheckpoint {
    pub(crate) first_dirty_offset: i64,
    pub(crate) earliest_delete_horizon_ms: Option<i64>,
}

/// Reads the checkpoint; `None` when absent or unreadable (a damaged file only makes the next
/// pass start from the log start, which loses nothing).
pub(crate) fn read(dir: &Path) -> Result<Option<CleanerCheckpoint>, StorageError> {
    let path = dir.join(CLEANER_CHECKPOINT_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let mut lines = text.lines();
    let parsed = match (lines.next(), lines.next(), lines.next(), lines.next()) {
        (Some("0"), Some(offset), Some(horizon), None) => {
            match (offset.trim().parse::<i64>(), horizon.trim().parse::<i64>()) {
                (Ok(offset), Ok(horizon)) if offset >= 0 => Some(CleanerCheckpoint {
                    first_dirty_offset: offset,
                    earliest_delete_horizon_ms: (horizon >= 0).then_some(horizon),
                }),
                _ => None,
            }
        }
        _ => None,
    };
    if parsed.is_none() {
        tracing::warn!(file = %path.display(), "ignoring a malformed cleaner checkpoint");
    }
    Ok(parsed)
}

pub(crate) fn write(dir: &Path, checkpoint: CleanerCheckpoint) -> Result<(), StorageError> {
    let path = dir.join(CLEANER_CHECKPOINT_FILE);
    let tmp = dir.join(format!("{CLEANER_CHECKPOINT_FILE}{TEMP_SUFFIX}"));
    let text = format!(
        "0\n{}\n{}\n",
        checkpoint.first_dirty_offset,
        checkpoint.earliest_delete_horizon_ms.unwrap_or(-1)
    );
    write_atomically(dir, &path, &tmp, text.as_bytes())
}

/// After a truncation to `log_end_offset`: a first dirty offset beyond it moves back, so data
/// written again at those offsets is cleaned like any new data.
pub(crate) fn truncate(dir: &Path, log_end_offset: i64) -> Result<(), StorageError> {
    match read(dir)? {
        Some(c) if c.first_dirty_offset > log_end_offset => write(
            dir,
            CleanerCheckpoint {
                first_dirty_offset: log_end_offset,
                ..c
            },
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read(dir.path()).expect("absent"), None);
        let c = CleanerCheckpoint {
            first_dirty_offset: 42,
            earliest_delete_horizon_ms: Some(7),
        };
        write(dir.path(), c).expect("write");
        assert_eq!(read(dir.path()).expect("read"), Some(c));
        let c = CleanerCheckpoint {
            first_dirty_offset: 43,
            earliest_delete_horizon_ms: None,
        };
        write(dir.path(), c).expect("write");
        assert_eq!(read(dir.path()).expect("read"), Some(c));
        fs::write(dir.path().join(CLEANER_CHECKPOINT_FILE), "0\nx\n").expect("garbage");
        assert_eq!(read(dir.path()).expect("damaged reads as absent"), None);
    }
}
