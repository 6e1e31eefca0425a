//! `tollgate pack build DIR` and `tollgate pack sign`: run a project's build script, then turn
//! its source manifest and components into a pack folder and a reproducible `.tar.gz`.

use super::archive::{self, Files};
use super::manifest::{self, Manifest, ManifestError};
use super::signing::{self, SigningError};
use super::{sha256_hex, Pack, PackError};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Building or signing a pack failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The project's manifest is missing or wrong.
    #[error("{path}: {cause}")]
    Manifest {
        /// The project.
        path: PathBuf,
        /// What is wrong.
        cause: ManifestError,
    },
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The build script failed.
    #[error("{script} failed ({status}); its output is above")]
    Script {
        /// The script.
        script: PathBuf,
        /// How it ended.
        status: String,
    },
    /// The build did not produce a component the manifest names.
    #[error("the build did not produce {0}, which tollgate-pack.json lists as a component")]
    MissingOutput(PathBuf),
    /// Signing failed.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// The pack to sign is not a valid pack.
    #[error(transparent)]
    Pack(#[from] PackError),
}

/// What `build` produced.
#[derive(Debug)]
pub struct Built {
    /// The pack as a folder: `DIR/dist/NAME`.
    pub folder: PathBuf,
    /// The pack as an archive: `DIR/dist/NAME-VERSION.tar.gz`.
    pub archive: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |cause| BuildError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Build the project in `dir`: run `build.sh` (unless `run_script` is false), digest the
/// components, write the pack folder and archive, signed with `key` (a private key file's text)
/// when given.
pub fn build(dir: &Path, run_script: bool, key: Option<&str>) -> Result<Built, BuildError> {
    let manifest_path = dir.join(manifest::FILE);
    let text = std::fs::read(&manifest_path).map_err(io(&manifest_path))?;
    let mut m = Manifest::parse(&text, false).map_err(|cause| BuildError::Manifest {
        path: dir.to_path_buf(),
        cause,
    })?;
    let script = dir.join("build.sh");
    if run_script && script.is_file() {
        let status = Command::new("sh")
            .arg("build.sh")
            .current_dir(dir)
            .status()
            .map_err(io(&script))?;
        if !status.success() {
            return Err(BuildError::Script {
                script,
                status: status.to_string(),
            });
        }
    }
    let mut files = Files::new();
    for c in &mut m.components {
        let source = dir.join(&c.file);
        if !source.is_file() {
            return Err(BuildError::MissingOutput(source));
        }
        let bytes = std::fs::read(&source).map_err(io(&source))?;
        let file_name = format!("{}.wasm", c.name);
        c.sha256 = Some(sha256_hex(&bytes));
        c.file = file_name.clone();
        files.insert(file_name, bytes);
    }
    // A policy pack's fragment and cases keep their names; a pack of nothing but those is its
    // own source, so its manifest's digests are brought up to date in place too.
    for entry in [&mut m.policy, &mut m.cases].into_iter().flatten() {
        let source = dir.join(&entry.file);
        let bytes = std::fs::read(&source).map_err(io(&source))?;
        entry.sha256 = Some(sha256_hex(&bytes));
        files.insert(entry.file.clone(), bytes);
    }
    if m.components.is_empty() {
        std::fs::write(&manifest_path, m.to_bytes()).map_err(io(&manifest_path))?;
    }
    let manifest_bytes = m.to_bytes();
    if let Some(key) = key {
        let sig = signing::sign(&manifest_bytes, key)?;
        files.insert(
            signing::FILE.into(),
            serde_json::to_vec_pretty(&sig).expect("a signature serialises"),
        );
    }
    files.insert(manifest::FILE.into(), manifest_bytes);
    let dist = dir.join("dist");
    let folder = dist.join(&m.name);
    if folder.exists() {
        std::fs::remove_dir_all(&folder).map_err(io(&folder))?;
    }
    archive::write_dir(&folder, &files).map_err(io(&folder))?;
    let archive_path = dist.join(format!("{}-{}.tar.gz", m.name, m.version));
    archive::write_archive(&archive_path, &files).map_err(io(&archive_path))?;
    // What was written must open as a pack: the same checks a policy's load makes.
    Pack::open(&folder)?;
    Ok(Built {
        folder,
        archive: archive_path,
        manifest: m,
    })
}

/// Sign the pack at `path` (folder or `.tar.gz`) in place; returns the signer's public key.
pub fn sign(path: &Path, key: &str) -> Result<String, BuildError> {
    let pack = Pack::open(path)?;
    let sig = signing::sign(&pack.files[manifest::FILE], key)?;
    let bytes = serde_json::to_vec_pretty(&sig).expect("a signature serialises");
    if archive::is_archive(path) {
        let mut files = pack.files;
        files.insert(signing::FILE.into(), bytes);
        archive::write_archive(path, &files).map_err(io(path))?;
    } else {
        let sig_path = path.join(signing::FILE);
        std::fs::write(&sig_path, bytes).map_err(io(&sig_path))?;
    }
    Ok(sig.key)
}
