//! The `<offset>.snapshot` file format of the producer state.
//!
//! Version u16, CRC32C u32 of the rest, producer count u32, then per producer (sorted by id):
//! id i64, epoch i16, last timestamp i64, (version 2:) coordinator epoch i32, first offset of
//! the open transaction i64 (-1: none), then batch count u8 and the batches (first_seq i32,
//! last_seq i32, first_offset i64, last_offset i64). Big-endian. Version 1 (no transaction
//! fields) is still read: its producers have no open transaction and coordinator epoch -1.
//! Completed transactions are not kept: after a restart the high watermark is reloaded and
//! what the snapshot does not know is replayed from the log.

use std::collections::{HashMap, VecDeque};

use super::{BatchMetadata, MAX_CACHED_BATCHES, MAX_PRODUCERS_PER_PARTITION};
use super::{ProducerEntry, ProducerStateManager};

const SNAPSHOT_VERSION: u16 = 2;
const SNAPSHOT_V1: u16 = 1;
const SNAPSHOT_HEADER: usize = 2 + 4;
const PRODUCER_SIZE: usize = 8 + 2 + 8 + 4 + 8 + 1;
const BATCH_METADATA_SIZE: usize = 4 + 4 + 8 + 8;

impl ProducerStateManager {
    /// Serialises the state in the current version (see the module docs).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(
            4 + self.producers.len() * (PRODUCER_SIZE + 2 * BATCH_METADATA_SIZE),
        );
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        body.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            let entry = &self.producers[&id];
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            body.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            let txn = entry.current_txn_first_offset.unwrap_or(-1);
            body.extend_from_slice(&txn.to_be_bytes());
            // At most MAX_CACHED_BATCHES, so it fits a byte.
            body.push(entry.batches.len() as u8);
            for b in &entry.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER + body.len());
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses a snapshot of version 1 or 2, refusing anything damaged.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { buf: bytes };
        let version = u16::from_be_bytes(r.take::<2>()?);
        if version != SNAPSHOT_VERSION && version != SNAPSHOT_V1 {
            return Err(format!("unknown snapshot version {version}"));
        }
        let crc = u32::from_be_bytes(r.take::<4>()?);
        if crc32c::crc32c(r.buf) != crc {
            return Err("CRC32C mismatch".to_string());
        }
        let count = u32::from_be_bytes(r.take::<4>()?);
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = i64::from_be_bytes(r.take::<8>()?);
            let epoch = i16::from_be_bytes(r.take::<2>()?);
            let last_timestamp = i64::from_be_bytes(r.take::<8>()?);
            let (coordinator_epoch, current_txn_first_offset) = if version == SNAPSHOT_V1 {
                (-1, None)
            } else {
                let coordinator_epoch = i32::from_be_bytes(r.take::<4>()?);
                let first = i64::from_be_bytes(r.take::<8>()?);
                if first < -1 {
                    return Err(format!("producer {id} has transaction offset {first}"));
                }
                (coordinator_epoch, (first >= 0).then_some(first))
            };
            let [n] = r.take::<1>()?;
            if usize::from(n) > MAX_CACHED_BATCHES {
                return Err(format!("producer {id} has {n} cached batches"));
            }
            let mut batches = VecDeque::with_capacity(usize::from(n));
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: i32::from_be_bytes(r.take::<4>()?),
                    last_seq: i32::from_be_bytes(r.take::<4>()?),
                    first_offset: i64::from_be_bytes(r.take::<8>()?),
                    last_offset: i64::from_be_bytes(r.take::<8>()?),
                });
            }
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                    current_txn_first_offset,
                    coordinator_epoch,
                },
            );
        }
        if !r.buf.is_empty() {
            return Err(format!("{} trailing bytes", r.buf.len()));
        }
        let mut state = ProducerStateManager {
            producers,
            ..ProducerStateManager::default()
        };
        state.reindex_open_transactions();
        // A snapshot written before the bound existed may hold more.
        state.evict_to(MAX_PRODUCERS_PER_PARTITION);
        Ok(state)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        if self.buf.len() < N {
            return Err("snapshot ends early".to_string());
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[..N]);
        self.buf = &self.buf[N..];
        Ok(out)
    }
}
