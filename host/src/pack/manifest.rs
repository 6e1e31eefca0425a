//! `tollgate-pack.json`: what a pack is, what it asks for and what it contains.
//!
//! ```json
//! {
//!   "name": "block-secrets",
//!   "version": "0.1.0",
//!   "wit": "tollgate:policy@0.2.0",
//!   "description": "Refuses calls whose arguments carry API keys or private keys",
//!   "capabilities": [],
//!   "config_schema": { "type": "object", "additionalProperties": false },
//!   "components": [
//!     { "name": "block-secrets", "file": "block-secrets.wasm", "sha256": "5f0c…" }
//!   ]
//! }
//! ```
//!
//! A **policy pack** carries a policy fragment, and the cases it must pass, that a policy file
//! takes in with `include:`. It may carry the components its rules use too, or none (then `wit`
//! may be left out):
//!
//! ```json
//! {
//!   "name": "github",
//!   "version": "1.0.0",
//!   "description": "Reviewed rules for the GitHub MCP server",
//!   "servers": ["@modelcontextprotocol/server-github"],
//!   "policy": { "file": "policy.yaml", "sha256": "…" },
//!   "cases": { "file": "cases.yaml", "sha256": "…" }
//! }
//! ```

use crate::engine::Capability;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The manifest's file name, at the root of a pack.
pub const FILE: &str = "tollgate-pack.json";

/// A pack's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The pack's name (letters, digits, `-` and `_`).
    pub name: String,
    /// Its version (semver).
    pub version: String,
    /// The contract its components implement: `tollgate:policy@0.2.0` (only a pack without
    /// components may leave it out).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wit: String,
    /// One line on what it does.
    #[serde(default)]
    pub description: String,
    /// Capabilities its components need (`clocks`, `random`, `output`); the operator must grant
    /// each of them in the policy file.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// JSON Schema the plugin's `config` must satisfy; checked at load, before `configure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_schema: Option<Value>,
    /// The components.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentEntry>,
    /// A policy pack's fragment, which a policy file takes in with `include:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<FileEntry>,
    /// The cases the fragment must pass (`tollgate test`'s format), replayed by `pack build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cases: Option<FileEntry>,
    /// Packages or images of the MCP servers the fragment was reviewed for (`tollgate wrap`
    /// matches a server's command against them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
}

/// A file of a pack other than a component, with its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Its path inside the pack.
    pub file: String,
    /// sha256 of the file, lowercase hex; `tollgate pack build` fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One component of a pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentEntry {
    /// The name a policy file picks it by (`component:`).
    pub name: String,
    /// Its path inside the pack.
    pub file: String,
    /// sha256 of the file, lowercase hex. Optional only in a project's source manifest, which
    /// `tollgate pack build` completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What is wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not the JSON described above.
    #[error("{FILE} is not valid: {0}")]
    Syntax(String),
    /// A field has a value that cannot work.
    #[error("{FILE}: {0}")]
    Invalid(String),
}

impl Manifest {
    /// Parse and check a manifest. `built` requires a digest on every component (a pack, as
    /// opposed to a project's source manifest).
    pub fn parse(text: &[u8], built: bool) -> Result<Self, ManifestError> {
        let m: Manifest =
            serde_json::from_slice(text).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        let invalid = |msg: String| Err(ManifestError::Invalid(msg));
        if m.name.is_empty()
            || !m
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return invalid(format!(
                "`name` must be letters, digits, `-` or `_`, not {:?}",
                m.name
            ));
        }
        if m.version.trim().is_empty() {
            return invalid("`version` is empty".into());
        }
        if !m.components.is_empty() && !m.wit.starts_with("tollgate:policy@") {
            return invalid(format!(
                "`wit` must name the contract, like \"tollgate:policy@0.2.0\", not {:?}",
                m.wit
            ));
        }
        for c in &m.capabilities {
            if let Err(e) = c.parse::<Capability>() {
                return invalid(e.to_string());
            }
        }
        if m.components.is_empty() && m.policy.is_none() {
            return invalid(
                "a pack carries `components`, a `policy`, or both; this one has neither".into(),
            );
        }
        if m.cases.is_some() && m.policy.is_none() {
            return invalid("`cases` belong to a `policy`, and this pack has none".into());
        }
        let entries = m
            .components
            .iter()
            .map(|c| (format!("component `{}`", c.name), &c.file, &c.sha256));
        let files = [("`policy`", &m.policy), ("`cases`", &m.cases)]
            .into_iter()
            .filter_map(|(what, e)| e.as_ref().map(|e| (what.to_string(), &e.file, &e.sha256)));
        for (what, file, sha256) in entries.chain(files) {
            if file.starts_with('/') || file.split('/').any(|p| p == "..") {
                return invalid(format!(
                    "{what}: `file` must stay inside the pack, not {file:?}"
                ));
            }
            match sha256 {
                None if built => return invalid(format!("{what} has no `sha256`")),
                Some(d) if d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()) => {
                    return invalid(format!("{what}: `sha256` must be 64 hex digits"))
                }
                _ => {}
            }
        }
        if let Some(schema) = &m.config_schema {
            if let Err(e) = jsonschema::validator_for(schema) {
                return invalid(format!("`config_schema` is not a usable JSON Schema: {e}"));
            }
        }
        Ok(m)
    }

    /// The WIT version, e.g. `0.1.0`.
    pub fn wit_version(&self) -> &str {
        self.wit.trim_start_matches("tollgate:policy@")
    }

    /// The capabilities asked for, parsed (already checked by [`Manifest::parse`]).
    pub fn asked(&self) -> Vec<Capability> {
        self.capabilities
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect()
    }

    /// The manifest as written into a pack: pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a manifest serialises");
        out.push(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"name":"p","version":"0.1.0","wit":"tollgate:policy@0.1.0",
        "components":[{"name":"p","file":"p.wasm","sha256":"0000000000000000000000000000000000000000000000000000000000000000"}]}"#;

    #[test]
    fn a_complete_manifest_parses() {
        let m = Manifest::parse(GOOD.as_bytes(), true).unwrap();
        assert_eq!(m.wit_version(), "0.1.0");
        assert!(m.asked().is_empty());
    }

    #[test]
    fn mistakes_are_named() {
        let bad = GOOD.replace("\"p.wasm\"", "\"../p.wasm\"");
        let e = Manifest::parse(bad.as_bytes(), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("inside the pack"), "{e}");
        let bad = GOOD.replace(
            "\"components\"",
            "\"capabilities\":[\"network\"],\"components\"",
        );
        let e = Manifest::parse(bad.as_bytes(), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown capability `network`"), "{e}");
        let e = Manifest::parse(b"{\"name\":", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not valid"), "{e}");
    }

    #[test]
    fn a_policy_pack_needs_no_components_but_its_files_need_digests() {
        let policy = r#"{"name":"github","version":"1.0.0","policy":{"file":"policy.yaml"}}"#;
        assert!(Manifest::parse(policy.as_bytes(), false)
            .unwrap()
            .policy
            .is_some());
        let e = Manifest::parse(policy.as_bytes(), true)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "tollgate-pack.json: `policy` has no `sha256`");
        let neither = r#"{"name":"x","version":"1.0.0"}"#;
        let e = Manifest::parse(neither.as_bytes(), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("has neither"), "{e}");
        let escapes = policy.replace("policy.yaml", "../policy.yaml");
        let e = Manifest::parse(escapes.as_bytes(), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`policy`: `file` must stay inside the pack"),
            "{e}"
        );
    }
}
