//! Policy packs end to end: the example plugins in Rust, C, JavaScript and Python are built by
//! `tollgate pack build` (which installs each language's toolchain when missing) and decide real
//! calls between a real MCP client and a real MCP server; and every way a pack can be wrong is
//! refused at load time with a message naming what failed. Packs in a real OCI registry are in
//! `packs/registry.rs`.

mod registry;

use crate::e2e::{assert_denial, drive, peers, repo, server_everything, setup, text, Client};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Build `examples/plugins/NAME` once per test binary with the tollgate under test; returns the
/// pack folder. The project's own tests.yaml runs as part of the build.
fn built(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let done = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let dir = repo().join("examples/plugins").join(name);
    if !done.lock().unwrap().iter().any(|n| n == name) {
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["pack", "build"])
            .arg(&dir)
            .output()
            .expect("run tollgate pack build");
        assert!(
            out.status.success(),
            "tollgate pack build {name} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("passed"), "its tests.yaml ran:\n{stdout}");
        done.lock().unwrap().push(name.to_string());
    }
    dir.join("dist").join(name)
}

fn call(name: &str, arguments: Value) -> Value {
    json!({"op": "call_tool", "name": name, "arguments": arguments})
}

fn scenario(steps: Vec<Value>) -> Value {
    json!({"timeout": 90, "steps": steps})
}

/// Write `policy` into a fresh directory; `tollgate run` with it in front of `server`.
fn tollgate_with(policy: &str, server: Vec<String>) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    let mut cmd = vec![
        env!("CARGO_BIN_EXE_tollgate").to_string(),
        "run".into(),
        "--state".into(),
        "memory".into(),
        "--policy".into(),
        path.display().to_string(),
        "--".into(),
    ];
    cmd.extend(server);
    (dir, cmd)
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn rust_pack_blocks_secrets_in_real_calls() {
    setup(&[]);
    let pack = built("rust-block-secrets");
    // The signed archive form, pinned by digest and by signing key.
    let keydir = tempfile::tempdir().unwrap();
    let key = keydir.path().join("signing.key");
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["pack", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let archive = keydir.path().join("rust-block-secrets.tar.gz");
    std::fs::copy(
        pack.parent()
            .unwrap()
            .join("rust-block-secrets-0.1.0.tar.gz"),
        &archive,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["pack", "sign"])
        .arg(&archive)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (_d, cmd) = tollgate_with(
        &format!(
            "version: 1\nplugins:\n  secrets:\n    source: {}\n    trusted_keys: [\"{public}\"]\ntools:\n  \"*\":\n    rules:\n      - plugin: secrets\n",
            p(&archive)
        ),
        server_everything(),
    );
    let run = drive(
        Client::Py1,
        &cmd,
        &scenario(vec![
            call("echo", json!({"message": "deploy finished"})),
            call("echo", json!({"message": "use key AKIAIOSFODNN7EXAMPLE"})),
        ]),
    );
    assert_eq!(text(run.result(0)), "Echo: deploy finished", "{run}");
    assert_denial(
        run.result(1),
        "secret_in_arguments",
        "tools.*.rules[0]",
        "Denied by policy: the arguments contain what looks like an AWS access key; never send credentials to a tool, refer to the secret by its name instead",
    );
}

#[test]
fn c_pack_narrows_a_real_filesystem_server() {
    setup(&[]);
    let pack = built("c-path-allowlist");
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().canonicalize().unwrap();
    std::fs::create_dir_all(root_path.join("public")).unwrap();
    std::fs::create_dir_all(root_path.join("private")).unwrap();
    std::fs::write(root_path.join("public/a.txt"), "public words").unwrap();
    std::fs::write(root_path.join("private/s.txt"), "the secret").unwrap();
    let server = vec![
        p(&peers().join(".env/bin/node")),
        p(&peers().join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js")),
        p(&root_path),
    ];
    let (_d, cmd) = tollgate_with(
        &format!(
            "version: 1\nplugins:\n  paths:\n    source: {}\n    config: {{ allowed: [\"{}/public/\"] }}\ntools:\n  \"*\":\n    rules:\n      - plugin: paths\n",
            p(&pack),
            p(&root_path)
        ),
        server,
    );
    let public = p(&root_path.join("public/a.txt"));
    let secret = p(&root_path.join("private/s.txt"));
    let run = drive(
        Client::Ts,
        &cmd,
        &scenario(vec![
            call("read_text_file", json!({"path": public})),
            call("read_text_file", json!({"path": secret})),
            call(
                "read_text_file",
                json!({"path": format!("{}/public/../private/s.txt", p(&root_path))}),
            ),
        ]),
    );
    assert!(
        text(run.result(0)).contains("public words"),
        "the server's own result: {run}"
    );
    assert_denial(
        run.result(1),
        "path_not_allowed",
        "tools.*.rules[0]",
        &format!("Denied by policy: the path '{secret}' is outside the folders this agent may use"),
    );
    assert_eq!(
        run.result(2)["_meta"]["dev.tollgate/denial"]["code"],
        "path_not_allowed",
        "{run}"
    );
    assert!(
        !run.stderr.contains("the secret"),
        "the server never read the private file"
    );
}

#[test]
fn js_pack_reads_the_clock_it_was_granted() {
    setup(&[]);
    let pack = built("js-business-hours");
    let hour = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 3600)
        % 24;
    // Open from this hour for two hours (robust across an hour boundary during the run), and
    // closed for the two hours after that: a second plugin instance decides a second tool.
    let policy = format!(
        "version: 1\nplugins:\n  open-now:\n    source: {pack}\n    grant: [clocks, output]\n    config: {{ open: {h}, close: {o}, days: [0,1,2,3,4,5,6] }}\n  closed-now:\n    source: {pack}\n    grant: [clocks, output]\n    config: {{ open: {o}, close: {c}, days: [0,1,2,3,4,5,6] }}\ntools:\n  echo:\n    rules:\n      - plugin: open-now\n  get-sum:\n    rules:\n      - plugin: closed-now\n",
        pack = p(&pack),
        h = hour,
        o = (hour + 2) % 24,
        c = (hour + 4) % 24,
    );
    let (_d, cmd) = tollgate_with(&policy, server_everything());
    let run = drive(
        Client::Py2,
        &cmd,
        &scenario(vec![
            call("echo", json!({"message": "in hours"})),
            call("get-sum", json!({"a": 1, "b": 2})),
        ]),
    );
    assert_eq!(text(run.result(0)), "Echo: in hours", "{run}");
    let denied = run.result(1);
    let denial = &denied["_meta"]["dev.tollgate/denial"];
    assert_eq!(denial["code"], "outside_business_hours", "{run}");
    assert!(
        text(denied).contains("get-sum is only available during business hours"),
        "{run}"
    );
    let retry = denial["retryAfterMs"].as_u64().expect("a retry delay");
    assert!(
        (1..=2 * 3_600_000).contains(&retry),
        "opens again within two hours: {retry}"
    );
    // Without the grant, the same pack is refused at load, naming the capabilities.
    let err = check_error(&policy.replace("    grant: [clocks, output]\n", ""));
    assert!(
        err.contains(
            "the pack asks for the capabilities [clocks, output], but the policy grants []"
        ),
        "{err}"
    );
}

#[test]
fn python_pack_redacts_real_results() {
    setup(&[]);
    let pack = built("python-redact-pii");
    let (_d, cmd) = tollgate_with(
        &format!(
            "version: 1\nplugins:\n  pii:\n    source: {}\ntools:\n  \"*\":\n    rules:\n      - plugin: pii\n",
            p(&pack)
        ),
        server_everything(),
    );
    let run = drive(
        Client::Ts,
        &cmd,
        &scenario(vec![
            call(
                "echo",
                json!({"message": "reach ada@example.com or 123-45-6789"}),
            ),
            call("echo", json!({"message": "nothing personal"})),
        ]),
    );
    assert_eq!(
        text(run.result(0)),
        "Echo: reach [redacted email] or [redacted ssn]",
        "{run}"
    );
    assert_eq!(text(run.result(1)), "Echo: nothing personal", "{run}");
}

/// `tollgate check` on a policy text that must be refused; its error output.
fn check_error(policy: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, policy).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the policy loaded, but it must be refused:\n{policy}"
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A pack around a built-in plugin's component, built with the library, in `dir`.
struct TestPack {
    dir: tempfile::TempDir,
}

impl TestPack {
    fn new(manifest_extra: &str, wasm: &[u8]) -> TestPack {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir_all(project.join("build")).unwrap();
        std::fs::write(project.join("build/p.wasm"), wasm).unwrap();
        std::fs::write(
            project.join("tollgate-pack.json"),
            format!(
                r#"{{"name":"p","version":"1.0.0","wit":"tollgate:policy@0.2.0",{manifest_extra}
                "components":[{{"name":"p","file":"build/p.wasm"}}]}}"#
            ),
        )
        .unwrap();
        TestPack { dir }
    }

    fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    fn build(&self, key: Option<&str>) -> tollgate::pack::build::Built {
        tollgate::pack::build::build(&self.project(), false, key).unwrap()
    }

    fn policy(source: &Path, extra: &str) -> String {
        format!(
            "version: 1\nplugins:\n  p:\n    source: {}\n{extra}tools:\n  x:\n    rules:\n      - plugin: p\n",
            source.display()
        )
    }
}

fn deny_plugin() -> Vec<u8> {
    std::fs::read(
        repo().join("plugins/target/wasm32-unknown-unknown/release/tollgate_plugin_deny.wasm"),
    )
    .expect("the built-in deny plugin is built by host/build.rs")
}

#[test]
fn a_good_pack_loads_as_folder_and_archive() {
    let pack = TestPack::new(
        r#""config_schema":{"type":"object","required":["reason"]},"#,
        &deny_plugin(),
    );
    let built = pack.build(None);
    for source in [&built.folder, &built.archive] {
        let policy = TestPack::policy(source, "    config: { reason: no }\n");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.yaml"), &policy).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("check")
            .arg(dir.path().join("p.yaml"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

#[test]
fn every_bad_pack_is_refused_at_load_naming_what_failed() {
    let wasm = deny_plugin();
    let schema = r#""config_schema":{"type":"object","properties":{"reason":{"type":"string","minLength":3}},"required":["reason"]},"#;
    let good_config = "    config: { reason: \"not today\" }\n";

    // Corrupt archive.
    let pack = TestPack::new(schema, &wasm);
    let built = pack.build(None);
    let bytes = std::fs::read(&built.archive).unwrap();
    std::fs::write(&built.archive, &bytes[..bytes.len() / 2]).unwrap();
    let err = check_error(&TestPack::policy(&built.archive, good_config));
    assert!(err.contains("is not a readable .tar.gz pack"), "{err}");

    // A component changed after packing: the manifest's digest no longer matches.
    let built = pack.build(None);
    let mut tampered = wasm.clone();
    tampered.extend_from_slice(&[0, 4, 1, b'x', 0]); // a custom section: still valid wasm
    std::fs::write(built.folder.join("p.wasm"), &tampered).unwrap();
    let err = check_error(&TestPack::policy(&built.folder, good_config));
    assert!(
        err.contains("component `p` has sha256 ") && err.contains("but its manifest says"),
        "{err}"
    );

    // The policy pins another digest.
    let built = pack.build(None);
    let err = check_error(&TestPack::policy(
        &built.folder,
        &format!("    sha256: \"{}\"\n{good_config}", "ab".repeat(32)),
    ));
    assert!(err.contains("but the policy file says abab"), "{err}");

    // Signatures: a manifest changed after signing, an untrusted key, no signature at all.
    let (key, public) = tollgate::pack::signing::generate().unwrap();
    let (_, other) = tollgate::pack::signing::generate().unwrap();
    let built = pack.build(Some(&key));
    let trusted = format!("    trusted_keys: [\"{public}\"]\n{good_config}");
    let manifest = built.folder.join("tollgate-pack.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("1.0.0", "1.0.1")).unwrap();
    let err = check_error(&TestPack::policy(&built.folder, &trusted));
    assert!(err.contains("does not match the pack's manifest"), "{err}");
    let built = pack.build(Some(&key));
    let err = check_error(&TestPack::policy(
        &built.folder,
        &format!("    trusted_keys: [\"{other}\"]\n{good_config}"),
    ));
    assert!(
        err.contains(&format!(
            "the pack is signed by {public}, which is not among the trusted keys ({other})"
        )),
        "{err}"
    );
    let built = pack.build(None);
    let err = check_error(&TestPack::policy(&built.folder, &trusted));
    assert!(
        err.contains("but the pack has no tollgate-pack.sig"),
        "{err}"
    );

    // A config that fails the pack's schema.
    let err = check_error(&TestPack::policy(
        &built.folder,
        "    config: { reason: no }\n",
    ));
    assert!(
        err.contains("the plugin's config does not match the pack's config_schema: at /reason:"),
        "{err}"
    );

    // Another WIT version (`pack build` refuses to write one; a pack from elsewhere may say it).
    let other_wit = TestPack::new(schema, &wasm);
    let built = other_wit.build(None);
    let m = built.folder.join("tollgate-pack.json");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(&m, text.replace("policy@0.2.0", "policy@0.9.0")).unwrap();
    let err = check_error(&TestPack::policy(&built.folder, good_config));
    assert!(
        err.contains("the pack is built for tollgate:policy@0.9.0, but this Tollgate implements tollgate:policy@0.1.0, 0.2.0"),
        "{err}"
    );
    // A manifest whose `wit` is a version the host knows, but not the one its component exports.
    std::fs::write(&m, text.replace("policy@0.2.0", "policy@0.1.0")).unwrap();
    let err = check_error(&TestPack::policy(&built.folder, good_config));
    assert!(
        err.contains("component `p` implements tollgate:policy@0.2.0, but the manifest says `wit: tollgate:policy@0.1.0`; rebuild the pack so they agree"),
        "{err}"
    );

    // A component without the plugin world's exports.
    let empty = wat::parse_str("(component)").unwrap();
    let no_exports = TestPack::new("", &empty);
    let built = no_exports.build(None);
    let err = check_error(&TestPack::policy(&built.folder, ""));
    assert!(
        err.contains("it implements no version of the tollgate:policy contract this Tollgate hosts: a 0.2.0 plugin exports the interface `tollgate:policy/rules@0.2.0`, a 0.1.0 plugin the functions `configure`, `check-call`, `check-result`, `visible` (it exports nothing)"),
        "{err}"
    );

    // Imports: one that needs a capability not granted, one that is never granted.
    let clock = wat::parse_str(r#"(component (import "wasi:clocks/wall-clock@0.2.0" (instance)))"#)
        .unwrap();
    let clock_pack = TestPack::new("", &clock);
    let built = clock_pack.build(None);
    let err = check_error(&TestPack::policy(&built.folder, ""));
    assert!(
        err.contains(
            "it imports `wasi:clocks/wall-clock@0.2.0`, which needs the `clocks` capability"
        ),
        "{err}"
    );
    let files =
        wat::parse_str(r#"(component (import "wasi:sockets/tcp@0.2.0" (instance)))"#).unwrap();
    let files_pack = TestPack::new("", &files);
    let built = files_pack.build(None);
    let err = check_error(&TestPack::policy(
        &built.folder,
        "    grant: [clocks, random, output]\n",
    ));
    assert!(
        err.contains("it imports `wasi:sockets/tcp@0.2.0`, which Tollgate never gives to plugins"),
        "{err}"
    );

    // A capability name that does not exist.
    let err = check_error(&TestPack::policy(&built.folder, "    grant: [network]\n"));
    assert!(err.contains("unknown capability `network`"), "{err}");
}

/// The promise of `tollgate pack new`: for every language, a new project builds into a pack
/// whose verdicts apply to real calls through the proxy.
#[test]
fn new_projects_in_every_language_build_into_packs_that_decide_real_calls() {
    setup(&[]);
    let root = tempfile::tempdir().unwrap();
    let threads: Vec<_> = ["rust", "c", "js", "python"]
        .into_iter()
        .map(|lang| {
            let dir = root.path().join(format!("my-{lang}-rule"));
            std::thread::spawn(move || {
                let tollgate = env!("CARGO_BIN_EXE_tollgate");
                let out = Command::new(tollgate)
                    .args([
                        "pack",
                        "new",
                        "--lang",
                        lang,
                        &format!("my-{lang}-rule"),
                        "--dir",
                    ])
                    .arg(&dir)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "pack new --lang {lang}: {out:?}");
                // Only a cache: the example's target folder already holds a wasm std build.
                let target = repo().join("examples/plugins/rust-block-secrets/target");
                let out = Command::new(tollgate)
                    .args(["pack", "build"])
                    .arg(&dir)
                    .env("CARGO_TARGET_DIR", target)
                    .output()
                    .unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout).to_string();
                assert!(
                    out.status.success() && stdout.contains("all 2 passed"),
                    "pack build --lang {lang}:\n{stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let mut cmd = vec![
                    tollgate.to_string(),
                    "run".into(),
                    "--state".into(),
                    "memory".into(),
                    "--policy".into(),
                    p(&dir.join("policy.yaml")),
                    "--".into(),
                ];
                cmd.extend(server_everything());
                let run = drive(
                    Client::Py1,
                    &cmd,
                    &scenario(vec![
                        call("echo", json!({"message": "ls -l"})),
                        call("echo", json!({"message": "rm -rf /"})),
                    ]),
                );
                assert_eq!(text(run.result(0)), "Echo: ls -l", "{lang}: {run}");
                assert_denial(
                    run.result(1),
                    "denied",
                    "tools.*.rules[0]",
                    "Denied by policy: the arguments contain 'rm -rf'",
                );
            })
        })
        .collect();
    let failures: Vec<String> = threads
        .into_iter()
        .filter_map(|t| t.join().err())
        .map(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "a language's thread panicked".into())
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Compile tests/fixtures/sleeper.c (a C plugin that sleeps through WASI) with the toolchain the
/// C example's build installed.
fn sleeper_wasm() -> Vec<u8> {
    built("c-path-allowlist");
    let sdk = repo().join("guest-sdk/c");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("sleeper.wasm");
    let linker = [
        PathBuf::from("/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld"),
        PathBuf::from(
            String::from_utf8(
                Command::new("rustc")
                    .args(["--print", "sysroot"])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
            .trim(),
        )
        .join("lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld"),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .expect("wasm-component-ld (installed with the wasm toolchain)");
    let status = Command::new("clang-16")
        .args(["--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "-I"])
        .arg(&sdk)
        .arg(sdk.join("plugin.c"))
        .arg(repo().join("host/tests/fixtures/sleeper.c"))
        .arg(sdk.join("plugin_component_type.o"))
        .arg(format!("-fuse-ld={}", linker.display()))
        .args(["-Wl,--wasi-adapter=reactor", "-o"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "clang-16 failed to build the sleeper");
    std::fs::read(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_sleeping_in_a_host_call_is_cut_off_after_its_deadline() {
    use tollgate::engine::{CallInput, Capability, EngineConfig, Limits, PluginSpec, PolicyEngine};
    let wasm = tokio::task::spawn_blocking(sleeper_wasm).await.unwrap();
    let engine = PolicyEngine::new(EngineConfig {
        cache: None,
        ..EngineConfig::default()
    })
    .unwrap();
    let engine = &engine;
    let wasm = &wasm;
    let load = |grants: &'static [Capability]| {
        let spec = PluginSpec {
            name: "sleeper",
            wasm,
            counters: std::sync::Arc::new(tollgate::state::memory::MemoryStore::new()),
            key_prefix: "t/",
            grants,
            builtin: None,
        };
        async move { engine.load(&spec, "{}", Limits::default()).await }
    };
    // (wasi-libc's start-up also imports stdout, hence `output` in both.)
    let refused = load(&[Capability::Output])
        .await
        .err()
        .expect("sleeping needs the clocks capability");
    assert!(
        refused
            .to_string()
            .contains("which needs the `clocks` capability"),
        "{refused}"
    );
    let plugin = load(&[Capability::Clocks, Capability::Output])
        .await
        .unwrap();
    let call = |seconds: &str| CallInput {
        tool: "nap".into(),
        arguments: format!(r#"{{"seconds":"{seconds}"}}"#),
        server: "t".into(),
        caller: "anonymous".into(),
        metadata: vec![],
    };
    // An hour's sleep: the epoch deadline cannot fire while no guest code runs, so only the
    // wall-clock cut-off ends it. Without it this would hit the 60 s bound below.
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        plugin.check_call(&call("3600")),
    )
    .await
    .expect("the call was cut off instead of sleeping for an hour");
    let err = outcome.expect_err("a plugin that sleeps past its deadline fails");
    assert_eq!(
        err.to_string(),
        "plugin `sleeper` ran past its deadline of 50 ms"
    );
    // The plugin keeps serving on a fresh instance.
    let (verdict, _) = plugin.check_call(&call("0")).await.unwrap();
    assert_eq!(verdict, tollgate::engine::Verdict::Allow);
}
