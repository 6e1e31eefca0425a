//! The WIT-version stamp: the guest SDK writes the version of `tollgate:policy` it was built
//! against into a custom section; the host reads it before compiling and refuses a mismatch.

use wasmparser::{Parser, Payload};

/// The custom section the SDK writes (`tollgate_sdk::WIT_VERSION_SECTION`).
pub const SECTION: &str = "tollgate-wit-version";

/// The WIT versions this host implements.
pub const SUPPORTED: &[&str] = &["0.1.0"];

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
