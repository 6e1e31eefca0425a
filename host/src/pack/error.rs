//! Why a pack (or a plugin file) was refused: every error names the file, the component or the
//! key that failed, and how.

use super::archive::ArchiveError;
use super::manifest::{self, ManifestError};
use super::signing::SigningError;
use std::path::PathBuf;

/// Why a pack (or a plugin file) was refused.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Its files could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A plain `.wasm` file could not be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// No manifest at its root.
    #[error("{path} is not a pack: it has no {} at its root", manifest::FILE)]
    NoManifest {
        /// The pack.
        path: PathBuf,
    },
    /// The manifest is wrong.
    #[error("{path}: {cause}")]
    Manifest {
        /// The pack.
        path: PathBuf,
        /// What is wrong.
        cause: ManifestError,
    },
    /// Built for a contract version this Tollgate does not implement.
    #[error("{path}: the pack is built for tollgate:policy@{found}, but this Tollgate implements tollgate:policy@{supported}")]
    WitVersion {
        /// The pack.
        path: PathBuf,
        /// Its version.
        found: String,
        /// Ours.
        supported: String,
    },
    /// A component implements another contract version than the manifest's `wit` says.
    #[error("{path}: component `{component}` implements tollgate:policy@{implemented}, but the manifest says `wit: {manifest}`; rebuild the pack so they agree")]
    WitMismatch {
        /// The pack.
        path: PathBuf,
        /// The component.
        component: String,
        /// The manifest's `wit`.
        manifest: String,
        /// What the component exports.
        implemented: &'static str,
    },
    /// A component's bytes are not a readable WebAssembly component.
    #[error("{path}: component `{component}` cannot be read: {cause}")]
    Unreadable {
        /// The pack.
        path: PathBuf,
        /// The component.
        component: String,
        /// Why.
        cause: String,
    },
    /// A component (or the policy or cases file) the manifest lists is not in the pack.
    #[error("{path}: {component} names {file}, which is not in the pack")]
    MissingFile {
        /// The pack.
        path: PathBuf,
        /// What names it: `component `NAME``, `its policy` or `its cases`.
        component: String,
        /// Its file.
        file: String,
    },
    /// A file's digest is not the one expected.
    #[error("{path}: {what} has sha256 {actual}, but {expected_by} says {expected}")]
    Digest {
        /// The pack or file.
        path: PathBuf,
        /// `component `NAME`` in a pack, `the file` for a plain `.wasm`.
        what: String,
        /// Who expected another digest: the pack's manifest or the policy file.
        expected_by: &'static str,
        /// The expected digest.
        expected: String,
        /// The actual one.
        actual: String,
    },
    /// The signature is bad, missing or untrusted.
    #[error("{path}: {cause}")]
    Signature {
        /// The pack.
        path: PathBuf,
        /// What failed.
        cause: SigningError,
    },
    /// The policy picks a component the pack does not have, or none out of several.
    #[error("{path}: {message}")]
    Component {
        /// The pack.
        path: PathBuf,
        /// What to write instead.
        message: String,
    },
    /// The pack asks for capabilities the policy does not grant.
    #[error("{path}: the pack asks for the capabilities [{asked}], but the policy grants [{granted}]; add `grant: [{asked}]` to the plugin if you trust it with them")]
    NotGranted {
        /// The pack.
        path: PathBuf,
        /// What it asks for.
        asked: String,
        /// What was granted.
        granted: String,
    },
    /// The plugin's configuration does not satisfy the pack's schema.
    #[error("{path}: the plugin's config does not match the pack's config_schema: {errors}")]
    Config {
        /// The pack.
        path: PathBuf,
        /// Every violation, with its location.
        errors: String,
    },
}
