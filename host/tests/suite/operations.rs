//! Operating Tollgate, through the `tollgate run` process in front of the repo's demo server:
//! the audit log, dry run (global and per rule), Prometheus metrics (stdio `--metrics` and the
//! listener's `/metrics`) and hot reload (a good change takes effect, a broken one is refused
//! and the old policy stays).

use crate::e2e::repo;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Proxy {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Arc<Mutex<String>>,
    next_id: u64,
}

impl Proxy {
    fn start(policy: &Path, extra: &[&str]) -> Proxy {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args([
                "run",
                "--state",
                "memory",
                "--server-name",
                "demo",
                "--policy",
            ])
            .arg(policy)
            .args(extra)
            .arg("--")
            .arg("python3")
            .arg(repo().join("scripts/demo/server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Proxy {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            stderr,
            next_id: 0,
        }
    }

    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        self.next_id += 1;
        let m = json!({"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
                       "params": {"name": tool, "arguments": arguments}});
        writeln!(self.stdin, "{m}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
    }

    /// Wait (up to a minute) for a line on stderr containing `text`; returns that line.
    fn stderr_line(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(l) = self
                .stderr
                .lock()
                .unwrap()
                .lines()
                .find(|l| l.contains(text))
            {
                return l.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no `{text}` on stderr:\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn denial_code(answer: &Value) -> &Value {
    &answer["result"]["_meta"]["dev.tollgate/denial"]["code"]
}

fn demo() -> std::path::PathBuf {
    repo().join("policies/demo.yaml")
}

#[test]
fn every_decision_is_one_audit_line_written_before_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut p = Proxy::start(&demo(), &["--audit-log", log.to_str().unwrap()]);
    let read = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let args = json!({"to": "+15550100", "body": "hi"});
    assert_eq!(
        p.call("send_message", args.clone())["result"]["isError"],
        Value::Null
    );
    // The record is on disk by the time the agent has its answer.
    let lines = read();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let sha = e2e_sha256(&args.to_string());
    assert_eq!(lines[0]["verdict"], "allow");
    assert_eq!(lines[0]["tool"], "send_message");
    assert_eq!(lines[0]["server"], "demo");
    assert_eq!(lines[0]["caller"], "anonymous");
    assert_eq!(lines[0]["arguments_sha256"], sha);
    assert!(
        lines[0].get("arguments").is_none(),
        "raw arguments only when asked"
    );
    assert!(lines[0]["latency_us"].as_u64().is_some());
    assert_eq!(
        denial_code(&p.call("delete_message", json!({"sid": "SM1"}))),
        "denied"
    );
    assert_eq!(p.call("delete_account", json!({}))["error"]["code"], -32602);
    let lines = read();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[1]["verdict"], "deny");
    assert_eq!(lines[1]["code"], "denied");
    assert_eq!(lines[1]["rule"], "tools.delete_*.rules[0]");
    assert_eq!(lines[1]["plugin"], "deny");
    assert_eq!(lines[2]["verdict"], "unknown");
}

/// sha256 hex, computed here independently of Tollgate (with the sha2 crate Tollgate also uses
/// would prove little, so with the coreutils tool).
fn e2e_sha256(text: &str) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn dry_run_reports_denials_and_lets_calls_through() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut p = Proxy::start(
        &demo(),
        &[
            "--dry-run",
            "--log-format",
            "json",
            "--audit-log",
            log.to_str().unwrap(),
        ],
    );
    let answer = p.call("delete_message", json!({"sid": "SM7"}));
    assert_eq!(
        answer["result"]["content"][0]["text"], "deleted SM7",
        "the server ran it: {answer}"
    );
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["verdict"], "deny");
    assert_eq!(lines[0]["dry_run"], true);
    assert_eq!(lines[0]["rule"], "tools.delete_*.rules[0]");
    assert_eq!(lines[1]["verdict"], "allow");
    // Logs are JSON lines on request.
    let line = p.stderr_line("dry run: would deny");
    let logged: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(logged["level"], "INFO");
    assert_eq!(logged["fields"]["rule"], "tools.delete_*.rules[0]");
}

#[test]
fn a_dry_run_rule_is_tried_while_the_others_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "version: 1\ntools:\n  send_message:\n    rules:\n      - action: deny\n        reason: new rule under trial\n        dry_run: true\n  delete_message:\n    rules:\n      - action: deny\n        reason: no deleting\n").unwrap();
    let mut p = Proxy::start(&policy, &["--metrics", "127.0.0.1:0"]);
    let sent = p.call("send_message", json!({"to": "+15550100", "body": "hi"}));
    assert!(
        sent["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("queued"),
        "{sent}"
    );
    assert_eq!(
        denial_code(&p.call("delete_message", json!({"sid": "SM1"}))),
        "denied"
    );
    // Metrics count both: the enforced denial and the trial one.
    let line = p.stderr_line("tollgate: metrics on http://");
    let authority = line
        .split("http://")
        .nth(1)
        .unwrap()
        .trim_end_matches("/metrics")
        .to_string();
    let text = get_metrics(&authority);
    assert!(text.contains("tollgate_calls_total 2"), "{text}");
    assert!(text.contains(r#"tollgate_decisions_total{tool="delete_message",verdict="deny",rule="tools.delete_message.rules[0]",code="denied"} 1"#), "{text}");
    assert!(
        text.contains(
            r#"tollgate_decisions_total{tool="send_message",verdict="allow",rule="",code=""} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"tollgate_dry_run_denials_total{tool="send_message",rule="tools.send_message.rules[0]",code="denied"} 1"#), "{text}");
    assert!(
        text.contains(r#"tollgate_plugin_seconds_count{plugin="deny"} 2"#),
        "{text}"
    );
    assert!(text.contains("tollgate_upstream_seconds_count 1"), "{text}");
}

/// `GET /metrics` (raw HTTP/1.1).
fn get_metrics(authority: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(authority).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

#[test]
fn a_changed_policy_takes_effect_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    let deny = "version: 1\ntools:\n  send_message:\n    rules:\n      - action: deny\n        reason: closed for now\n";
    std::fs::write(&policy, deny).unwrap();
    let mut p = Proxy::start(&policy, &[]);
    let hi = json!({"to": "+15550100", "body": "hi"});
    assert_eq!(denial_code(&p.call("send_message", hi.clone())), "denied");
    // Allow it, with a limit of one a day (counters survive reloads).
    std::fs::write(&policy, "version: 1\ntools:\n  send_message:\n    rules:\n      - rate_limit: { max: 2, window: day }\n").unwrap();
    p.stderr_line("policy reloaded");
    let first = p.call("send_message", hi.clone());
    assert!(
        first["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("queued"),
        "{first}"
    );
    // A broken file: the previous policy stays, and the log says why.
    std::fs::write(&policy, "version: 1\ntools:\n  send_message:\n    rules:\n      - rate_limit: { max: 2, window: fortnight }\n").unwrap();
    let why = p.stderr_line("policy not reloaded");
    assert!(why.contains("fortnight"), "{why}");
    let second = p.call("send_message", hi.clone());
    assert!(
        second["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("queued"),
        "{second}"
    );
    assert_eq!(denial_code(&p.call("send_message", hi)), "rate_limited");
}

#[test]
fn the_listener_serves_metrics_under_its_own_access_rules() {
    let listening = crate::e2e::Listening::start(
        "everything.yaml",
        vec![
            "python3".into(),
            repo()
                .join("scripts/demo/server.py")
                .to_str()
                .unwrap()
                .into(),
        ],
        &[],
        &[],
    );
    let text = get_metrics(&listening.authority());
    assert!(
        text.contains("# TYPE tollgate_decisions_total counter"),
        "{text}"
    );
    let mut s = std::net::TcpStream::connect(listening.authority()).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nhost: evil.example\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
}

fn misbehave_wasm() -> String {
    concat!(
        env!("TOLLGATE_GUEST_DIR"),
        "/tollgate_fixture_misbehave.wasm"
    )
    .to_string()
}

#[test]
fn results_are_redacted_and_a_failing_result_check_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "version: 1\nplugins:\n  fragile: {{ source: {}, config: {{ mode: trap-on-result }} }}\ntools:\n  list_messages:\n    rules:\n      - redact: {{ patterns: ['\\+1555[0-9]+'], replacement: '<number>' }}\n  delete_message:\n    rules:\n      - plugin: fragile\n",
            misbehave_wasm()
        ),
    )
    .unwrap();
    let mut p = Proxy::start(&policy, &[]);
    p.call(
        "send_message",
        json!({"to": "+15550100", "body": "call me at +15550199"}),
    );
    let listed = p.call("list_messages", json!({}));
    let text = listed["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains(r#""to": "<number>""#), "{listed}");
    assert!(text.contains("call me at <number>"), "{listed}");
    assert!(!text.contains("+1555"), "{listed}");
    // The server ran delete_message, but its result could not be checked: the agent gets a
    // policy_error instead of an unchecked result.
    let deleted = p.call("delete_message", json!({"sid": "SM0001"}));
    assert_eq!(denial_code(&deleted), "policy_error", "{deleted}");
    let reason = deleted["result"]["content"][0]["text"].as_str().unwrap();
    assert!(reason.contains("plugin `fragile` trapped"), "{reason}");
    assert!(!deleted.to_string().contains("deleted SM0001"), "{deleted}");
}

#[test]
fn an_edited_include_takes_effect_without_touching_the_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared.yaml");
    std::fs::write(&shared, "version: 1\ntools:\n  send_message:\n    rules:\n      - action: deny\n        reason: closed by the shared rules\n").unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "version: 1\ninclude: [shared.yaml]\n").unwrap();
    let mut p = Proxy::start(&policy, &[]);
    let hi = json!({"to": "+15550100", "body": "hi"});
    assert_eq!(denial_code(&p.call("send_message", hi.clone())), "denied");
    std::fs::write(
        &shared,
        "version: 1\ntools:\n  send_message:\n    rules: []\n",
    )
    .unwrap();
    p.stderr_line("policy reloaded");
    let sent = p.call("send_message", hi);
    assert!(
        sent["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("queued"),
        "{sent}"
    );
}
