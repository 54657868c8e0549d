//! Small-file persistence shared by the log store and the state machine: atomic replacement
//! (write temp + fsync + rename + fsync dir), so a crash leaves either the old or the new
//! content, never a mix.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::MetadataError;

/// Replaces `path` with `bytes` atomically and durably.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MetadataError> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(|e| MetadataError::io("create", &tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| MetadataError::io("write", &tmp, e))?;
    file.sync_all()
        .map_err(|e| MetadataError::io("fsync", &tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| MetadataError::io("rename into place", path, e))?;
    sync_parent(path)
}

/// Fsyncs the directory holding `path`, making a rename or a new file durable.
pub(crate) fn sync_parent(path: &Path) -> Result<(), MetadataError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| MetadataError::io("fsync directory", dir, e))
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), MetadataError> {
    let bytes = serde_json::to_vec(value).map_err(|e| MetadataError::Corrupt {
        path: path.to_owned(),
        reason: format!("cannot serialize: {e}"),
    })?;
    write_atomic(path, &bytes)
}

/// Reads a JSON file written by [`write_json`]; `None` when it does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, MetadataError> {
    match std::fs::read(path) {
        Ok(bytes) => crate::leader_id_format::from_slice(&bytes)
            .map(Some)
            .map_err(|e| MetadataError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(MetadataError::io("read", path, e)),
    }
}

/// An exclusive advisory lock on `<dir>/.lock`, held as long as the returned file is open, so
/// two processes never write one directory. The one lock helper of the broker's directories.
pub fn lock_dir(dir: &Path) -> Result<File, MetadataError> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| MetadataError::io("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(MetadataError::DirectoryInUse {
            path: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(MetadataError::io("lock", &path, e)),
    }
}
