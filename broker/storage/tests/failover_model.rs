//! Two replicas through many leader changes: the leader appends, the follower fetches part of
//! it, either crashes, leadership moves, the new follower truncates through
//! OffsetForLeaderEpoch (Kafka's rules) and catches up. After every catch-up both logs hold the
//! same bytes and the same epoch cache, and nothing the follower had confirmed (the high
//! watermark: what both held before the leader change) is ever lost.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use strom_storage::{LogConfig, PartitionLog};

fn config() -> LogConfig {
    small_config(1_500)
}

struct Replica {
    dir: PathBuf,
    log: Option<PartitionLog>,
}

impl Replica {
    fn new(dir: &Path) -> Self {
        Replica {
            dir: dir.to_path_buf(),
            log: Some(open(dir, config())),
        }
    }
    fn log(&self) -> &PartitionLog {
        self.log.as_ref().expect("open")
    }
    /// kill -9 and restart: the log is dropped without closing.
    fn crash(&mut self) {
        self.log = None;
        self.log = Some(open(&self.dir, config()));
    }
}

/// The follower's truncation on a leader change (Kafka's `getOffsetTruncationState`).
/// Returns the offsets removed.
fn truncate_to_leader(follower: &PartitionLog, leader: &PartitionLog) -> i64 {
    let before = follower.log_end_offset();
    let Some(epoch) = follower.latest_epoch() else {
        return 0;
    };
    let target = match leader.end_offset_for_epoch(epoch) {
        None => follower.log_end_offset(),
        Some((leader_epoch, leader_end)) if leader_epoch == epoch => leader_end,
        Some((leader_epoch, leader_end)) => {
            let own = follower
                .end_offset_for_epoch(leader_epoch)
                .map_or(leader_end, |(_, end)| end);
            leader_end.min(own)
        }
    };
    follower
        .truncate_to(target.min(follower.log_end_offset()))
        .expect("truncate");
    before - follower.log_end_offset()
}

/// One fetch of at most `max_bytes`.
fn fetch_once(leader: &PartitionLog, follower: &PartitionLog, max_bytes: usize) {
    let r = leader
        .read(
            follower.log_end_offset(),
            max_bytes,
            leader.log_end_offset(),
            true,
        )
        .expect("leader read");
    follower
        .append_as_follower(&r.records, 1_000_000)
        .expect("follower append");
}

#[test]
fn logs_converge_through_many_leader_changes() {
    let (ad, bd) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let mut replicas = [Replica::new(ad.path()), Replica::new(bd.path())];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut leader = 0usize;
    let mut epoch = 0;
    let mut committed: Vec<u8> = Vec::new();
    let mut tag = 0u8;
    let mut truncated = 0;
    for round in 0..40 {
        let follower = 1 - leader;
        // The leader appends; the follower fetches some of it.
        for _ in 0..1 + rand(8) {
            tag = tag.wrapping_add(1);
            let spec = Spec::new(1 + rand(4) as usize, 10 + rand(90) as usize).tag(tag);
            replicas[leader]
                .log()
                .append(&batch(&spec), epoch, 1)
                .expect("append");
            if rand(2) == 0 {
                fetch_once(
                    replicas[leader].log(),
                    replicas[follower].log(),
                    64 + rand(600) as usize,
                );
            }
        }
        // What both hold is what an acks=all producer could have been told is committed.
        let high_watermark = replicas[follower].log().log_end_offset();
        let held = read_all(replicas[follower].log(), 0);
        assert!(
            held.starts_with(&committed),
            "round {round}: committed data lost"
        );
        committed = held;
        if rand(3) == 0 {
            replicas[rand(2) as usize].crash();
        }
        // Leadership moves to the follower, which starts a new epoch.
        leader = follower;
        let follower = 1 - leader;
        epoch += 1 + i32::try_from(rand(2)).expect("small");
        replicas[leader]
            .log()
            .assign_epoch_start_offset(epoch)
            .expect("become leader");
        for _ in 0..rand(4) {
            tag = tag.wrapping_add(1);
            let spec = Spec::new(1 + rand(3) as usize, 20).tag(tag);
            replicas[leader]
                .log()
                .append(&batch(&spec), epoch, 1)
                .expect("append");
        }
        // The old leader follows: truncate its diverged tail, then catch up.
        truncated += truncate_to_leader(replicas[follower].log(), replicas[leader].log());
        assert!(
            replicas[follower].log().log_end_offset() >= high_watermark,
            "round {round}: truncated below the high watermark"
        );
        replicate(
            replicas[leader].log(),
            replicas[follower].log(),
            100 + rand(2_000) as usize,
        );
        let (l, f) = (replicas[leader].log(), replicas[follower].log());
        assert_eq!(
            read_all(f, 0),
            read_all(l, 0),
            "round {round}: bytes differ"
        );
        // A new leader's epoch that has not written yet is cached by the leader alone.
        let written: Vec<(i32, i64)> = l
            .epoch_entries()
            .into_iter()
            .filter(|&(_, start)| start < l.log_end_offset())
            .collect();
        assert_eq!(f.epoch_entries(), written, "round {round}");
        assert_eq!(f.log_end_offset(), l.log_end_offset());
        assert!(read_all(l, 0).starts_with(&committed), "round {round}");
    }
    let (a, b) = (replicas[0].log(), replicas[1].log());
    a.flush().expect("flush");
    b.flush().expect("flush");
    assert!(a.log_end_offset() > 100, "the run appended a fair amount");
    assert!(
        truncated > 20,
        "diverged tails were cut: {truncated} offsets"
    );
    assert!(
        a.epoch_entries().len() > 10,
        "many epochs wrote: {:?}",
        a.epoch_entries()
    );
}
