//! `tollgate pack new|build|keygen|sign|verify`.

use super::check::TestArgs;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use tollgate::engine::{Capability, EngineConfig, PolicyEngine};
use tollgate::pack::{build, scaffold, signing, Pack};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum PackCommand {
    /// Scaffold a plugin project (source, build script, manifest, policy and test cases).
    New {
        /// The language.
        #[arg(long, value_enum)]
        lang: scaffold::Lang,
        /// The plugin's name (lowercase letters, digits, `-`).
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The tollgate-sdk crate for Rust projects (default: $TOLLGATE_SDK, else the checkout
        /// this Tollgate was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a project into a pack: run its build.sh (which installs the language's toolchain
    /// when missing), write dist/NAME/ and dist/NAME-VERSION.tar.gz, then run tests.yaml
    /// against policy.yaml.
    Build {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Sign the pack with this private key file (from `tollgate pack keygen`).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Do not run tests.yaml after building.
        #[arg(long)]
        no_test: bool,
    },
    /// Create a signing key pair: write the private key to --out, print the public key.
    Keygen {
        /// Where to write the private key (created with mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a pack (folder or .tar.gz) in place.
    Sign {
        /// The pack.
        pack: PathBuf,
        /// The private key file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Check a pack the way a policy load does: archive, manifest, WIT version, digests,
    /// signature (and trust with --trusted-key), then compile each component and check its
    /// imports and exports.
    Verify {
        /// The pack.
        pack: PathBuf,
        /// Require a signature by this key (`ed25519:…`). Repeatable.
        #[arg(long = "trusted-key")]
        trusted_keys: Vec<String>,
        /// Capabilities to grant (default: those the manifest asks for). Repeatable.
        #[arg(long = "grant")]
        grants: Vec<String>,
    },
}

pub(crate) async fn dispatch(command: PackCommand) -> Result<i32> {
    match command {
        PackCommand::New {
            lang,
            name,
            dir,
            sdk,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let files = scaffold::new_project(&dir, lang, &name, sdk.as_deref())?;
            println!("created {} ({} files)", dir.display(), files.len());
            println!("next: tollgate pack build {}", dir.display());
            Ok(0)
        }
        PackCommand::Build { dir, key, no_test } => {
            let key = match &key {
                Some(k) => Some(
                    std::fs::read_to_string(k)
                        .with_context(|| format!("cannot read key {}", k.display()))?,
                ),
                None => None,
            };
            let built = build::build(&dir, true, key.as_deref())?;
            println!(
                "built {} {}: {} and {}",
                built.manifest.name,
                built.manifest.version,
                built.folder.display(),
                built.archive.display()
            );
            let (policy, cases) = (dir.join("policy.yaml"), dir.join("tests.yaml"));
            if no_test || !policy.is_file() || !cases.is_file() {
                return Ok(0);
            }
            super::check::test(TestArgs {
                policy,
                cases,
                server_name: "test".into(),
                cache_dir: None,
            })
            .await
        }
        PackCommand::Keygen { out } => {
            let (private, public) = signing::generate()?;
            write_secret(&out, &private)?;
            println!("{public}");
            eprintln!(
                "private key written to {}; trust the public key above in policy files with `trusted_keys: [\"{public}\"]`",
                out.display()
            );
            Ok(0)
        }
        PackCommand::Sign { pack, key } => {
            let key = std::fs::read_to_string(&key)
                .with_context(|| format!("cannot read key {}", key.display()))?;
            let signer = build::sign(&pack, &key)?;
            println!("signed {} with {signer}", pack.display());
            Ok(0)
        }
        PackCommand::Verify {
            pack,
            trusted_keys,
            grants,
        } => verify(pack, trusted_keys, grants),
    }
}

fn write_secret(path: &PathBuf, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn verify(path: PathBuf, trusted_keys: Vec<String>, grants: Vec<String>) -> Result<i32> {
    let pack = Pack::open(&path)?;
    pack.check_trust(&trusted_keys)?;
    let m = &pack.manifest;
    let grants: Vec<Capability> = if grants.is_empty() {
        m.asked()
    } else {
        grants.iter().map(|g| g.parse()).collect::<Result<_, _>>()?
    };
    pack.check_grants(&grants)?;
    println!("{}: {} {} ({})", path.display(), m.name, m.version, m.wit);
    if !m.description.is_empty() {
        println!("  {}", m.description);
    }
    match &pack.signer {
        Some(key) if !trusted_keys.is_empty() => println!("  signed by {key} (trusted)"),
        Some(key) => println!("  signed by {key} (not checked against trusted keys)"),
        None => println!("  unsigned"),
    }
    println!("  capabilities asked: [{}]", m.capabilities.join(", "));
    let engine = PolicyEngine::new(EngineConfig::default())?;
    for c in &m.components {
        let (_, wasm) = pack.component(Some(&c.name))?;
        let imports = engine.inspect(&c.name, wasm, &grants)?;
        let extra: Vec<&String> = imports
            .iter()
            .filter(|i| !i.starts_with("tollgate:policy/"))
            .collect();
        println!(
            "  component {}: {} bytes, sha256 {}, imports beyond the contract: {}",
            c.name,
            wasm.len(),
            c.sha256.as_deref().unwrap_or(""),
            if extra.is_empty() {
                "none".to_string()
            } else {
                extra
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
    }
    if m.components.is_empty() {
        bail!("the pack has no components");
    }
    println!("OK");
    Ok(0)
}
