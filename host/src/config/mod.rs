//! Policy files: read YAML or JSON, validate strictly, and normalise into one [`Policy`] in which
//! every rule is a plugin with a configuration (built-in rule kinds compile to the built-in
//! plugins, so there is one mechanism, not two).

mod native;
mod rate;

pub use native::parse_native;
pub use rate::{parse_rate, parse_window_secs};

use serde_json::Value;
use std::path::{Path, PathBuf};

/// What happens to a tool that no rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultAction {
    /// Let it through (the default).
    #[default]
    Allow,
    /// Deny it before any rule runs.
    Deny,
}

/// How a denial reaches the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DenyAs {
    /// A `tools/call` result with `isError: true`, so the model can read it and adapt.
    #[default]
    Result,
    /// A JSON-RPC error response.
    Error,
}

/// The sandbox limits a plugin runs under, as written in a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitSpec {
    /// Wall-clock deadline per call, in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Memory ceiling in MiB.
    pub memory_mib: Option<u64>,
    /// Fuel per call.
    pub fuel: Option<u64>,
}

impl LimitSpec {
    /// These limits, with unset ones taken from `defaults`.
    pub fn or(self, defaults: LimitSpec) -> LimitSpec {
        LimitSpec {
            deadline_ms: self.deadline_ms.or(defaults.deadline_ms),
            memory_mib: self.memory_mib.or(defaults.memory_mib),
            fuel: self.fuel.or(defaults.fuel),
        }
    }
}

/// Where a plugin's component comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginSource {
    /// Embedded in Tollgate (`deny`, `rate-limit`, `validate`).
    Builtin(String),
    /// A `.wasm` component file (resolved against the policy file's directory).
    File {
        /// Path of the component.
        path: PathBuf,
        /// Expected sha256 (hex), checked before compiling when given.
        sha256: Option<String>,
    },
}

/// One rule: a plugin with its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Where the rule stands, or its name: `tools.send_message.rules[0]`.
    pub label: String,
    /// The plugin's name (built-in or from `plugins:`).
    pub plugin: String,
    /// Its component.
    pub source: PluginSource,
    /// Its configuration.
    pub config: Value,
    /// How its denials reach the agent.
    pub deny_as: DenyAs,
    /// Whether a result with `isError: true` refunds what the rule's counters took.
    pub refund_on_error_result: bool,
    /// Its limits (defaults filled in).
    pub limits: LimitSpec,
}

/// The rules of one tool-name pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRules {
    /// A tool name or a glob (`delete_*`).
    pub pattern: String,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// The format a policy file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tollgate's own format.
    Native,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Native => "Tollgate policy (version 1)",
        })
    }
}

/// A policy, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The format it was read from.
    pub format: Format,
    /// What happens to tools no rule names.
    pub default: DefaultAction,
    /// Glob patterns of tools removed from `tools/list` and answered as unknown.
    pub hide: Vec<String>,
    /// Per-tool rules, in file order (`"*"` excluded).
    pub tools: Vec<ToolRules>,
    /// The `"*"` rules, run after a tool's own.
    pub all_tools: Vec<Rule>,
}

/// A policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// Syntax or structure error, with the position when known.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and, where known, at which line.
        message: String,
    },
}

/// Read and normalise a policy file.
pub fn load(path: &Path) -> Result<Policy, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
        path: path.into(),
        cause,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_native(&text, base).map_err(|message| ConfigError::Invalid {
        path: path.into(),
        message,
    })
}

/// Whether `name` matches the glob `pattern` (`*` any run of characters, `?` one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_like_shell_patterns() {
        assert!(glob_match("delete_*", "delete_file"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("get_?", "get_x"));
        assert!(glob_match("*_file*", "read_file_now"));
        assert!(!glob_match("delete_*", "undelete_file"));
        assert!(!glob_match("get_?", "get_xy"));
        assert!(glob_match("exact", "exact"));
    }
}
