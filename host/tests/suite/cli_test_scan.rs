//! `tollgate test` and `tollgate scan`, run as the binary.
//! - the shipped case files pass against their policies; a wrong case file fails with exit 1
//!   and a diff of expected against actual;
//! - `scan` writes a policy that `tollgate check` accepts and that names every tool, for the
//!   repo's demo server, a server that chatters and pages its tools/list, and (when the test
//!   peers are installed) server-everything.

use crate::e2e::repo;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const TOLLGATE: &str = env!("CARGO_BIN_EXE_tollgate");
/// Compiled built-in plugins, shared with the other integration tests (a debug build compiles
/// them slowly).
const CODE_CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/code-cache");

/// Run tollgate from the repository root, with the compiled-plugin cache under cargo's tmpdir.
fn tollgate(args: &[&str]) -> Output {
    Command::new(TOLLGATE)
        .args(args)
        .current_dir(repo())
        .env("TOLLGATE_LOG", "warn")
        .env(
            "XDG_CACHE_HOME",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"),
        )
        .output()
        .expect("tollgate runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// --- tollgate test -----------------------------------------------------------------------------

#[test]
fn every_catalog_pack_opens_with_current_digests_and_its_cases_pass() {
    // Each folder of policies/catalog is a policy pack (manifest digests current, a README, at
    // least 10 recorded cases that pass), and `wrap` offers exactly these; the demo policy has
    // its cases too.
    let mut names: Vec<String> = std::fs::read_dir(repo().join("policies/catalog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 13, "{names:?}");
    let mut offered: Vec<String> = tollgate::wrap::catalog::REVIEWED
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    offered.sort();
    assert_eq!(
        names, offered,
        "the catalog's packs and the ones wrap offers"
    );
    let mut runs = vec![(
        "policies/demo.yaml".to_string(),
        "policies/tests/demo.cases.yaml".to_string(),
    )];
    for name in &names {
        let dir = repo().join("policies/catalog").join(name);
        let pack = tollgate::pack::Pack::open(&dir).unwrap_or_else(|e| {
            panic!("{e}\n(after editing a pack, `tollgate pack build policies/catalog/{name}` brings its digests up to date)")
        });
        assert_eq!(pack.manifest.name, *name);
        assert!(!pack.manifest.servers.is_empty(), "{name}: no servers");
        assert!(dir.join("README.md").is_file(), "{name}: no README.md");
        let (policy, cases) = (pack.manifest.policy.unwrap(), pack.manifest.cases.unwrap());
        runs.push((
            format!("policies/catalog/{name}/{}", policy.file),
            format!("policies/catalog/{name}/{}", cases.file),
        ));
    }
    for (policy, cases) in &runs {
        let out = tollgate(&["test", policy, cases, "--cache-dir", CODE_CACHE]);
        let text = stdout(&out);
        assert!(
            out.status.success(),
            "{policy}: exit {:?}\n{text}\n{}",
            out.status.code(),
            stderr(&out)
        );
        assert!(!text.contains('✗'), "{text}");
        let passed = text.lines().filter(|l| l.starts_with("✓ ")).count();
        assert!(passed >= 10, "{policy}: only {passed} cases\n{text}");
        assert!(text.contains(&format!("all {passed} passed")), "{text}");
    }
}

#[test]
fn a_wrong_case_file_fails_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("wrong.cases.yaml");
    std::fs::write(
        &cases,
        r#"
cases:
  - name: regular number
    tool: send_message
    arguments: { to: "+15551230001", body: "hi" }
    expect: allow
  - name: premium number wrongly expected to pass
    tool: send_message
    arguments: { to: "+19005550100", body: "hi" }
    expect: allow
  - name: wrong code and reason for a deletion
    tool: delete_message
    expect: deny
    code: rate_limited
    reason_contains: "try again later"
  - name: hidden tool wrongly expected to be denied
    tool: delete_account
    expect: deny
"#,
    )
    .unwrap();
    let out = tollgate(&[
        "test",
        "policies/demo.yaml",
        cases.to_str().unwrap(),
        "--cache-dir",
        CODE_CACHE,
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(text.contains("✓ 1. regular number"), "{text}");
    assert!(
        text.contains("✗ 2. premium number wrongly expected to pass"),
        "{text}"
    );
    // The diff: expected against actual, for decision, code and reason.
    assert!(
        text.contains("! decision  - expected: allow\n    !           + actual:   deny"),
        "{text}"
    );
    assert!(
        text.contains("! code      - expected: rate_limited\n    !           + actual:   denied"),
        "{text}"
    );
    assert!(
        text.contains("! reason    - expected: contains \"try again later\""),
        "{text}"
    );
    assert!(
        text.contains("+ actual:   \"Deleting is not allowed from agents; ask a human.\""),
        "{text}"
    );
    assert!(
        text.contains("! decision  - expected: deny\n    !           + actual:   unknown"),
        "{text}"
    );
    assert!(text.contains("3 of 4 failed"), "{text}");
}

#[test]
fn a_malformed_case_file_is_an_error_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("bad.yaml");
    std::fs::write(
        &cases,
        "cases:\n  - name: x\n    tool: t\n    expect: perhaps\n",
    )
    .unwrap();
    let out = tollgate(&["test", "policies/demo.yaml", cases.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown variant `perhaps`"),
        "{}",
        stderr(&out)
    );
}

/// Cases may give the server's result and the result the agent must get after redaction.
#[test]
fn cases_check_results_after_redaction() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "version: 1\ntools:\n  lookup:\n    rules:\n      - redact: { patterns: ['[0-9]{3}-[0-9]{2}-[0-9]{4}'] }\n",
    )
    .unwrap();
    let cases = dir.path().join("cases.yaml");
    let case = |expected: &str| {
        format!(
            "cases:\n  - name: the SSN is redacted\n    tool: lookup\n    expect: allow\n    result: {{ content: [{{ type: text, text: 'SSN 123-45-6789' }}] }}\n    expect_result: {{ content: [{{ type: text, text: '{expected}' }}] }}\n"
        )
    };
    std::fs::write(&cases, case("SSN [redacted]")).unwrap();
    let out = tollgate(&["test", policy.to_str().unwrap(), cases.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    std::fs::write(&cases, case("SSN 123-45-6789")).unwrap();
    let out = tollgate(&["test", policy.to_str().unwrap(), cases.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(
            r#"! result    - expected: {"content":[{"type":"text","text":"SSN 123-45-6789"}]}"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"+ actual:   {"content":[{"text":"SSN [redacted]","type":"text"}]}"#),
        "{text}"
    );
}

// --- tollgate scan -----------------------------------------------------------------------------

/// Tool names the server lists, asked directly (not through `scan`).
fn list_tools_directly(command: &[String]) -> Vec<String> {
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |m: Value| writeln!(stdin, "{m}").unwrap();
    let mut wait = |id: u64| loop {
        let m: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        if m.get("method").is_none() && m["id"] == id {
            return m["result"].clone();
        }
    };
    // A client with sampling and elicitation, as the scan declares: servers offer it more tools.
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {"sampling": {}, "elicitation": {"form": {}, "url": {}}},
        "clientInfo": {"name": "test", "version": "0"}}}),
    );
    wait(1);
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let mut names = Vec::new();
    let mut cursor = Value::Null;
    for id in 2.. {
        let params = if cursor.is_null() {
            json!({})
        } else {
            json!({"cursor": cursor})
        };
        send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params}));
        let result = wait(id);
        names.extend(
            result["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string()),
        );
        cursor = result.get("nextCursor").cloned().unwrap_or(Value::Null);
        if cursor.is_null() {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    names
}

/// Scan `command` (to stdout and with --output), check the policy with `tollgate check`, and
/// assert it names exactly `tools`, in order. Returns the policy text.
fn scan_and_check(command: &[String], tools: &[String]) -> String {
    let mut args = vec!["scan", "--"];
    args.extend(command.iter().map(String::as_str));
    let out = tollgate(&args);
    assert!(
        out.status.success(),
        "scan failed: {}\n{}",
        stderr(&out),
        stdout(&out)
    );
    let text = stdout(&out);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("starter.yaml");
    let mut args = vec!["scan", "--output", file.to_str().unwrap(), "--"];
    args.extend(command.iter().map(String::as_str));
    let out = tollgate(&args);
    assert!(
        out.status.success(),
        "scan --output failed: {}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "--output writes nothing to stdout");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    let out = tollgate(&["check", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "tollgate check rejects the starter policy: {}\n{text}",
        stderr(&out)
    );
    assert!(text.contains("version: 1\ndefault: allow\n"), "{text}");

    let policy: Value = serde_norway::from_str(&text).unwrap();
    let listed: Vec<&str> = policy["tools"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(listed, tools, "{text}");
    for t in policy["tools"].as_object().unwrap().values() {
        assert_eq!(t, &json!({"rules": []}));
    }
    text
}

fn demo_server() -> Vec<String> {
    vec![
        "python3".into(),
        repo().join("scripts/demo/server.py").display().to_string(),
    ]
}

#[test]
fn scan_writes_a_starter_policy_for_the_demo_server() {
    let tools = list_tools_directly(&demo_server());
    assert_eq!(
        tools,
        [
            "send_message",
            "list_messages",
            "delete_message",
            "delete_account"
        ]
    );
    let text = scan_and_check(&demo_server(), &tools);
    assert!(
        text.contains("  # Send an SMS\n  send_message:\n    rules: []\n"),
        "{text}"
    );
    assert!(
        text.starts_with("# Starter policy for demo-messaging 1.0"),
        "{text}"
    );
    // Destructive names get a commented-out deny suggestion; others do not.
    for name in ["delete_message", "delete_account"] {
        let at = text.find(&format!("  {name}:\n")).unwrap();
        let entry = &text[at..];
        let entry = &entry[..entry[3..]
            .find("\n  # ")
            .map(|i| i + 3)
            .unwrap_or(entry.len())];
        assert!(entry.contains("    #   - action: deny\n"), "{entry}");
    }
    assert_eq!(text.matches("#   - action: deny").count(), 2, "{text}");
}

/// A server that logs before it answers `initialize`, asks the client something, answers
/// another id first, and pages its tools/list.
const CHATTY_SERVER: &str = r#"
import json, sys
def out(m): print(json.dumps(m), flush=True)
PAGES = {None: ([{"name": "alpha", "description": "First\n  tool " + "x" * 200}, {"name": "drop_table"}], "p2"),
         "p2": ([{"name": "weird name"}, {"name": "purgeCache", "description": "Empties the cache"}], "p3"),
         "p3": ([], None)}
for line in sys.stdin:
    m = json.loads(line)
    if "method" not in m:
        continue  # the client's answer to our request
    if m["method"] == "initialize":
        out({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "booting"}})
        out({"jsonrpc": "2.0", "id": "srv-1", "method": "roots/list"})
        out({"jsonrpc": "2.0", "id": 999, "result": {}})
        out({"jsonrpc": "2.0", "id": m["id"], "result": {"protocolVersion": m["params"]["protocolVersion"],
             "capabilities": {"tools": {}}, "serverInfo": {"name": "chatty", "version": "2"}}})
    elif m["method"] == "tools/list":
        tools, nxt = PAGES[(m.get("params") or {}).get("cursor")]
        out({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 1}})
        result = {"tools": tools}
        if nxt: result["nextCursor"] = nxt
        out({"jsonrpc": "2.0", "id": m["id"], "result": result})
"#;

#[test]
fn scan_skips_notifications_and_follows_pages() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("chatty.py");
    std::fs::write(&script, CHATTY_SERVER).unwrap();
    let command = vec!["python3".to_string(), script.display().to_string()];
    let tools = ["alpha", "drop_table", "weird name", "purgeCache"].map(String::from);
    assert_eq!(list_tools_directly(&command), tools);
    let text = scan_and_check(&command, &tools);
    assert!(text.contains("\n  \"weird name\":\n"), "{text}");
    assert!(
        text.contains("  # (no description)\n  drop_table:"),
        "{text}"
    );
    let alpha = text
        .lines()
        .find(|l| l.starts_with("  # First tool"))
        .unwrap();
    assert!(
        alpha.chars().count() <= 104 && alpha.ends_with('…'),
        "{alpha}"
    );
    assert_eq!(text.matches("#   - action: deny").count(), 2, "{text}");
}

#[test]
fn scan_of_a_server_that_exits_is_an_error() {
    let out = tollgate(&["scan", "--", "python3", "-c", "pass"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the server exited (exit status: 0)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn scan_writes_a_starter_policy_for_server_everything() {
    let peers = repo().join("tests/peers");
    let install = Command::new(repo().join("scripts/test-peers.sh"))
        .output()
        .expect("run scripts/test-peers.sh");
    assert!(
        install.status.success(),
        "scripts/test-peers.sh failed:\n{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let index = peers.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let node = peers.join(".env/bin/node");
    assert!(
        index.exists() && node.exists(),
        "scripts/test-peers.sh did not install server-everything"
    );
    let command = vec![
        node.display().to_string(),
        index.display().to_string(),
        "stdio".into(),
    ];
    let tools = list_tools_directly(&command);
    assert!(tools.len() >= 5, "{tools:?}");
    assert!(tools.iter().any(|t| t == "echo"), "{tools:?}");
    scan_and_check(&command, &tools);
}
