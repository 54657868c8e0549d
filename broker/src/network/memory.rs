//! Request memory shared by every connection (`queued.max.request.bytes`, Kafka's memory pool).
//!
//! A connection reserves a frame's size here once the size prefix is read and before it reads
//! the body; the reservation is returned when the request has been answered (or the connection
//! dropped). When the pool is used up, connections stop reading their sockets — TCP flow control
//! then slows the clients — until memory is returned; nothing is refused. As in Kafka's
//! `SimpleMemoryPool`, a frame is admitted whenever any memory is free, even if it needs more
//! than is left, so a frame as large as `socket.request.max.bytes` always gets in and large
//! frames are not starved by small ones: usage stays below the limit plus one frame.
//!
//! The whole frame is reserved at once (not byte by byte as it arrives) so that frames admitted
//! together can always complete: a pool filled with half-read frames would wait for itself.
//! A peer that announces a frame and never sends it holds its reservation only until
//! `socket.request.read.timeout.ms` closes its connection.

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::IntGauge;
use tokio::sync::Notify;

/// The broker-wide pool; `limit` `None` is unbounded (usage is still counted).
#[derive(Debug)]
pub struct RequestMemory {
    limit: Option<usize>,
    used: Mutex<usize>,
    freed: Notify,
    /// Shows `used` on `/metrics`.
    gauge: Option<IntGauge>,
}

/// Memory reserved for one frame; returned to the pool when dropped.
#[derive(Debug)]
pub struct MemoryPermit {
    pool: Arc<RequestMemory>,
    bytes: usize,
}

impl RequestMemory {
    pub fn new(limit: Option<usize>) -> Arc<RequestMemory> {
        RequestMemory::build(limit, None)
    }

    /// A pool whose usage `gauge` reports.
    pub fn observed(limit: Option<usize>, gauge: IntGauge) -> Arc<RequestMemory> {
        RequestMemory::build(limit, Some(gauge))
    }

    fn build(limit: Option<usize>, gauge: Option<IntGauge>) -> Arc<RequestMemory> {
        Arc::new(RequestMemory {
            limit,
            used: Mutex::new(0),
            freed: Notify::new(),
            gauge,
        })
    }

    fn report(&self, used: usize) {
        if let Some(gauge) = &self.gauge {
            gauge.set(i64::try_from(used).unwrap_or(i64::MAX));
        }
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        *self.used.lock()
    }

    /// Reserves `bytes`, waiting while the pool is used up. Cancel-safe: a cancelled wait
    /// reserves nothing.
    pub async fn reserve(self: &Arc<RequestMemory>, bytes: usize) -> MemoryPermit {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release between the check and the wait wakes us.
            freed.as_mut().enable();
            if let Some(permit) = self.try_reserve(bytes) {
                return permit;
            }
            freed.await;
        }
    }

    fn try_reserve(self: &Arc<RequestMemory>, bytes: usize) -> Option<MemoryPermit> {
        let mut used = self.used.lock();
        if self.limit.is_some_and(|limit| *used >= limit) {
            return None;
        }
        *used = used.saturating_add(bytes);
        self.report(*used);
        Some(MemoryPermit {
            pool: self.clone(),
            bytes,
        })
    }
}

impl Drop for MemoryPermit {
    fn drop(&mut self) {
        {
            let mut used = self.pool.used.lock();
            *used = used.saturating_sub(self.bytes);
            self.pool.report(*used);
        }
        self.pool.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_full_pool_makes_readers_wait_until_memory_is_returned() {
        let pool = RequestMemory::new(Some(100));
        let first = pool.reserve(60).await;
        // Admitted although only 40 are free: a frame never waits for more than the limit.
        let second = pool.reserve(60).await;
        assert_eq!(pool.used(), 120);
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.reserve(10).await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiting.is_finished(), "admitted while the pool is used up");
        drop(first);
        // 60 used: below the limit again, so the waiting frame gets in.
        let third = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("woken when memory is returned")
            .expect("task");
        assert_eq!(pool.used(), 70);
        drop((second, third));
        assert_eq!(pool.used(), 0);
    }

    #[tokio::test]
    async fn an_unbounded_pool_only_counts() {
        let pool = RequestMemory::new(None);
        let permits: Vec<_> =
            futures::future::join_all((0..10).map(|_| pool.reserve(1 << 30))).await;
        assert_eq!(pool.used(), 10 << 30);
        drop(permits);
        assert_eq!(pool.used(), 0);
    }
}
