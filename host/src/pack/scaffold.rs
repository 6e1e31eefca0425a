//! `tollgate pack new --lang rust|c|js|python NAME`: a working plugin project with a build script
//! that installs its language's toolchain when missing, a source manifest, a policy that loads
//! the built pack and test cases that `tollgate pack build` runs.

use std::path::{Path, PathBuf};

/// The languages a project can be scaffolded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust with the tollgate-sdk crate.
    Rust,
    /// C with the generated bindings and tollgate.h.
    C,
    /// JavaScript with componentize-js.
    Js,
    /// Python with componentize-py.
    Python,
}

/// What a new pack carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A plugin: a WebAssembly component, its source and build script.
    Plugin,
    /// A policy fragment that policy files take in with `include:`, with its cases.
    Policy,
}

const POLICY_PACK: &[(&str, &[u8])] = &[
    (
        "tollgate-pack.json",
        include_bytes!("../../templates/policy/tollgate-pack.json"),
    ),
    (
        "policy.yaml",
        include_bytes!("../../templates/policy/policy.yaml"),
    ),
    (
        "cases.yaml",
        include_bytes!("../../templates/policy/cases.yaml"),
    ),
    (
        "README.md",
        include_bytes!("../../templates/policy/README.md"),
    ),
    (
        ".gitignore",
        include_bytes!("../../templates/common/gitignore"),
    ),
];

/// Scaffolding failed.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a pack or crate name.
    #[error("{0:?} is not a usable plugin name: use lowercase letters, digits and `-`, starting with a letter")]
    Name(String),
    /// The directory exists and is not empty.
    #[error("{0} already exists and is not empty")]
    Exists(PathBuf),
    /// The Rust SDK could not be found.
    #[error("cannot find the tollgate-sdk crate for the Rust project; pass --sdk PATH (the guest-sdk folder of a Tollgate checkout) or set TOLLGATE_SDK")]
    NoSdk,
    /// Writing failed.
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

const COMMON: &[(&str, &[u8])] = &[
    (
        "tollgate-pack.json",
        include_bytes!("../../templates/common/tollgate-pack.json"),
    ),
    (
        "policy.yaml",
        include_bytes!("../../templates/common/policy.yaml"),
    ),
    (
        "tests.yaml",
        include_bytes!("../../templates/common/tests.yaml"),
    ),
    (
        ".gitignore",
        include_bytes!("../../templates/common/gitignore"),
    ),
];
const WIT: (&str, &[u8]) = (
    "wit/policy.wit",
    include_bytes!("../../../wit/v0.2/policy.wit"),
);
const RUST: &[(&str, &[u8])] = &[
    (
        "Cargo.toml",
        include_bytes!("../../templates/rust/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_bytes!("../../templates/rust/src/lib.rs"),
    ),
    ("build.sh", include_bytes!("../../templates/rust/build.sh")),
    (
        "wasm-toolchain.sh",
        include_bytes!("../../../scripts/wasm-toolchain.sh"),
    ),
];
const C: &[(&str, &[u8])] = &[
    (
        "plugin_impl.c",
        include_bytes!("../../templates/c/plugin_impl.c"),
    ),
    ("build.sh", include_bytes!("../../templates/c/build.sh")),
    (
        "bindings/plugin.c",
        include_bytes!("../../../guest-sdk/c/plugin.c"),
    ),
    (
        "bindings/plugin.h",
        include_bytes!("../../../guest-sdk/c/plugin.h"),
    ),
    (
        "bindings/plugin_component_type.o",
        include_bytes!("../../../guest-sdk/c/plugin_component_type.o"),
    ),
    (
        "bindings/tollgate.h",
        include_bytes!("../../../guest-sdk/c/tollgate.h"),
    ),
    WIT,
];
const JS: &[(&str, &[u8])] = &[
    ("policy.js", include_bytes!("../../templates/js/policy.js")),
    (
        "package.json",
        include_bytes!("../../templates/js/package.json"),
    ),
    ("build.sh", include_bytes!("../../templates/js/build.sh")),
    WIT,
];
const PYTHON: &[(&str, &[u8])] = &[
    (
        "rules.py",
        include_bytes!("../../templates/python/rules.py"),
    ),
    (
        "build.sh",
        include_bytes!("../../templates/python/build.sh"),
    ),
    WIT,
];

/// Where the Rust SDK is: `sdk`, else `$TOLLGATE_SDK`, else the checkout this Tollgate was built
/// from.
fn find_sdk(sdk: Option<&Path>) -> Result<PathBuf, ScaffoldError> {
    let candidates = [
        sdk.map(Path::to_path_buf),
        std::env::var_os("TOLLGATE_SDK").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("Cargo.toml").is_file())
        .and_then(|p| p.canonicalize().ok())
        .ok_or(ScaffoldError::NoSdk)
}

/// Whether `name` can be a pack name, a crate name and a file name.
pub fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Refuse a bad name or a folder that is not empty.
fn check_new(dir: &Path, name: &str) -> Result<(), ScaffoldError> {
    if !valid_name(name) {
        return Err(ScaffoldError::Name(name.to_string()));
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(ScaffoldError::Exists(dir.to_path_buf()));
    }
    Ok(())
}

/// Write a new policy pack `name` into `dir` (manifest, fragment, cases, README); returns the
/// files written.
pub fn new_policy_pack(dir: &Path, name: &str) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_new(dir, name)?;
    let mut written = Vec::new();
    for (rel, bytes) in POLICY_PACK {
        let path = dir.join(rel);
        let text = String::from_utf8_lossy(bytes).replace("__NAME__", name);
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|cause| ScaffoldError::Write {
                path: path.clone(),
                cause,
            })?;
        written.push(path);
    }
    Ok(written)
}

/// Write a new project for plugin `name` into `dir`; returns the files written.
pub fn new_project(
    dir: &Path,
    lang: Lang,
    name: &str,
    sdk: Option<&Path>,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_new(dir, name)?;
    let sdk_path = match lang {
        Lang::Rust => find_sdk(sdk)?.display().to_string(),
        _ => String::new(),
    };
    let own = match lang {
        Lang::Rust => RUST,
        Lang::C => C,
        Lang::Js => JS,
        Lang::Python => PYTHON,
    };
    let mut written = Vec::new();
    for (rel, bytes) in COMMON.iter().chain(own) {
        let path = dir.join(rel);
        let bytes = match std::str::from_utf8(bytes) {
            Ok(text) if !rel.ends_with(".o") => text
                .replace("__NAME__", name)
                .replace("__SDK__", &sdk_path)
                .into_bytes(),
            _ => bytes.to_vec(),
        };
        let write = |path: &Path| -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, &bytes)?;
            if rel.ends_with(".sh") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
            }
            Ok(())
        };
        write(&path).map_err(|cause| ScaffoldError::Write {
            path: path.clone(),
            cause,
        })?;
        written.push(path);
    }
    Ok(written)
}
