//! The decision log: the recent decisions of every Tollgate on this machine, kept by default for
//! `tollgate status` and the console (the audit log stays the operator's choice).
//!
//! Each process appends JSON lines — the audit record's shape, never with raw arguments — to a
//! file of its own, `<state home>/decisions/<server>-<pid>.jsonl`, so processes never interleave
//! or race on rotation. A file is rotated to `….jsonl.1` when it would pass [`MAX_BYTES`], and
//! when a log opens, files untouched for [`KEEP_DAYS`] days go, and beyond [`MAX_FILES`] the
//! oldest. A decision costs a serialisation into a buffer in memory, nothing more: a thread of
//! the log's own writes the buffer out every [`FLUSH_EVERY`], or as soon as [`WAKE_AT`] bytes
//! wait (waking it per decision cost the call path a context switch, 6–8 µs here), and
//! [`DecisionLog::flush`] writes it at once (the proxy does at exit). Past [`MAX_BUFFER`] bytes
//! waiting, records are dropped, and counted in the log's warnings, rather than slowing calls.

use super::AuditRecord;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A process's file is rotated when it would pass this many bytes (one old file is kept).
pub const MAX_BYTES: u64 = 512 << 10;
/// Files untouched for this many days are removed when a log opens.
pub const KEEP_DAYS: u64 = 7;
/// At most this many files are kept; the oldest go first.
pub const MAX_FILES: usize = 64;
/// How often the writer thread writes what has been recorded.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Bytes waiting that wake the writer before its time (a busy proxy: 20,000 calls/s fill this
/// in roughly 13 ms at some 250 bytes a record: an estimate, not measured).
pub const WAKE_AT: usize = 64 << 10;
/// Bytes that may wait for the writer before new records are dropped.
pub const MAX_BUFFER: usize = 4 << 20;

/// The decision log's directory could not be made or its file opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the decision log {path}: {cause}")]
pub struct DecisionLogError {
    path: String,
    cause: std::io::Error,
}

/// This process's decision log.
pub struct DecisionLog {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// What the proxy and the writer thread share.
struct Shared {
    path: PathBuf,
    /// Lines recorded and not yet written.
    buffer: Mutex<Vec<u8>>,
    /// The file and its size, for whoever writes.
    file: Mutex<(File, u64)>,
    closed: AtomicBool,
    dropped: AtomicU64,
}

/// One decision as the log keeps it (what `status` and the console show).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decided {
    /// RFC 3339 time, UTC.
    pub time: String,
    /// Who called.
    pub caller: String,
    /// The server.
    pub server: String,
    /// The tool.
    pub tool: String,
    /// `allow`, `deny`, `rewrite`, `unknown`, `ask`, `wait` or `pin_mismatch`.
    pub verdict: String,
    /// The denial code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The deciding rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The plugin of the deciding rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// The reason the agent was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A would-be denial under dry run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The approval request involved (`id`, `by`, `channel`, `waited_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<serde_json::Value>,
    /// For a pin mismatch, each changed field as pinned and as listed now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<serde_json::Value>,
}

/// The machine's decision log directory: `decisions` in Tollgate's state home.
pub fn default_dir() -> Option<PathBuf> {
    crate::state::home().map(|h| h.join("decisions"))
}

/// `server` as a file name: letters, digits, `.`, `_` and `-`; anything else becomes `_`.
fn file_stem(server: &str) -> String {
    let stem: String = server
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() || stem.starts_with('.') {
        format!("server{stem}")
    } else {
        stem
    }
}

impl DecisionLog {
    /// Open this process's log for `server` in `dir` (created if needed), after removing files
    /// past their keep.
    pub fn open(dir: &Path, server: &str) -> Result<Self, DecisionLogError> {
        let failed = |cause| DecisionLogError {
            path: dir.display().to_string(),
            cause,
        };
        std::fs::create_dir_all(dir).map_err(failed)?;
        prune(dir, KEEP_DAYS, MAX_FILES);
        let path = dir.join(format!(
            "{}-{}.jsonl",
            file_stem(server),
            std::process::id()
        ));
        let file = append(&path).map_err(|cause| DecisionLogError {
            path: path.display().to_string(),
            cause,
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let shared = Arc::new(Shared {
            path,
            buffer: Mutex::new(Vec::new()),
            file: Mutex::new((file, size)),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let writing = shared.clone();
        let writer = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || {
                while !writing.closed.load(Ordering::Acquire) {
                    std::thread::park_timeout(FLUSH_EVERY);
                    writing.write_out();
                }
            })
            .map_err(failed)?;
        Ok(Self {
            shared,
            writer: Some(writer),
        })
    }

    /// This process's file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Keep one decision (raw arguments and their digest are left out).
    pub fn record(&self, record: &AuditRecord<'_>) {
        let kept = AuditRecord {
            arguments: None,
            arguments_sha256: None,
            ..record.clone()
        };
        let mut buffer = self.shared.buffer.lock().unwrap_or_else(|p| p.into_inner());
        if buffer.len() > MAX_BUFFER {
            drop(buffer);
            let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "the decision log's writer is behind; records were dropped"
                );
            }
            return;
        }
        let before = buffer.len();
        match serde_json::to_writer(&mut *buffer, &kept) {
            Ok(()) => buffer.push(b'\n'),
            Err(_) => buffer.truncate(before),
        }
        // Woken once per fill, not per record: a wake-up costs the call path a context switch.
        if before < WAKE_AT && buffer.len() >= WAKE_AT {
            drop(buffer);
            if let Some(writer) = &self.writer {
                writer.thread().unpark();
            }
        }
    }

    /// Write what has been recorded now (at exit, and for tests).
    pub fn flush(&self) {
        self.shared.write_out();
    }
}

impl Shared {
    /// Write the buffer out, rotating the file first when it would pass [`MAX_BYTES`].
    fn write_out(&self) {
        let lines = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|p| p.into_inner()));
        if lines.is_empty() {
            return;
        }
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if file.1 > 0 && file.1 + lines.len() as u64 > MAX_BYTES {
            let mut old = self.path.as_os_str().to_owned();
            old.push(".1");
            match std::fs::rename(&self.path, &old).and_then(|_| append(&self.path)) {
                Ok(f) => *file = (f, 0),
                Err(e) => tracing::warn!(error = %e, "cannot rotate the decision log"),
            }
        }
        match file.0.write_all(&lines) {
            Ok(()) => file.1 += lines.len() as u64,
            Err(e) => {
                tracing::warn!(error = %e, path = %self.path.display(), "cannot write the decision log")
            }
        }
    }
}

impl Drop for DecisionLog {
    /// Write what is recorded before the log goes.
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        if let Some(writer) = self.writer.take() {
            writer.thread().unpark();
            let _ = writer.join();
        }
        self.shared.write_out();
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Remove files untouched for `keep_days` days, then the oldest beyond `max_files`.
fn prune(dir: &Path, keep_days: u64, max_files: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    let mut files: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| is_log_file(&e.path()))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    let too_old = Duration::from_secs(keep_days * 86_400);
    files.retain(|(modified, path)| {
        let old = now.duration_since(*modified).unwrap_or_default() > too_old;
        if old {
            let _ = std::fs::remove_file(path);
        }
        !old
    });
    files.sort();
    let excess = files.len().saturating_sub(max_files);
    for (_, path) in files.into_iter().take(excess) {
        let _ = std::fs::remove_file(path);
    }
}

fn is_log_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".jsonl") || name.ends_with(".jsonl.1")
}

/// The `limit` most recent decisions of every log in `dir`, oldest first; lines that do not
/// read as decisions (a line cut by a crash) are skipped.
pub fn recent(dir: &Path, limit: usize) -> Vec<Decided> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut all: Vec<Decided> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_log_file(p))
        .filter_map(|p| File::open(p).ok())
        .flat_map(|f| {
            std::io::BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| serde_json::from_str::<Decided>(&l).ok())
                .collect::<Vec<_>>()
        })
        .collect();
    // RFC 3339 times in UTC with fixed digits sort as text.
    all.sort_by(|a, b| a.time.cmp(&b.time));
    let skip = all.len().saturating_sub(limit);
    all.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(tool: &'a str, verdict: &'a str) -> AuditRecord<'a> {
        AuditRecord {
            time: super::super::now_rfc3339(),
            caller: "alice",
            server: "demo",
            tool,
            verdict,
            code: Some("denied"),
            rule: Some("tools.x.rules[0]"),
            plugin: Some("deny"),
            reason: Some("no"),
            latency_us: 3,
            arguments_sha256: Some("abc".into()),
            arguments: None,
            dry_run: false,
            approval: None,
            changes: None,
        }
    }

    #[test]
    fn decisions_of_two_processes_read_back_in_time_order_without_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let a = DecisionLog::open(dir.path(), "git/hub").unwrap();
        a.record(&record("first", "deny"));
        let b = DecisionLog::open(dir.path(), "other").unwrap();
        b.record(&record("second", "allow"));
        drop(b);
        a.record(&record("third", "allow"));
        let name = a.path().file_name().unwrap().to_str().unwrap().to_string();
        drop(a);
        assert!(name.starts_with("git_hub-"), "{name}");
        let read = recent(dir.path(), 10);
        let tools: Vec<_> = read.iter().map(|d| d.tool.as_str()).collect();
        assert_eq!(tools, ["first", "second", "third"]);
        assert_eq!(read[0].reason.as_deref(), Some("no"));
        let text = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        assert!(!text.contains("arguments"), "{text}");
        assert_eq!(recent(dir.path(), 1)[0].tool, "third");
    }

    #[test]
    fn old_files_and_files_past_the_count_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("s-{i}.jsonl")), "").unwrap();
        }
        std::fs::write(dir.path().join("keep.txt"), "").unwrap();
        let old = File::options()
            .write(true)
            .open(dir.path().join("s-0.jsonl"))
            .unwrap();
        old.set_modified(SystemTime::now() - Duration::from_secs(8 * 86_400))
            .unwrap();
        prune(dir.path(), 7, 3);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), 4, "{left:?}");
        assert!(left.contains(&"keep.txt".to_string()) && !left.contains(&"s-0.jsonl".into()));
    }

    #[test]
    fn a_full_file_rotates_and_one_old_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = DecisionLog::open(dir.path(), "big").unwrap();
        let reason = "r".repeat(2000);
        let mut r = record("t", "deny");
        r.reason = Some(&reason);
        for _ in 0..6 {
            for _ in 0..100 {
                log.record(&r);
            }
            log.flush();
        }
        let path = log.path().to_path_buf();
        drop(log);
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= MAX_BYTES, "{size}");
        let mut old = path.into_os_string();
        old.push(".1");
        assert!(Path::new(&old).exists());
    }
}
