//! The audit log (`--audit-log FILE`): one JSON line per decision, written and flushed before
//! the decision takes effect, so a crash loses nothing already decided. Arguments are recorded
//! as a sha256 unless raw arguments are asked for. The file rotates by size: `FILE` becomes
//! `FILE.1` (and `FILE.1` becomes `FILE.2`, …), keeping a fixed number of old files.
//!
//! Beside it, [`decisions`] keeps the machine's recent decisions by default, and a [`Recorder`]
//! writes each decision to whichever of the two a proxy has.

pub mod decisions;

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The audit log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log {path}: {cause}")]
pub struct AuditError {
    path: String,
    cause: std::io::Error,
}

/// How the audit log behaves.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// The file.
    pub path: PathBuf,
    /// Rotate when the file would grow past this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`FILE.1` … `FILE.N`).
    pub keep: usize,
    /// Record raw arguments instead of their sha256.
    pub raw_arguments: bool,
}

/// One decision.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord<'a> {
    /// RFC 3339 time, UTC.
    pub time: String,
    /// Who called.
    pub caller: &'a str,
    /// The server (as counters are namespaced).
    pub server: &'a str,
    /// The tool.
    pub tool: &'a str,
    /// `allow`, `deny`, `rewrite`, `unknown` (hidden), `ask` (the client was asked), `wait` (the
    /// call is held while an operator decides) or `pin_mismatch`.
    pub verdict: &'a str,
    /// The denial code (`denied`, `rate_limited`, …), for denials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
    /// The deciding rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'a str>,
    /// The plugin of the deciding rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<&'a str>,
    /// The reason given to the agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// Decision time in microseconds.
    pub latency_us: u64,
    /// sha256 of the arguments JSON (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments_sha256: Option<String>,
    /// The raw arguments (only with `--audit-arguments`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<&'a serde_json::value::RawValue>,
    /// A denial by a dry-run rule that was not enforced.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The approval request the call used, waits on, or was refused or expired under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalFacts<'a>>,
    /// For a pin mismatch: each changed field, as pinned and as the server lists it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<serde_json::Value>,
}

/// Where a proxy writes its decisions: the operator's audit log and the machine's decision log,
/// each when there is one.
#[derive(Clone, Default)]
pub struct Recorder {
    /// `--audit-log`.
    pub audit: Option<Arc<AuditLog>>,
    /// The decision log (on unless `--no-decision-log`).
    pub decisions: Option<Arc<decisions::DecisionLog>>,
}

impl Recorder {
    /// Whether decisions go anywhere.
    pub fn is_on(&self) -> bool {
        self.audit.is_some() || self.decisions.is_some()
    }

    /// The audit log, which alone records arguments (as a sha256, or raw).
    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_deref()
    }

    /// Write one decision to each log.
    pub fn record(&self, record: &AuditRecord<'_>) {
        if let Some(audit) = &self.audit {
            audit.record(record);
        }
        if let Some(decisions) = &self.decisions {
            decisions.record(record);
        }
    }
}

/// An approval, as an audit record names it.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalFacts<'a> {
    /// The request's id.
    pub id: &'a str,
    /// Who decided it (for calls that went through).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<&'a str>,
    /// Through which channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'a str>,
    /// How long the person took, from the request to the decision, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
}

impl<'a> ApprovalFacts<'a> {
    /// What an approval that was used says of itself.
    pub fn used(approval: &'a crate::approval::Approval) -> Self {
        let decided = match &approval.state {
            crate::approval::State::Used { decided, .. }
            | crate::approval::State::Approved(decided)
            | crate::approval::State::Denied(decided) => Some(decided),
            _ => None,
        };
        Self {
            id: &approval.id,
            by: decided.map(|d| d.by.as_str()),
            channel: decided.map(|d| d.channel.as_str()),
            waited_ms: decided.map(|d| d.decided_ms.saturating_sub(approval.made_ms)),
        }
    }
}

struct Writer {
    file: File,
    size: u64,
}

/// An open audit log.
pub struct AuditLog {
    options: AuditOptions,
    writer: Mutex<Writer>,
}

fn open(path: &Path) -> std::io::Result<Writer> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok(Writer { file, size })
}

/// `FILE.n`.
fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// sha256 of `text`, in hex.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The current time as RFC 3339 (UTC, microseconds).
pub fn now_rfc3339() -> String {
    rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// A time since the Unix epoch as RFC 3339 (UTC, microseconds).
pub fn rfc3339(now: std::time::Duration) -> String {
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    )
}

impl AuditLog {
    /// Open (append to) the log.
    pub fn open(options: AuditOptions) -> Result<Self, AuditError> {
        let writer = open(&options.path).map_err(|cause| AuditError {
            path: options.path.display().to_string(),
            cause,
        })?;
        Ok(Self {
            options,
            writer: Mutex::new(writer),
        })
    }

    /// Whether raw arguments are recorded.
    pub fn raw_arguments(&self) -> bool {
        self.options.raw_arguments
    }

    /// Append one record (a line), rotating first if it would not fit. A write failure is
    /// logged; it does not stop the proxy.
    pub fn record(&self, record: &AuditRecord<'_>) {
        let mut line = match serde_json::to_vec(record) {
            Ok(l) => l,
            Err(e) => return tracing::error!(error = %e, "cannot encode an audit record"),
        };
        line.push(b'\n');
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if w.size > 0 && w.size + line.len() as u64 > self.options.max_bytes {
            if let Err(e) = self.rotate(&mut w) {
                tracing::error!(error = %e, "cannot rotate the audit log; appending");
            }
        }
        // One write per record, then flushed to the OS: a crash of Tollgate loses nothing.
        match w.file.write_all(&line).and_then(|_| w.file.flush()) {
            Ok(()) => w.size += line.len() as u64,
            Err(e) => tracing::error!(error = %e, "cannot write the audit log"),
        }
    }

    fn rotate(&self, w: &mut Writer) -> std::io::Result<()> {
        let path = &self.options.path;
        if self.options.keep == 0 {
            std::fs::remove_file(path)?;
        } else {
            let _ = std::fs::remove_file(rotated(path, self.options.keep));
            for n in (1..self.options.keep).rev() {
                let from = rotated(path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(path, n + 1))?;
                }
            }
            std::fs::rename(path, rotated(path, 1))?;
        }
        *w = open(path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(tool: &'a str) -> AuditRecord<'a> {
        AuditRecord {
            time: now_rfc3339(),
            caller: "alice",
            server: "demo",
            tool,
            verdict: "deny",
            code: Some("denied"),
            rule: Some("tools.x.rules[0]"),
            plugin: Some("deny"),
            reason: Some("no"),
            latency_us: 12,
            arguments_sha256: Some(sha256_hex("{}")),
            arguments: None,
            dry_run: false,
            approval: None,
            changes: None,
        }
    }

    #[test]
    fn records_are_json_lines_and_files_rotate_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit/decisions.jsonl");
        let log = AuditLog::open(AuditOptions {
            path: path.clone(),
            max_bytes: 600,
            keep: 2,
            raw_arguments: false,
        })
        .unwrap();
        for i in 0..12 {
            log.record(&record(&format!("tool_{i:02}")));
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let first: serde_json::Value =
            serde_json::from_str(current.lines().next().unwrap()).unwrap();
        assert_eq!(first["caller"], "alice");
        assert_eq!(
            first["arguments_sha256"],
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert!(current.len() <= 600, "{}", current.len());
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists(), "only two old files are kept");
        // The newest record is last in the current file; nothing was lost across the
        // rotations that are kept.
        assert!(current.contains("tool_11"));
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 27, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{t}"
        );
    }
}
