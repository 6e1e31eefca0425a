//! WAL checkpoints off the call path. SQLite's automatic checkpoint runs inside the commit that
//! crosses the threshold (every 1,000 WAL frames), and copying the frames back plus its two
//! `fsync`s cost that one take about a millisecond: one call in a thousand paid it (the audit
//! log's p99.9 for sqlite counters was 1.0–1.3 ms against 0.16 ms on memory counters). Here a
//! thread with its own connection runs a PASSIVE checkpoint (which never blocks writers) every
//! [`EVERY_COMMITS`] commits, and sleeps otherwise.
//!
//! A PASSIVE checkpoint only lets the WAL start over once it has copied every frame, and under
//! unbroken load new frames arrive while it runs. So the store's own connection keeps SQLite's
//! automatic checkpoint as a backstop, at [`BACKSTOP_FRAMES`]: when calls never pause, one take
//! in that many still checkpoints inline (by then the thread has copied nearly everything), and
//! the WAL stays under 5.4 MB; when they pause now and then, as agents do, none does.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Commits between two background checkpoints.
pub const EVERY_COMMITS: u64 = 500;

/// WAL frames at which the store's connection checkpoints inline after all (SQLite's default
/// is 1,000).
pub const BACKSTOP_FRAMES: i64 = 10_000;

#[derive(Default)]
struct Request {
    due: bool,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    request: Mutex<Request>,
    wake: Condvar,
}

/// The checkpointing thread of one store.
pub struct Checkpointer {
    shared: Arc<Shared>,
    commits: AtomicU64,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Open a second connection to `path` and start the thread; `None` if either fails (the
    /// store then keeps SQLite's automatic checkpoints).
    pub fn start(path: &Path) -> Option<Self> {
        let conn = rusqlite::Connection::open(path).ok()?;
        conn.busy_timeout(Duration::from_secs(5)).ok()?;
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tollgate-wal-checkpoint".into())
            .spawn(move || run(&conn, &theirs))
            .ok()?;
        Some(Self {
            shared,
            commits: AtomicU64::new(0),
            thread: Some(thread),
        })
    }

    /// A take or refund was committed: every [`EVERY_COMMITS`]th one wakes the thread.
    pub fn committed(&self) {
        if (self.commits.fetch_add(1, Relaxed) + 1).is_multiple_of(EVERY_COMMITS) {
            let mut request = self
                .shared
                .request
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            request.due = true;
            self.shared.wake.notify_one();
        }
    }
}

fn run(conn: &rusqlite::Connection, shared: &Shared) {
    loop {
        {
            let mut request = shared.request.lock().unwrap_or_else(|p| p.into_inner());
            while !request.due && !request.stop {
                request = shared.wake.wait(request).unwrap_or_else(|p| p.into_inner());
            }
            if request.stop {
                return;
            }
            request.due = false;
        }
        // PASSIVE: copy what no reader still needs, without waiting for anyone. Busy or
        // partial outcomes are fine: the next round, or the last connection's close, finishes.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "background WAL checkpoint failed");
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        {
            let mut request = self
                .shared
                .request
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            request.stop = true;
            self.shared.wake.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
