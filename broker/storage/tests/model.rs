//! Property test: random appends, reads, rolls, retention-free reopens keep offsets contiguous
//! and bytes equal to what a simple model predicts.

mod common;

use common::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append { batches: Vec<(usize, usize)> },
    Read { at: u16, max_bytes: usize },
    Reopen { clean: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((1usize..6, 0usize..300), 1..4).prop_map(|batches| Op::Append { batches }),
        3 => (any::<u16>(), 0usize..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..40), segment_bytes in 600u64..5000) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = small_config(segment_bytes);
        let mut log = open(dir.path(), config.clone());
        // The model: every stored batch, patched, in order.
        let mut stored: Vec<(i64, i64, Vec<u8>)> = Vec::new();
        let mut next = 0i64;
        let mut tag = 0u8;
        for op in ops {
            match op {
                Op::Append { batches } => {
                    let mut set = Vec::new();
                    let mut pieces = Vec::new();
                    for (records, size) in batches {
                        tag = tag.wrapping_add(1);
                        let b = batch(&Spec::new(records, size).tag(tag));
                        pieces.push((records as i64, b.clone()));
                        set.extend(b);
                    }
                    if set.len() as u64 > segment_bytes {
                        prop_assert!(log.append(&set, 1, 1).is_err());
                        continue;
                    }
                    let info = log.append(&set, 1, 1).expect("append");
                    prop_assert_eq!(info.first_offset, next);
                    for (records, b) in pieces {
                        stored.push((next, next + records - 1, patched(b, next, 1)));
                        next += records;
                    }
                    prop_assert_eq!(info.last_offset, next - 1);
                }
                Op::Read { at, max_bytes } => {
                    if next == 0 {
                        continue;
                    }
                    let offset = i64::from(at) % (next + 1);
                    let r = log.read(offset, max_bytes, i64::MAX, true).expect("read");
                    if offset == next {
                        prop_assert!(r.records.is_empty());
                        continue;
                    }
                    let first = stored.iter().position(|(b, l, _)| *b <= offset && offset <= *l).expect("in model");
                    let mut want = Vec::new();
                    for (_, _, bytes) in &stored[first..] {
                        if !want.is_empty() && want.len() + bytes.len() > max_bytes {
                            break;
                        }
                        want.extend_from_slice(bytes);
                    }
                    prop_assert_eq!(r.first_offset, Some(stored[first].0));
                    prop_assert_eq!(&r.records[..], &want[..]);
                }
                Op::Reopen { clean } => {
                    if clean {
                        log.close().expect("close");
                    }
                    drop(log);
                    log = open(dir.path(), config.clone());
                }
            }
            prop_assert_eq!(log.log_end_offset(), next);
        }
        let all: Vec<u8> = stored.iter().flat_map(|(_, _, b)| b.clone()).collect();
        prop_assert_eq!(read_all(&log, 0), all);
    }
}
