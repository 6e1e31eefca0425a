//! Fetched packs kept by digest (`$XDG_CACHE_HOME/tollgate/packs`): each manifest and layer
//! under its sha256, the digest each tag pointed to at its last pull, and unpacked copies of
//! archived policy packs. What is read back is checked against its digest again.

use super::artifact::check_manifest;
use super::{OciRef, RegistryError};
use crate::pack::sha256_hex;
use std::path::{Path, PathBuf};

/// Where fetched packs are kept, by digest.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A cache at `root`.
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// `$XDG_CACHE_HOME/tollgate/packs` (or the platform's cache directory, else the system's
    /// temporary directory).
    pub fn default_location() -> Self {
        let base = dirs::cache_dir().unwrap_or_else(std::env::temp_dir);
        Self::new(base.join("tollgate").join("packs"))
    }

    /// Where a pack whose manifest has sha256 `digest` (hex) is unpacked.
    pub fn unpacked(&self, digest: &str) -> PathBuf {
        self.root.join("unpacked").join(digest)
    }

    pub(super) fn blob(&self, digest: &str, ext: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.root.join("sha256").join(format!("{hex}.{ext}"))
    }

    pub(super) fn tag_file(&self, r: &OciRef) -> Option<PathBuf> {
        let tag = r.reference.tag()?;
        let registry = r.registry().replace(':', "_");
        Some(
            self.root
                .join("tags")
                .join(registry)
                .join(r.reference.repository())
                .join(tag),
        )
    }

    pub(super) fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
        let err = |cause| RegistryError::Cache {
            path: path.to_path_buf(),
            cause,
        };
        std::fs::create_dir_all(path.parent().expect("cache files sit in a folder"))
            .map_err(err)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// The tag's digest at its last pull.
    pub(super) fn last_seen(&self, r: &OciRef) -> Option<String> {
        let text = std::fs::read_to_string(self.tag_file(r)?).ok()?;
        Some(text.trim().to_string())
    }

    /// The cached pack of manifest `digest`, checked against its digests again.
    pub(super) fn cached(
        &self,
        digest: &str,
        reference: &str,
    ) -> Result<Option<PathBuf>, RegistryError> {
        let Ok(manifest) = std::fs::read(self.blob(digest, "json")) else {
            return Ok(None);
        };
        let layer = check_manifest(&manifest, digest, reference)?;
        let archive = self.blob(&layer.digest, "tar.gz");
        match std::fs::read(&archive) {
            Ok(bytes) if format!("sha256:{}", sha256_hex(&bytes)) == layer.digest => {
                Ok(Some(archive))
            }
            _ => Ok(None),
        }
    }
}
