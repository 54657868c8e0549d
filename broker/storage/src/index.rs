//! Sparse offset and time indexes of a segment in Kafka's entry formats.
//!
//! The active segment keeps its entries in memory (answering lookups) and writes them to the
//! `.index` / `.timeindex` files lazily — on flush, roll and close — as plain append-only
//! arrays (no preallocation or mmap). Its indexes are always rebuilt on recovery, so a lost tail
//! costs nothing. Sealed segments search the files directly (see `segment`).

/// Bytes per `.index` entry: relative offset u32, file position u32 (big-endian).
pub(crate) const OFFSET_ENTRY_SIZE: usize = 8;
/// Bytes per `.timeindex` entry: timestamp i64, relative offset u32 (big-endian).
pub(crate) const TIME_ENTRY_SIZE: usize = 12;

/// One offset index entry: the batch whose last offset is `base + relative_offset` starts at
/// `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) relative_offset: u32,
    pub(crate) position: u32,
}

impl OffsetEntry {
    pub(crate) fn decode(b: [u8; OFFSET_ENTRY_SIZE]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
}

/// One time index entry: the batch at `base + relative_offset` (its first offset) is the first
/// one whose max timestamp reached `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) relative_offset: u32,
}

impl TimeEntry {
    pub(crate) fn decode(b: [u8; TIME_ENTRY_SIZE]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
}

/// In-memory offset index of the active segment.
#[derive(Debug, Clone, Default)]
pub(crate) struct OffsetIndex {
    entries: Vec<OffsetEntry>,
    /// Entries already written to the file.
    persisted: usize,
}

impl OffsetIndex {
    /// Decodes a whole `.index` file already on disk (all entries count as persisted);
    /// `Err` when the entries do not move strictly forward.
    pub(crate) fn from_file_bytes(bytes: &[u8]) -> Result<Self, String> {
        let mut entries: Vec<OffsetEntry> = Vec::with_capacity(bytes.len() / OFFSET_ENTRY_SIZE);
        for chunk in bytes.chunks_exact(OFFSET_ENTRY_SIZE) {
            let mut b = [0u8; OFFSET_ENTRY_SIZE];
            b.copy_from_slice(chunk);
            let e = OffsetEntry::decode(b);
            if let Some(prev) = entries.last()
                && (e.relative_offset <= prev.relative_offset || e.position < prev.position)
            {
                return Err(format!("offset index entry {e:?} does not follow {prev:?}"));
            }
            entries.push(e);
        }
        let persisted = entries.len();
        Ok(OffsetIndex { entries, persisted })
    }

    /// Adds an entry; ignored unless it moves forward in both offset and position.
    pub(crate) fn append(&mut self, relative_offset: u32, position: u32) {
        if self
            .entries
            .last()
            .is_none_or(|last| relative_offset > last.relative_offset && position >= last.position)
        {
            self.entries.push(OffsetEntry {
                relative_offset,
                position,
            });
        }
    }

    /// Position of the latest indexed batch whose last offset is `<= relative_offset`, or 0:
    /// the batch holding `relative_offset` starts at or after it.
    pub(crate) fn lookup(&self, relative_offset: u32) -> u32 {
        let n = self
            .entries
            .partition_point(|e| e.relative_offset <= relative_offset);
        if n == 0 {
            0
        } else {
            self.entries[n - 1].position
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries not yet in the file, encoded, with the byte position to write them at; marks
    /// them persisted.
    pub(crate) fn take_unpersisted(&mut self) -> (u64, Vec<u8>) {
        let at = (self.persisted * OFFSET_ENTRY_SIZE) as u64;
        let mut out = Vec::with_capacity((self.entries.len() - self.persisted) * OFFSET_ENTRY_SIZE);
        for e in &self.entries[self.persisted..] {
            e.encode_into(&mut out);
        }
        self.persisted = self.entries.len();
        (at, out)
    }
}

/// In-memory time index of the active segment.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimeIndex {
    entries: Vec<TimeEntry>,
    persisted: usize,
}

impl TimeIndex {
    /// Decodes a whole `.timeindex` file already on disk, like
    /// [`OffsetIndex::from_file_bytes`].
    pub(crate) fn from_file_bytes(bytes: &[u8]) -> Result<Self, String> {
        let mut entries: Vec<TimeEntry> = Vec::with_capacity(bytes.len() / TIME_ENTRY_SIZE);
        for chunk in bytes.chunks_exact(TIME_ENTRY_SIZE) {
            let mut b = [0u8; TIME_ENTRY_SIZE];
            b.copy_from_slice(chunk);
            let e = TimeEntry::decode(b);
            if let Some(prev) = entries.last()
                && (e.timestamp <= prev.timestamp || e.relative_offset < prev.relative_offset)
            {
                return Err(format!("time index entry {e:?} does not follow {prev:?}"));
            }
            entries.push(e);
        }
        let persisted = entries.len();
        Ok(TimeIndex { entries, persisted })
    }

    /// Adds an entry when `timestamp` is above the last one (Kafka's `maybeAppend`).
    pub(crate) fn maybe_append(&mut self, timestamp: i64, relative_offset: u32) {
        if self.entries.last().is_none_or(|last| {
            timestamp > last.timestamp && relative_offset >= last.relative_offset
        }) {
            self.entries.push(TimeEntry {
                timestamp,
                relative_offset,
            });
        }
    }

    /// The latest entry whose timestamp is strictly below `timestamp`: every batch before its
    /// offset has a max timestamp below `timestamp` too, so a scan for `timestamp` may start there.
    pub(crate) fn lookup_before(&self, timestamp: i64) -> Option<TimeEntry> {
        let n = self.entries.partition_point(|e| e.timestamp < timestamp);
        if n == 0 {
            None
        } else {
            Some(self.entries[n - 1])
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Like [`OffsetIndex::take_unpersisted`].
    pub(crate) fn take_unpersisted(&mut self) -> (u64, Vec<u8>) {
        let at = (self.persisted * TIME_ENTRY_SIZE) as u64;
        let mut out = Vec::with_capacity((self.entries.len() - self.persisted) * TIME_ENTRY_SIZE);
        for e in &self.entries[self.persisted..] {
            e.encode_into(&mut out);
        }
        self.persisted = self.entries.len();
        (at, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_finds_floor_entry() {
        let mut idx = OffsetIndex::default();
        idx.append(9, 4096);
        idx.append(19, 8192);
        idx.append(19, 9000); // not increasing: ignored
        let cases = [
            (0, 0),
            (8, 0),
            (9, 4096),
            (15, 4096),
            (19, 8192),
            (1000, 8192),
        ];
        for (offset, want) in cases {
            assert_eq!(idx.lookup(offset), want, "offset {offset}");
        }
        assert_eq!(idx.len(), 2);
    }

    #[test]
    fn entries_are_written_once_in_kafka_format() {
        let mut idx = OffsetIndex::default();
        idx.append(3, 100);
        let (at, bytes) = idx.take_unpersisted();
        assert_eq!((at, bytes), (0, vec![0, 0, 0, 3, 0, 0, 0, 100]));
        idx.append(9, 350);
        let (at, bytes) = idx.take_unpersisted();
        assert_eq!(at, 8);
        let entry: [u8; 8] = bytes.try_into().expect("one entry");
        assert_eq!(
            OffsetEntry::decode(entry),
            OffsetEntry {
                relative_offset: 9,
                position: 350
            }
        );
        assert_eq!(idx.take_unpersisted(), (16, Vec::new()));

        let mut t = TimeIndex::default();
        t.maybe_append(-5, 2);
        let (at, bytes) = t.take_unpersisted();
        assert_eq!(at, 0);
        let entry: [u8; 12] = bytes.try_into().expect("one entry");
        assert_eq!(
            TimeEntry::decode(entry),
            TimeEntry {
                timestamp: -5,
                relative_offset: 2
            }
        );
    }

    #[test]
    fn file_bytes_round_trip_and_reject_disorder() {
        let mut idx = OffsetIndex::default();
        idx.append(3, 100);
        idx.append(7, 300);
        let (_, bytes) = idx.take_unpersisted();
        let mut back = OffsetIndex::from_file_bytes(&bytes).expect("valid");
        assert_eq!(back.lookup(5), 100);
        assert_eq!(back.take_unpersisted(), (16, Vec::new()), "already on disk");
        let mut swapped = bytes[8..].to_vec();
        swapped.extend_from_slice(&bytes[..8]);
        assert!(OffsetIndex::from_file_bytes(&swapped).is_err());

        let mut t = TimeIndex::default();
        t.maybe_append(10, 0);
        t.maybe_append(20, 4);
        let (_, bytes) = t.take_unpersisted();
        assert_eq!(TimeIndex::from_file_bytes(&bytes).expect("valid").len(), 2);
        let mut swapped = bytes[12..].to_vec();
        swapped.extend_from_slice(&bytes[..12]);
        assert!(TimeIndex::from_file_bytes(&swapped).is_err());
    }

    #[test]
    fn time_lookup_is_strictly_before() {
        let mut t = TimeIndex::default();
        t.maybe_append(100, 0);
        t.maybe_append(100, 3); // not raising: ignored
        t.maybe_append(200, 5);
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup_before(100), None);
        assert_eq!(t.lookup_before(101).map(|e| e.relative_offset), Some(0));
        assert_eq!(t.lookup_before(250).map(|e| e.relative_offset), Some(5));
    }
}
