//! `partition.metadata`: which topic id a partition directory belongs to (Kafka's
//! `PartitionMetadataFile`), so a topic deleted and re-created under the same name while a broker
//! was down is never mistaken for the old one.
//!
//! Format, as Kafka writes it: `version: 0` then `topic_id: <id>`. Written like every other
//! state file of the log: to a temporary file, fsynced, renamed over the old one, then the
//! directory fsynced, so a crash leaves the old file or the new one, never a torn one (a
//! temporary file left over is deleted when the log is opened).

use std::fs;
use std::io;
use std::path::Path;

use crate::checkpoint::{TEMP_SUFFIX, write_atomically};
use crate::error::{StorageError, io_err};

/// Name of the file in the partition directory.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// The topic id recorded in `dir`, `None` when the file is absent. A file that does not parse
/// is [`StorageError::CorruptLogFile`].
pub fn read_topic_id(dir: &Path) -> Result<Option<String>, StorageError> {
    let path = dir.join(PARTITION_METADATA_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let mut lines = text.lines();
    let version = lines.next().and_then(|l| l.strip_prefix("version:"));
    let topic_id = lines.next().and_then(|l| l.strip_prefix("topic_id:"));
    match (version.map(str::trim), topic_id.map(str::trim)) {
        (Some("0"), Some(id)) if !id.is_empty() => Ok(Some(id.to_string())),
        _ => Err(StorageError::CorruptLogFile {
            path,
            reason: "expected \"version: 0\" and \"topic_id: <id>\" lines".to_string(),
        }),
    }
}

/// Atomically records `topic_id` in `dir` (which must exist).
pub fn write_topic_id(dir: &Path, topic_id: &str) -> Result<(), StorageError> {
    let path = dir.join(PARTITION_METADATA_FILE);
    let tmp = dir.join(format!("{PARTITION_METADATA_FILE}{TEMP_SUFFIX}"));
    write_atomically(
        dir,
        &path,
        &tmp,
        format!("version: 0\ntopic_id: {topic_id}\n").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_absent_and_damaged() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_topic_id(dir.path()).expect("absent"), None);
        write_topic_id(dir.path(), "abc").expect("write");
        assert_eq!(
            read_topic_id(dir.path()).expect("read").as_deref(),
            Some("abc")
        );
        fs::write(dir.path().join(PARTITION_METADATA_FILE), "version: 0\ntop").expect("tear");
        assert!(matches!(
            read_topic_id(dir.path()),
            Err(StorageError::CorruptLogFile { .. })
        ));
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_topic_id(dir.path(), "old").expect("write");
        // A directory where the temporary file goes makes the write fail before the rename.
        fs::create_dir(
            dir.path()
                .join(format!("{PARTITION_METADATA_FILE}{TEMP_SUFFIX}")),
        )
        .expect("block the temporary file");
        assert!(write_topic_id(dir.path(), "new").is_err());
        assert_eq!(
            read_topic_id(dir.path()).expect("read").as_deref(),
            Some("old")
        );
    }
}
