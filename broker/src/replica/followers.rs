//! The leader's view of its followers: how far each one's log reaches and when it last caught
//! up, from which the high watermark and the in-sync replica set follow (Kafka's
//! `Replica.updateFetchState` and `Partition.maybeIncrementLeaderHW` / `getOutOfSyncReplicas`).
//!
//! A follower tells the leader its log end offset with every fetch: the fetch offset is where
//! its log ends. It is caught up when it fetched from the leader's log end; when it fetched
//! from where the leader's log ended at its previous fetch, it was caught up at that previous
//! fetch, which is how Kafka keeps a follower that fetches steadily under steady load in sync.

use std::collections::HashMap;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset, -1 until it fetched in this leader epoch.
    pub log_end_offset: i64,
    /// Milliseconds since the epoch of its last fetch, 0 if none.
    pub last_fetch_ms: i64,
    /// When it last held everything the leader had, 0 if never in this leader epoch.
    pub last_caught_up_ms: i64,
    /// The leader's log end offset at the follower's last fetch.
    last_fetch_leader_log_end: i64,
}

impl FollowerProgress {
    fn unknown(caught_up_ms: i64) -> Self {
        FollowerProgress {
            log_end_offset: -1,
            last_fetch_ms: 0,
            last_caught_up_ms: caught_up_ms,
            last_fetch_leader_log_end: -1,
        }
    }
}

/// Every follower of one partition led here.
#[derive(Debug, Default, Clone)]
pub struct Followers {
    progress: HashMap<i32, FollowerProgress>,
}

impl Followers {
    /// A fresh view for a new leader epoch. In-sync followers count as caught up now, so they
    /// get a full `replica.lag.time.max.ms` to fetch before they can be dropped from the ISR.
    pub fn new_epoch(replicas: &[i32], isr: &[i32], self_id: i32, now_ms: i64) -> Self {
        let progress = replicas
            .iter()
            .filter(|&&r| r != self_id)
            .map(|&r| {
                let caught_up = if isr.contains(&r) { now_ms } else { 0 };
                (r, FollowerProgress::unknown(caught_up))
            })
            .collect();
        Followers { progress }
    }

    /// Keeps the progress of replicas that stay, adds new ones (a reassignment), drops
    /// removed ones.
    pub fn retain_replicas(&mut self, replicas: &[i32], self_id: i32) {
        self.progress.retain(|r, _| replicas.contains(r));
        for &r in replicas.iter().filter(|&&r| r != self_id) {
            self.progress
                .entry(r)
                .or_insert_with(|| FollowerProgress::unknown(0));
        }
    }

    pub fn get(&self, replica: i32) -> Option<FollowerProgress> {
        self.progress.get(&replica).copied()
    }

    /// Records a fetch from `replica` at `fetch_offset` while the leader's log ended at
    /// `leader_log_end`. Returns false when `replica` is not a follower of this partition.
    pub fn record_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        leader_log_end: i64,
        now_ms: i64,
    ) -> bool {
        let Some(progress) = self.progress.get_mut(&replica) else {
            return false;
        };
        if fetch_offset >= leader_log_end {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(now_ms);
        } else if progress.last_fetch_leader_log_end >= 0
            && fetch_offset >= progress.last_fetch_leader_log_end
        {
            progress.last_caught_up_ms = progress.last_caught_up_ms.max(progress.last_fetch_ms);
        }
        progress.log_end_offset = fetch_offset;
        progress.last_fetch_ms = now_ms;
        progress.last_fetch_leader_log_end = leader_log_end;
        true
    }

    /// The smallest log end offset among the in-sync replicas (the leader's own is
    /// `own_log_end`), or `None` while an in-sync follower has not fetched in this epoch.
    pub fn min_isr_log_end(&self, isr: &[i32], self_id: i32, own_log_end: i64) -> Option<i64> {
        let mut min = own_log_end;
        for &r in isr.iter().filter(|&&r| r != self_id) {
            let end = self.progress.get(&r).map_or(-1, |p| p.log_end_offset);
            if end < 0 {
                return None;
            }
            min = min.min(end);
        }
        Some(min)
    }

    /// In-sync followers that have not caught up within `lag_max_ms`.
    pub fn out_of_sync(&self, isr: &[i32], self_id: i32, now_ms: i64, lag_max_ms: i64) -> Vec<i32> {
        isr.iter()
            .copied()
            .filter(|&r| r != self_id)
            .filter(|r| {
                self.progress
                    .get(r)
                    .is_none_or(|p| now_ms.saturating_sub(p.last_caught_up_ms) > lag_max_ms)
            })
            .collect()
    }

    /// Followers outside the ISR whose log reaches the high watermark and the start of the
    /// current leader epoch: they may join the ISR (Kafka's `isFollowerInSync`).
    pub fn caught_up_outside(
        &self,
        isr: &[i32],
        high_watermark: i64,
        epoch_start: i64,
    ) -> Vec<i32> {
        let mut ids: Vec<i32> = self
            .progress
            .iter()
            .filter(|(r, _)| !isr.contains(r))
            .filter(|(_, p)| p.log_end_offset >= high_watermark && p.log_end_offset >= epoch_start)
            .map(|(r, _)| *r)
            .collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_watermark_waits_for_every_in_sync_follower() {
        let mut f = Followers::new_epoch(&[0, 1, 2], &[0, 1, 2], 0, 1000);
        assert_eq!(f.min_isr_log_end(&[0, 1, 2], 0, 10), None);
        assert!(f.record_fetch(1, 10, 10, 1001));
        assert_eq!(f.min_isr_log_end(&[0, 1, 2], 0, 10), None);
        assert!(f.record_fetch(2, 7, 10, 1001));
        assert_eq!(f.min_isr_log_end(&[0, 1, 2], 0, 10), Some(7));
        // A follower outside the ISR does not hold the high watermark back.
        assert_eq!(f.min_isr_log_end(&[0, 1], 0, 10), Some(10));
        assert!(!f.record_fetch(9, 10, 10, 1001), "9 is no replica");
    }

    #[test]
    fn a_follower_that_keeps_up_with_the_previous_fetch_stays_in_sync() {
        let mut f = Followers::new_epoch(&[0, 1], &[0, 1], 0, 0);
        f.record_fetch(1, 5, 10, 100);
        assert_eq!(f.get(1).map(|p| p.last_caught_up_ms), Some(0));
        // It now fetches from where the leader ended at its previous fetch: caught up then.
        f.record_fetch(1, 10, 20, 200);
        assert_eq!(f.get(1).map(|p| p.last_caught_up_ms), Some(100));
        f.record_fetch(1, 20, 20, 300);
        assert_eq!(f.get(1).map(|p| p.last_caught_up_ms), Some(300));
    }

    #[test]
    fn out_of_sync_followers_are_those_not_caught_up_within_the_lag() {
        let mut f = Followers::new_epoch(&[0, 1, 2], &[0, 1, 2], 0, 1000);
        assert!(f.out_of_sync(&[0, 1, 2], 0, 1500, 1000).is_empty());
        f.record_fetch(1, 10, 10, 2500);
        assert_eq!(f.out_of_sync(&[0, 1, 2], 0, 2500, 1000), vec![2]);
    }

    #[test]
    fn a_follower_joins_the_isr_once_it_reaches_the_high_watermark_and_the_epoch_start() {
        let mut f = Followers::new_epoch(&[0, 1, 2], &[0, 1], 0, 0);
        f.record_fetch(2, 5, 10, 1);
        assert!(f.caught_up_outside(&[0, 1], 8, 3).is_empty());
        f.record_fetch(2, 8, 10, 2);
        assert_eq!(f.caught_up_outside(&[0, 1], 8, 3), vec![2]);
        assert!(
            f.caught_up_outside(&[0, 1], 8, 9).is_empty(),
            "before epoch start"
        );
    }

    #[test]
    fn reassignment_keeps_the_progress_of_remaining_replicas() {
        let mut f = Followers::new_epoch(&[0, 1], &[0, 1], 0, 0);
        f.record_fetch(1, 4, 4, 1);
        f.retain_replicas(&[0, 1, 3], 0);
        assert_eq!(f.get(1).map(|p| p.log_end_offset), Some(4));
        assert_eq!(f.get(3).map(|p| p.log_end_offset), Some(-1));
        f.retain_replicas(&[0, 3], 0);
        assert!(f.get(1).is_none());
    }
}
