//! The Raft log of the metadata quorum, on disk.
//!
//! Layout under the quorum directory:
//!
//! - `raft.log`: append-only frames `[len: u32 BE][crc32c(payload): u32 BE][payload]`, payload a
//!   JSON [`Entry`]. `append` fsyncs before it reports the entries flushed, so a committed
//!   metadata change survives `kill -9`. On open the file is scanned and truncated at the first
//!   torn or corrupt frame, as Kafka recovers a log segment.
//! - `vote.json`, `committed.json`, `purged.json`: the vote, the committed log id and the last
//!   purged log id, each replaced atomically.
//!
//! Entries are also kept in memory: the metadata log is small and is purged behind every
//! snapshot, and readers (replication, re-apply on start) never touch the disk. Purging rewrites
//! `raft.log` without the purged head; `purged.json` is written first, so a crash in between
//! leaves entries that are skipped on the next open.
//!
//! Blocking file I/O runs on tokio's blocking pool so it never stalls request handlers. The file
//! and the in-memory index have separate locks: readers take only the index lock, briefly, and
//! never wait for an fsync.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::File;
use std::fs::OpenOptions;
use std::io::Write;
use std::ops::RangeBounds;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::AnyError;
use openraft::LogState;
use openraft::OptionalSend;
use openraft::RaftLogId;
use openraft::RaftLogReader;
use openraft::StorageIOError;
use openraft::storage::LogFlushed;
use openraft::storage::RaftLogStorage;
use parking_lot::Mutex;

use crate::error::MetadataError;
use crate::files::read_json;
use crate::files::sync_parent;
use crate::files::write_atomic;
use crate::files::write_json;
use crate::raft_types::Entry;
use crate::raft_types::LogId;
use crate::raft_types::StorageError;
use crate::raft_types::TypeConfig;
use crate::raft_types::Vote;

pub(crate) const LOG_FILE: &str = "raft.log";
const VOTE_FILE: &str = "vote.json";
const COMMITTED_FILE: &str = "committed.json";
const PURGED_FILE: &str = "purged.json";
const FRAME_HEADER: usize = 8;
/// Frames larger than this are treated as corruption: a metadata batch is far smaller.
const MAX_FRAME: u32 = 64 * 1024 * 1024;

/// The file-backed Raft log store. Clones share the same log (the reader is a clone).
#[derive(Clone)]
pub struct FileLogStore {
    /// Held for the whole of a write, fsync included.
    file: Arc<Mutex<LogFile>>,
    /// Held only to read or update memory.
    index: Arc<Mutex<LogIndex>>,
}

impl Debug for FileLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let index = self.index.lock();
        f.debug_struct("FileLogStore")
            .field("entries", &index.entries.len())
            .field("last_purged", &index.last_purged)
            .finish()
    }
}

struct LogFile {
    dir: PathBuf,
    file: File,
    len: u64,
}

struct LogIndex {
    /// Entries by index, with the file position of their frame.
    entries: BTreeMap<u64, (Entry, u64)>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

impl FileLogStore {
    /// Opens (or creates) the log under `dir`, recovering a torn tail.
    pub fn open(dir: &Path) -> Result<Self, MetadataError> {
        let last_purged: Option<LogId> =
            read_json::<Option<LogId>>(&dir.join(PURGED_FILE))?.flatten();
        let vote: Option<Vote> = read_json(&dir.join(VOTE_FILE))?;
        let committed: Option<LogId> =
            read_json::<Option<LogId>>(&dir.join(COMMITTED_FILE))?.flatten();
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| MetadataError::io("open", &path, e))?;
        let bytes = std::fs::read(&path).map_err(|e| MetadataError::io("read", &path, e))?;
        let (frames, valid_len) = scan_frames(&bytes);
        if valid_len < bytes.len() as u64 {
            tracing::warn!(
                path = %path.display(),
                valid_bytes = valid_len,
                dropped_bytes = bytes.len() as u64 - valid_len,
                "metadata log has a torn or corrupt tail; truncating it"
            );
            file.set_len(valid_len)
                .map_err(|e| MetadataError::io("truncate", &path, e))?;
            file.sync_all()
                .map_err(|e| MetadataError::io("fsync", &path, e))?;
        }
        file.flush()
            .map_err(|e| MetadataError::io("flush", &path, e))?;
        let purged_index = last_purged.map(|l| l.index);
        let entries = frames
            .into_iter()
            .filter(|(entry, _)| Some(entry.log_id.index) > purged_index)
            .map(|(entry, pos)| (entry.log_id.index, (entry, pos)))
            .collect();
        Ok(Self {
            file: Arc::new(Mutex::new(LogFile {
                dir: dir.to_owned(),
                file,
                len: valid_len,
            })),
            index: Arc::new(Mutex::new(LogIndex {
                entries,
                last_purged,
                vote,
                committed,
            })),
        })
    }

    /// Runs `f` on the blocking pool with the file locked; openraft awaits each write before
    /// issuing the next, which keeps log and vote I/O serialized as it requires.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LogFile, &Mutex<LogIndex>) -> Result<T, MetadataError> + Send + 'static,
    ) -> Result<T, MetadataError> {
        let file = Arc::clone(&self.file);
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || f(&mut file.lock(), &index))
            .await
            .map_err(|e| MetadataError::Raft {
                message: format!("metadata log I/O task failed: {e}"),
            })?
    }
}

/// Parses consecutive valid frames; returns them with their positions and the length of the
/// valid prefix. Stops at the first short, oversized, corrupt, undecodable or out-of-order frame.
pub(crate) fn scan_frames(bytes: &[u8]) -> (Vec<(Entry, u64)>, u64) {
    let mut frames: Vec<(Entry, u64)> = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= FRAME_HEADER {
        let header = &bytes[pos..pos + FRAME_HEADER];
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_FRAME || bytes.len() - pos - FRAME_HEADER < len as usize {
            break;
        }
        let payload = &bytes[pos + FRAME_HEADER..pos + FRAME_HEADER + len as usize];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Ok(entry) = crate::leader_id_format::from_slice::<Entry>(payload) else {
            break;
        };
        if let Some((prev, _)) = frames.last()
            && entry.log_id.index != prev.log_id.index + 1
        {
            break;
        }
        frames.push((entry, pos as u64));
        pos += FRAME_HEADER + len as usize;
    }
    (frames, pos as u64)
}

pub(crate) fn encode_frame(entry: &Entry, out: &mut Vec<u8>) -> Result<(), MetadataError> {
    let payload = serde_json::to_vec(entry).map_err(|e| MetadataError::Raft {
        message: format!("cannot serialize log entry {}: {e}", entry.log_id),
    })?;
    let len = u32::try_from(payload.len()).map_err(|_| MetadataError::Raft {
        message: format!(
            "log entry {} is too large: {} bytes",
            entry.log_id,
            payload.len()
        ),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

impl LogFile {
    fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    fn append(&mut self, index: &Mutex<LogIndex>, new: Vec<Entry>) -> Result<(), MetadataError> {
        let mut buf = Vec::new();
        let mut positions = Vec::with_capacity(new.len());
        for entry in &new {
            positions.push(self.len + buf.len() as u64);
            encode_frame(entry, &mut buf)?;
        }
        let path = self.log_path();
        self.file
            .write_all(&buf)
            .map_err(|e| MetadataError::io("append to", &path, e))?;
        self.file
            .sync_data()
            .map_err(|e| MetadataError::io("fsync", &path, e))?;
        self.len += buf.len() as u64;
        let mut index = index.lock();
        for (entry, pos) in new.into_iter().zip(positions) {
            index.entries.insert(entry.log_id.index, (entry, pos));
        }
        Ok(())
    }

    fn truncate(&mut self, index: &Mutex<LogIndex>, since: u64) -> Result<(), MetadataError> {
        let first_removed = index
            .lock()
            .entries
            .range(since..)
            .next()
            .map(|(_, (_, pos))| *pos);
        let Some(pos) = first_removed else {
            return Ok(());
        };
        let path = self.log_path();
        self.file
            .set_len(pos)
            .map_err(|e| MetadataError::io("truncate", &path, e))?;
        self.file
            .sync_all()
            .map_err(|e| MetadataError::io("fsync", &path, e))?;
        self.len = pos;
        index.lock().entries.split_off(&since);
        Ok(())
    }

    fn purge(&mut self, index: &Mutex<LogIndex>, upto: LogId) -> Result<(), MetadataError> {
        write_json(&self.dir.join(PURGED_FILE), &Some(upto))?;
        // Rewrite the log without the purged head. Encoding happens under the index lock but
        // is memory-only; the file is written after it is released.
        let mut buf = Vec::new();
        let mut positions = Vec::new();
        {
            let mut index = index.lock();
            index.last_purged = Some(upto);
            index.entries = index.entries.split_off(&(upto.index + 1));
            for (entry, _) in index.entries.values() {
                positions.push(buf.len() as u64);
                encode_frame(entry, &mut buf)?;
            }
        }
        let path = self.log_path();
        write_atomic(&path, &buf)?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| MetadataError::io("reopen", &path, e))?;
        sync_parent(&path)?;
        self.len = buf.len() as u64;
        // Openraft serializes writes, so the index holds exactly the entries encoded above.
        for ((_, pos), new_pos) in index.lock().entries.values_mut().zip(positions) {
            *pos = new_pos;
        }
        Ok(())
    }
}

fn storage_error(e: MetadataError) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn read_error(e: MetadataError) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

impl RaftLogReader<TypeConfig> for FileLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let index = self.index.lock();
        Ok(index
            .entries
            .range(range)
            .map(|(_, (entry, _))| entry.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for FileLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let index = self.index.lock();
        let last_log_id = index
            .entries
            .values()
            .next_back()
            .map(|(entry, _)| *entry.get_log_id())
            .or(index.last_purged);
        Ok(LogState {
            last_purged_log_id: index.last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote = *vote;
        self.blocking(move |log, index| {
            write_json(&log.dir.join(VOTE_FILE), &vote)?;
            index.lock().vote = Some(vote);
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.index.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.blocking(move |log, index| {
            if index.lock().committed != committed {
                write_json(&log.dir.join(COMMITTED_FILE), &committed)?;
                index.lock().committed = committed;
            }
            Ok(())
        })
        .await
        .map_err(storage_error)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.index.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        match self
            .blocking(move |log, index| log.append(index, entries))
            .await
        {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(storage_error(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.blocking(move |log, index| log.truncate(index, log_id.index))
            .await
            .map_err(storage_error)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.blocking(move |log, index| log.purge(index, log_id))
            .await
            .map_err(read_error)
    }
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;
    use openraft::EntryPayload;

    use super::*;
    use crate::raft_types::MetadataBatch;
    use crate::records::MetadataRecord;

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(MetadataBatch {
                records: vec![MetadataRecord::Topic {
                    name: format!("t{index}"),
                    topic_id: uuid::Uuid::from_u128(u128::from(index)),
                }],
            }),
        }
    }

    fn indexes(store: &FileLogStore) -> Vec<u64> {
        store.index.lock().entries.keys().copied().collect()
    }

    fn append_sync(store: &FileLogStore, range: std::ops::RangeInclusive<u64>) {
        store
            .file
            .lock()
            .append(&store.index, range.map(entry).collect())
            .expect("append");
    }

    #[test]
    fn entries_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileLogStore::open(dir.path()).expect("open");
        append_sync(&store, 1..=5);
        drop(store);
        let store = FileLogStore::open(dir.path()).expect("reopen");
        assert_eq!(indexes(&store), vec![1, 2, 3, 4, 5]);
        let first = store.index.lock().entries.get(&3).map(|(e, _)| e.clone());
        assert_eq!(first, Some(entry(3)));
    }

    #[test]
    fn torn_and_corrupt_tails_are_truncated() {
        // (what to do to the file, entries expected to survive)
        type Damage = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Damage, Vec<u64>)> = vec![
            (
                "half a header",
                Box::new(|b| b.extend_from_slice(&[0, 0, 0])),
                vec![1, 2, 3],
            ),
            (
                "cut inside the last payload",
                Box::new(|b| {
                    let n = b.len();
                    b.truncate(n - 5);
                }),
                vec![1, 2],
            ),
            (
                "flipped byte in the last payload",
                Box::new(|b| {
                    let n = b.len();
                    b[n - 3] ^= 0xff;
                }),
                vec![1, 2],
            ),
            (
                "garbage length",
                Box::new(|b| b.extend_from_slice(&[0xff; 16])),
                vec![1, 2, 3],
            ),
        ];
        for (name, damage, expect) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = FileLogStore::open(dir.path()).expect("open");
            append_sync(&store, 1..=3);
            drop(store);
            let path = dir.path().join(LOG_FILE);
            let mut bytes = std::fs::read(&path).expect("read log");
            damage(&mut bytes);
            std::fs::write(&path, &bytes).expect("write damaged log");

            let store = FileLogStore::open(dir.path()).expect("open recovers");
            assert_eq!(indexes(&store), expect, "{name}");
            // The log stays appendable after recovery, and the appended entries survive.
            let next = expect.last().copied().unwrap_or(0) + 1;
            append_sync(&store, next..=next);
            drop(store);
            let store = FileLogStore::open(dir.path()).expect("reopen");
            let mut all = expect.clone();
            all.push(next);
            assert_eq!(indexes(&store), all, "{name} after append");
        }
    }

    /// A directory written with `(term, node id)` leader ids opens with every entry, its vote
    /// and its committed id, each old leader id read as `leader_id_format` maps it.
    #[test]
    fn a_directory_of_the_earlier_leader_id_form_opens_whole() {
        const OLD: &str = r#""leader_id":{"term":1,"node_id":2}"#;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Vec::new();
        for index in 1..=3 {
            let json = serde_json::to_string(&entry(index)).expect("encodes");
            let payload = json.replacen(r#""leader_id":1"#, OLD, 1);
            assert_ne!(payload, json, "the entry carries a leader id");
            log.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
            log.extend_from_slice(&crc32c::crc32c(payload.as_bytes()).to_be_bytes());
            log.extend_from_slice(payload.as_bytes());
        }
        std::fs::write(dir.path().join(LOG_FILE), &log).expect("write log");
        let write = |file: &str, json: String| {
            std::fs::write(dir.path().join(file), json).expect("write");
        };
        write(VOTE_FILE, format!(r#"{{{OLD},"committed":true}}"#));
        write(COMMITTED_FILE, format!(r#"{{{OLD},"index":3}}"#));

        let store = FileLogStore::open(dir.path()).expect("opens");
        let term = 65536 + 2;
        let index = store.index.lock();
        let entries: Vec<LogId> = index.entries.values().map(|(e, _)| e.log_id).collect();
        let expected: Vec<LogId> = (1..=3)
            .map(|i| LogId::new(CommittedLeaderId::new(term, 2), i))
            .collect();
        assert_eq!(entries, expected);
        assert_eq!(
            index.entries.get(&2).map(|(e, _)| &e.payload),
            Some(&entry(2).payload)
        );
        assert_eq!(index.vote, Some(Vote::new_committed(term, 2)));
        assert_eq!(index.committed, Some(expected[2]));
    }

    #[test]
    fn truncate_and_purge_persist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileLogStore::open(dir.path()).expect("open");
        append_sync(&store, 1..=10);
        store
            .file
            .lock()
            .truncate(&store.index, 8)
            .expect("truncate");
        assert_eq!(indexes(&store), (1..=7).collect::<Vec<_>>());
        store
            .file
            .lock()
            .purge(&store.index, LogId::new(CommittedLeaderId::new(1, 1), 4))
            .expect("purge");
        append_sync(&store, 8..=9);
        drop(store);
        let store = FileLogStore::open(dir.path()).expect("reopen");
        assert_eq!(indexes(&store), vec![5, 6, 7, 8, 9]);
        assert_eq!(store.index.lock().last_purged.map(|l| l.index), Some(4));
        // The purged head is gone from disk, not just hidden.
        let bytes = std::fs::read(dir.path().join(LOG_FILE)).expect("read log");
        let (frames, _) = scan_frames(&bytes);
        assert_eq!(frames.first().map(|(e, _)| e.log_id.index), Some(5));
    }
}
