//! `tollgate wrap` and `unwrap`: put Tollgate in front of every MCP server a client's
//! configuration names, and take it away again.
//!
//! [`clients`] knows where each client keeps its servers; [`file`](mod@file) reads and writes a
//! configuration keeping what it does not change; [`entry`] turns one server entry into the
//! same server behind `tollgate run`. What each wrapped entry was is kept in a [`Record`] under
//! the state directory, so `unwrap` restores it exactly.

pub mod catalog;
pub mod clients;
pub mod entry;
pub mod file;
mod json_spans;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use clients::{Client, Syntax};
pub use entry::Shape;
pub use file::ConfigFile;

/// Wrapping or unwrapping could not be done; the configuration file is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    /// The configuration (or a record) cannot be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The file is not what the client writes.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A server entry has a shape Tollgate does not know.
    #[error("{path}: server `{server}`: {message}; nothing was changed")]
    Entry {
        /// The file.
        path: PathBuf,
        /// The server's name.
        server: String,
        /// What is wrong.
        message: String,
    },
    /// A file cannot be written.
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

/// One server of a configuration, as wrapping sees it.
#[derive(Debug, Clone)]
pub struct Server {
    /// Its name in the configuration.
    pub name: String,
    /// Its entry as written.
    pub entry: Value,
    /// What it starts or connects to.
    pub shape: Shape,
}

/// Every server of a configuration, classified; an entry of an unknown shape is an error
/// naming it, before anything is written.
pub fn survey(file: &ConfigFile, client: Option<Client>) -> Result<Vec<Server>, WrapError> {
    let sse_key = (client == Some(Client::GeminiCli)).then_some("url");
    file.servers()
        .into_iter()
        .map(|(name, entry)| match entry::shape(&entry, sse_key) {
            Ok(shape) => Ok(Server { name, entry, shape }),
            Err(message) => Err(WrapError::Entry {
                path: file.path.clone(),
                server: name,
                message,
            }),
        })
        .collect()
}

/// What `wrap` changed in one configuration file: each wrapped entry before and after.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The configuration file.
    pub config: PathBuf,
    /// Wrapped servers by name.
    pub servers: BTreeMap<String, Wrapped>,
}

/// One wrapped server entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wrapped {
    /// The policy `wrap` gave it.
    #[serde(default)]
    pub policy: PathBuf,
    /// The entry as it was.
    pub original: Value,
    /// Its text as the file had it (JSON), so unwrapping puts back the very bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_text: Option<String>,
    /// The entry as `wrap` wrote it.
    pub wrapped: Value,
}

impl Record {
    /// Where the record of `config` is kept: under the state directory, named by a digest of
    /// the configuration's absolute path.
    pub fn path(state_dir: &Path, config: &Path) -> PathBuf {
        let absolute = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
        let digest = Sha256::digest(absolute.to_string_lossy().as_bytes());
        let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        state_dir.join("wrapped").join(format!("{name}.json"))
    }

    /// The record at `path`, or an empty one for `config` if there is none.
    pub fn load(path: &Path, config: &Path) -> Result<Record, WrapError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| WrapError::Invalid {
                path: path.to_path_buf(),
                message: format!("not a wrap record: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Record {
                config: std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf()),
                servers: BTreeMap::new(),
            }),
            Err(cause) => Err(WrapError::Read {
                path: path.to_path_buf(),
                cause,
            }),
        }
    }

    /// Every record under `state_dir` (a record that cannot be read is reported by path).
    pub fn all(state_dir: &Path) -> Vec<(PathBuf, Result<Record, WrapError>)> {
        let Ok(entries) = std::fs::read_dir(state_dir.join("wrapped")) else {
            return Vec::new();
        };
        let mut found: Vec<(PathBuf, Result<Record, WrapError>)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                let record = Record::load(&p, Path::new(""));
                (p, record)
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// Write the record (removing the file when nothing is wrapped any more).
    pub fn save(&self, path: &Path) -> Result<(), WrapError> {
        let write_error = |cause| WrapError::Write {
            path: path.to_path_buf(),
            cause,
        };
        if self.servers.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(write_error(e)),
                _ => Ok(()),
            };
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write_error)?;
        }
        let text = serde_json::to_string_pretty(self).expect("records serialise");
        std::fs::write(path, text).map_err(write_error)
    }
}

/// A line diff of two texts, unified style with three lines of context (empty when equal).
pub fn diff(path: &Path, old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    // Longest common subsequence table, from the ends.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            lines.push(('+', b[j]));
            j += 1;
        } else {
            lines.push(('-', a[i]));
            i += 1;
        }
    }
    if lines.iter().all(|(c, _)| *c == ' ') {
        return String::new();
    }
    // Within each run of changed lines, what goes before what comes.
    let mut k = 0;
    while k < lines.len() {
        let run = lines[k..].iter().take_while(|(c, _)| *c != ' ').count();
        lines[k..k + run].sort_by_key(|(c, _)| *c != '-');
        k += run.max(1);
    }
    let near = |k: usize| {
        let lo = k.saturating_sub(3);
        let hi = (k + 4).min(lines.len());
        lines[lo..hi].iter().any(|(c, _)| *c != ' ')
    };
    let mut out = format!("--- {0}\n+++ {0} (wrapped)\n", path.display());
    let mut skipped = false;
    for (k, (c, line)) in lines.iter().enumerate() {
        if near(k) {
            if skipped {
                out.push_str("@@\n");
                skipped = false;
            }
            out.push_str(&format!("{c}{line}\n"));
        } else {
            skipped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_shows_changed_lines_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\n";
        assert_eq!(
            diff(Path::new("x.json"), old, new),
            "--- x.json\n+++ x.json (wrapped)\n@@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
        assert_eq!(diff(Path::new("x"), old, old), "");
    }
}
