//! The SQLite counter store, Tollgate's default: a file under the user's state directory that
//! survives restarts and is shared safely by every Tollgate process on the machine (a stdio
//! proxy restarts with every client session, so in-memory limits would reset each time).
//!
//! Each take is one `BEGIN IMMEDIATE` transaction (read the counter, apply the shared
//! [`algorithm`], write it back), so concurrent processes serialise on SQLite's
//! write lock and can never both be granted past a limit. WAL mode with `synchronous=NORMAL`:
//! a committed take survives a crash of the process. Pages of 512 bytes: a take rewrites one
//! page, and copying and checksumming the default 4 KiB on every commit cost a quarter of it.
//! WAL checkpoints run on a thread of their own (`checkpoint`), not inside a take.

use super::algorithm::{self, CounterState};
use super::{
    now_ms, CounterStore, FirstSeen, PinStore, Reservation, StoreError, TakeRequest, Taken,
};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

mod approvals;
mod checkpoint;

/// Counters in an SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// Runs WAL checkpoints on its own thread; `None`: SQLite checkpoints inside commits.
    checkpointer: Option<checkpoint::Checkpointer>,
}

fn error(e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("sqlite: {e}"))
}

/// Schema and pragmas of a store's file. Processes that open a fresh file at the same moment
/// race to switch it to WAL, and SQLite reports that race as `SQLITE_BUSY` at once, without
/// waiting in the busy handler (13 of 60 runs of four connections meeting a new file failed):
/// the setup is retried until [`SETUP_PATIENCE`] has passed. Every step is idempotent.
fn set_up(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + SETUP_PATIENCE;
    loop {
        match set_up_once(conn) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => return other,
        }
    }
}

/// How long opening a store waits for other processes setting up the same file.
const SETUP_PATIENCE: Duration = Duration::from_secs(5);

fn set_up_once(conn: &Connection) -> rusqlite::Result<()> {
    // A counter row is a few dozen bytes: small pages make each take's WAL frame (copied
    // and checksummed on every commit) an eighth of the default. Applies to new files only.
    conn.pragma_update(None, "page_size", 512)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS counters (
                 key TEXT PRIMARY KEY,
                 start_ms INTEGER NOT NULL,
                 used INTEGER NOT NULL,
                 prev_used INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS pins (
                 server TEXT NOT NULL,
                 tool TEXT NOT NULL,
                 digest TEXT NOT NULL,
                 definition TEXT NOT NULL,
                 first_seen_ms INTEGER NOT NULL,
                 PRIMARY KEY (server, tool)
             ) WITHOUT ROWID",
    )?;
    conn.execute_batch(approvals::SCHEMA)?;
    add_counter_limits(conn)
}

/// Counters keep their last take's limit, window and algorithm (for `tollgate status`); files
/// made before that get the columns once, in a write transaction so processes agree.
fn add_counter_limits(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let added = (|| {
        let has: i64 = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('counters') WHERE name = 'limit_units'",
            [],
            |row| row.get(0),
        )?;
        if has == 0 {
            conn.execute_batch(
                "ALTER TABLE counters ADD COLUMN limit_units INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE counters ADD COLUMN window_ms INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE counters ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'fixed';",
            )?;
        }
        Ok(())
    })();
    match added.and_then(|()| conn.execute_batch("COMMIT")) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Also when COMMIT itself was busy: the retry starts a transaction afresh.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

impl SqliteStore {
    /// `$XDG_STATE_HOME/tollgate/counters.sqlite` (or the platform's equivalent).
    pub fn default_path() -> Option<PathBuf> {
        super::home().map(|h| h.join("counters.sqlite"))
    }

    /// Open (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| error(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(error)?;
        set_up(&conn).map_err(error)?;
        let checkpointer = checkpoint::Checkpointer::start(path);
        if checkpointer.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_FRAMES)
                .map_err(error)?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            checkpointer,
        })
    }

    /// Read-modify-write one counter in a write transaction.
    /// `limits` (a take's limit, window and algorithm) are kept with the counter; a refund
    /// leaves them as they are.
    fn update<T>(
        &self,
        key: &str,
        limits: Option<&TakeRequest>,
        f: impl FnOnce(&mut CounterState) -> T,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        // Cached statements: parsing the SQL again on every call cost more than running it.
        let mut state = tx
            .prepare_cached("SELECT start_ms, used, prev_used FROM counters WHERE key = ?1")
            .map_err(error)?
            .query_row([key], |row| {
                Ok(CounterState {
                    start_ms: row.get::<_, i64>(0)? as u64,
                    used: row.get::<_, i64>(1)? as u64,
                    prev_used: row.get::<_, i64>(2)? as u64,
                })
            })
            .optional()
            .map_err(error)?
            .unwrap_or_default();
        let before = state;
        let out = f(&mut state);
        let wrote = state != before;
        if wrote {
            tx.prepare_cached(
                "INSERT INTO counters (key, start_ms, used, prev_used, limit_units, window_ms, algorithm)
                 VALUES (?1, ?2, ?3, ?4, COALESCE(?5, 0), COALESCE(?6, 0), COALESCE(?7, 'fixed'))
                 ON CONFLICT(key) DO UPDATE SET start_ms = ?2, used = ?3, prev_used = ?4,
                   limit_units = COALESCE(?5, limit_units), window_ms = COALESCE(?6, window_ms),
                   algorithm = COALESCE(?7, algorithm)",
            )
            .map_err(error)?
            .execute(params![
                key,
                state.start_ms as i64,
                state.used as i64,
                state.prev_used as i64,
                limits.map(|r| r.limit as i64),
                limits.map(|r| r.window.as_millis() as i64),
                limits.map(|r| r.algorithm.word()),
            ])
            .map_err(error)?;
        }
        tx.commit().map_err(error)?;
        if let (true, Some(c)) = (wrote, &self.checkpointer) {
            c.committed();
        }
        Ok(out)
    }

    /// Take at an explicit time (ms), for tests of window behaviour.
    pub fn take_at(
        &self,
        request: &TakeRequest,
        now: u64,
    ) -> Result<(Taken, Option<Reservation>), StoreError> {
        let window_ms = request.window.as_millis() as u64;
        let o = self.update(&request.key, Some(request), |s| {
            algorithm::take(
                s,
                now,
                request.cost,
                request.limit,
                window_ms,
                request.algorithm,
            )
        })?;
        let taken = Taken {
            granted: o.granted,
            used: o.used,
            limit: request.limit,
            resets_in_ms: o.resets_in_ms,
        };
        Ok((
            taken,
            o.granted.then(|| Reservation {
                request: request.clone(),
                window_start_ms: o.window_start_ms,
            }),
        ))
    }
}

#[async_trait]
impl CounterStore for SqliteStore {
    async fn take(
        &self,
        request: &TakeRequest,
    ) -> Result<(Taken, Option<Reservation>), StoreError> {
        self.take_at(request, now_ms())
    }

    async fn refund(&self, r: &Reservation) -> Result<(), StoreError> {
        let window_ms = r.request.window.as_millis() as u64;
        self.update(&r.request.key, None, |s| {
            algorithm::refund(
                s,
                r.request.cost,
                window_ms,
                r.window_start_ms,
                r.request.algorithm,
            )
        })
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn pins(&self) -> Option<&dyn PinStore> {
        Some(self)
    }

    fn approvals(&self) -> Option<&dyn crate::state::ApprovalStore> {
        Some(self)
    }

    async fn counters(&self, limit: usize) -> Result<Vec<super::CounterView>, StoreError> {
        let now = now_ms();
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut statement = conn
            .prepare(
                "SELECT key, start_ms, used, prev_used, limit_units, window_ms, algorithm
                 FROM counters WHERE limit_units > 0",
            )
            .map_err(error)?;
        let rows = statement
            .query_map([], |row| {
                let state = CounterState {
                    start_ms: row.get::<_, i64>(1)? as u64,
                    used: row.get::<_, i64>(2)? as u64,
                    prev_used: row.get::<_, i64>(3)? as u64,
                };
                let key: String = row.get(0)?;
                let (limit, window) = (row.get::<_, i64>(4)? as u64, row.get::<_, i64>(5)? as u64);
                let algorithm: String = row.get(6)?;
                Ok(algorithm::Algorithm::from_word(&algorithm)
                    .and_then(|a| algorithm::view(&key, &state, now, limit, window, a)))
            })
            .map_err(error)?;
        let mut views = Vec::new();
        for row in rows {
            views.extend(row.map_err(error)?);
        }
        Ok(algorithm::busiest(views, limit))
    }
}

#[async_trait]
impl PinStore for SqliteStore {
    async fn pin_first(
        &self,
        server: &str,
        tool: &str,
        seen: &FirstSeen,
    ) -> Result<FirstSeen, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        tx.prepare_cached(
            "INSERT INTO pins (server, tool, digest, definition, first_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(server, tool) DO NOTHING",
        )
        .map_err(error)?
        .execute(params![
            server,
            tool,
            seen.digest,
            seen.definition,
            now_ms() as i64
        ])
        .map_err(error)?;
        let kept = tx
            .prepare_cached("SELECT digest, definition FROM pins WHERE server = ?1 AND tool = ?2")
            .map_err(error)?
            .query_row(params![server, tool], |row| {
                Ok(FirstSeen {
                    digest: row.get(0)?,
                    definition: row.get(1)?,
                })
            })
            .map_err(error)?;
        tx.commit().map_err(error)?;
        Ok(kept)
    }

    async fn forget_pins(&self, server: &str, tools: &[String]) -> Result<u64, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let forgotten = if tools.is_empty() {
            conn.execute("DELETE FROM pins WHERE server = ?1", [server])
                .map_err(error)?
        } else {
            let mut total = 0;
            for tool in tools {
                total += conn
                    .execute(
                        "DELETE FROM pins WHERE server = ?1 AND tool = ?2",
                        [server, tool.as_str()],
                    )
                    .map_err(error)?;
            }
            total
        };
        Ok(forgotten as u64)
    }
}

#[cfg(test)]
mod tests;
