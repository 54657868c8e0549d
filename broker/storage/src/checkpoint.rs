//! The `log-start-offset` checkpoint: the log start offset set by DeleteRecords, which no
//! segment boundary records, so it must survive a restart on its own.
//!
//! Format (text, like Kafka's checkpoint files): a version line `0` then the offset. Written to a
//! temporary file, fsynced and renamed over the old one, then the directory is fsynced.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{StorageError, io_err};

pub(crate) const LOG_START_OFFSET_FILE: &str = "log-start-offset";
/// Present only while the log is closed after a clean shutdown (Kafka's
/// `.kafka_cleanshutdown`, kept per partition): recovery may then skip the full scan.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// Suffix of files being written; any left over from a crash are deleted on open.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";
const VERSION: &str = "0";

/// Reads the checkpoint; `None` when absent. A damaged file is reported, not guessed at.
pub(crate) fn read_log_start_offset(dir: &Path) -> Result<Option<i64>, StorageError> {
    let path = dir.join(LOG_START_OFFSET_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let mut lines = text.lines();
    let parsed = match (lines.next(), lines.next(), lines.next()) {
        (Some(VERSION), Some(offset), None) => {
            offset.trim().parse::<i64>().ok().filter(|o| *o >= 0)
        }
        _ => None,
    };
    match parsed {
        Some(offset) => Ok(Some(offset)),
        None => Err(StorageError::CorruptLogFile {
            path,
            reason: "expected a version line \"0\" and a non-negative offset".to_string(),
        }),
    }
}

/// Atomically replaces the checkpoint.
pub(crate) fn write_log_start_offset(dir: &Path, offset: i64) -> Result<(), StorageError> {
    let path = dir.join(LOG_START_OFFSET_FILE);
    let tmp = dir.join(format!("{LOG_START_OFFSET_FILE}{TEMP_SUFFIX}"));
    write_atomically(
        dir,
        &path,
        &tmp,
        format!("{VERSION}\n{offset}\n").as_bytes(),
    )
}

/// Records that everything was flushed and the log closed.
pub(crate) fn write_clean_shutdown_marker(dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(CLEAN_SHUTDOWN_FILE);
    let tmp = dir.join(format!("{CLEAN_SHUTDOWN_FILE}{TEMP_SUFFIX}"));
    write_atomically(dir, &path, &tmp, b"")
}

/// Removes the marker, durably, and says whether it was there. It must be gone before the log
/// is written again, so that a crash afterwards leads to a full recovery.
pub(crate) fn take_clean_shutdown_marker(dir: &Path) -> Result<bool, StorageError> {
    let path = dir.join(CLEAN_SHUTDOWN_FILE);
    match fs::remove_file(&path) {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("delete", &path)(e)),
    }
}

/// Writes `bytes` to `tmp`, fsyncs, renames to `path`, fsyncs `dir`.
pub(crate) fn write_atomically(
    dir: &Path,
    path: &Path,
    tmp: &Path,
    bytes: &[u8],
) -> Result<(), StorageError> {
    let written = File::create(tmp)
        .map_err(io_err("create", tmp))
        .and_then(|mut file| {
            file.write_all(bytes).map_err(io_err("write", tmp))?;
            file.sync_all().map_err(io_err("fsync", tmp))
        })
        .and_then(|()| fs::rename(tmp, path).map_err(io_err("rename", tmp)));
    if let Err(error) = written {
        // The old file is untouched; a temporary file left behind would be deleted on the next
        // open anyway.
        let _ = fs::remove_file(tmp);
        return Err(error);
    }
    sync_dir(dir)
}

/// fsync of a directory, making renames and new entries in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            read_log_start_offset(dir.path()).expect("absent is fine"),
            None
        );
        write_log_start_offset(dir.path(), 42).expect("write");
        assert_eq!(read_log_start_offset(dir.path()).expect("read"), Some(42));
        write_log_start_offset(dir.path(), 7).expect("overwrite");
        assert_eq!(read_log_start_offset(dir.path()).expect("read"), Some(7));
        fs::write(dir.path().join(LOG_START_OFFSET_FILE), "0\nabc\n").expect("write garbage");
        assert!(matches!(
            read_log_start_offset(dir.path()),
            Err(StorageError::CorruptLogFile { .. })
        ));
    }
}
