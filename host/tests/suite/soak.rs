//! Soak: many concurrent sessions over both transports for a bounded time, with allowed,
//! rate-limited and denied calls and a plugin that traps now and then. Every call must be
//! answered with its own id and the expected kind of answer; afterwards Tollgate's memory must
//! be flat (resident size after warm-up vs at the end), and no file descriptors or server
//! processes may be left over. Resource checks, not timings.

use crate::e2e::{http_request, policy_path, repo, Listening};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the HTTP load runs.
const HTTP_LOAD: Duration = Duration::from_secs(20);
/// Concurrent HTTP agents.
const HTTP_AGENTS: usize = 6;
/// Concurrent stdio proxies, and calls each.
const STDIO_AGENTS: usize = 4;
const STDIO_CALLS: u64 = 400;
/// Allowed growth of the resident set after warm-up.
const RSS_SLACK_KIB: u64 = 16 * 1024;

fn demo_server() -> Vec<String> {
    vec![
        "python3".into(),
        repo()
            .join("scripts/demo/server.py")
            .to_str()
            .unwrap()
            .into(),
    ]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn children(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .map(|t| std::fs::read_to_string(t.path().join("children")).unwrap_or_default())
        .map(|c| c.split_whitespace().count())
        .sum()
}

/// The call for step `n` of an agent, and what kind of answer it must get.
fn step(agent: usize, n: u64) -> (Value, &'static str) {
    match n % 6 {
        // The same recipient over and over: allowed, then rate limited within the minute.
        0 | 1 => (
            json!({"name": "send_message", "arguments": {"to": format!("+1555000{agent:03}"), "body": "hi"}}),
            "sent-or-limited",
        ),
        2 => (
            json!({"name": "delete_message", "arguments": {"sid": "SM1"}}),
            "denied",
        ),
        3 => (
            json!({"name": "list_messages", "arguments": {"trap": true}}),
            "policy_error",
        ),
        _ => (json!({"name": "list_messages", "arguments": {}}), "allowed"),
    }
}

/// Check one answer against what the step expects; returns the answer's kind.
fn check(answer: &Value, id: u64, expect: &str) {
    assert_eq!(answer["id"], id, "answer to another request: {answer}");
    let code = answer["result"]["_meta"]["dev.tollgate/denial"]["code"].as_str();
    let ok = match expect {
        "sent-or-limited" => code.is_none() || code == Some("rate_limited"),
        "denied" => code == Some("denied"),
        "policy_error" => code == Some("policy_error"),
        _ => code.is_none() && answer["result"]["content"][0]["text"].is_string(),
    };
    assert!(ok, "expected {expect}: {answer}");
}

/// The JSON-RPC message in an HTTP answer (JSON, or the last SSE `data:`).
fn message(body: &str) -> Value {
    let text = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .next_back()
        .unwrap_or(body);
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// One HTTP session: initialize, `calls` calls, DELETE. Returns the calls answered.
fn http_session(authority: &str, agent: usize, calls: u64) -> u64 {
    let headers = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"soak","version":"1"}}}"#;
    let (status, h, body) = http_request(authority, "POST", &headers, init);
    assert_eq!(status, 200, "{body}");
    let sid = h
        .iter()
        .find(|(k, _)| k == "mcp-session-id")
        .map(|(_, v)| v.clone())
        .unwrap();
    let mut with_session = headers.to_vec();
    with_session.push(("mcp-session-id", &sid));
    let (status, _, _) = http_request(
        authority,
        "POST",
        &with_session,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(status, 202);
    for n in 1..=calls {
        let (params, expect) = step(agent, n);
        let request = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params});
        let (status, _, body) =
            http_request(authority, "POST", &with_session, &request.to_string());
        assert_eq!(status, 200, "{body}");
        check(&message(&body), n, expect);
    }
    let (status, _, _) = http_request(authority, "DELETE", &[("mcp-session-id", &sid)], "");
    assert_eq!(status, 200);
    calls
}

#[test]
fn concurrent_http_sessions_leave_tollgate_as_lean_as_they_found_it() {
    let listening = Listening::start("soak.yaml", demo_server(), &[], &[]);
    let pid = listening.pid();
    let authority = listening.authority();
    // Warm-up: every plugin instantiated and pooled, the allocator's slots touched.
    std::thread::scope(|s| {
        for agent in 0..HTTP_AGENTS {
            let a = authority.clone();
            s.spawn(move || http_session(&a, agent, 12));
        }
    });
    let (rss_warm, fds_warm) = (rss_kib(pid), fds(pid));
    let deadline = Instant::now() + HTTP_LOAD;
    let answered: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..HTTP_AGENTS)
            .map(|agent| {
                let a = authority.clone();
                s.spawn(move || {
                    let mut total = 0;
                    while Instant::now() < deadline {
                        total += http_session(&a, agent, 24);
                    }
                    total
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    // Give reaped children and closed sockets a moment to be gone.
    let settle = Instant::now() + Duration::from_secs(5);
    while (children(pid) > 0 || fds(pid) > fds_warm) && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (rss_end, fds_end) = (rss_kib(pid), fds(pid));
    eprintln!(
        "soak over HTTP: {answered} calls answered; RSS {rss_warm} KiB after warm-up, {rss_end} KiB at the end; fds {fds_warm} -> {fds_end}"
    );
    assert!(
        answered >= HTTP_AGENTS as u64 * 24,
        "the load ran: {answered}"
    );
    assert_eq!(
        children(pid),
        0,
        "a session's server process was left behind"
    );
    assert!(
        fds_end <= fds_warm,
        "file descriptors leaked: {fds_warm} -> {fds_end}"
    );
    assert!(
        rss_end <= rss_warm + RSS_SLACK_KIB,
        "memory grew: {rss_warm} KiB -> {rss_end} KiB"
    );
    assert!(listening.stop().success(), "a clean exit on SIGTERM");
}

#[test]
fn concurrent_stdio_proxies_answer_every_call_and_stay_lean() {
    let handles: Vec<_> = (0..STDIO_AGENTS)
        .map(|agent| {
            std::thread::spawn(move || {
                let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
                    .args(["run", "--state", "memory", "--policy", &policy_path("soak.yaml"), "--"])
                    .args(demo_server())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let pid = child.id();
                let mut stdin = child.stdin.take().unwrap();
                let mut stdout = BufReader::new(child.stdout.take().unwrap());
                let mut warm = (0, 0);
                for n in 1..=STDIO_CALLS {
                    let (params, expect) = step(agent, n);
                    let request = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params});
                    writeln!(stdin, "{request}").unwrap();
                    stdin.flush().unwrap();
                    let mut line = String::new();
                    stdout.read_line(&mut line).unwrap();
                    check(&serde_json::from_str(&line).unwrap(), n, expect);
                    if n == STDIO_CALLS / 4 {
                        warm = (rss_kib(pid), fds(pid));
                    }
                }
                let end = (rss_kib(pid), fds(pid));
                drop(stdin);
                let status = child.wait().unwrap();
                assert!(status.success(), "{status}");
                assert!(end.1 <= warm.1, "fds leaked: {} -> {}", warm.1, end.1);
                assert!(end.0 <= warm.0 + RSS_SLACK_KIB, "memory grew: {} -> {} KiB", warm.0, end.0);
                (warm, end)
            })
        })
        .collect();
    for h in handles {
        let (warm, end) = h.join().unwrap();
        eprintln!(
            "soak over stdio: RSS {} -> {} KiB, fds {} -> {}",
            warm.0, end.0, warm.1, end.1
        );
    }
}
