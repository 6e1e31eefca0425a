//! Policy packs: plugins that others publish, verified before anything is compiled.
//!
//! A pack is a folder or a `.tar.gz` holding a [`manifest`] (`tollgate-pack.json`), one or more
//! WebAssembly components whose sha256 digests the manifest lists, and optionally a
//! [`signing`] signature over the manifest (`tollgate-pack.sig`). [`Pack::open`] reads it and
//! checks, in order: the archive, the manifest, the WIT version, every component's digest and the
//! signature. A policy file may then pin a component digest, require a signature by a trusted key
//! and must grant every capability the pack asks for; the plugin's configuration is checked
//! against the pack's JSON Schema. Every failure names what failed.

pub mod archive;
pub mod build;
mod error;
pub mod manifest;
pub mod registry;
pub mod scaffold;
pub mod signing;

use crate::engine::{version, Capability};
use archive::Files;
pub use error::PackError;
use manifest::{ComponentEntry, Manifest};
use serde_json::Value;
use sha2::{Digest, Sha256};
use signing::SigningError;
use std::path::{Path, PathBuf};

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bytes of `file`, which `what` (a component, the policy, the cases) names, checked against
/// the digest the manifest gives it.
fn digested<'f>(
    path: &Path,
    files: &'f Files,
    what: &str,
    file: &str,
    sha256: &Option<String>,
) -> Result<&'f [u8], PackError> {
    let bytes = files.get(file).ok_or_else(|| PackError::MissingFile {
        path: path.to_path_buf(),
        component: what.to_string(),
        file: file.to_string(),
    })?;
    let actual = sha256_hex(bytes);
    let expected = sha256.clone().unwrap_or_default();
    if !actual.eq_ignore_ascii_case(&expected) {
        return Err(PackError::Digest {
            path: path.to_path_buf(),
            what: what.to_string(),
            expected_by: "its manifest",
            expected,
            actual,
        });
    }
    Ok(bytes)
}

/// An opened and verified pack.
#[derive(Debug)]
pub struct Pack {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its files.
    pub files: Files,
    /// Who signed it, when it is signed (the signature is valid).
    pub signer: Option<String>,
}

impl Pack {
    /// Read a pack and check its manifest, WIT version, digests and signature (if any).
    pub fn open(path: &Path) -> Result<Pack, PackError> {
        let files = archive::read(path)?;
        let at = || path.to_path_buf();
        let manifest_bytes = files
            .get(manifest::FILE)
            .ok_or_else(|| PackError::NoManifest { path: at() })?;
        let manifest = Manifest::parse(manifest_bytes, true)
            .map_err(|cause| PackError::Manifest { path: at(), cause })?;
        if !manifest.components.is_empty() && !version::SUPPORTED.contains(&manifest.wit_version())
        {
            return Err(PackError::WitVersion {
                path: at(),
                found: manifest.wit_version().to_string(),
                supported: version::SUPPORTED.join(", "),
            });
        }
        for c in &manifest.components {
            let what = format!("component `{}`", c.name);
            let bytes = digested(path, &files, &what, &c.file, &c.sha256)?;
            let implemented =
                version::exported_contract(bytes).map_err(|e| PackError::Unreadable {
                    path: at(),
                    component: c.name.clone(),
                    cause: e.to_string(),
                })?;
            if let Some(v) = implemented.filter(|v| *v != manifest.wit_version()) {
                return Err(PackError::WitMismatch {
                    path: at(),
                    component: c.name.clone(),
                    manifest: manifest.wit.clone(),
                    implemented: v,
                });
            }
        }
        let others = [("policy", &manifest.policy), ("cases", &manifest.cases)];
        for (what, entry) in others {
            if let Some(entry) = entry {
                digested(
                    path,
                    &files,
                    &format!("its {what}"),
                    &entry.file,
                    &entry.sha256,
                )?;
            }
        }
        let signer = match files.get(signing::FILE) {
            Some(sig) => Some(
                signing::verify(manifest_bytes, sig, &[])
                    .map_err(|cause| PackError::Signature { path: at(), cause })?,
            ),
            None => None,
        };
        Ok(Pack {
            path: at(),
            manifest,
            files,
            signer,
        })
    }

    /// Require a valid signature by one of `trusted` (nothing to check when it is empty).
    pub fn check_trust(&self, trusted: &[String]) -> Result<(), PackError> {
        if trusted.is_empty() {
            return Ok(());
        }
        let err = |cause| PackError::Signature {
            path: self.path.clone(),
            cause,
        };
        let sig = self
            .files
            .get(signing::FILE)
            .ok_or_else(|| err(SigningError::Unsigned(trusted.join(", "))))?;
        signing::verify(&self.files[manifest::FILE], sig, trusted).map_err(err)?;
        Ok(())
    }

    /// A policy pack's fragment and, if it has them, its cases, as text.
    pub fn policy(&self) -> Result<Option<(String, Option<String>)>, PackError> {
        let text = |entry: &manifest::FileEntry| {
            String::from_utf8(self.files[&entry.file].clone()).map_err(|_| PackError::Component {
                path: self.path.clone(),
                message: format!("{} is not UTF-8 text", entry.file),
            })
        };
        let Some(policy) = &self.manifest.policy else {
            return Ok(None);
        };
        let cases = self.manifest.cases.as_ref().map(text).transpose()?;
        Ok(Some((text(policy)?, cases)))
    }

    /// The component named `name`, or the only one.
    pub fn component(&self, name: Option<&str>) -> Result<(&ComponentEntry, &[u8]), PackError> {
        let names = || {
            self.manifest
                .components
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let entry = match name {
            Some(n) => self
                .manifest
                .components
                .iter()
                .find(|c| c.name == n)
                .ok_or_else(|| PackError::Component {
                    path: self.path.clone(),
                    message: format!("the pack has no component `{n}` (it has: {})", names()),
                })?,
            None if self.manifest.components.len() == 1 => &self.manifest.components[0],
            None => {
                return Err(PackError::Component {
                    path: self.path.clone(),
                    message: format!(
                        "the pack has several components ({}); say which with `component:`",
                        names()
                    ),
                })
            }
        };
        Ok((entry, &self.files[&entry.file]))
    }

    /// Check that every capability the pack asks for is granted.
    pub fn check_grants(&self, granted: &[Capability]) -> Result<(), PackError> {
        let asked = self.manifest.asked();
        if asked.iter().all(|c| granted.contains(c)) {
            return Ok(());
        }
        let list = |cs: &[Capability]| cs.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ");
        Err(PackError::NotGranted {
            path: self.path.clone(),
            asked: list(&asked),
            granted: list(granted),
        })
    }

    /// The pack's `config_schema`, compiled, if it has one.
    fn config_schema(&self) -> Result<Option<ConfigSchema>, PackError> {
        let Some(schema) = &self.manifest.config_schema else {
            return Ok(None);
        };
        let validator = jsonschema::validator_for(schema).map_err(|e| PackError::Config {
            path: self.path.clone(),
            errors: e.to_string(),
        })?;
        Ok(Some(ConfigSchema {
            path: self.path.clone(),
            validator,
        }))
    }
}

/// A pack's `config_schema`, which every rule's configuration of its plugin must match.
struct ConfigSchema {
    path: PathBuf,
    validator: jsonschema::Validator,
}

impl ConfigSchema {
    fn check(&self, config: &Value) -> Result<(), PackError> {
        let errors: Vec<String> = self
            .validator
            .iter_errors(config)
            .map(|e| {
                let at = e.instance_path.to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PackError::Config {
                path: self.path.clone(),
                errors: errors.join("; "),
            })
        }
    }
}

/// A plugin's component, read and verified once per policy load, and what its pack requires of
/// each rule's configuration.
pub struct Resolved {
    /// The component.
    pub wasm: Vec<u8>,
    config_schema: Option<ConfigSchema>,
}

impl Resolved {
    /// Check one rule's configuration against the pack's `config_schema`, if it has one.
    pub fn check_config(&self, config: &Value) -> Result<(), PackError> {
        match &self.config_schema {
            Some(schema) => schema.check(config),
            None => Ok(()),
        }
    }
}

/// What a policy file says about one plugin from a file or pack.
#[derive(Debug, Clone, Copy)]
pub struct PluginRef<'a> {
    /// A `.wasm` file, a pack folder or a `.tar.gz` pack.
    pub path: &'a Path,
    /// A pinned component digest.
    pub sha256: Option<&'a str>,
    /// The component to use from a pack.
    pub component: Option<&'a str>,
    /// Keys one of which must have signed the pack.
    pub trusted_keys: &'a [String],
    /// What the operator grants.
    pub grants: &'a [Capability],
}

/// Read and verify a plugin's component: from a pack (digests, signature, trust, grants; its
/// config schema for [`Resolved::check_config`]) or from a plain `.wasm` file (the pinned
/// digest).
pub fn resolve(r: PluginRef<'_>) -> Result<Resolved, PackError> {
    let is_pack = r.path.is_dir() || archive::is_archive(r.path);
    let (name, wasm, config_schema) = if is_pack {
        let pack = Pack::open(r.path)?;
        pack.check_trust(r.trusted_keys)?;
        pack.check_grants(r.grants)?;
        let config_schema = pack.config_schema()?;
        let (entry, wasm) = pack.component(r.component)?;
        (
            format!("component `{}`", entry.name),
            wasm.to_vec(),
            config_schema,
        )
    } else {
        if !r.trusted_keys.is_empty() {
            return Err(PackError::Signature {
                path: r.path.to_path_buf(),
                cause: SigningError::Unsigned(r.trusted_keys.join(", ")),
            });
        }
        let wasm = std::fs::read(r.path).map_err(|cause| PackError::Read {
            path: r.path.to_path_buf(),
            cause,
        })?;
        ("the file".to_string(), wasm, None)
    };
    if let Some(expected) = r.sha256 {
        let actual = sha256_hex(&wasm);
        if !actual.eq_ignore_ascii_case(expected.trim()) {
            return Err(PackError::Digest {
                path: r.path.to_path_buf(),
                what: name,
                expected_by: "the policy file",
                expected: expected.to_string(),
                actual,
            });
        }
    }
    Ok(Resolved {
        wasm,
        config_schema,
    })
}
