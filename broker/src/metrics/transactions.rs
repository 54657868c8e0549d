//! The transaction coordinator's series. Kafka exposes little of its coordinator over JMX, so
//! these are Strom's own (`strom_transaction_*`), refreshed from the coordinator's counts
//! before each scrape. The last stable offset lag per partition lives with the partition
//! gauges.

use prometheus::{IntCounter, IntGauge, Registry};
use strom_txn::TxnStats;

use super::{catch_up, counter, gauge};

/// The coordinator's families.
#[derive(Debug)]
pub(super) struct TransactionMetrics {
    transactional_ids: IntGauge,
    ongoing: IntGauge,
    completing: IntGauge,
    oldest_open_age_ms: IntGauge,
    committed: IntCounter,
    aborted: IntCounter,
    fenced_producers: IntCounter,
    timed_out: IntCounter,
}

impl TransactionMetrics {
    pub(super) fn new(r: &Registry) -> TransactionMetrics {
        TransactionMetrics {
            transactional_ids: gauge(
                r,
                "strom_transaction_coordinator_transactional_ids",
                "Transactional ids whose __transaction_state partition this broker leads.",
            ),
            ongoing: gauge(
                r,
                "strom_transactions_ongoing",
                "Transactions open now (Ongoing) on this broker's coordinator.",
            ),
            completing: gauge(
                r,
                "strom_transactions_completing",
                "Transactions decided but whose markers are still being written (PrepareCommit, PrepareAbort).",
            ),
            oldest_open_age_ms: gauge(
                r,
                "strom_transaction_oldest_open_age_ms",
                "Age of the oldest transaction not yet complete on this broker's coordinator, 0 if none: a transaction stuck open holds read_committed consumers at its first offset.",
            ),
            committed: counter(
                r,
                "strom_transactions_committed_total",
                "Transactions completed with a commit by this broker's coordinator.",
            ),
            aborted: counter(
                r,
                "strom_transactions_aborted_total",
                "Transactions completed with an abort (by the client, by fencing or by timeout).",
            ),
            fenced_producers: counter(
                r,
                "strom_transaction_producers_fenced_total",
                "InitProducerId calls that fenced another instance of the same transactional id.",
            ),
            timed_out: counter(
                r,
                "strom_transactions_timed_out_total",
                "Transactions the coordinator aborted because they ran past transaction.timeout.ms.",
            ),
        }
    }

    /// Sets every series from the coordinator's counts; `now_ms` is the wall clock.
    pub(super) fn set(&self, stats: &TxnStats, now_ms: i64) {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.transactional_ids.set(count(stats.transactional_ids));
        self.ongoing.set(count(stats.ongoing));
        self.completing.set(count(stats.completing));
        self.oldest_open_age_ms.set(
            stats
                .oldest_open_start_ms
                .map_or(0, |start| now_ms.saturating_sub(start).max(0)),
        );
        catch_up(&self.committed, stats.committed);
        catch_up(&self.aborted, stats.aborted);
        catch_up(&self.fenced_producers, stats.fenced_producers);
        catch_up(&self.timed_out, stats.timed_out_aborts);
    }
}
