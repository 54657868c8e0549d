//! Property tests of segment recovery from whatever bytes are on disk: a log whose active
//! segment was cut anywhere, had a byte flipped anywhere a CRC or the framing covers, or got
//! garbage after its last batch reopens with exactly the whole valid batches before the damage
//! (their offsets and their bytes) and appends after them; a segment of arbitrary bytes, or of
//! batches whose CRC matches over arbitrary record bytes, opens without a panic, keeps a prefix
//! of the file, and takes new batches.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use strom_storage::LogConfig;

const SEGMENT: &str = "00000000000000000000.log";
/// Fields of a batch header no checksum covers: the base offset and the partition leader epoch,
/// which the broker patches after the client computed the CRC.
const UNCHECKED: [std::ops::Range<usize>; 2] = [0..8, 12..16];

fn config() -> LogConfig {
    small_config(1 << 20)
}

/// The batches of `sizes` appended to a fresh log in `dir`: the segment's bytes and, per batch,
/// (start position, end position, next offset after it).
fn write_log(
    dir: &Path,
    sizes: &[(usize, usize)],
    clean: bool,
) -> (Vec<u8>, Vec<(usize, usize, i64)>) {
    let log = open(dir, config());
    let mut batches = Vec::new();
    for (i, (records, value)) in sizes.iter().enumerate() {
        let start = log.size_bytes() as usize;
        let info = log
            .append(&batch(&Spec::new(*records, *value).tag(i as u8)), 0, 1)
            .expect("append");
        batches.push((start, log.size_bytes() as usize, info.last_offset + 1));
    }
    if clean {
        log.close().expect("close");
    }
    drop(log);
    (fs::read(dir.join(SEGMENT)).expect("read segment"), batches)
}

#[derive(Debug, Clone)]
enum Damage {
    /// The file ends at a position (a torn write).
    Cut(Index),
    /// One byte of one batch changes, outside the fields no checksum covers.
    Flip { batch: Index, at: Index, mask: u8 },
    /// Bytes follow the last batch (a write whose batch never completed, junk).
    Garbage(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<Index>().prop_map(Damage::Cut),
        (any::<Index>(), any::<Index>(), 1..=255u8).prop_map(|(batch, at, mask)| Damage::Flip {
            batch,
            at,
            mask
        }),
        proptest::collection::vec(any::<u8>(), 1..200).prop_map(Damage::Garbage),
    ]
}

/// Applies `damage`; returns the damaged bytes and how many leading batches stay whole.
fn apply(bytes: &[u8], batches: &[(usize, usize, i64)], damage: &Damage) -> (Vec<u8>, usize) {
    let mut out = bytes.to_vec();
    match damage {
        Damage::Cut(at) => {
            let at = at.index(bytes.len() + 1);
            out.truncate(at);
            (out, batches.iter().take_while(|b| b.1 <= at).count())
        }
        Damage::Flip { batch, at, mask } => {
            let victim = batch.index(batches.len());
            let (start, end, _) = batches[victim];
            let covered: Vec<usize> = (0..end - start)
                .filter(|i| !UNCHECKED.iter().any(|r| r.contains(i)))
                .collect();
            out[start + covered[at.index(covered.len())]] ^= mask;
            (out, victim)
        }
        Damage::Garbage(junk) => {
            out.extend_from_slice(junk);
            (out, batches.len())
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// A batch with a consistent length and CRC over `records`, whatever they hold.
fn sealed_junk(records: &[u8], count: i32) -> Vec<u8> {
    let mut b = vec![0u8; 61];
    b.extend_from_slice(records);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[16] = 2;
    b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn segment_in(dir: &Path) -> PathBuf {
    dir.join(SEGMENT)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_damaged_active_segment_recovers_exactly_its_valid_prefix(
        sizes in proptest::collection::vec((1usize..4, 0usize..80), 1..8),
        damage in damage(),
        clean in any::<bool>(),
    ) {
        // A clean shutdown marker vouches for the segment's content; only its length is
        // checked on open, so content damage is what a crash leaves here (a damaged batch
        // under a clean marker is caught on read, `poison_read.rs`).
        let clean = clean && matches!(damage, Damage::Cut(_));
        let template = tempfile::tempdir().expect("tempdir");
        let (bytes, batches) = write_log(template.path(), &sizes, clean);
        let (damaged, whole) = apply(&bytes, &batches, &damage);
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(template.path(), dir.path());
        fs::write(segment_in(dir.path()), &damaged).expect("write damaged segment");

        let valid = if whole == 0 { 0 } else { batches[whole - 1].1 };
        let leo = if whole == 0 { 0 } else { batches[whole - 1].2 };
        let log = open(dir.path(), config());
        prop_assert_eq!(log.log_end_offset(), leo);
        prop_assert_eq!(log.size_bytes(), valid as u64);
        prop_assert_eq!(read_all(&log, 0), bytes[..valid].to_vec());
        let next = log.append(&batch(&Spec::new(2, 5)), 0, 1).expect("append after recovery");
        prop_assert_eq!(next.first_offset, leo);
        drop(log);
        prop_assert_eq!(open(dir.path(), config()).log_end_offset(), leo + 2);
    }

    #[test]
    fn a_segment_of_arbitrary_bytes_opens_to_a_prefix_of_them(
        parts in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                (proptest::collection::vec(any::<u8>(), 0..200), 1..5i32)
                    .prop_map(|(records, count)| sealed_junk(&records, count)),
                (1usize..3, 0usize..40).prop_map(|(n, size)| batch(&Spec::new(n, size))),
            ],
            0..6,
        ),
    ) {
        let bytes: Vec<u8> = parts.concat();
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(segment_in(dir.path()), &bytes).expect("write segment");
        let log = strom_storage::PartitionLog::open(dir.path(), config(), 1_000_000)
            .expect("recovery opens any segment");
        let kept = log.size_bytes() as usize;
        prop_assert!(kept <= bytes.len());
        let leo = log.log_end_offset();
        prop_assert!(leo >= 0);
        let next = log.append(&batch(&Spec::new(1, 3)), 0, 1).expect("append after recovery");
        prop_assert_eq!(next.first_offset, leo);
        drop(log);
        let on_disk = fs::read(segment_in(dir.path())).expect("read segment");
        prop_assert_eq!(&on_disk[..kept], &bytes[..kept], "recovery keeps a prefix of the file");
    }
}
