//! On-disk cache of compiled plugin code, so restarts do not recompile (large JS or Python
//! components take seconds to compile; Rust ones tens of milliseconds).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The sha256 of a component's bytes: what names its compiled code here and in an engine.
pub fn digest(wasm: &[u8]) -> [u8; 32] {
    Sha256::digest(wasm).into()
}

/// A directory of `<digest>.cwasm` files. The digest covers the component's bytes and the
/// engine's compatibility hash, so a Tollgate upgrade or a changed engine setting never loads
/// stale code.
#[derive(Debug, Clone)]
pub struct CodeCache {
    dir: PathBuf,
}

impl CodeCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/tollgate/code` (or the platform's cache directory).
    pub fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("tollgate").join("code"))
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_for(&self, engine: &Engine, digest: &[u8; 32]) -> PathBuf {
        let mut hasher = Sha256::new();
        hasher.update(digest);
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut engine_hash);
        hasher.update(std::hash::Hasher::finish(&engine_hash).to_le_bytes());
        let digest = hasher.finalize();
        let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.cwasm"))
    }

    /// Load the compiled form of `wasm` (whose [`digest`] the caller has), compiling and
    /// storing it on a miss. A cache that cannot be read or written only costs a compile; it is
    /// never an error.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &[u8; 32],
    ) -> wasmtime::Result<(Component, bool)> {
        let path = self.path_for(engine, digest);
        if path.exists() {
            // SAFETY: files in the cache directory are written only by `store` below from code
            // this engine compiled; the name binds them to these exact bytes and engine settings.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, true)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unreadable cached code")
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(&path, &component) {
            tracing::debug!(path = %path.display(), error = %e, "could not write the code cache");
        }
        Ok((component, false))
    }

    /// Load code compiled elsewhere for `wasm` (whose [`digest`] the caller has): a built-in
    /// plugin's code embedded in the binary, which `code` gives (inflated only when the cache
    /// does not hold it yet). It is written to the cache first and mapped from
    /// there, so only the pages a plugin runs become resident — deserialising it from the binary
    /// would copy all of it into memory in every process, every start. `None` (and nothing left
    /// behind) when the code does not fit this engine.
    pub fn load_precompiled(
        &self,
        engine: &Engine,
        digest: &[u8; 32],
        code: impl FnOnce() -> Vec<u8>,
    ) -> Option<Component> {
        let path = self.path_for(engine, digest);
        if !path.exists() {
            if let Err(e) = self.write(&path, &code()) {
                tracing::debug!(path = %path.display(), error = %e, "could not write the code cache");
                return None;
            }
        }
        // SAFETY: the file holds code Tollgate compiled (at build time, or by `store`) from these
        // exact bytes; `deserialize_file` checks it was compiled for this engine's settings.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "precompiled code does not fit this engine");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn store(&self, path: &Path, component: &Component) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        self.write(path, &bytes)
    }

    /// Write a file of the cache whole or not at all: a temporary file of this write's own, then
    /// a rename. The temporary name must be unique per write, not just per process — engines on
    /// two threads writing the same entry through one name truncated each other's file, and one
    /// already mapped from it died of SIGBUS. A rename over a file another engine has mapped is
    /// safe: the mapping keeps the old file.
    fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        std::fs::create_dir_all(&self.dir)?;
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, bytes) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(tmp, path)
    }
}
