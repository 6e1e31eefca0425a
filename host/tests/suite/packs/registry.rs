//! Packs in a real OCI registry: Debian's `docker-registry` (the CNCF distribution registry),
//! started on loopback for each test. Push, pull, load by tag and by digest, the cache when the
//! registry is gone, a moved tag, and every bad artifact refused naming the reference.

use crate::e2e::{assert_denial, drive_with_env, peers, repo, setup, text, Client};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// A registry on a free loopback port, its storage in a temporary folder; stopped on drop.
struct Registry {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        setup(&[]);
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{ level: error }}\nstorage:\n  filesystem: {{ rootdirectory: {} }}\n  delete: {{ enabled: true }}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry is installed by scripts/test-peers.sh");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child: Some(child),
            port,
            _dir: dir,
        }
    }

    fn at(&self, repo_tag: &str) -> String {
        format!("oci://127.0.0.1:{}/{repo_tag}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `tollgate ARGS` with its pack cache in `cache`.
fn tollgate(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .env("TOLLGATE_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "it must be refused:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A signed copy of the catalog's memory pack in `dir`; returns its folder and public key.
fn signed_memory_pack(dir: &Path, description: &str) -> (PathBuf, String) {
    let pack = dir.join("memory");
    let _ = std::fs::remove_dir_all(&pack);
    std::fs::create_dir_all(&pack).unwrap();
    for f in ["tollgate-pack.json", "policy.yaml", "cases.yaml"] {
        std::fs::copy(repo().join("policies/catalog/memory").join(f), pack.join(f)).unwrap();
    }
    let manifest = std::fs::read_to_string(pack.join("tollgate-pack.json")).unwrap();
    let manifest = manifest.replacen(
        "\"description\": \"",
        &format!("\"description\": \"{description}"),
        1,
    );
    std::fs::write(pack.join("tollgate-pack.json"), manifest).unwrap();
    let key = dir.join("key");
    if !key.exists() {
        ok(&tollgate(
            dir,
            &["pack", "keygen", "--out", key.to_str().unwrap()],
        ));
    }
    ok(&tollgate(
        dir,
        &[
            "pack",
            "sign",
            pack.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    ));
    let out = tollgate(dir, &["pack", "verify", pack.to_str().unwrap()]);
    let text = ok(&out);
    let public = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("signed by "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the pack is signed")
        .to_string();
    (pack, public)
}

/// The `sha256:…` digest in `pushed NAME VERSION to oci://…@sha256:…`.
fn pushed_digest(stdout: &str) -> String {
    stdout
        .trim()
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| panic!("no digest in {stdout:?}"))
}

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    // Each policy in a file of its own, named after its text.
    let path = dir.join(format!(
        "policy-{}.yaml",
        &tollgate::pack::sha256_hex(text.as_bytes())[..12]
    ));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_pack_pushed_to_a_real_registry_loads_by_tag_and_digest_and_from_the_cache_when_the_registry_is_down(
) {
    let mut registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let (pack, public) = signed_memory_pack(work.path(), "");
    let reference = registry.at("tollgate/memory:1.0");
    let out = ok(&tollgate(
        &cache,
        &["pack", "push", pack.to_str().unwrap(), &reference],
    ));
    let digest = pushed_digest(&out);
    assert_eq!(
        out.trim(),
        format!("pushed memory 1.0.0 to {reference}@{digest}")
    );

    // Pulled into the cache and written out: the same pack, signed by the same key.
    let archive = work.path().join("pulled.tar.gz");
    let out = ok(&tollgate(
        &cache,
        &[
            "pack",
            "pull",
            &reference,
            "--out",
            archive.to_str().unwrap(),
            "--trusted-key",
            &public,
        ],
    ));
    assert!(
        out.starts_with(&format!(
            "memory 1.0.0 (signed by {public}): {reference}@{digest}"
        )),
        "{out}"
    );
    let verified = ok(&tollgate(
        &cache,
        &[
            "pack",
            "verify",
            archive.to_str().unwrap(),
            "--trusted-key",
            &public,
        ],
    ));
    assert!(
        verified.contains("policy fragment policy.yaml"),
        "{verified}"
    );

    // Included by tag, and by tag pinned to the digest: the registry's rules are the policy's,
    // and `check` says where each came from.
    for source in [reference.clone(), format!("{reference}@{digest}")] {
        let policy = write_policy(
            work.path(),
            &format!("include:\n  - source: {source}\n    trusted_keys: [\"{public}\"]\n"),
        );
        let out = ok(&tollgate(&cache, &["check", policy.to_str().unwrap()]));
        assert!(out.contains("  default: deny"), "{out}");
        assert!(
            out.contains(&format!(
                "[from pack memory 1.0.0 ({reference}@{digest}, signed by {public})]"
            )),
            "{out}"
        );
        let cases = repo().join("policies/catalog/memory/cases.yaml");
        let out = ok(&tollgate(
            &cache,
            &["test", policy.to_str().unwrap(), cases.to_str().unwrap()],
        ));
        assert!(out.contains(" passed"), "{out}");
    }

    // The registry is gone: a restart loads the pinned copy from the cache, and says so; a
    // cache that never saw the pack has nothing to load.
    registry.stop();
    let pinned = write_policy(
        work.path(),
        &format!("include: [\"{reference}@{digest}\"]\n"),
    );
    let out = tollgate(&cache, &["check", pinned.to_str().unwrap()]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the registry cannot be reached"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("using the cached copy of {digest}")),
        "{stderr}"
    );
    let empty = work.path().join("empty-cache");
    let err = refused(&tollgate(&empty, &["check", pinned.to_str().unwrap()]));
    assert!(
        err.contains(&format!(
            "{reference}@{digest}: the registry cannot be reached ("
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("and no copy of {digest} is cached")),
        "{err}"
    );
}

#[test]
fn a_retagged_pack_is_refused_under_its_old_pin_and_a_moved_tag_is_reported() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let reference = registry.at("tollgate/memory:1.0");
    let (pack, _) = signed_memory_pack(work.path(), "");
    let first = pushed_digest(&ok(&tollgate(
        &cache,
        &["pack", "push", pack.to_str().unwrap(), &reference],
    )));
    let policy = write_policy(work.path(), &format!("include: [\"{reference}\"]\n"));
    ok(&tollgate(&cache, &["check", policy.to_str().unwrap()]));

    let (pack, _) = signed_memory_pack(work.path(), "Re-tagged: ");
    let second = pushed_digest(&ok(&tollgate(
        &cache,
        &["pack", "push", pack.to_str().unwrap(), &reference],
    )));
    assert_ne!(first, second);

    let pinned = write_policy(
        work.path(),
        &format!("include: [\"{reference}@{first}\"]\n"),
    );
    let err = refused(&tollgate(&cache, &["check", pinned.to_str().unwrap()]));
    assert!(
        err.contains(&format!(
            "{reference}@{first}: the tag now points to {second}, not to the pinned {first}; review the new pack and update the pin, or pull it by digest"
        )),
        "{err}"
    );

    // Unpinned, the tag's new pack loads, and the move is reported.
    let out = tollgate(&cache, &["check", policy.to_str().unwrap()]);
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the tag moved since the last pull: {reference} was {first} and is now {second}"
        )),
        "{stderr}"
    );

    // By digest alone, the old pack is still what it was.
    let by_digest = format!("{}@{first}", registry.at("tollgate/memory"));
    let policy = write_policy(work.path(), &format!("include: [\"{by_digest}\"]\n"));
    ok(&tollgate(&cache, &["check", policy.to_str().unwrap()]));
}

#[test]
fn bad_registry_artifacts_are_refused_naming_the_reference_and_the_reason() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");

    // An unknown tag.
    let unknown = registry.at("tollgate/nothing:9.9");
    let policy = write_policy(work.path(), &format!("include: [\"{unknown}\"]\n"));
    let err = refused(&tollgate(&cache, &["check", policy.to_str().unwrap()]));
    assert!(
        err.contains(&format!("{unknown}: the registry refused: ")),
        "{err}"
    );

    // An unsigned pack where a key is required.
    let pack = work.path().join("unsigned");
    std::fs::create_dir_all(&pack).unwrap();
    for f in ["tollgate-pack.json", "policy.yaml", "cases.yaml"] {
        std::fs::copy(repo().join("policies/catalog/time").join(f), pack.join(f)).unwrap();
    }
    let reference = registry.at("tollgate/time:1.0");
    ok(&tollgate(
        &cache,
        &["pack", "push", pack.to_str().unwrap(), &reference],
    ));
    let (_, public) = signed_memory_pack(work.path(), "");
    let policy = write_policy(
        work.path(),
        &format!("include:\n  - {{ source: \"{reference}\", trusted_keys: [\"{public}\"] }}\n"),
    );
    let err = refused(&tollgate(&cache, &["check", policy.to_str().unwrap()]));
    assert!(err.contains(&format!("include {reference}: ")), "{err}");
    assert!(
        err.contains(&format!("the policy requires a signature by one of {public}, but the pack has no tollgate-pack.sig")),
        "{err}"
    );

    // Artifacts that are not packs, pushed with the OCI client itself: a layer of another media
    // type, and a gzip layer whose tar escapes the pack.
    let wrong = registry.at("tollgate/wrong:1.0");
    push_raw(
        &wrong,
        b"not a pack".to_vec(),
        "application/vnd.oci.image.layer.v1.tar+zstd",
    );
    let policy = write_policy(work.path(), &format!("include: [\"{wrong}\"]\n"));
    let err = refused(&tollgate(&cache, &["check", policy.to_str().unwrap()]));
    assert!(
        err.contains(&format!(
            "{wrong}: not a Tollgate pack: its layer's media type is application/vnd.oci.image.layer.v1.tar+zstd, not application/vnd.tollgate.pack.layer.v1.tar+gzip"
        )),
        "{err}"
    );
    let evil = registry.at("tollgate/evil:1.0");
    push_raw(
        &evil,
        escaping_tar_gz(),
        "application/vnd.tollgate.pack.layer.v1.tar+gzip",
    );
    let policy = write_policy(work.path(), &format!("include: [\"{evil}\"]\n"));
    let err = refused(&tollgate(&cache, &["check", policy.to_str().unwrap()]));
    assert!(err.contains(&format!("include {evil}: ")), "{err}");
    assert!(err.contains("\"../evil.yaml\" is refused"), "{err}");
}

/// Push one layer of `media_type` as an artifact, as a tool other than Tollgate could.
fn push_raw(reference: &str, layer: Vec<u8>, media_type: &str) {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let r: oci_client::Reference = reference.trim_start_matches("oci://").parse().unwrap();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let layers = vec![ImageLayer::new(layer, media_type.to_string(), None)];
    let config = Config::new(
        b"{}".to_vec(),
        "application/vnd.oci.empty.v1+json".into(),
        None,
    );
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(client.push(
            &r,
            &layers,
            config,
            &oci_client::secrets::RegistryAuth::Anonymous,
            None,
        ))
        .expect("the registry takes the artifact");
}

/// A `.tar.gz` with an entry that climbs out of the pack.
fn escaping_tar_gz() -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let body = b"version: 1\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    // Written into the raw header: the tar crate refuses to build such a path itself.
    header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../evil.yaml\0");
    header.set_cksum();
    tar.append(&header, &body[..]).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn a_signed_policy_pack_from_the_registry_is_enforced_in_front_of_a_real_server() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let (pack, public) = signed_memory_pack(work.path(), "");
    let reference = registry.at("tollgate/memory:1.0");
    let digest = pushed_digest(&ok(&tollgate(
        &cache,
        &["pack", "push", pack.to_str().unwrap(), &reference],
    )));
    // The operator's own rule for read_graph runs after the pack's (which allows it).
    let policy = write_policy(
        work.path(),
        &format!(
            "include:\n  - source: {reference}@{digest}\n    trusted_keys: [\"{public}\"]\ntools:\n  open_nodes:\n    rules:\n      - action: deny\n        reason: the operator keeps entities closed\n"
        ),
    );
    let memory_file = work.path().join("memory.jsonl");
    let command = vec![
        env!("CARGO_BIN_EXE_tollgate").to_string(),
        "run".into(),
        "--state".into(),
        "memory".into(),
        "--no-decision-log".into(),
        "--policy".into(),
        policy.display().to_string(),
        "--".into(),
        "env".into(),
        format!("MEMORY_FILE_PATH={}", memory_file.display()),
        peers().join(".env/bin/node").display().to_string(),
        peers()
            .join("node_modules/@modelcontextprotocol/server-memory/dist/index.js")
            .display()
            .to_string(),
    ];
    let secret = "AKIAIOSFODNN7EXAMPLE";
    let run = drive_with_env(
        Client::Ts,
        &command,
        &json!({"timeout": 90, "steps": [
            {"op": "call_tool", "name": "create_entities", "arguments": {"entities": [
                {"name": "Ada", "entityType": "person", "observations": ["likes tea"]}]}},
            {"op": "call_tool", "name": "create_entities", "arguments": {"entities": [
                {"name": "Key", "entityType": "secret", "observations": [format!("aws {secret}")]}]}},
            {"op": "call_tool", "name": "open_nodes", "arguments": {"names": ["Ada"]}},
            {"op": "call_tool", "name": "read_graph", "arguments": {}},
        ]}),
        &[("XDG_CACHE_HOME", cache.to_str().unwrap())],
    );
    assert!(
        text(run.result(0)).contains("Ada"),
        "the server created it: {run}"
    );
    let denial = &run.result(1)["_meta"]["dev.tollgate/denial"];
    assert_eq!(denial["code"], "invalid_arguments", "{run}");
    assert!(
        denial["rule"].as_str().unwrap_or("").starts_with("memory:"),
        "the rule is named after its pack: {run}"
    );
    assert_denial(
        run.result(2),
        "denied",
        "tools.open_nodes.rules[0]",
        "Denied by policy: the operator keeps entities closed",
    );
    let graph = text(run.result(3));
    assert!(graph.contains("Ada") && !graph.contains(secret), "{graph}");
    let stored = std::fs::read_to_string(&memory_file).unwrap_or_default();
    assert!(
        !stored.contains(secret),
        "the server never stored the key: {stored}"
    );
}

#[test]
fn a_plugin_pack_from_the_registry_is_trusted_and_pinned_as_a_local_one() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let (private, public) = tollgate::pack::signing::generate().unwrap();
    let pack = super::TestPack::new(
        r#""config_schema":{"type":"object","required":["reason"]},"#,
        &super::deny_plugin(),
    );
    let built = pack.build(Some(&private));
    let reference = registry.at("acme/deny:1.0");
    let out = ok(&tollgate(
        &cache,
        &["pack", "push", built.archive.to_str().unwrap(), &reference],
    ));
    let digest = pushed_digest(&out);
    let policy = |extra: &str| {
        write_policy(
            work.path(),
            &format!(
                "plugins:\n  p:\n    source: {reference}@{digest}\n    config: {{ reason: from the registry }}\n{extra}tools:\n  x:\n    rules:\n      - plugin: p\n"
            ),
        )
    };
    let cases = work.path().join("cases.yaml");
    std::fs::write(
        &cases,
        "cases:\n  - name: the registry's plugin denies\n    tool: x\n    arguments: {}\n    expect: deny\n    reason_contains: from the registry\n",
    )
    .unwrap();
    let trusted = policy(&format!("    trusted_keys: [\"{public}\"]\n"));
    let out = ok(&tollgate(
        &cache,
        &["test", trusted.to_str().unwrap(), cases.to_str().unwrap()],
    ));
    assert!(out.contains("all 1 passed"), "{out}");

    let (_, stranger) = tollgate::pack::signing::generate().unwrap();
    let untrusted = policy(&format!("    trusted_keys: [\"{stranger}\"]\n"));
    let err = refused(&tollgate(&cache, &["check", untrusted.to_str().unwrap()]));
    assert!(
        err.contains(&format!(
            "the pack is signed by {public}, which is not among the trusted keys ({stranger})"
        )),
        "{err}"
    );

    let pinned = policy(&format!("    sha256: \"{}\"\n", "0".repeat(64)));
    let err = refused(&tollgate(&cache, &["check", pinned.to_str().unwrap()]));
    assert!(err.contains("component `p` has sha256 "), "{err}");
    assert!(
        err.contains(&format!("but the policy file says {}", "0".repeat(64))),
        "{err}"
    );

    // A plugin pack is not a policy pack: including it says what to do instead.
    let included = write_policy(
        work.path(),
        &format!("include: [\"{reference}@{digest}\"]\n"),
    );
    let err = refused(&tollgate(&cache, &["check", included.to_str().unwrap()]));
    assert!(
        err.contains(&format!("include {reference}@{digest}: pack p carries no policy fragment; use its components under `plugins:` with `source: {reference}@{digest}`")),
        "{err}"
    );
}
