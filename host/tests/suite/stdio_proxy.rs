//! The stdio proxy as a process: bad input from the agent, process hygiene, batches. The
//! upstream is the repo's stdlib-only demo server (scripts/demo/server.py), which reports every
//! call it receives on stderr, so a test can show what never reached it.

use crate::e2e::repo;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

struct Proxy {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Proxy {
    fn start(extra: &[&str], server: &[&str]) -> Proxy {
        Proxy::start_with(&repo().join("policies/demo.yaml"), extra, server)
    }

    /// Start with a policy file; counters in memory unless `extra` names a `--state`.
    fn start_with(policy: &std::path::Path, extra: &[&str], server: &[&str]) -> Proxy {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.arg("run").arg("--policy").arg(policy);
        if !extra.contains(&"--state") {
            cmd.args(["--state", "memory"]);
        }
        cmd.args(extra).arg("--").args(server);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Proxy {
            child,
            stdin,
            stdout,
        }
    }

    fn demo(extra: &[&str]) -> Proxy {
        let server = repo().join("scripts/demo/server.py");
        Proxy::start(extra, &["python3", server.to_str().unwrap()])
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    fn recv_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line
    }

    fn recv(&mut self) -> Value {
        let line = self.recv_line();
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not JSON from the proxy ({e}): {line:?}"))
    }

    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send_raw(
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
                .to_string()
                .as_bytes(),
        );
        self.recv()
    }

    /// Close stdin, wait for the exit, return (exit code, stderr).
    fn finish(mut self) -> (i32, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "tollgate did not exit after its stdin closed"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.code().unwrap_or(-1), err)
    }
}

#[test]
fn malformed_messages_get_json_rpc_errors_and_the_session_goes_on() {
    let mut p = Proxy::demo(&["--max-message-bytes", "2000"]);
    p.send_raw(b"this is not json");
    let r = p.recv();
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (Value::Null, json!(-32700))
    );
    p.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"x\":\"\xff\xfe\"}");
    assert_eq!(p.recv()["error"]["code"], -32700, "invalid UTF-8");
    p.send_raw(br#"{"jsonrpc":"2.0","id":5}"#);
    let r = p.recv();
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(5), json!(-32600))
    );
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{{"name":"send_message","arguments":{{"body":"{}"}}}}}}"#,
        "x".repeat(5000)
    );
    p.send_raw(big.as_bytes());
    let r = p.recv();
    assert_eq!(r["error"]["code"], -32600);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("over the limit of 2000 bytes (--max-message-bytes)"),
        "{r}"
    );
    let r = p.request(
        7,
        "tools/call",
        json!({"name": "send_message", "arguments": [1, 2]}),
    );
    assert_eq!(
        (r["id"].clone(), r["error"]["code"].clone()),
        (json!(7), json!(-32602))
    );
    assert_eq!(
        r["error"]["message"],
        "Invalid params: `arguments` must be an object, got [1,2]"
    );
    let r = p.request(8, "tools/call", json!({"arguments": {}}));
    assert_eq!(
        r["error"]["code"], -32602,
        "a call without a tool name is never forwarded"
    );
    // The session is intact: a good call still goes through.
    let r = p.request(
        9,
        "tools/call",
        json!({"name": "list_messages", "arguments": {}}),
    );
    assert_eq!(r["result"]["content"][0]["text"], "[]");
    let (code, stderr) = p.finish();
    assert_eq!(code, 0);
    assert_eq!(
        stderr.matches("[demo server] received tools/call").count(),
        1,
        "only the good call reached the server:\n{stderr}"
    );
}

#[test]
fn batches_are_split_and_each_call_decided() {
    let mut p = Proxy::demo(&[]);
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_messages", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "delete_message", "arguments": {"sid": "x"}}}
    ]);
    p.send_raw(batch.to_string().as_bytes());
    // The denial comes from Tollgate at once; the allowed call's answer from the server.
    let first = p.recv();
    let denied = first
        .as_array()
        .expect("denials of a batch come back as a batch");
    assert_eq!(denied.len(), 1);
    let second = p.recv();
    let answered = second
        .as_array()
        .expect("the forwarded part is still a batch");
    assert_eq!((answered.len(), answered[0]["id"].clone()), (1, json!(1)));
    assert_eq!(answered[0]["result"]["content"][0]["text"], "[]");
    assert_eq!(denied[0]["id"], 2);
    assert_eq!(denied[0]["result"]["isError"], true);
    assert_eq!(
        denied[0]["result"]["content"][0]["text"],
        "Denied by policy: Deleting is not allowed from agents; ask a human."
    );
    let (code, stderr) = p.finish();
    assert_eq!(code, 0);
    assert!(
        stderr.contains("received tools/call list_messages"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("received tools/call delete_message"),
        "{stderr}"
    );
}

#[test]
fn a_server_that_cannot_start_is_named_in_a_clear_error() {
    let p = Proxy::start(&[], &["/nonexistent/mcp-server", "--flag"]);
    let (code, stderr) = p.finish();
    assert_ne!(code, 0);
    assert!(stderr.contains("cannot start the MCP server `/nonexistent/mcp-server --flag`: No such file or directory"), "{stderr}");
}

#[test]
fn the_servers_exit_code_becomes_tollgates() {
    let mut p = Proxy::start(
        &[],
        &[
            "python3",
            "-c",
            "import sys; sys.stdin.readline(); sys.exit(3)",
        ],
    );
    p.send_raw(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    let (code, stderr) = p.finish();
    assert_eq!(code, 3);
    assert!(
        stderr.contains("the MCP server exited with code 3"),
        "{stderr}"
    );
}

#[test]
fn a_policy_that_does_not_load_stops_tollgate_before_the_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\ntools:\n  x:\n    rules:\n      - rate_limit: 5/fortnight\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "run",
            "--policy",
            bad.to_str().unwrap(),
            "--",
            "python3",
            "-c",
            "open('/dev/stderr','w').write('server started')",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("bad.yaml: rule tools.x.rules[0]: invalid rate `5/fortnight`"),
        "{stderr}"
    );
    assert!(!stderr.contains("server started"), "{stderr}");
}

#[test]
fn tollgate_check_accepts_every_policy_in_the_policies_folder() {
    let mut checked = 0;
    let top = std::fs::read_dir(repo().join("policies")).unwrap();
    let catalog = std::fs::read_dir(repo().join("policies/catalog")).unwrap();
    let packs = catalog
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.join("policy.yaml"));
    for path in top.map(|e| e.unwrap().path()).chain(packs) {
        let name = path.file_name().unwrap().to_string_lossy();
        let policy_like = [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e));
        if !policy_like || name.ends_with(".schema.json") {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("check")
            .arg(&path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(": OK (Tollgate policy (version 1))"),
            "{stdout}"
        );
        checked += 1;
    }
    assert!(
        checked >= 14,
        "the policies folder has the demo and the catalog's 13 packs at least"
    );
}

#[test]
fn tollgate_check_reports_a_broken_policy_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("typo.yaml");
    std::fs::write(&bad, "version: 1\ntools:\n  send:\n    rulez: []\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "typo.yaml: tools.send: unknown field `rulez`, expected `replace` or `rules` at line 4 column 5"
        ),
        "{stderr}"
    );
}

#[test]
fn sigterm_reaches_the_server_and_its_exit_code_becomes_tollgates() {
    let server = "import signal, sys, time\n\
                  signal.signal(signal.SIGTERM, lambda *_: sys.exit(42))\n\
                  print('{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}', flush=True)\n\
                  time.sleep(30)";
    let mut p = Proxy::start(&[], &["python3", "-c", server]);
    // The server's first message shows it is up with its handler installed.
    assert_eq!(p.recv()["method"], "notifications/message");
    // SAFETY: signalling the tollgate process this test started.
    unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
    let (code, stderr) = p.finish();
    assert_eq!(code, 42, "{stderr}");
    assert!(
        stderr.contains("the MCP server exited with code 42"),
        "{stderr}"
    );
}

#[test]
fn limits_hold_across_restarts_with_the_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("daily.yaml");
    std::fs::write(&policy, "version: 1\ntools:\n  send_message:\n    rules:\n      - rate_limit: { max: 3, window: day }\n").unwrap();
    let state = format!(
        "sqlite:{}",
        dir.path().join("state/counters.sqlite").display()
    );
    let server = repo().join("scripts/demo/server.py");
    let send = |p: &mut Proxy, id: u64| {
        p.request(
            id,
            "tools/call",
            json!({"name": "send_message", "arguments": {"to": "+15550100", "body": "hi"}}),
        )
    };
    // First session: two messages, then the client goes away (as stdio clients do).
    let mut first = Proxy::start_with(
        &policy,
        &["--state", &state],
        &["python3", server.to_str().unwrap()],
    );
    assert!(send(&mut first, 1)["result"]["isError"].is_null());
    assert!(send(&mut first, 2)["result"]["isError"].is_null());
    assert_eq!(first.finish().0, 0);
    // A new session, a new Tollgate process: the third message of the day is the last one.
    let mut second = Proxy::start_with(
        &policy,
        &["--state", &state],
        &["python3", server.to_str().unwrap()],
    );
    assert!(send(&mut second, 1)["result"]["isError"].is_null());
    let r = send(&mut second, 2);
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert_eq!(
        r["result"]["_meta"]["dev.tollgate/denial"]["code"],
        "rate_limited"
    );
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Denied by policy: rate limit of 3 per day reached"),
        "{r}"
    );
    assert_eq!(second.finish().0, 0);
}

#[test]
fn an_intercept_policy_file_answers_with_intercepts_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("intercept.yaml");
    std::fs::write(
        &policy,
        "version: \"1\"\ntools:\n  delete_message:\n    rules:\n      - name: no deletes\n        action: deny\n        on_deny: \"Deleting messages is not permitted via AI agents.\"\n",
    )
    .unwrap();
    let server = repo().join("scripts/demo/server.py");
    let mut p = Proxy::start_with(&policy, &[], &["python3", server.to_str().unwrap()]);
    let r = p.request(
        1,
        "tools/call",
        json!({"name": "delete_message", "arguments": {"sid": "SM1"}}),
    );
    assert_eq!(
        r["result"]["content"][0]["text"],
        "[INTERCEPT POLICY DENIED] Deleting messages is not permitted via AI agents."
    );
    assert_eq!(
        r["result"]["_meta"]["dev.tollgate/denial"]["rule"],
        "no deletes"
    );
    let r = p.request(
        2,
        "tools/call",
        json!({"name": "list_messages", "arguments": {}}),
    );
    assert_eq!(r["result"]["content"][0]["text"], "[]");
    assert_eq!(p.finish().0, 0);
}

/// `tollgate check` on a file with `text`: (exit code, stderr).
fn check_text(name: &str, text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn broken_policy_files_get_clear_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "/nonexistent/policy.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "cannot read policy file /nonexistent/policy.yaml: No such file or directory"
        ),
        "{stderr}"
    );

    let (code, stderr) = check_text("syntax.yaml", "version: 1\ntools:\n  send: {rules: [\n");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("syntax.yaml: ") && stderr.contains("line 4"),
        "YAML syntax errors name the line: {stderr}"
    );

    let (code, stderr) = check_text("types.yaml", "version: 1\nhide: delete_all\n");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("types.yaml: hide: invalid type: string \"delete_all\", expected a sequence at line 2 column 7"), "{stderr}");

    let (code, stderr) = check_text("json.json", "{\"version\": 1, \"tools\": {\"x\": {\"rules\": [{\"rate_limit\": {\"max\": \"ten\", \"window\": 60}}]}}}");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(
            "json.json: rule tools.x.rules[0]: rate_limit.max must be a whole number, got \"ten\""
        ),
        "{stderr}"
    );

    let (code, stderr) = check_text(
        "schema.yaml",
        "version: 1\ntools:\n  x:\n    rules:\n      - validate: { schema: { type: strnig } }\n",
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("rule tools.x.rules[0]: plugin `validate` rejected its configuration: `schema` is not a valid JSON Schema"), "{stderr}");
}

/// Plugins read `protocol-version` and `client-name` from `call.metadata`: from `initialize`, or
/// from a stateless (2026-07-28) request's own `_meta`.
#[test]
fn plugins_see_the_clients_protocol_version_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: 1\nplugins:\n  echo: {{ source: \"{}/tollgate_fixture_misbehave.wasm\", config: {{ mode: metadata }} }}\ntools:\n  \"*\": {{ rules: [{{ plugin: echo }}] }}\n",
            env!("TOLLGATE_GUEST_DIR")
        ),
    )
    .unwrap();
    let server = repo().join("scripts/demo/server.py");
    let mut p = Proxy::start_with(&policy, &[], &["python3", server.to_str().unwrap()]);
    let init = p.request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "test-client", "version": "1"}}),
    );
    assert!(init.get("result").is_some(), "{init}");
    let denied = p.request(2, "tools/call", json!({"name": "echo", "arguments": {}}));
    assert_eq!(
        denied["result"]["content"][0]["text"],
        "Denied by policy: protocol-version=2025-06-18; client-name=test-client"
    );
    let stateless = p.request(
        3,
        "tools/call",
        json!({"name": "echo", "arguments": {}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "other-client", "version": "2"}}}),
    );
    assert_eq!(
        stateless["result"]["content"][0]["text"],
        "Denied by policy: protocol-version=2026-07-28; client-name=other-client"
    );
}

/// Under pins, a call to a tool the server has not listed in the session is answered as for an
/// unknown tool (the agent cannot call around the check), unless the policy allows it or
/// `--dry-run` enforces nothing; a missing
/// or malformed lock file stops the policy from loading, naming the file and line.
#[test]
fn under_pins_calls_wait_for_a_checked_listing_and_a_bad_lock_file_stops_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let server = repo().join("scripts/demo/server.py");
    let server = ["python3", server.to_str().unwrap()];
    let lock = dir.path().join("demo.pins.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("pin")
        .arg("--lock")
        .arg(&lock)
        .arg("--")
        .args(server)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (unlisted, extra, first_call_is_unknown) in [
        ("deny", &[][..], true),
        ("allow", &[][..], false),
        ("deny", &["--dry-run"][..], false),
    ] {
        let policy = dir.path().join(format!("{unlisted}.yaml"));
        std::fs::write(
            &policy,
            format!("version: 1\npins: {{ file: demo.pins.yaml, unlisted_calls: {unlisted} }}\n"),
        )
        .unwrap();
        let mut p = Proxy::start_with(&policy, extra, &server);
        p.request(1, "initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}));
        let args = json!({"name": "list_messages", "arguments": {}});
        let early = p.request(2, "tools/call", args.clone());
        assert_eq!(
            early["error"]["message"] == "Unknown tool: list_messages",
            first_call_is_unknown,
            "unlisted_calls: {unlisted} {extra:?}: {early}"
        );
        let listed = p.request(3, "tools/list", json!({}));
        assert_eq!(
            listed["result"]["tools"].as_array().unwrap().len(),
            4,
            "{listed}"
        );
        let after = p.request(4, "tools/call", args.clone());
        assert!(after.get("result").is_some(), "{after}");
    }

    let (code, stderr) = check_text("nolock.yaml", "version: 1\npins: missing.pins.yaml\n");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("cannot read pin lock file ") && stderr.contains("missing.pins.yaml"),
        "{stderr}"
    );
    let bad = dir.path().join("bad.pins.yaml");
    std::fs::write(&bad, "version: 1\ntools:\n  x: [\n").unwrap();
    let (code, stderr) = check_text(
        "badlock.yaml",
        &format!("version: 1\npins: {}\n", bad.display()),
    );
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("pin lock file ") && stderr.contains("line"),
        "{stderr}"
    );
}

/// A server whose answers keep their own spacing and key order (what a byte-exact proxy must
/// forward), with a result that names no secret.
const SPACED_SERVER: &str = r#"
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    if m["method"] == "initialize":
        r = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "spaced", "version": "1"}}
        print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}), flush=True)
    else:
        print('{"jsonrpc": "2.0",  "id": %s, "result": {"zeta": 1, "content": [ {"type": "text", "text": "plain words"} ], "alpha": 2}}' % json.dumps(m["id"]), flush=True)
"#;

#[test]
fn a_result_no_rule_changes_reaches_the_agent_as_the_servers_own_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("redact.yaml");
    std::fs::write(
        &policy,
        "version: 1\ntools:\n  \"*\":\n    rules:\n      - redact: { patterns: [\"secret-[0-9]+\"] }\n",
    )
    .unwrap();
    let mut p = Proxy::start_with(&policy, &[], &["python3", "-c", SPACED_SERVER]);
    p.request(1, "initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}));
    p.send_raw(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#);
    assert_eq!(
        p.recv_line(),
        "{\"jsonrpc\": \"2.0\",  \"id\": 2, \"result\": {\"zeta\": 1, \"content\": [ {\"type\": \"text\", \"text\": \"plain words\"} ], \"alpha\": 2}}\n",
        "a result the redact rule left alone is forwarded byte for byte"
    );
    p.finish();
}
