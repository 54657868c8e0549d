//! Offset checkpoint files of a whole log directory, in Kafka's format and under Kafka's names:
//! `replication-offset-checkpoint` (high watermarks), `recovery-point-offset-checkpoint`
//! (recovery points) and `log-start-offset-checkpoint` (log start offsets).
//!
//! Format (text): a version line `0`, the entry count, then one `topic partition offset` line
//! per entry. Topic names never hold whitespace (Kafka allows `[a-zA-Z0-9._-]`), so a space
//! separates the fields. Written to a temporary file, fsynced, renamed over the old file, then
//! the directory is fsynced, so a crash leaves either the old or the new file whole.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::checkpoint::{TEMP_SUFFIX, write_atomically};
use crate::error::{StorageError, io_err};

const VERSION: &str = "0";

/// Offsets by `(topic, partition)`.
pub type PartitionOffsets = BTreeMap<(String, i32), i64>;

/// One offset checkpoint file of a log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCheckpoint {
    path: PathBuf,
}

impl OffsetCheckpoint {
    /// Kafka's file of high watermarks.
    pub const REPLICATION: &'static str = "replication-offset-checkpoint";
    /// Kafka's file of recovery points.
    pub const RECOVERY_POINT: &'static str = "recovery-point-offset-checkpoint";
    /// Kafka's file of log start offsets.
    pub const LOG_START_OFFSET: &'static str = "log-start-offset-checkpoint";

    /// The checkpoint file `name` (one of the constants) in `log_dir`.
    pub fn new(log_dir: &Path, name: &str) -> Self {
        OffsetCheckpoint {
            path: log_dir.join(name),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file; a missing file reads as empty. A malformed one is
    /// [`StorageError::CorruptCheckpoint`], naming the file and the line.
    pub fn read(&self) -> Result<PartitionOffsets, StorageError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PartitionOffsets::new()),
            Err(e) => return Err(io_err("read", &self.path)(e)),
        };
        let corrupt = |line: usize, reason: String| StorageError::CorruptCheckpoint {
            path: self.path.clone(),
            line,
            reason,
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            corrupt(line, "not UTF-8 text".to_string())
        })?;
        let mut lines = text.lines();
        match lines.next() {
            Some(VERSION) => {}
            Some(other) => return Err(corrupt(1, format!("version {other:?}, expected \"0\""))),
            None => return Err(corrupt(1, "the file is empty".to_string())),
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| corrupt(2, "expected the entry count".to_string()))?;
        let mut out = PartitionOffsets::new();
        for i in 0..count {
            let line_no = i + 3;
            let line = lines.next().ok_or_else(|| {
                corrupt(line_no, format!("{count} entries announced, {i} present"))
            })?;
            let mut fields = line.split(' ');
            let parsed = match (fields.next(), fields.next(), fields.next(), fields.next()) {
                (Some(topic), Some(partition), Some(offset), None) if !topic.is_empty() => {
                    partition
                        .parse::<i32>()
                        .ok()
                        .filter(|p| *p >= 0)
                        .zip(offset.parse::<i64>().ok())
                        .map(|(p, o)| (topic, p, o))
                }
                _ => None,
            };
            let Some((topic, partition, offset)) = parsed else {
                return Err(corrupt(
                    line_no,
                    format!("expected \"topic partition offset\", found {line:?}"),
                ));
            };
            if out.insert((topic.to_string(), partition), offset).is_some() {
                return Err(corrupt(
                    line_no,
                    format!("{topic} partition {partition} appears twice"),
                ));
            }
        }
        if let Some((extra, _)) = lines.enumerate().find(|(_, l)| !l.trim().is_empty()) {
            return Err(corrupt(
                count + 3 + extra,
                format!("more lines than the {count} entries announced"),
            ));
        }
        Ok(out)
    }

    /// Atomically replaces the file with `offsets` (and fsyncs the directory).
    pub fn write(&self, offsets: &PartitionOffsets) -> Result<(), StorageError> {
        let mut text = format!("{VERSION}\n{}\n", offsets.len());
        for ((topic, partition), offset) in offsets {
            let invalid = |reason| StorageError::InvalidCheckpointEntry {
                path: self.path.clone(),
                topic: topic.clone(),
                partition: *partition,
                reason,
            };
            if topic.is_empty() || topic.chars().any(char::is_whitespace) {
                return Err(invalid("a topic name is not empty and holds no whitespace"));
            }
            if *partition < 0 {
                return Err(invalid("partitions are not negative"));
            }
            text.push_str(&format!("{topic} {partition} {offset}\n"));
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(TEMP_SUFFIX);
        write_atomically(dir, &self.path, Path::new(&tmp), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(entries: &[(&str, i32, i64)]) -> PartitionOffsets {
        entries
            .iter()
            .map(|&(t, p, o)| ((t.to_string(), p), o))
            .collect()
    }

    #[test]
    fn round_trip_in_kafkas_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = OffsetCheckpoint::new(dir.path(), OffsetCheckpoint::REPLICATION);
        assert_eq!(
            file.read().expect("missing reads empty"),
            PartitionOffsets::new()
        );
        let want = offsets(&[
            ("orders", 0, 42),
            ("orders", 11, 7),
            ("__consumer_offsets", 3, 0),
        ]);
        file.write(&want).expect("write");
        assert_eq!(
            fs::read_to_string(file.path()).expect("read"),
            "0\n3\n__consumer_offsets 3 0\norders 0 42\norders 11 7\n"
        );
        assert_eq!(file.read().expect("read"), want);
        file.write(&PartitionOffsets::new()).expect("write empty");
        assert_eq!(fs::read_to_string(file.path()).expect("read"), "0\n0\n");
        assert!(
            !dir.path()
                .join("replication-offset-checkpoint.tmp")
                .exists()
        );
        // Kafka's own file (written by its CheckpointFile) reads too.
        fs::write(file.path(), "0\n2\ntopic-a 0 100\ntopic.b 5 -1\n").expect("write");
        assert_eq!(
            file.read().expect("read"),
            offsets(&[("topic-a", 0, 100), ("topic.b", 5, -1)])
        );
    }

    #[test]
    fn malformed_files_name_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = OffsetCheckpoint::new(dir.path(), OffsetCheckpoint::RECOVERY_POINT);
        let cases: &[(&str, usize)] = &[
            ("", 1),
            ("1\n0\n", 1),
            ("0\n", 2),
            ("0\nmany\n", 2),
            ("0\n2\nt 0 1\n", 4),
            ("0\n1\nt 0\n", 3),
            ("0\n1\nt x 1\n", 3),
            ("0\n1\nt -1 1\n", 3),
            ("0\n1\nt 0 1 2\n", 3),
            ("0\n2\nt 0 1\nt 0 2\n", 4),
            ("0\n1\nt 0 1\nu 0 1\n", 4),
            ("0\n1\nt 0 \u{0}\n", 3),
        ];
        for &(text, line) in cases {
            fs::write(file.path(), text).expect("write");
            match file.read() {
                Err(StorageError::CorruptCheckpoint {
                    line: l, ref path, ..
                }) => {
                    assert_eq!((l, path.as_path()), (line, file.path()), "{text:?}");
                }
                other => panic!("{text:?}: expected a malformed file, got {other:?}"),
            }
        }
        fs::write(file.path(), b"0\n1\n\xff 0 1\n").expect("write");
        assert!(matches!(
            file.read(),
            Err(StorageError::CorruptCheckpoint { line: 3, .. })
        ));
        for bad in [
            offsets(&[("a b", 0, 1)]),
            offsets(&[("", 0, 1)]),
            offsets(&[("t", -2, 1)]),
        ] {
            assert!(matches!(
                file.write(&bad),
                Err(StorageError::InvalidCheckpointEntry { .. })
            ));
        }
    }
}
