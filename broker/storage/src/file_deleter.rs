//! Deleting retired segment files once `file.delete.delay.ms` has passed.
//!
//! A segment removed from a log (retention, a cleaner swap, truncation) may still be read by
//! a reader that loaded an older snapshot, and its files may have to be opened again for that
//! reader (see `open_files`). So the files are first renamed to a retired name ending in
//! `.deleted` and unlinked only after the delay, by one process-wide OS thread
//! (`segment-deleter`) that waits on a deadline queue. The thread never runs on an async
//! runtime's workers and does nothing but unlink.
//!
//! Every retired name is unique in the process (`<name>.<n>.deleted`): a segment with the same
//! base offset can be created and retired again within the delay (a follower truncating twice
//! to the same offset), and neither its readers nor the queue may mistake one for the other.
//! Files still named `.deleted` after a crash or a shutdown are deleted when the log is opened
//! again (`recovery`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

/// The suffix every retired file ends with.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";

/// Makes retired names unique within the process.
static NEXT_RETIRED: AtomicU64 = AtomicU64::new(0);

/// The name `path` is renamed to when retired: `<name>.<n>.deleted`.
pub(crate) fn retired_path(path: &Path) -> PathBuf {
    let n = NEXT_RETIRED.fetch_add(1, Ordering::Relaxed);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}{DELETED_SUFFIX}"));
    PathBuf::from(name)
}

/// The retired files waiting for their deadline, and the condition the thread waits on.
#[derive(Debug)]
struct Deleter {
    /// (deadline, retired file), earliest first.
    due: Mutex<BinaryHeap<Reverse<(Instant, PathBuf)>>>,
    wake: Condvar,
}

static DELETER: Deleter = Deleter {
    due: Mutex::new(BinaryHeap::new()),
    wake: Condvar::new(),
};
static START: Once = Once::new();

impl Deleter {
    fn run(&self) {
        let mut due = self.due.lock();
        loop {
            let next = due.peek().map(|Reverse((at, _))| *at);
            match next {
                None => self.wake.wait(&mut due),
                Some(at) if at > Instant::now() => {
                    self.wake.wait_until(&mut due, at);
                }
                Some(_) => {
                    if let Some(Reverse((_, path))) = due.pop() {
                        MutexGuard::unlocked(&mut due, || unlink(&path));
                    }
                }
            }
        }
    }
}

fn unlink(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        // Its directory went with its topic, or the files were already cleaned up on open.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        // Left for the next open of the log, which deletes `.deleted` files.
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot delete a retired segment file")
        }
    }
}

/// Unlinks `paths` (retired names) once `delay` has passed. A delay too large to represent
/// leaves them for the next open of the log.
pub(crate) fn delete_after(paths: Vec<PathBuf>, delay: Duration) {
    let Some(at) = Instant::now().checked_add(delay) else {
        return;
    };
    START.call_once(|| {
        let started = std::thread::Builder::new()
            .name("segment-deleter".to_string())
            .spawn(|| DELETER.run());
        if let Err(e) = started {
            // The files then stay until the next open of their log deletes them.
            tracing::error!(error = %e, "cannot start the segment-deleter thread");
        }
    });
    DELETER
        .due
        .lock()
        .extend(paths.into_iter().map(|path| Reverse((at, path))));
    DELETER.wake.notify_one();
}
