//! The log I/O workers: the threads that run the partitions' blocking disk work (appends with
//! their segment rolls, index writes and `fdatasync`, flushes, retention, DeleteRecords, close),
//! so none of it runs on a tokio worker thread.
//!
//! A fixed set of threads, each draining its own FIFO queue. Every partition is bound to one
//! queue when it is opened (round robin), so work on a partition runs in the order it was
//! submitted — a connection's appends keep its request order — while different partitions are
//! written in parallel. Work is submitted when the method is called, not when its future is
//! first polled, and runs to completion even if the caller stops waiting (a produce whose
//! connection closed is still appended, as in Kafka).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The work queue of one I/O thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct IoQueue {
    tx: mpsc::Sender<Job>,
}

/// The I/O thread of a queue is gone (the broker is stopping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the log I/O worker stopped")]
pub struct IoStopped;

impl IoQueue {
    /// Queues `work` behind everything queued before it; the returned future resolves with its
    /// result.
    pub fn submit<R, W>(
        &self,
        work: W,
    ) -> impl Future<Output = Result<R, IoStopped>> + Send + 'static + use<R, W>
    where
        R: Send + 'static,
        W: FnOnce() -> R + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let sent = self
            .tx
            .send(Box::new(move || {
                let _ = reply.send(work());
            }))
            .is_ok();
        async move {
            if !sent {
                return Err(IoStopped);
            }
            result.await.map_err(|_| IoStopped)
        }
    }
}

/// The I/O threads of one broker. The threads end when every queue handle is dropped.
#[derive(Debug)]
pub struct LogIo {
    queues: Vec<IoQueue>,
    next: AtomicUsize,
}

impl LogIo {
    /// Starts `threads` I/O threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<LogIo> {
        let mut queues = Vec::with_capacity(threads.max(1));
        for i in 0..threads.max(1) {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name(format!("strom-log-io-{i}"))
                .spawn(move || {
                    for job in rx {
                        // A panic in one piece of work must not take the queue down with it:
                        // its caller sees IoStopped (its reply was dropped), later work runs.
                        if catch_unwind(AssertUnwindSafe(job)).is_err() {
                            tracing::error!("log I/O work panicked");
                        }
                    }
                })?;
            queues.push(IoQueue { tx });
        }
        Ok(LogIo {
            queues,
            next: AtomicUsize::new(0),
        })
    }

    /// One thread per available core, at least two (so one `fdatasync` does not stall every
    /// partition) and at most eight.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(2, 8)
    }

    /// The queue for a newly opened partition (round robin over the threads).
    pub fn assign(&self) -> IoQueue {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        self.queues[i].clone()
    }

    /// Number of I/O threads.
    pub fn threads(&self) -> usize {
        self.queues.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn work_on_one_queue_runs_in_submission_order_off_the_runtime() {
        let io = LogIo::start(2).expect("threads");
        let queue = io.assign();
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let runtime_thread = std::thread::current().id();
        let futures: Vec<_> = (0..100)
            .map(|i| {
                let order = order.clone();
                queue.submit(move || {
                    order.lock().push(i);
                    std::thread::current().id()
                })
            })
            .collect();
        for future in futures.into_iter().rev() {
            let thread = future.await.expect("ran");
            assert_ne!(thread, runtime_thread);
        }
        assert_eq!(*order.lock(), (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_panicking_job_does_not_stop_the_queue() {
        let io = LogIo::start(1).expect("threads");
        let queue = io.assign();
        let failed = queue.submit(|| -> i32 { panic!("boom") });
        let next = queue.submit(|| 7);
        assert_eq!(failed.await, Err(IoStopped));
        assert_eq!(next.await, Ok(7));
    }

    #[tokio::test]
    async fn partitions_are_spread_round_robin() {
        let io = LogIo::start(3).expect("threads");
        assert_eq!(io.threads(), 3);
        let mut threads = Vec::new();
        for _ in 0..6 {
            let queue = io.assign();
            threads.push(
                queue
                    .submit(|| std::thread::current().id())
                    .await
                    .expect("ran"),
            );
        }
        for i in 0..3 {
            assert_eq!(threads[i], threads[i + 3]);
            assert_ne!(threads[i], threads[(i + 1) % 3]);
        }
    }
}
