//! `tollgate pack new|build|keygen|sign|verify`.

use super::check::TestArgs;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tollgate::engine::{Capability, EngineConfig, PolicyEngine};
use tollgate::pack::registry::{self, Cache, OciRef};
use tollgate::pack::{archive, build, scaffold, signing, Pack};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum PackCommand {
    /// Scaffold a plugin project (source, build script, manifest, policy and test cases), or
    /// with --kind policy a policy pack (manifest, policy fragment, cases, README).
    New {
        /// What the pack carries: a plugin (default) or a policy fragment.
        #[arg(long, value_enum, default_value = "plugin")]
        kind: scaffold::Kind,
        /// The plugin's language (plugin packs).
        #[arg(long, value_enum, required_if_eq("kind", "plugin"))]
        lang: Option<scaffold::Lang>,
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
    /// against policy.yaml (a policy pack: replay its cases against its fragment, as built).
    Build {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Sign the pack with this private key file (from `tollgate pack keygen`).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Do not run the tests after building.
        #[arg(long)]
        no_test: bool,
    },
    /// Push a pack (folder or .tar.gz, checked as a load would) to an OCI registry:
    /// `oci://REGISTRY/REPOSITORY:TAG`. Prints the pinned reference.
    Push {
        /// The pack.
        pack: PathBuf,
        /// Where to: `oci://REGISTRY/REPOSITORY:TAG`.
        reference: String,
    },
    /// Pull a pack from an OCI registry into the cache (as a policy's load does), check it, and
    /// write it to --out (a `.tar.gz`) when given. Prints the pinned reference.
    Pull {
        /// `oci://REGISTRY/REPOSITORY:TAG[@sha256:…]`.
        reference: String,
        /// Write the pack's `.tar.gz` here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Require a signature by this key (`ed25519:…`). Repeatable.
        #[arg(long = "trusted-key")]
        trusted_keys: Vec<String>,
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
            kind,
            lang,
            name,
            dir,
            sdk,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let files = match (kind, lang) {
                (scaffold::Kind::Plugin, Some(lang)) => {
                    scaffold::new_project(&dir, lang, &name, sdk.as_deref())?
                }
                (scaffold::Kind::Plugin, None) => bail!("a plugin pack needs --lang"),
                (scaffold::Kind::Policy, _) => scaffold::new_policy_pack(&dir, &name)?,
            };
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
            let m = &built.manifest;
            let (policy, cases) = match (&m.policy, &m.cases) {
                (Some(p), Some(c)) => (built.folder.join(&p.file), built.folder.join(&c.file)),
                _ => (dir.join("policy.yaml"), dir.join("tests.yaml")),
            };
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
        PackCommand::Push { pack, reference } => push(pack, &reference),
        PackCommand::Pull {
            reference,
            out,
            trusted_keys,
        } => pull(&reference, out, &trusted_keys),
    }
}

fn push(path: PathBuf, reference: &str) -> Result<i32> {
    let r = OciRef::parse(reference)?;
    let pack = Pack::open(&path)?;
    let bytes = if archive::is_archive(&path) {
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?
    } else {
        archive::encode(&pack.files)?
    };
    let m = &pack.manifest;
    let annotations = BTreeMap::from([
        ("org.opencontainers.image.title".to_string(), m.name.clone()),
        (
            "org.opencontainers.image.version".to_string(),
            m.version.clone(),
        ),
        (
            "org.opencontainers.image.description".to_string(),
            m.description.clone(),
        ),
    ]);
    let title = format!("{}-{}.tar.gz", m.name, m.version);
    let digest = registry::push(bytes, &title, annotations, &r)?;
    println!("pushed {} {} to {}", m.name, m.version, r.at(&digest));
    Ok(0)
}

fn pull(reference: &str, out: Option<PathBuf>, trusted_keys: &[String]) -> Result<i32> {
    let r = OciRef::parse(reference)?;
    let fetched = registry::fetch(&r, &Cache::default_location())?;
    let pack = Pack::open(&fetched.archive)?;
    pack.check_trust(trusted_keys)?;
    let m = &pack.manifest;
    let signed = match &pack.signer {
        Some(k) => format!("signed by {k}"),
        None => "unsigned".to_string(),
    };
    println!(
        "{} {} ({signed}): {}",
        m.name,
        m.version,
        r.at(&fetched.digest)
    );
    if fetched.offline {
        println!("  the registry could not be reached: this is the cached copy");
    }
    if let Some(out) = out {
        std::fs::copy(&fetched.archive, &out)
            .with_context(|| format!("cannot write {}", out.display()))?;
        println!("  written to {}", out.display());
    }
    Ok(0)
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
    let carries = match (&m.policy, m.components.is_empty()) {
        (Some(_), true) => "a policy fragment".to_string(),
        (Some(_), false) => format!("a policy fragment and components for {}", m.wit),
        (None, _) => m.wit.clone(),
    };
    println!("{}: {} {} ({carries})", path.display(), m.name, m.version);
    println!(
        "  manifest sha256 {} (pin it with `sha256:` in an include)",
        tollgate::pack::sha256_hex(&pack.files[tollgate::pack::manifest::FILE])
    );
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
    if let (Some((text, cases)), Some(entry)) = (pack.policy()?, &m.policy) {
        let fragment = tollgate::config::parse_native(&text, &path)
            .map_err(|e| anyhow::anyhow!("{}: {}: {e}", path.display(), entry.file))?;
        let rules: usize =
            fragment.tools.iter().map(|t| t.rules.len()).sum::<usize>() + fragment.all_tools.len();
        println!(
            "  policy fragment {}: {} tool patterns, {rules} rules, default {}{}",
            entry.file,
            fragment.tools.len(),
            if fragment.default == tollgate::config::DefaultAction::Deny {
                "deny"
            } else {
                "allow"
            },
            match cases {
                Some(c) => format!(
                    ", {} recorded cases",
                    tollgate::replay::parse_cases(&c)
                        .map(|c| c.len())
                        .unwrap_or(0)
                ),
                None => String::new(),
            }
        );
    }
    println!("OK");
    Ok(0)
}
