//! The coordinator's timers: member sessions, join and sync timeouts, offset retention.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::offset_commit::offset_tombstone;
use super::{GroupCoordinator, PartitionStatus, Shared};
use crate::config::millis;
use crate::log::OffsetsLog;
use crate::records::{KeyValue, RecordKey};

/// Drives a coordinator's deadlines; see [`GroupTimer::run`].
pub struct GroupTimer<L> {
    coordinator: GroupCoordinator<L>,
}

impl<L> std::fmt::Debug for GroupTimer<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupTimer").finish_non_exhaustive()
    }
}

impl<L: OffsetsLog> GroupTimer<L> {
    pub(super) fn new(shared: Arc<Shared<L>>) -> Self {
        Self {
            coordinator: GroupCoordinator { shared },
        }
    }

    /// Sleeps until the next deadline of any group (or until a request moves one), expires
    /// what is due, and runs offset retention every `offsets_retention_check_interval`.
    /// Returns when `cancel` fires or the coordinator shuts down.
    pub async fn run(self, cancel: CancellationToken) {
        let c = self.coordinator;
        let interval = millis(c.shared.config.offsets_retention_check_interval).max(1);
        let mut next_retention = c.now().saturating_add(interval);
        loop {
            let now = c.now();
            let next = c.next_deadline().unwrap_or(i64::MAX).min(next_retention);
            let wait = Duration::from_millis(u64::try_from(next.saturating_sub(now)).unwrap_or(0));
            tokio::select! {
                () = cancel.cancelled() => break,
                () = c.shared.shutdown.cancelled() => break,
                () = c.shared.wake.notified() => continue,
                () = tokio::time::sleep(wait) => {}
            }
            c.expire_deadlines().await;
            let now = c.now();
            if now >= next_retention {
                c.expire_offsets().await;
                next_retention = now.saturating_add(interval);
            }
        }
    }
}

impl<L: OffsetsLog> GroupCoordinator<L> {
    fn next_deadline(&self) -> Option<i64> {
        self.shared
            .state
            .lock()
            .groups
            .values()
            .filter_map(|g| g.next_deadline())
            .min()
    }

    /// Runs every group deadline that is due.
    pub(super) async fn expire_deadlines(&self) {
        let now = self.now();
        let mut due: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        {
            let state = self.shared.state.lock();
            for group in state.groups.values() {
                if group.next_deadline().is_some_and(|d| d <= now) {
                    let id = group.group_id().to_owned();
                    due.entry(self.partition_for(&id)).or_default().push(id);
                }
            }
        }
        for (partition, group_ids) in due {
            let _writer = self.writer(partition).lock().await;
            let records: Vec<KeyValue> = {
                let mut state = self.shared.state.lock();
                if state.partitions.get(&partition) != Some(&PartitionStatus::Owned) {
                    continue;
                }
                let now = self.now();
                let t = self.shared.timeouts;
                let mut records = Vec::new();
                for group_id in group_ids {
                    let Some(group) = state.groups.get_mut(&group_id) else {
                        continue;
                    };
                    let effects = group.on_deadline(now, &t);
                    if state.deliver(&group_id, effects)
                        && let Some(record) = state
                            .groups
                            .get(&group_id)
                            .and_then(|g| Self::group_record(g, None))
                    {
                        records.push(record);
                    }
                }
                records
            };
            if !records.is_empty()
                && let Err(error) = self.append(partition, records).await
            {
                tracing::warn!(partition, %error, "persisting group metadata after expiry failed");
            }
        }
    }

    /// Offset retention (KIP-211): removes expired offsets with tombstones, and empty groups
    /// left without offsets.
    pub(super) async fn expire_offsets(&self) {
        let owned: Vec<i32> = {
            let state = self.shared.state.lock();
            let mut owned: Vec<i32> = state
                .partitions
                .iter()
                .filter(|(_, s)| **s == PartitionStatus::Owned)
                .map(|(p, _)| *p)
                .collect();
            owned.sort_unstable();
            owned
        };
        let retention = self.offset_retention_ms();
        for partition in owned {
            let _writer = self.writer(partition).lock().await;
            let (expired, dead, records) = {
                let state = self.shared.state.lock();
                if state.partitions.get(&partition) != Some(&PartitionStatus::Owned) {
                    continue;
                }
                let now = self.now();
                let mut expired: Vec<(String, String, i32)> = Vec::new();
                let mut dead: Vec<String> = Vec::new();
                let mut records: Vec<KeyValue> = Vec::new();
                for group in state
                    .groups
                    .values()
                    .filter(|g| self.partition_for(g.group_id()) == partition)
                {
                    let id = group.group_id();
                    let gone = group.expired_offsets(now, retention);
                    let unused = group.unused_without(gone.len());
                    for (topic, p) in gone {
                        if let Some(record) = offset_tombstone(id, &topic, p) {
                            records.push(record);
                            expired.push((id.to_owned(), topic, p));
                        }
                    }
                    if unused
                        && let Ok(key) = (RecordKey::GroupMetadata {
                            group: id.to_owned(),
                        })
                        .encode()
                    {
                        records.push((key, None));
                        dead.push(id.to_owned());
                    }
                }
                (expired, dead, records)
            };
            if records.is_empty() {
                continue;
            }
            match self.append(partition, records).await {
                Ok(_) => {
                    let mut state = self.shared.state.lock();
                    let now = self.now();
                    for (group_id, topic, p) in &expired {
                        if let Some(group) = state.groups.get_mut(group_id) {
                            group.remove_offset(topic, *p);
                        }
                    }
                    for group_id in &dead {
                        if state
                            .groups
                            .get_mut(group_id)
                            .is_some_and(|g| g.dead_if_unused(now))
                        {
                            state.groups.remove(group_id);
                        }
                    }
                    tracing::info!(
                        partition,
                        offsets = expired.len(),
                        groups = dead.len(),
                        "expired offsets and groups"
                    );
                }
                Err(error) => {
                    tracing::warn!(partition, %error, "writing retention tombstones failed")
                }
            }
        }
    }
}
