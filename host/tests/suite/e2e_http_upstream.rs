//! End to end with a remote upstream: `tollgate run --upstream URL` puts the policy in front of
//! real MCP servers serving Streamable HTTP (server-everything in `streamableHttp` mode, a
//! FastMCP 1.x server, the 2026-07-28 mcp 2.x server), for agents on stdio (the official Python
//! 1.x/2.x and TypeScript SDK clients) and on Tollgate's own HTTP listener; and
//! `tollgate scan --url`.

use crate::e2e::{
    assert_denial, assert_rate_limited, drive, drive_in_one_minute, in_one_minute, peers,
    policy_path, setup, text, Client, Listening,
};
use serde_json::{json, Value};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLICIES: &[&str] = &["everything.yaml", "twilio.yaml"];

fn call(name: &str, arguments: Value) -> Value {
    json!({"op": "call_tool", "name": name, "arguments": arguments})
}

fn scenario(steps: Vec<Value>) -> Value {
    json!({"timeout": 60, "steps": steps})
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real MCP server serving Streamable HTTP on a free loopback port; killed when dropped.
struct HttpServer {
    child: Child,
    url: String,
}

impl HttpServer {
    fn start(kind: &str) -> HttpServer {
        let port = free_port();
        let p = peers();
        let mut cmd = match kind {
            "everything" => {
                let mut c = Command::new(p.join(".env/bin/node"));
                c.arg(p.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"))
                    .arg("streamableHttp")
                    .env("PORT", port.to_string());
                c
            }
            "fastmcp1" => {
                let mut c = Command::new(p.join(".env/py1/bin/python"));
                c.arg(p.join("servers/fastmcp_server.py"))
                    .args(["--http", &port.to_string()]);
                c
            }
            "fastmcp2" => {
                let mut c = Command::new(p.join(".env/py2/bin/python"));
                c.arg(p.join("servers/fastmcp2_server.py"))
                    .args(["--http", &port.to_string()]);
                c
            }
            // Keeps its events and has clients poll (SSE polling), retry 300 ms.
            "fastmcp2-poll" => {
                let mut c = Command::new(p.join(".env/py2/bin/python"));
                c.arg(p.join("servers/fastmcp2_server.py")).args([
                    "--http",
                    &port.to_string(),
                    "--poll",
                    "300",
                ]);
                c
            }
            other => panic!("unknown server {other}"),
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "{kind} exited");
            assert!(Instant::now() < deadline, "{kind} did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpServer {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tollgate run --state memory --policy tests/policies/POLICY --upstream URL`.
fn through(policy: &str, url: &str) -> Vec<String> {
    vec![
        env!("CARGO_BIN_EXE_tollgate").into(),
        "run".into(),
        "--state".into(),
        "memory".into(),
        "--policy".into(),
        policy_path(policy),
        "--upstream".into(),
        url.into(),
    ]
}

fn everything_steps(client: Client) -> Vec<Value> {
    let mut steps = vec![
        json!({"op": "list_tools"}),
        call("echo", json!({"message": "hello remote"})),
        call("get-sum", json!({"a": 2, "b": 3})),
        call("get-sum", json!({"a": 40, "b": 2})),
        call("get-sum", json!({"a": 1, "b": 1})),
        call("get-env", json!({})),
        call("toggle-subscriber-updates", json!({})),
        json!({"op": "call_tool", "name": "trigger-long-running-operation",
               "arguments": {"duration": 1, "steps": 4}, "progress": true}),
    ];
    if client == Client::Py1 {
        steps.push(call("trigger-sampling-request", json!({"prompt": "hello"})));
    }
    steps
}

fn assert_everything(run: &crate::e2e::Run, client: Client) {
    assert_eq!(
        run.out["server_info"]["name"], "mcp-servers/everything",
        "{run}"
    );
    let tools = run.step(0)["tools"].as_array().unwrap();
    assert!(tools.contains(&json!("echo")), "{run}");
    assert!(
        !tools.contains(&json!("toggle-subscriber-updates")),
        "hidden tool listed\n{run}"
    );
    assert_eq!(text(run.result(1)), "Echo: hello remote");
    assert_eq!(text(run.result(2)), "The sum of 2 and 3 is 5.");
    assert_eq!(text(run.result(3)), "The sum of 40 and 2 is 42.");
    assert_rate_limited(run.result(4), "tools.get-sum.rules[0]", "2 per minute");
    assert_denial(
        run.result(5),
        "denied",
        "tools.get-env.rules[0]",
        "Denied by policy: Environment variables may hold secrets; ask a human.",
    );
    assert_eq!(run.step(6)["error"]["code"], -32602, "{run}");
    assert_eq!(run.step(7)["progress_count"], 4, "{run}");
    if client == Client::Py1 {
        let sampled = text(run.result(8));
        assert!(
            sampled.contains("sampled: Resource trigger-sampling-request context: hello"),
            "{run}"
        );
    }
}

#[test]
fn stdio_agents_reach_server_everything_over_http() {
    setup(POLICIES);
    let server = HttpServer::start("everything");
    for client in [Client::Py1, Client::Ts] {
        let run = drive_in_one_minute(
            client,
            &through("everything.yaml", &server.url),
            &scenario(everything_steps(client)),
        );
        assert_everything(&run, client);
    }
}

#[test]
fn http_agents_reach_server_everything_through_the_listener() {
    setup(POLICIES);
    let server = HttpServer::start("everything");
    let run = in_one_minute(|| {
        let upstream = ["--upstream", server.url.as_str()];
        let listening = Listening::start("everything.yaml", vec![], &upstream, &[]);
        drive(
            Client::Py1,
            &["--url".to_string(), listening.url.clone()],
            &scenario(everything_steps(Client::Py1)),
        )
    });
    assert_everything(&run, Client::Py1);
}

fn messaging_steps() -> Vec<Value> {
    let send = |to: &str, body: &str| call("send_message", json!({"to": to, "body": body}));
    vec![
        call("add", json!({"a": 2, "b": 3})),
        send("+15550001", "one"),
        send("+15550001", "two"),
        send("+15550001", "three"),
        call("delete_record", json!({"id": "r1"})),
    ]
}

fn assert_messaging(run: &crate::e2e::Run) {
    assert_eq!(text(run.result(0)), "5", "{run}");
    assert_eq!(text(run.result(1)), "sent to +15550001: one", "{run}");
    assert_eq!(text(run.result(2)), "sent to +15550001: two", "{run}");
    assert_rate_limited(run.result(3), "tools.send_message.rules[1]", "2 per minute");
    assert_denial(
        run.result(4),
        "denied",
        "tools.delete_*.rules[0]",
        "Denied by policy: Deleting is not allowed from agents; ask a human.",
    );
    let logged: Vec<&Value> = run.out["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["data"])
        .collect();
    assert_eq!(
        logged,
        [
            "sending message to +15550001",
            "sending message to +15550001"
        ],
        "{run}"
    );
}

#[test]
fn fastmcp1_over_http_behind_tollgate() {
    setup(POLICIES);
    let server = HttpServer::start("fastmcp1");
    let run = drive_in_one_minute(
        Client::Py1,
        &through("twilio.yaml", &server.url),
        &scenario(messaging_steps()),
    );
    assert_eq!(run.out["server_info"]["name"], "tollgate-fastmcp", "{run}");
    assert_messaging(&run);
}

/// The 2026-07-28 revision end to end: the Python 2.x client discovers the mcp 2.x server
/// through Tollgate, which mirrors `Mcp-Method`/`Mcp-Name` from each (possibly rewritten) body —
/// the server rejects requests whose headers disagree, so these calls prove they agree.
#[test]
fn fastmcp2_stateless_over_http_behind_tollgate() {
    setup(POLICIES);
    let server = HttpServer::start("fastmcp2");
    let run = drive_in_one_minute(
        Client::Py2,
        &through("twilio.yaml", &server.url),
        &scenario(messaging_steps()),
    );
    assert_eq!(run.out["protocol_version"], "2026-07-28", "{run}");
    assert_eq!(run.out["discover"], true, "{run}");
    assert_messaging(&run);
}

#[test]
fn an_upstream_that_dies_gives_errors_not_hangs() {
    setup(POLICIES);
    let mut server = HttpServer::start("fastmcp1");
    let url = server.url.clone();
    let _ = server.child.kill();
    let _ = server.child.wait();
    let started = Instant::now();
    let out = Command::new(peers().join(".env/py1/bin/python"))
        .arg(peers().join("clients/py_client.py"))
        .arg("--")
        .args(through("twilio.yaml", &url))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(scenario(vec![]).to_string().as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = report["connect_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("cannot reach the MCP server"),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn scan_url_lists_a_remote_servers_tools() {
    setup(POLICIES);
    let server = HttpServer::start("everything");
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["scan", "--url", &server.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy = String::from_utf8(out.stdout).unwrap();
    assert!(
        policy.contains(&format!("# Server: {}", server.url)),
        "{policy}"
    );
    assert!(
        policy.contains("  # Echoes back the input string\n  echo:\n    rules: []"),
        "{policy}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("starter.yaml");
    std::fs::write(&file, &policy).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The differences `differential.py` reports, as `request @throughN: field, field…`.
fn differences(report: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for request in report["requests"].as_array().unwrap() {
        for (n, through) in request["through"].as_array().unwrap().iter().enumerate() {
            let fields: Vec<&str> = through["diffs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["field"].as_str().unwrap())
                .collect();
            if !fields.is_empty() {
                out.push(format!(
                    "{} @through{}: {}",
                    request["name"].as_str().unwrap(),
                    n + 1,
                    fields.join(", ")
                ));
            }
        }
    }
    out
}

/// Run the differential prober: `server` directly, through Tollgate in front of it as a remote
/// upstream (through1), and through Tollgate with the same server as its stdio child
/// (through2), both with an allow-all policy.
fn differential(kind: &str, child: Vec<String>, era: &str) -> (Vec<String>, Value) {
    setup(&["allow_all.yaml"]);
    let server = HttpServer::start(kind);
    let remote = Listening::start("allow_all.yaml", vec![], &["--upstream", &server.url], &[]);
    let local = Listening::start("allow_all.yaml", child, &[], &[]);
    let out = Command::new(peers().join(".env/py2/bin/python"))
        .arg(peers().join("clients/differential.py"))
        .args([
            "--direct",
            &server.url,
            "--through",
            &remote.url,
            "--through",
            &local.url,
        ])
        .args(["--era", era, "--json", "--timeout", "15"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "differential.py: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (differences(&report), report)
}

/// Every through-URL of `requests`, with these fields differing.
fn expect(requests: &[&str], fields: &str) -> Vec<String> {
    requests
        .iter()
        .flat_map(|r| (1..=2).map(move |n| format!("{r} @through{n}: {fields}")))
        .collect()
}

/// With an allow-all policy a client cannot tell Tollgate from the mcp 2.x server on the
/// stateless revision (2026-07-28): every request of the prober's corpus — each method family,
/// removed and unknown methods, bad `_meta`, bad and missing versions and routing headers,
/// wrong media types, malformed JSON, batches, notifications, GET and DELETE — gets the same
/// status, ids, codes, messages, `data` and headers through Tollgate, with the server as a
/// remote upstream and as a stdio child.
///
/// What still differs is listed with why; the test fails when a difference appears that is not
/// listed, and when a listed one goes away, so the list stays true.
#[test]
fn on_the_stateless_revision_tollgate_answers_as_the_server_does() {
    let (found, report) = differential("fastmcp2", crate::e2e::fastmcp2(), "2026-07-28");
    // A request without the revision's header goes to the session path, where the SDK hands
    // out a fresh Mcp-Session-Id with its refusal of a request that named no session; Tollgate
    // opens sessions only for `initialize`.
    let expected = expect(
        &[
            "2026-07-28:header MCP-Protocol-Version missing",
            "2026-07-28:header MCP-Protocol-Version handshake-era",
        ],
        "header.mcp-session-id",
    );
    assert_eq!(found, expected, "{report:#}");
}

/// The same on the session revision (2025-11-25): `initialize`, every method family, missing
/// and unknown sessions, wrong `Accept` and `Content-Type`, malformed JSON, batches, the GET
/// stream, DELETE and a request on a deleted session.
#[test]
fn on_the_session_revision_tollgate_answers_as_the_server_does() {
    let (found, report) = differential("fastmcp2", crate::e2e::fastmcp2(), "2025-11-25");
    let mut expected = Vec::new();
    // As on the stateless revision: the SDK hands out a session id with this refusal.
    expected.extend(expect(
        &["2025-11-25:Mcp-Session-Id missing"],
        "header.mcp-session-id",
    ));
    // Batches left MCP in 2025-06-18: both refuse one (400, id null); the server's words are
    // its validator's (-32602 and pydantic's text), Tollgate says -32600, Invalid Request.
    expected.extend(expect(
        &["2025-11-25:JSON-RPC batch"],
        "msg[0].error.code, msg[0].error.message",
    ));
    expected.sort();
    let mut found = found;
    found.sort();
    assert_eq!(found, expected, "{report:#}");
}

/// SSE polling (2025-11-25): the server primes a call's stream with an event id and `retry`,
/// closes it, and answers only to a client that comes back with `GET` and `Last-Event-ID`.
/// Tollgate resumes the stream upstream on the agent's behalf, so an agent on stdio (which has
/// no stream to resume) and one on Tollgate's listener (whose own stream stays open) both get
/// the answer, and the call goes through the policy like any other.
#[test]
fn a_server_that_has_clients_poll_answers_through_tollgate() {
    setup(&["allow_all.yaml"]);
    let server = HttpServer::start("fastmcp2-poll");
    let steps = vec![call("slow_report", json!({"seconds": 1}))];
    let run = drive(
        Client::Py1,
        &through("allow_all.yaml", &server.url),
        &scenario(steps.clone()),
    );
    assert_eq!(text(run.result(0)), "report ready after 1.0", "{run}");
    let listening = Listening::start("allow_all.yaml", vec![], &["--upstream", &server.url], &[]);
    let url = vec!["--url".to_string(), listening.url.clone()];
    for client in [Client::Py1, Client::Py2, Client::Ts] {
        let run = drive(client, &url, &scenario(steps.clone()));
        assert_eq!(
            text(run.result(0)),
            "report ready after 1.0",
            "{client:?}: {run}"
        );
    }
}

/// Requests of the session revision a client makes in the normal course of its work.
const EVERYDAY: &[&str] = &[
    "2025-11-25:initialize",
    "2025-11-25:tools/list",
    "2025-11-25:tools/call add",
    "2025-11-25:tools/call send_message (log → SSE)",
    "2025-11-25:tools/call unknown tool",
    "2025-11-25:ping",
    "2025-11-25:unknown method",
    "2025-11-25:MCP-Protocol-Version missing",
    "2025-11-25:GET stream open (headers only)",
];

/// What may differ in Tollgate's own answers to requests it refuses before any server sees
/// them (and in the framing of empty answers): it answers those as the reference SDK (mcp
/// 2.x) does, while other SDKs word, number and frame them their own way.
const OWN_REFUSAL_FIELDS: &[&str] = &[
    "status",
    "content_type",
    "header.mcp-session-id",
    "msg[0].id",
    "msg[0].error.code",
    "msg[0].error.message",
    "msg",
    "body",
];

/// Other SDKs' servers on the session revision: every everyday request is answered exactly as
/// the server answers it; the rest differ at most in [`OWN_REFUSAL_FIELDS`].
fn everyday_requests_match(kind: &str, child: Vec<String>) {
    let (found, report) = differential(kind, child, "2025-11-25");
    for difference in &found {
        let (request, fields) = difference.split_once(" @through").unwrap();
        assert!(
            !EVERYDAY.contains(&request),
            "{kind}: an everyday request differs: {difference}\n{report:#}"
        );
        // Batches left MCP in 2025-06-18, and a stdio server of a later revision may never
        // answer one: Tollgate refuses them, where some servers still take them.
        if request == "2025-11-25:JSON-RPC batch" {
            continue;
        }
        let fields = fields.split_once(": ").unwrap().1;
        for field in fields.split(", ") {
            assert!(
                OWN_REFUSAL_FIELDS.contains(&field),
                "{kind}: {difference}\n{report:#}"
            );
        }
    }
}

/// The TypeScript SDK's server-everything, as a remote upstream and as a stdio child.
#[test]
fn with_the_typescript_sdks_server_everyday_requests_are_answered_as_it_answers_them() {
    everyday_requests_match("everything", crate::e2e::server_everything());
}

/// The Python SDK 1.x (FastMCP), as a remote upstream and as a stdio child.
#[test]
fn with_the_python_1x_sdks_server_everyday_requests_are_answered_as_it_answers_them() {
    everyday_requests_match("fastmcp1", crate::e2e::fastmcp1());
}
