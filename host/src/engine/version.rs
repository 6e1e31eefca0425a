//! The WIT-version stamp: the guest SDK writes the version of `tollgate:policy` it was built
//! against into a custom section; the host reads it before compiling and refuses a mismatch.

use wasmparser::{Parser, Payload};

/// The custom section the SDK writes (`tollgate_sdk::WIT_VERSION_SECTION`).
pub const SECTION: &str = "tollgate-wit-version";

/// The WIT versions this host implements.
pub const SUPPORTED: &[&str] = &["0.1.0", "0.2.0"];

/// What `tollgate --version` prints: Tollgate's version and the plugin contracts it hosts
/// ([`SUPPORTED`]; a test keeps the two in step).
pub const TOLLGATE_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (plugin contracts: tollgate:policy@0.1.0, tollgate:policy@0.2.0)"
);

/// The interface a `tollgate:policy@0.2.0` plugin exports (its `rule` resource).
pub const RULES_EXPORT_0_2: &str = "tollgate:policy/rules@0.2.0";

/// Why a plugin's stamp was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    /// Stamped with a version this host does not implement.
    #[error("it was built against tollgate:policy@{found}, but this Tollgate implements tollgate:policy@{supported}; rebuild it with a matching tollgate-sdk")]
    Mismatch {
        /// The plugin's version.
        found: String,
        /// What the host implements.
        supported: String,
    },
    /// Not a WebAssembly binary at all.
    #[error("it is not a WebAssembly component: {0}")]
    Unreadable(String),
}

/// Read the stamped version, if any (components from other toolchains may carry none; they are
/// then checked by type at instantiation).
pub fn stamped_version(wasm: &[u8]) -> Result<Option<String>, VersionError> {
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| VersionError::Unreadable(e.to_string()))? {
            Payload::CustomSection(section) if section.name() == SECTION => {
                return Ok(Some(
                    String::from_utf8_lossy(section.data())
                        .trim_end_matches('\0')
                        .to_string(),
                ));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The contract version a component's top-level exports implement, read without compiling it:
/// `Some("0.2.0")` for the `rules` interface, `Some("0.1.0")` for the four 0.1 functions,
/// `None` for neither (the engine explains what is missing when it loads it).
pub fn exported_contract(wasm: &[u8]) -> Result<Option<&'static str>, VersionError> {
    let mut depth = 0usize;
    let mut names = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| VersionError::Unreadable(e.to_string()))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(exports) if depth == 0 => {
                for export in exports {
                    let export = export.map_err(|e| VersionError::Unreadable(e.to_string()))?;
                    names.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    let has = |n: &str| names.iter().any(|x| x == n);
    Ok(if has(RULES_EXPORT_0_2) {
        Some("0.2.0")
    } else if ["configure", "check-call", "check-result", "visible"]
        .iter()
        .all(|n| has(n))
    {
        Some("0.1.0")
    } else {
        None
    })
}

/// Refuse a plugin stamped with a version this host does not implement.
pub fn check(wasm: &[u8]) -> Result<(), VersionError> {
    match stamped_version(wasm)? {
        Some(found) if !SUPPORTED.contains(&found.as_str()) => Err(VersionError::Mismatch {
            found,
            supported: SUPPORTED.join(", "),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_line_names_every_contract_this_host_implements() {
        for v in SUPPORTED {
            assert!(
                TOLLGATE_VERSION.contains(&format!("tollgate:policy@{v}")),
                "{TOLLGATE_VERSION}"
            );
        }
        assert_eq!(
            TOLLGATE_VERSION.matches("tollgate:policy@").count(),
            SUPPORTED.len()
        );
    }
}
