//! The coordinator's periodic checks: aborting transactions open longer than their timeout
//! and removing transactional ids idle longer than `transactional.id.expiration.ms`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use strom_group::OffsetsLog;
use tokio_util::sync::CancellationToken;

use super::TransactionCoordinator;
use crate::config::millis;
use crate::marker::MarkerWriter;

/// Drives a coordinator's periodic checks; see [`TxnTimer::run`].
pub struct TxnTimer<L, M> {
    coordinator: TransactionCoordinator<L, M>,
}

impl<L, M> std::fmt::Debug for TxnTimer<L, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnTimer").finish_non_exhaustive()
    }
}

impl<L: OffsetsLog, M: MarkerWriter> TxnTimer<L, M> {
    pub(super) fn new(coordinator: TransactionCoordinator<L, M>) -> Self {
        Self { coordinator }
    }

    /// Every `abort_timed_out_check_interval`, aborts the Ongoing transactions older than their
    /// timeout; every `remove_expired_check_interval`, removes expired transactional ids.
    /// Returns when `cancel` fires or the coordinator shuts down.
    pub async fn run(self, cancel: CancellationToken) {
        let c = self.coordinator;
        let abort_every = millis(c.shared.config.abort_timed_out_check_interval).max(1);
        let expire_every = millis(c.shared.config.remove_expired_check_interval).max(1);
        let mut next_abort = c.now().saturating_add(abort_every);
        let mut next_expire = c.now().saturating_add(expire_every);
        loop {
            let wait = next_abort.min(next_expire).saturating_sub(c.now());
            let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
            tokio::select! {
                () = cancel.cancelled() => break,
                () = c.shared.shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
            let now = c.now();
            if now >= next_abort {
                c.abort_timed_out().await;
                next_abort = c.now().saturating_add(abort_every);
            }
            if now >= next_expire {
                c.expire_transactional_ids().await;
                next_expire = c.now().saturating_add(expire_every);
            }
        }
    }
}

impl<L: OffsetsLog, M: MarkerWriter> TransactionCoordinator<L, M> {
    /// Ids of `filter`-matching transactions grouped by their owned partition.
    fn owned_matching(
        &self,
        filter: impl Fn(&crate::metadata::TransactionMetadata) -> bool,
    ) -> BTreeMap<i32, Vec<String>> {
        let state = self.shared.state.lock();
        let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for (id, meta) in &state.txns {
            let partition = self.partition_for(id);
            if state.owned_epoch(partition).is_some() && filter(meta) {
                out.entry(partition).or_default().push(id.clone());
            }
        }
        out
    }

    /// Aborts every Ongoing transaction open longer than its timeout, bumping the epoch so
    /// the producer that ran it is fenced (Kafka ≥ 2.5).
    pub(super) async fn abort_timed_out(&self) {
        let now = self.now();
        for (partition, ids) in self.owned_matching(|m| m.is_timed_out(now)) {
            let _guard = self.writer(partition).lock().await;
            for id in ids {
                let (abort, epoch) = {
                    let state = self.shared.state.lock();
                    let Some(epoch) = state.owned_epoch(partition) else {
                        break;
                    };
                    let now = self.now();
                    match state
                        .txns
                        .get(&id)
                        .filter(|m| m.is_timed_out(now))
                        .and_then(|m| m.fence_abort(now))
                    {
                        Some(abort) => (abort, epoch),
                        None => continue,
                    }
                };
                tracing::info!(
                    transactional_id = %id,
                    producer_id = abort.producer_id,
                    timeout_ms = abort.timeout_ms,
                    "aborting a transaction that exceeded its timeout"
                );
                match self.persist(partition, epoch, abort.clone()).await {
                    Ok(()) => {
                        self.shared
                            .counters
                            .timed_out_aborts
                            .fetch_add(1, Ordering::Relaxed);
                        self.spawn_markers(partition, epoch, abort);
                    }
                    Err(code) => {
                        tracing::warn!(transactional_id = %id, code, "aborting a timed-out transaction failed; the next check retries");
                    }
                }
            }
        }
    }

    /// Removes transactional ids idle (Empty, CompleteCommit, CompleteAbort) for longer than
    /// `transactional_id_expiration`, writing their tombstones first.
    pub(super) async fn expire_transactional_ids(&self) {
        let expiration = millis(self.shared.config.transactional_id_expiration);
        let now = self.now();
        for (partition, ids) in self.owned_matching(|m| m.is_expired(now, expiration)) {
            let _guard = self.writer(partition).lock().await;
            let (epoch, records, expired) = {
                let state = self.shared.state.lock();
                let Some(epoch) = state.owned_epoch(partition) else {
                    continue;
                };
                let now = self.now();
                let mut records = Vec::new();
                let mut expired = Vec::new();
                for id in ids {
                    let Some(meta) = state
                        .txns
                        .get(&id)
                        .filter(|m| m.is_expired(now, expiration))
                    else {
                        continue;
                    };
                    let Ok(key) = self.key(&id) else { continue };
                    records.push((key, None));
                    expired.push((id, meta.producer_id, meta.producer_epoch));
                }
                (epoch, records, expired)
            };
            if records.is_empty() {
                continue;
            }
            match self.append(partition, records).await {
                Ok(_) => {
                    let mut state = self.shared.state.lock();
                    if state.owned_epoch(partition) != Some(epoch) {
                        continue;
                    }
                    for (id, producer_id, producer_epoch) in &expired {
                        // Removed only if untouched since the tombstone was decided.
                        if state.txns.get(id).is_some_and(|m| {
                            m.producer_id == *producer_id && m.producer_epoch == *producer_epoch
                        }) {
                            state.txns.remove(id);
                        }
                    }
                    tracing::info!(
                        partition,
                        count = expired.len(),
                        "expired transactional ids"
                    );
                }
                Err(error) => {
                    tracing::warn!(partition, %error, "writing transactional id tombstones failed");
                }
            }
        }
    }
}
