//! Policy files: read YAML or JSON, validate strictly, and normalise into one [`Policy`] in which
//! every rule is a plugin with a configuration (built-in rule kinds compile to the built-in
//! plugins, so there is one mechanism, not two).
//!
//! Three formats load: Tollgate's own ([`parse_native`]), Intercept's YAML ([`parse_intercept`])
//! and PolicyLayer's JSON ([`parse_policylayer`]); [`detect_format`] tells them apart.

mod include;
mod intercept;
mod native;
mod policylayer;
mod rate;

pub use intercept::parse_intercept;
pub use native::parse_native;
pub use policylayer::parse_policylayer;
pub use rate::{parse_duration_secs, parse_rate, parse_window_secs};

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

    /// The engine's limits, with Tollgate's defaults for what the file leaves unset.
    pub fn to_limits(&self) -> crate::engine::Limits {
        let d = crate::engine::Limits::default();
        crate::engine::Limits {
            deadline: self
                .deadline_ms
                .map(std::time::Duration::from_millis)
                .unwrap_or(d.deadline),
            memory_bytes: self
                .memory_mib
                .map(|m| (m as usize) << 20)
                .unwrap_or(d.memory_bytes),
            fuel: self.fuel.or(d.fuel),
        }
    }
}

/// Where a plugin's component comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginSource {
    /// Embedded in Tollgate.
    Builtin(crate::builtin::Kind),
    /// A `.wasm` component file or a pack (a folder or `.tar.gz` with a `tollgate-pack.json`),
    /// resolved against the policy file's directory.
    File {
        /// Path of the component or pack.
        path: PathBuf,
        /// Expected sha256 (hex) of the component, checked before compiling when given.
        sha256: Option<String>,
        /// Which of a pack's components (needed when it has more than one).
        component: Option<String>,
        /// Public keys (`ed25519:BASE64`) one of which must have signed the pack, when given.
        trusted_keys: Vec<String>,
        /// Capabilities the operator grants the plugin.
        grants: Vec<crate::engine::Capability>,
    },
}

/// One rule: a plugin with its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Where the rule stands, or its name: `tools.send_message.rules[0]` (`github:` before it
    /// when it comes from an include).
    pub label: String,
    /// The pack or file it was included from (`None`: the policy file itself).
    pub origin: Option<String>,
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
    /// A denial by this rule is logged, audited and counted, and the call goes on.
    pub dry_run: bool,
    /// The longest an approval request this rule makes may stay open, in milliseconds (a
    /// plugin's own `timeout-ms` is capped by it).
    pub ask_timeout_ms: u64,
    /// Whose answers approve this rule's requests.
    pub ask_channels: Channels,
    /// How long a call waits for an operator's decision before it is answered that it is
    /// pending, in milliseconds (0: answered at once).
    pub ask_wait_ms: u64,
}

/// Whose answers count for an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channels {
    /// The agent's client, asking its user in band (where it declared elicitation).
    pub client: bool,
    /// An operator, through `tollgate approvals`.
    pub operator: bool,
}

impl Default for Channels {
    /// An operator only: a client that answers its own question could approve its own call.
    fn default() -> Self {
        Self {
            client: false,
            operator: true,
        }
    }
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
    /// Intercept's YAML (`version: "1"`, rules with `name`, `conditions`, `on_deny`, `state`).
    Intercept,
    /// PolicyLayer's JSON (`default`, `hide`, `all_tools.limits`, `tools.*.{require, deny_if,
    /// limits}`).
    PolicyLayer,
}

impl Format {
    /// What the agent reads before a denial's reason: Intercept's own prefix for Intercept
    /// files, so agents and prompts written for Intercept see what they expect.
    pub fn denial_prefix(self) -> &'static str {
        match self {
            Format::Intercept => intercept::DENIAL_PREFIX,
            Format::Native | Format::PolicyLayer => "Denied by policy: ",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Native => "Tollgate policy (version 1)",
            Format::Intercept => "Intercept policy",
            Format::PolicyLayer => "PolicyLayer policy",
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
    /// The server's tools held to a reviewed lock file (`pins:`), if the policy says so.
    pub pins: Option<crate::pins::PinPolicy>,
    /// The local files and pack folders `include:` read (hot reload watches them; packs from
    /// registries are fetched again on reload instead).
    pub included: Vec<PathBuf>,
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
    parse(&text, base).map_err(|message| ConfigError::Invalid {
        path: path.into(),
        message,
    })
}

/// Parse a policy document in whichever format [`detect_format`] finds. `base` resolves relative
/// plugin paths (native format only).
pub fn parse(text: &str, base: &Path) -> Result<Policy, String> {
    match detect_format(text) {
        Format::Native => parse_native(text, base),
        Format::Intercept => parse_intercept(text),
        Format::PolicyLayer => parse_policylayer(text),
    }
}

/// Top-level keys only Tollgate's own format has.
const NATIVE_ONLY_TOP: &[&str] = &["plugins", "limits", "include"];
/// Rule keys only Tollgate's own format has.
const NATIVE_ONLY_RULE: &[&str] = &[
    "reason",
    "code",
    "when",
    "validate",
    "redact",
    "plugin",
    "config",
    "deny_as",
    "refund_on_error_result",
    "limits",
    "dry_run",
];
/// Rule keys and values only Intercept has: a file with them is Intercept's whether its version
/// is written `"1"` or `1`.
const INTERCEPT_ONLY_RULE: &[&str] = &["on_deny", "state"];
/// The only top-level keys of a PolicyLayer document.
const POLICYLAYER_TOP: &[&str] = &["version", "default", "hide", "all_tools", "tools"];

/// Which format a policy document is written in:
/// - **PolicyLayer** — a JSON document with `all_tools`, or a tool with `limits`, `require` or
///   `deny_if`; or a JSON document with `version: "1"` (a string) and `default` whose keys are
///   all PolicyLayer's and whose tools have no `rules`;
/// - **Intercept** — `version: "1"` (a string) with rules carrying `name`, `conditions`,
///   `on_deny`, `state`, `action: evaluate` or a `rate_limit: "N/unit"` string (or `version: 1`
///   with `on_deny`, `state` or `action: evaluate`, which Tollgate's format does not have), and
///   nothing only Tollgate's format has (`plugins`, `limits`, `reason`, `when`, `validate`,
///   `action: allow`, a `rate_limit` object, …);
/// - **native** otherwise (which is also where syntax errors are reported).
pub fn detect_format(text: &str) -> Format {
    let Ok(Value::Object(top)) = serde_norway::from_str::<Value>(text) else {
        return Format::Native;
    };
    let tool_defs: Vec<&serde_json::Map<String, Value>> = top
        .get("tools")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|tools| tools.values())
        .filter_map(Value::as_object)
        .collect();
    let version_one = top.get("version") == Some(&Value::String("1".into()));
    if text.trim_start().starts_with('{') {
        let policylayer_keys = top.contains_key("all_tools")
            || tool_defs.iter().any(|t| {
                ["limits", "require", "deny_if"]
                    .iter()
                    .any(|k| t.contains_key(*k))
            });
        let policylayer_shape = version_one
            && top.contains_key("default")
            && top.keys().all(|k| POLICYLAYER_TOP.contains(&k.as_str()))
            && !tool_defs.iter().any(|t| t.contains_key("rules"));
        if policylayer_keys || policylayer_shape {
            return Format::PolicyLayer;
        }
    }
    let version_number_one = top.get("version").and_then(Value::as_u64) == Some(1);
    if !(version_one || version_number_one) || NATIVE_ONLY_TOP.iter().any(|k| top.contains_key(*k))
    {
        return Format::Native;
    }
    let rules: Vec<&serde_json::Map<String, Value>> = tool_defs
        .iter()
        .filter_map(|t| t.get("rules").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let native_only = rules.iter().any(|r| {
        NATIVE_ONLY_RULE.iter().any(|k| r.contains_key(*k))
            || r.get("action") == Some(&Value::String("allow".into()))
            || r.get("rate_limit").is_some_and(Value::is_object)
    });
    let intercept_only = rules.iter().any(|r| {
        INTERCEPT_ONLY_RULE.iter().any(|k| r.contains_key(*k))
            || r.get("action") == Some(&Value::String("evaluate".into()))
    });
    let intercept_like = rules.iter().any(|r| {
        r.contains_key("name")
            || r.contains_key("conditions")
            || r.get("rate_limit").is_some_and(Value::is_string)
    });
    let intercept = intercept_only || (version_one && intercept_like);
    if intercept && !native_only {
        Format::Intercept
    } else {
        Format::Native
    }
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
    use super::{detect_format, glob_match, Format};

    #[test]
    fn formats_are_told_apart() {
        let intercept = "version: \"1\"\ntools:\n  t:\n    rules:\n      - name: x\n        rate_limit: 5/hour\n";
        assert_eq!(detect_format(intercept), Format::Intercept);
        let unquoted = "version: 1\ntools:\n  t:\n    rules:\n      - name: x\n        action: deny\n        on_deny: no\n";
        assert_eq!(detect_format(unquoted), Format::Intercept);
        let seed = r#"{"version":"1","default":"deny","tools":{"create_conversation":{"limits":[{"counter":"c","window":"minute","max":30,"scope":"grant"}]}}}"#;
        assert_eq!(detect_format(seed), Format::PolicyLayer);
        assert_eq!(
            detect_format(
                r#"{"version": "1", "default": "deny", "tools": {"list_customers": {}}}"#
            ),
            Format::PolicyLayer
        );
        assert_eq!(
            detect_format(r#"{"version": "1", "all_tools": {"limits": []}}"#),
            Format::PolicyLayer
        );
        for native in [
            "version: 1\ntools:\n  t:\n    rules:\n      - name: x\n        rate_limit: 5/hour\n",
            "version: \"1\"\ntools:\n  t:\n    rules:\n      - name: x\n        action: deny\n        reason: no\n",
            "version: \"1\"\ntools:\n  t:\n    rules:\n      - action: allow\n        rate_limit: { max: 30, window: 60 }\n",
            "tools: {send_conversation_message: {rules: [{action: allow, rate_limit: {max: 30, window: 60}}]}}",
            "version: 1\ntools:\n  x:\n    rulez: []\n",
            "not: [valid",
            r#"{"version": 1, "default": "deny", "tools": {"echo": {"rules": []}}}"#,
        ] {
            assert_eq!(detect_format(native), Format::Native, "{native}");
        }
    }

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
