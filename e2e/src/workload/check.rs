//! The checkers of the workload: what the acknowledgements and the reads of a topic say about
//! lost, duplicated, reordered or vanished records, and the longest produce stall. Pure
//! functions over plain records, tested on synthetic data below.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// How many examples of each kind of failure a verdict keeps.
const EXAMPLES: usize = 5;

/// A record the producer had acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub partition: i32,
    pub offset: i64,
    pub sequence: u64,
    /// Since the workload started.
    pub at: Duration,
}

/// A record whose delivery failed (it may or may not be in the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub partition: i32,
    pub sequence: u64,
    pub error: String,
}

/// A record the consumer read; `payload` is `None` when it is not one of the workload's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub payload: Option<(i32, u64)>,
}

/// What the consumed log says about the acknowledged records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Acknowledged, never consumed.
    pub lost: u64,
    /// Extra copies: a sequence found at more than one offset.
    pub duplicated: u64,
    /// Places where a partition's sequence went backwards in offset order.
    pub out_of_order: u64,
    /// Acknowledged at one offset, found at another.
    pub offset_mismatches: u64,
    /// One offset read twice with different contents (a consumer saw data that later vanished).
    pub conflicting_offsets: u64,
    /// Records the live consumer read that the final read found changed or missing: a consumer
    /// saw data past the high watermark that was later truncated.
    pub vanished: u64,
    /// Records found in a partition other than the one they were sent to.
    pub misplaced: u64,
    /// Records that are not the workload's.
    pub foreign: u64,
    /// Failed deliveries whose record is in the log anyway (allowed: the outcome was unknown).
    pub failed_but_written: u64,
    /// A few (partition, sequence, acknowledged offset) of lost records.
    pub lost_examples: Vec<(i32, u64, i64)>,
    /// A few (partition, sequence, offsets) of duplicated records.
    pub duplicate_examples: Vec<(i32, u64, Vec<i64>)>,
}

impl Verdict {
    /// Nothing acknowledged was lost, moved, duplicated or reordered.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.offset_mismatches == 0
            && self.conflicting_offsets == 0
            && self.vanished == 0
            && self.misplaced == 0
    }
}

/// Compares what the producer had acknowledged with what the consumer read.
pub fn check(acked: &[Acked], failed: &[Failed], consumed: &[Consumed]) -> Verdict {
    let mut verdict = Verdict::default();
    // Contents per (partition, offset), as first read.
    let mut at_offset: HashMap<(i32, i64), Option<(i32, u64)>> = HashMap::new();
    for record in consumed {
        match at_offset.get(&(record.partition, record.offset)) {
            Some(previous) if *previous != record.payload => verdict.conflicting_offsets += 1,
            Some(_) => {}
            None => {
                at_offset.insert((record.partition, record.offset), record.payload);
            }
        }
    }
    // Offsets per (partition sent to, sequence).
    let mut offsets: HashMap<(i32, u64), BTreeSet<i64>> = HashMap::new();
    // Sequences per consumed partition, in offset order.
    let mut logs: BTreeMap<i32, BTreeMap<i64, u64>> = BTreeMap::new();
    for ((partition, offset), payload) in &at_offset {
        match payload {
            None => verdict.foreign += 1,
            Some((sent_to, sequence)) => {
                if sent_to != partition {
                    verdict.misplaced += 1;
                }
                offsets
                    .entry((*sent_to, *sequence))
                    .or_default()
                    .insert(*offset);
                logs.entry(*partition)
                    .or_default()
                    .insert(*offset, *sequence);
            }
        }
    }
    let mut duplicates: Vec<_> = offsets
        .iter()
        .filter(|(_, found)| found.len() > 1)
        .collect();
    duplicates.sort();
    for ((partition, sequence), found) in duplicates {
        verdict.duplicated += found.len() as u64 - 1;
        if verdict.duplicate_examples.len() < EXAMPLES {
            verdict.duplicate_examples.push((
                *partition,
                *sequence,
                found.iter().copied().collect(),
            ));
        }
    }
    for log in logs.values() {
        let mut last: Option<u64> = None;
        for sequence in log.values() {
            if last.is_some_and(|last| *sequence < last) {
                verdict.out_of_order += 1;
            }
            last = Some(*sequence);
        }
    }
    for record in acked {
        match offsets.get(&(record.partition, record.sequence)) {
            None => {
                verdict.lost += 1;
                if verdict.lost_examples.len() < EXAMPLES {
                    verdict
                        .lost_examples
                        .push((record.partition, record.sequence, record.offset));
                }
            }
            Some(found) if !found.contains(&record.offset) => verdict.offset_mismatches += 1,
            Some(_) => {}
        }
    }
    verdict.failed_but_written = failed
        .iter()
        .filter(|f| offsets.contains_key(&(f.partition, f.sequence)))
        .count() as u64;
    verdict
}

/// Records of `live` that `last` (a later read of the same partitions) has with other
/// contents, or lacks: when `last` read everything up to the high watermarks (`last_complete`),
/// any record it lacks is gone; otherwise only those below the last offset it reached.
pub fn vanished(live: &[Consumed], last: &[Consumed], last_complete: bool) -> u64 {
    let mut contents: HashMap<(i32, i64), Option<(i32, u64)>> = HashMap::new();
    let mut reached: HashMap<i32, i64> = HashMap::new();
    for record in last {
        contents.insert((record.partition, record.offset), record.payload);
        let end = reached.entry(record.partition).or_insert(record.offset);
        *end = (*end).max(record.offset);
    }
    live.iter()
        .filter(|r| match contents.get(&(r.partition, r.offset)) {
            Some(payload) => *payload != r.payload,
            None => last_complete || reached.get(&r.partition).is_some_and(|end| *end > r.offset),
        })
        .count() as u64
}

/// The longest time without an acknowledgement between the start, each acknowledgement and
/// `stopped_at`, and when it began.
pub fn longest_gap(acked: &[Acked], stopped_at: Duration) -> (Duration, Duration) {
    let mut times: Vec<Duration> = acked.iter().map(|a| a.at.min(stopped_at)).collect();
    times.push(Duration::ZERO);
    times.push(stopped_at);
    times.sort_unstable();
    times
        .windows(2)
        .map(|w| (w[1] - w[0], w[0]))
        .max()
        .unwrap_or_default()
}

/// Records to check, shared with the report's tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) fn acked(partition: i32, offset: i64, sequence: u64) -> Acked {
        Acked {
            partition,
            offset,
            sequence,
            at: Duration::from_millis(offset.unsigned_abs()),
        }
    }

    pub(crate) fn read(partition: i32, offset: i64, sequence: u64) -> Consumed {
        Consumed {
            partition,
            offset,
            payload: Some((partition, sequence)),
        }
    }

    /// Two partitions of three records each, all acknowledged and all read back.
    pub(crate) fn clean() -> (Vec<Acked>, Vec<Consumed>) {
        let mut a = Vec::new();
        let mut c = Vec::new();
        for p in 0..2 {
            for s in 0..3u64 {
                a.push(acked(p, s as i64, s));
                c.push(read(p, s as i64, s));
            }
        }
        (a, c)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{clean, read};
    use super::*;

    #[test]
    fn a_clean_run_is_clean() {
        let (a, c) = clean();
        let verdict = check(&a, &[], &c);
        assert!(verdict.is_clean(), "{verdict:?}");
        assert_eq!(verdict, Verdict::default());
    }

    #[test]
    fn an_acknowledged_record_never_read_is_lost() {
        let (a, mut c) = clean();
        c.retain(|r| !(r.partition == 1 && r.offset == 1));
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.lost, 1);
        assert_eq!(verdict.lost_examples, vec![(1, 1, 1)]);
        assert!(!verdict.is_clean());
    }

    #[test]
    fn a_record_at_two_offsets_is_duplicated() {
        let (a, mut c) = clean();
        c.push(read(0, 3, 1));
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.duplicated, 1);
        assert_eq!(verdict.duplicate_examples, vec![(0, 1, vec![1, 3])]);
        // The copy also makes the sequence go backwards: 0 1 2 1.
        assert_eq!(verdict.out_of_order, 1);
        assert_eq!(verdict.lost, 0);
        assert!(!verdict.is_clean());
    }

    #[test]
    fn one_offset_read_twice_alike_is_no_fault() {
        let (a, mut c) = clean();
        c.push(read(0, 1, 1));
        assert!(check(&a, &[], &c).is_clean());
    }

    #[test]
    fn one_offset_read_twice_with_different_contents_conflicts() {
        let (a, mut c) = clean();
        c.push(read(0, 2, 9));
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.conflicting_offsets, 1);
        assert!(!verdict.is_clean());
    }

    #[test]
    fn swapped_records_are_out_of_order() {
        let (a, mut c) = clean();
        for r in &mut c {
            if r.partition == 0 && r.offset < 2 {
                r.offset = 1 - r.offset;
            }
        }
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.out_of_order, 1);
        assert_eq!(
            verdict.offset_mismatches, 2,
            "both were acknowledged elsewhere"
        );
        assert!(!verdict.is_clean());
    }

    #[test]
    fn a_record_in_the_wrong_partition_is_misplaced_and_lost_from_its_own() {
        let (a, mut c) = clean();
        c.retain(|r| !(r.partition == 1 && r.offset == 2));
        c.push(Consumed {
            partition: 0,
            offset: 3,
            payload: Some((1, 2)),
        });
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.misplaced, 1);
        assert_eq!(verdict.offset_mismatches, 1);
        assert!(!verdict.is_clean());
    }

    #[test]
    fn failed_records_may_or_may_not_be_written() {
        let (a, mut c) = clean();
        let failed = vec![
            Failed {
                partition: 0,
                sequence: 3,
                error: "MessageTimedOut".to_owned(),
            },
            Failed {
                partition: 0,
                sequence: 4,
                error: "MessageTimedOut".to_owned(),
            },
        ];
        c.push(read(0, 3, 3));
        let verdict = check(&a, &failed, &c);
        assert_eq!(verdict.failed_but_written, 1);
        assert!(verdict.is_clean());
    }

    #[test]
    fn foreign_records_are_counted_not_blamed() {
        let (a, mut c) = clean();
        c.push(Consumed {
            partition: 0,
            offset: 3,
            payload: None,
        });
        let verdict = check(&a, &[], &c);
        assert_eq!(verdict.foreign, 1);
        assert!(verdict.is_clean());
    }

    #[test]
    fn records_a_consumer_saw_must_not_vanish_later() {
        let (_, live) = clean();
        assert_eq!(vanished(&live, &live, true), 0);
        // The final read has other contents at partition 0 offset 2 and lacks partition 1
        // offset 1 although it read offset 2.
        let mut last = live.clone();
        last.retain(|r| !(r.partition == 1 && r.offset == 1));
        for r in &mut last {
            if r.partition == 0 && r.offset == 2 {
                r.payload = Some((0, 7));
            }
        }
        assert_eq!(vanished(&live, &last, true), 2);
        assert_eq!(vanished(&live, &last, false), 2);
        // A final read that stopped early does not blame what it never reached; one that read
        // up to the high watermarks does: those records are gone.
        let short: Vec<Consumed> = live.iter().copied().filter(|r| r.offset == 0).collect();
        assert_eq!(vanished(&live, &short, false), 0);
        assert_eq!(vanished(&live, &short, true), 4);
    }

    #[test]
    fn the_longest_stall_counts_the_start_and_the_stop() {
        let at = |ms| Acked {
            partition: 0,
            offset: 0,
            sequence: 0,
            at: Duration::from_millis(ms),
        };
        let ms = Duration::from_millis;
        assert_eq!(
            longest_gap(&[at(100), at(150), at(900), at(1000)], ms(1100)),
            (ms(750), ms(150))
        );
        assert_eq!(longest_gap(&[at(10)], ms(5000)), (ms(4990), ms(10)));
        assert_eq!(longest_gap(&[], ms(3000)), (ms(3000), ms(0)));
    }
}
