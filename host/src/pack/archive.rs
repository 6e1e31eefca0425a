//! A pack's files, read from a folder or a `.tar.gz`, and written back as a `.tar.gz`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The most a pack may unpack to; bigger archives are refused rather than filling memory.
pub const MAX_PACK_BYTES: u64 = 256 << 20;

/// The files of a pack by their path inside it (`/`-separated).
pub type Files = BTreeMap<String, Vec<u8>>;

/// Reading a pack's files failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The path could not be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// Not a readable gzip-compressed tar archive.
    #[error("{path} is not a readable .tar.gz pack: {message}")]
    Corrupt {
        /// The archive.
        path: PathBuf,
        /// What the decoder said.
        message: String,
    },
    /// An entry would land outside the pack, or is a link or device.
    #[error("{path}: entry {entry:?} is refused ({why})")]
    Entry {
        /// The archive.
        path: PathBuf,
        /// The entry.
        entry: String,
        /// Why.
        why: &'static str,
    },
    /// More than [`MAX_PACK_BYTES`].
    #[error("{path} unpacks to more than {} MiB", MAX_PACK_BYTES >> 20)]
    TooLarge {
        /// The pack.
        path: PathBuf,
    },
}

/// Whether `path` names an archive (by its extension) rather than a folder or a `.wasm`.
pub fn is_archive(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

/// Read every file of a pack folder or archive.
pub fn read(path: &Path) -> Result<Files, ArchiveError> {
    if is_archive(path) {
        read_archive(path)
    } else {
        let mut files = Files::new();
        let mut total = 0;
        read_dir(path, path, &mut files, &mut total)?;
        Ok(files)
    }
}

fn read_dir(
    root: &Path,
    dir: &Path,
    files: &mut Files,
    total: &mut u64,
) -> Result<(), ArchiveError> {
    let err = |cause| ArchiveError::Read {
        path: dir.to_path_buf(),
        cause,
    };
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(err)?;
        if kind.is_dir() {
            read_dir(root, &path, files, total)?;
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).map_err(|cause| ArchiveError::Read {
                path: path.clone(),
                cause,
            })?;
            *total += bytes.len() as u64;
            if *total > MAX_PACK_BYTES {
                return Err(ArchiveError::TooLarge {
                    path: root.to_path_buf(),
                });
            }
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(key, bytes);
        }
    }
    Ok(())
}

fn read_archive(path: &Path) -> Result<Files, ArchiveError> {
    let file = std::fs::File::open(path).map_err(|cause| ArchiveError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    let corrupt = |e: std::io::Error| ArchiveError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut files = Files::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = entry.path().map_err(corrupt)?.to_string_lossy().to_string();
        let name = name.trim_start_matches("./").to_string();
        let refuse = |why| ArchiveError::Entry {
            path: path.to_path_buf(),
            entry: name.clone(),
            why,
        };
        if name.starts_with('/') || name.split('/').any(|p| p == "..") {
            return Err(refuse("it points outside the pack"));
        }
        match entry.header().entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular => {}
            _ => return Err(refuse("only regular files and folders may be in a pack")),
        }
        total += entry.size();
        if total > MAX_PACK_BYTES {
            return Err(ArchiveError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(corrupt)?;
        files.insert(name.trim_end_matches('/').to_string(), bytes);
    }
    if files.is_empty() {
        return Err(ArchiveError::Corrupt {
            path: path.to_path_buf(),
            message: "the archive is empty".into(),
        });
    }
    Ok(files)
}

/// Write `files` as a reproducible `.tar.gz` (fixed times, owners and modes).
pub fn write_archive(path: &Path, files: &Files) -> std::io::Result<()> {
    std::fs::write(path, encode(files)?)
}

/// `files` as the bytes of a reproducible `.tar.gz` (fixed times, owners and modes).
pub fn encode(files: &Files) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, bytes.as_slice())?;
    }
    tar.into_inner()?.finish()
}

/// Write `files` into the folder `dir` (created if needed).
pub fn write_dir(dir: &Path, files: &Files) -> std::io::Result<()> {
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
    }
    Ok(())
}
