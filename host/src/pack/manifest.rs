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
    /// The contract its components implement: `tollgate:policy@0.2.0`.
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
    pub components: Vec<ComponentEntry>,
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
        if !m.wit.starts_with("tollgate:policy@") {
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
        if m.components.is_empty() {
            return invalid("`components` is empty".into());
        }
        for c in &m.components {
            if c.file.starts_with('/') || c.file.split('/').any(|p| p == "..") {
                return invalid(format!(
                    "component `{}`: `file` must stay inside the pack, not {:?}",
                    c.name, c.file
                ));
            }
            match &c.sha256 {
                None if built => return invalid(format!("component `{}` has no `sha256`", c.name)),
                Some(d) if d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()) => {
                    return invalid(format!(
                        "component `{}`: `sha256` must be 64 hex digits",
                        c.name
                    ))
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
}
