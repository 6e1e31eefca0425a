//! End to end over Streamable HTTP: `tollgate run --listen 127.0.0.1:0 …` in front of real MCP
//! servers (server-everything, FastMCP 1.x and the 2026-07-28 mcp 2.x server, each a child
//! process per session), driven by the official SDK clients' Streamable HTTP transports (Python
//! 1.x and 2.x, TypeScript), plus raw HTTP for what no well-behaved client sends: foreign
//! origins, missing or wrong tokens, headers that contradict the body.

use crate::e2e::{
    allowed_cpus, assert_denial, assert_rate_limited, certificates, child_pids, drive,
    drive_with_env, fastmcp1, fastmcp2, http_request, in_one_minute, in_one_window,
    one_cpu_allowed, server_everything, setup, text, Client, Listening,
};
use serde_json::{json, Value};

const POLICIES: &[&str] = &["everything.yaml", "twilio.yaml", "http_callers.yaml"];

fn call(name: &str, arguments: Value) -> Value {
    json!({"op": "call_tool", "name": name, "arguments": arguments})
}

fn scenario(steps: Vec<Value>) -> Value {
    json!({"timeout": 60, "steps": steps})
}

fn url(l: &Listening) -> Vec<String> {
    vec!["--url".into(), l.url.clone()]
}

/// server-everything behind the listener: allowed, rate-limited, denied and hidden calls,
/// progress on the request's stream, and (Python 1.x) sampling and elicitation round trips.
fn everything_over_http(client: Client) {
    setup(POLICIES);
    let mut steps = vec![
        json!({"op": "list_tools"}),
        call("echo", json!({"message": "hello over http"})),
        call("get-sum", json!({"a": 2, "b": 3})),
        call("get-sum", json!({"a": 40, "b": 2})),
        call("get-sum", json!({"a": 1, "b": 1})),
        call("get-env", json!({})),
        call("toggle-subscriber-updates", json!({})),
        json!({"op": "call_tool", "name": "trigger-long-running-operation",
               "arguments": {"duration": 1, "steps": 4}, "progress": true}),
    ];
    if client == Client::Py1 {
        steps.extend([
            call("trigger-sampling-request", json!({"prompt": "hello"})),
            call("trigger-elicitation-request", json!({})),
            json!({"op": "raw_request", "method": "ping", "params": {}}),
        ]);
    }
    let steps = scenario(steps);
    let run = in_one_minute(|| {
        let listening = Listening::start("everything.yaml", server_everything(), &[], &[]);
        drive(client, &url(&listening), &steps)
    });
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
    assert_eq!(text(run.result(1)), "Echo: hello over http");
    assert_eq!(text(run.result(2)), "The sum of 2 and 3 is 5.");
    assert_eq!(text(run.result(3)), "The sum of 40 and 2 is 42.");
    assert_rate_limited(run.result(4), "tools.get-sum.rules[0]", "2 per minute");
    assert_denial(
        run.result(5),
        "denied",
        "tools.get-env.rules[0]",
        "Denied by policy: Environment variables may hold secrets; ask a human.",
    );
    let unknown = &run.step(6)["error"];
    assert_eq!(unknown["code"], -32602, "{run}");
    assert_eq!(
        unknown["message"], "Unknown tool: toggle-subscriber-updates",
        "{run}"
    );
    let progress = run.step(7);
    assert_eq!(progress["progress_count"], 4, "{run}");
    assert_eq!(
        text(&progress["result"]),
        "Long running operation completed. Duration: 1 seconds, Steps: 4."
    );
    if client == Client::Py1 {
        let sampled = text(run.result(8));
        assert!(
            sampled.contains("sampled: Resource trigger-sampling-request context: hello"),
            "{run}"
        );
        assert!(run.result(9).to_string().contains("tollgate"), "{run}");
        assert_eq!(run.result(9)["isError"], false, "{run}");
        assert_eq!(run.step(10), &json!({"result": {}}), "{run}");
        assert_eq!(run.out["stream_errors"], json!([]), "{run}");
    }
}

#[test]
fn everything_over_http_python1_client() {
    everything_over_http(Client::Py1);
}

#[test]
fn everything_over_http_typescript_client() {
    everything_over_http(Client::Ts);
}

#[test]
fn everything_over_http_python2_client() {
    everything_over_http(Client::Py2);
}

/// The messaging policy over FastMCP: 1.x (sessions) and 2.x (2026-07-28, stateless: the
/// Python 2.x client discovers the server through Tollgate and never sends `initialize`). The
/// server's own log notifications prove refused calls never ran.
fn messaging_over_http(client: Client, server: Vec<String>) -> crate::e2e::Run {
    setup(POLICIES);
    let send = |to: &str, body: &str| call("send_message", json!({"to": to, "body": body}));
    let steps = scenario(vec![
        call("add", json!({"a": 2, "b": 3})),
        send("+15550001", "one"),
        send("+15550001", "two"),
        send("+15550001", "three"),
        call("delete_record", json!({"id": "r1"})),
    ]);
    let run = in_one_minute(|| {
        let listening = Listening::start("twilio.yaml", server.clone(), &[], &[]);
        drive(client, &url(&listening), &steps)
    });
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
    run
}

#[test]
fn fastmcp1_messaging_over_http() {
    let run = messaging_over_http(Client::Py1, fastmcp1());
    assert_eq!(run.out["server_info"]["name"], "tollgate-fastmcp", "{run}");
}

#[test]
fn fastmcp2_stateless_revision_over_http() {
    let run = messaging_over_http(Client::Py2, fastmcp2());
    assert_eq!(run.out["protocol_version"], "2026-07-28", "{run}");
    assert_eq!(run.out["discover"], true, "{run}");
    for i in [0, 3, 4] {
        assert_eq!(run.result(i)["resultType"], "complete", "{run}");
    }
}

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";

fn with_tokens() -> Listening {
    Listening::start(
        "http_callers.yaml",
        server_everything(),
        &[
            "--auth-token",
            "alice=ALICE_TOKEN",
            "--auth-token",
            "bob=BOB_TOKEN",
        ],
        &[("ALICE_TOKEN", ALICE), ("BOB_TOKEN", BOB)],
    )
}

/// Each token is its own caller: `scope: caller` gives alice and bob separate limits.
#[test]
fn bearer_tokens_are_the_caller_of_rate_limit_scopes() {
    setup(POLICIES);
    let auth = |t: &str| json!({"Authorization": format!("Bearer {t}")});
    let listening = caller_echoes_twice_then_is_limited(Client::Py1, auth(ALICE));
    let bob = drive_with_env(
        Client::Ts,
        &url(&listening),
        &scenario(vec![call("echo", json!({"message": "b1"}))]),
        &[("MCP_HEADERS", &auth(BOB).to_string())],
    );
    assert_eq!(
        text(bob.result(0)),
        "Echo: b1",
        "bob has his own limit\n{bob}"
    );
}

/// Three echoes, on a new listener, by the caller that `headers` authenticate: the policy
/// allows each caller two an hour (a fixed window, so the three must fall within one hour).
/// Returns the listener for more calls.
fn caller_echoes_twice_then_is_limited(client: Client, headers: Value) -> Listening {
    let echo = |m: &str| call("echo", json!({"message": m}));
    let (listening, run) = in_one_window(3600, || {
        let listening = with_tokens();
        let run = drive_with_env(
            client,
            &url(&listening),
            &scenario(vec![echo("a1"), echo("a2"), echo("a3")]),
            &[("MCP_HEADERS", &headers.to_string())],
        );
        (listening, run)
    });
    assert_eq!(text(run.result(0)), "Echo: a1", "{run}");
    assert_eq!(text(run.result(1)), "Echo: a2", "{run}");
    assert_eq!(
        run.result(2)["_meta"]["dev.tollgate/denial"]["code"],
        "rate_limited",
        "{run}"
    );
    listening
}

/// A client configured with an API key sends it as `X-API-Key`: the same tokens, the same
/// callers (the key's caller gets its own limit); a wrong key is refused like a wrong token.
#[test]
fn an_api_key_header_authenticates_like_a_bearer_token() {
    setup(POLICIES);
    let listening = caller_echoes_twice_then_is_limited(Client::Py2, json!({"X-API-Key": ALICE}));
    let (status, _, body) = http_request(
        &listening.authority(),
        "POST",
        &[
            JSON_BODY,
            JSON_AND_SSE,
            ("x-api-key", "not-a-valid-key-at-all"),
        ],
        initialize_body(),
    );
    assert_eq!(status, 401, "{body}");
}

/// A client that stalls while sending its headers or its body is cut off after
/// `--request-timeout-secs` instead of holding the connection (and a task) for ever.
#[test]
fn stalled_requests_are_cut_off() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    setup(POLICIES);
    let listening = Listening::start(
        "everything.yaml",
        server_everything(),
        &["--request-timeout-secs", "1"],
        &[],
    );
    let a = listening.authority();
    let open = || {
        let s = std::net::TcpStream::connect(&a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    };
    // Headers that never end.
    let mut s = open();
    let started = Instant::now();
    s.write_all(
        format!("POST /mcp HTTP/1.1\r\nhost: {a}\r\ncontent-type: application/json\r\n").as_bytes(),
    )
    .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "the connection was closed by the server, not by the test's own timeout ({waited:?})"
    );
    // A body shorter than its Content-Length: 408.
    let mut s = open();
    let body = initialize_body();
    s.write_all(
        format!(
            "POST /mcp HTTP/1.1\r\nhost: {a}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: {}\r\n\r\n{}",
            body.len() + 50,
            body
        )
        .as_bytes(),
    )
    .unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("did not arrive within 1s"), "{reply}");
    assert_eq!(children(listening.pid()), 0, "no session was opened");
}

/// How many child processes `pid` has.
fn children(pid: u32) -> usize {
    child_pids(pid).len()
}

fn initialize_body() -> &'static str {
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#
}

const JSON_AND_SSE: (&str, &str) = ("accept", "application/json, text/event-stream");
const JSON_BODY: (&str, &str) = ("content-type", "application/json");

#[test]
fn missing_or_wrong_tokens_get_401_and_no_server_starts() {
    setup(POLICIES);
    let listening = with_tokens();
    let a = listening.authority();
    for auth in [
        None,
        Some("Bearer not-a-valid-token-at-all"),
        Some("Basic YWxpY2U6eA=="),
    ] {
        let mut headers = vec![JSON_BODY, JSON_AND_SSE];
        if let Some(v) = auth {
            headers.push(("authorization", v));
        }
        let (status, h, body) = http_request(&a, "POST", &headers, initialize_body());
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(
            h.iter()
                .any(|(k, v)| k == "www-authenticate" && v.starts_with("Bearer")),
            "{h:?}"
        );
        assert!(body.contains("Unauthorized"), "{body}");
    }
    assert_eq!(
        children(listening.pid()),
        0,
        "no server process for refused requests"
    );
    // A good token opens a session; another token cannot use it.
    let bearer = format!("Bearer {ALICE}");
    let (status, h, _) = http_request(
        &a,
        "POST",
        &[JSON_BODY, JSON_AND_SSE, ("authorization", &bearer)],
        initialize_body(),
    );
    assert_eq!(status, 200);
    let sid = h
        .iter()
        .find(|(k, _)| k == "mcp-session-id")
        .map(|(_, v)| v.clone())
        .expect("session id");
    let bob = format!("Bearer {BOB}");
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let (status, _, body) = http_request(
        &a,
        "POST",
        &[
            JSON_BODY,
            JSON_AND_SSE,
            ("authorization", &bob),
            ("mcp-session-id", &sid),
        ],
        list,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("belongs to another caller"), "{body}");
}

#[test]
fn foreign_origins_and_hosts_are_refused_with_403() {
    setup(POLICIES);
    let listening = Listening::start("everything.yaml", server_everything(), &[], &[]);
    let a = listening.authority();
    let (status, _, body) = http_request(
        &a,
        "POST",
        &[JSON_BODY, JSON_AND_SSE, ("origin", "https://evil.example")],
        initialize_body(),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("Origin `https://evil.example` is not allowed"),
        "{body}"
    );
    // DNS rebinding: a name that resolves to 127.0.0.1 but is not ours.
    let (status, _, body) = http_request(
        &a,
        "POST",
        &[("host", "rebind.attacker.example"), JSON_BODY, JSON_AND_SSE],
        initialize_body(),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("Host `rebind.attacker.example` is not allowed"),
        "{body}"
    );
    // A local page may.
    let (status, _, body) = http_request(
        &a,
        "POST",
        &[JSON_BODY, JSON_AND_SSE, ("origin", "http://localhost:5173")],
        initialize_body(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("mcp-servers/everything"), "{body}");
}

#[test]
fn headers_that_contradict_the_body_are_refused_with_32020() {
    setup(POLICIES);
    let listening = Listening::start("twilio.yaml", fastmcp2(), &[], &[]);
    let a = listening.authority();
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_record","arguments":{"id":"r1"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let base = [
        JSON_BODY,
        JSON_AND_SSE,
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
    ];
    // The header names an allowed tool, the body a denied one.
    let mut lying = base.to_vec();
    lying.push(("mcp-name", "add"));
    let (status, _, answer) = http_request(&a, "POST", &lying, body);
    assert_eq!(status, 400, "{answer}");
    let v: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(v["id"], 7, "{answer}");
    assert_eq!(v["error"]["code"], -32020, "{answer}");
    // In the words of the revision's reference server (the transparency harness compares them).
    assert_eq!(
        v["error"]["message"], "mcp-name header does not match the request body's 'name' parameter",
        "{answer}"
    );
    // Consistent headers: the policy decides on the body.
    let mut honest = base.to_vec();
    honest.push(("mcp-name", "delete_record"));
    let (status, _, answer) = http_request(&a, "POST", &honest, body);
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains("Deleting is not allowed from agents"),
        "{answer}"
    );
}

/// `subscriptions/listen` (2026-07-28): a long-lived request whose stream carries change events
/// tagged with the listen request's id. Through Tollgate's shared stateless server (where ids
/// are rewritten) the events reach the listening stream with the client's own id, while another
/// request is in flight on the same server.
#[test]
fn a_subscriptions_listen_stream_gets_its_events_over_http() {
    setup(POLICIES);
    let listening = Listening::start("twilio.yaml", fastmcp2(), &[], &[]);
    let steps = vec![json!({
        "op": "listen_tools",
        "then": call("change_tools", json!({})),
        "wait": 10,
    })];
    let run = drive(Client::Py2, &url(&listening), &scenario(steps));
    assert_eq!(run.out["protocol_version"], "2026-07-28", "{run}");
    let step = run.step(0);
    assert_eq!(step["honored"], json!({"toolsListChanged": true}), "{run}");
    assert_eq!(text(&step["then"]["result"]), "changed", "{run}");
    assert_eq!(step["event"], "ToolsListChanged", "{run}");
    let tagged: Vec<&Value> = run.out["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["method"] == "notifications/tools/list_changed")
        .map(|n| &n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"])
        .collect();
    assert_eq!(tagged, [&json!("listen-1")], "the client's own id: {run}");
}

/// Resumption (2025-06-18 / 2025-11-25): a session's POST stream carries event ids; after the
/// connection drops mid-request, `GET` with `Last-Event-ID` replays what the server said since
/// that event (progress the client missed) and delivers the rest, up to the response.
#[test]
fn a_dropped_post_stream_is_resumed_with_last_event_id() {
    use std::io::{BufRead, Write};
    setup(POLICIES);
    let listening = Listening::start("everything.yaml", server_everything(), &[], &[]);
    let a = listening.authority();
    let (status, h, body) = http_request(&a, "POST", &[JSON_BODY, JSON_AND_SSE], initialize_body());
    assert_eq!(status, 200, "{body}");
    let session = h
        .iter()
        .find(|(k, _)| k == "mcp-session-id")
        .map(|(_, v)| v.clone())
        .expect("a session id");
    let session_headers = [
        JSON_BODY,
        JSON_AND_SSE,
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(
        http_request(&a, "POST", &session_headers, initialized).0,
        202
    );

    // A call that reports progress every 0.4 s for 2.4 s; read its first event, then hang up.
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"trigger-long-running-operation","arguments":{"duration":2.4,"steps":6},"_meta":{"progressToken":"t1"}}}"#;
    let mut stream = std::net::TcpStream::connect(&a).unwrap();
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nhost: {a}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-session-id: {session}\r\nmcp-protocol-version: 2025-06-18\r\ncontent-length: {}\r\n\r\n{call}",
        call.len()
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let (mut first_id, mut first_data) = (None, None);
    let mut line = String::new();
    while first_data.is_none() {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the stream ended early"
        );
        if let Some(id) = line.strip_prefix("id: ") {
            first_id = Some(id.trim().to_string());
        }
        if let Some(data) = line.strip_prefix("data: ") {
            first_data = Some(serde_json::from_str::<Value>(data).unwrap());
        }
    }
    drop(reader);
    let first_id = first_id.expect("session events carry ids");
    // The first event may be the first progress report or a server notification before it.
    let seen = first_data.unwrap()["params"]["progress"]
        .as_u64()
        .unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_millis(800));

    let mut resume_headers = session_headers.to_vec();
    resume_headers.push(("last-event-id", first_id.as_str()));
    let (status, _, replayed) = http_request(&a, "GET", &resume_headers, "");
    assert_eq!(status, 200, "{replayed}");
    assert!(
        !replayed.contains(&format!("id: {first_id}\n")),
        "the event the client had is not sent again: {replayed}"
    );
    let progress: Vec<u64> = replayed
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|m| m["method"] == "notifications/progress")
        .filter_map(|m| m["params"]["progress"].as_u64())
        .collect();
    let expected: Vec<u64> = (seen + 1..=6).collect();
    assert_eq!(progress, expected, "every later progress event: {replayed}");
    assert!(
        replayed.contains(r#""id":2"#) && replayed.contains("Long running operation completed"),
        "and the response: {replayed}"
    );
    // An id Tollgate never issued.
    let mut unknown = session_headers.to_vec();
    unknown.push(("last-event-id", "p99-0"));
    assert_eq!(http_request(&a, "GET", &unknown, "").0, 404);
}

/// In the 2026-07-28 revision a client cancels a request by closing its stream: Tollgate tells the
/// server (`notifications/cancelled`), which stops the work. Here the client hangs up while the
/// server is still sleeping in the `wait` tool, before Tollgate has sent any response header.
#[test]
fn a_stateless_request_is_cancelled_upstream_when_its_client_hangs_up() {
    use std::io::Write;
    setup(POLICIES);
    let listening = Listening::start("twilio.yaml", fastmcp2(), &[], &[]);
    let a = listening.authority();
    let body = r#"{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"wait","arguments":{"seconds":60},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let mut stream = std::net::TcpStream::connect(&a).unwrap();
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nhost: {a}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\nmcp-name: wait\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(stream);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !listening.stderr.lock().unwrap().contains("wait cancelled") {
        assert!(
            std::time::Instant::now() < deadline,
            "the server was never told: {}",
            listening.stderr.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The shared server goes on serving.
    let add = r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let (status, _, answer) = http_request(
        &a,
        "POST",
        &[
            JSON_BODY,
            JSON_AND_SSE,
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "add"),
        ],
        add,
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains(r#""id":42"#) && answer.contains("5"),
        "{answer}"
    );
}

#[test]
fn delete_ends_the_session_and_its_server() {
    setup(POLICIES);
    let listening = Listening::start("everything.yaml", server_everything(), &[], &[]);
    let a = listening.authority();
    let children = || children(listening.pid());
    let (status, h, _) = http_request(&a, "POST", &[JSON_BODY, JSON_AND_SSE], initialize_body());
    assert_eq!(status, 200);
    let sid = h
        .iter()
        .find(|(k, _)| k == "mcp-session-id")
        .map(|(_, v)| v.clone())
        .expect("session id");
    assert_eq!(children(), 1, "one server process for the session");
    let (status, _, body) = http_request(&a, "DELETE", &[("mcp-session-id", &sid)], "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(children(), 0, "the session's server was stopped");
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let (status, _, body) = http_request(
        &a,
        "POST",
        &[JSON_BODY, JSON_AND_SSE, ("mcp-session-id", &sid)],
        list,
    );
    assert_eq!(status, 404, "{body}");
    // Without any session id, only initialize (or a stateless request) may start one.
    let (status, _, body) = http_request(&a, "POST", &[JSON_BODY, JSON_AND_SSE], list);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Bad Request: Missing session ID"), "{body}");
    assert!(listening.stop().success());
}

/// With a command upstream, Tollgate and each session's server share one CPU (`--colocate auto`,
/// the default; the spreading out under load is tested in tests/colocation.rs).
#[test]
fn a_sessions_server_starts_on_tollgates_cpu() {
    if one_cpu_allowed() {
        return;
    }
    setup(POLICIES);
    let listening = Listening::start("everything.yaml", server_everything(), &[], &[]);
    let tollgate = allowed_cpus(listening.pid());
    assert!(
        tollgate
            .iter()
            .all(|l| *l == tollgate[0] && !l.contains(['-', ','])),
        "tollgate's threads should share one CPU: {tollgate:?}"
    );
    let (status, _, _) = http_request(
        &listening.authority(),
        "POST",
        &[JSON_BODY, JSON_AND_SSE],
        initialize_body(),
    );
    assert_eq!(status, 200);
    let server = *child_pids(listening.pid())
        .first()
        .expect("the session's server process");
    let on = allowed_cpus(server);
    assert!(
        on.iter().all(|l| *l == tollgate[0]),
        "the server should run on tollgate's CPU {}: {on:?}",
        tollgate[0]
    );
    assert!(listening.stop().success());
}

/// Three agents at once get three servers (each sees only its own log notifications), and
/// share the listener's counters: the per-recipient limit (2 a minute) holds across sessions.
#[test]
fn concurrent_sessions_get_their_own_server_and_share_limits() {
    setup(POLICIES);
    let steps = scenario(vec![call(
        "send_message",
        json!({"to": "+15550009", "body": "hi"}),
    )]);
    let runs: Vec<crate::e2e::Run> = in_one_minute(|| {
        let listening = Listening::start("twilio.yaml", fastmcp1(), &[], &[]);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| s.spawn(|| drive(Client::Py1, &url(&listening), &steps)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    });
    let sent = runs
        .iter()
        .filter(|r| r.result(0)["isError"] == false)
        .count();
    assert_eq!(sent, 2, "two of three sends fit the shared limit");
    for run in &runs {
        let logs = run.out["logs"].as_array().unwrap().len();
        if run.result(0)["isError"] == false {
            assert_eq!(text(run.result(0)), "sent to +15550009: hi", "{run}");
            assert_eq!(logs, 1, "only its own server's log\n{run}");
        } else {
            let code = &run.result(0)["_meta"]["dev.tollgate/denial"]["code"];
            assert_eq!(code, "rate_limited", "{run}");
            assert_eq!(logs, 0, "{run}");
        }
    }
}

/// Old clients: the legacy HTTP+SSE transport (`GET /sse`, `POST /message?sessionId=…`) with the
/// Python SDK's `sse_client` — the same policy, progress on the stream, and the session's server
/// process gone once the stream closes.
#[test]
fn legacy_sse_clients_get_the_same_policy() {
    setup(POLICIES);
    let listening = Listening::start("everything.yaml", server_everything(), &[], &[]);
    let sse = vec!["--sse".to_string(), listening.url.replace("/mcp", "/sse")];
    let steps = vec![
        json!({"op": "list_tools"}),
        call("echo", json!({"message": "hello old client"})),
        call("get-env", json!({})),
        call("toggle-subscriber-updates", json!({})),
        json!({"op": "call_tool", "name": "trigger-long-running-operation",
               "arguments": {"duration": 1, "steps": 3}, "progress": true}),
    ];
    let run = drive(Client::Py1, &sse, &scenario(steps));
    let tools = run.step(0)["tools"].as_array().unwrap();
    assert!(tools.contains(&json!("echo")), "{run}");
    assert!(
        !tools.contains(&json!("toggle-subscriber-updates")),
        "{run}"
    );
    assert_eq!(text(run.result(1)), "Echo: hello old client");
    assert_denial(
        run.result(2),
        "denied",
        "tools.get-env.rules[0]",
        "Denied by policy: Environment variables may hold secrets; ask a human.",
    );
    assert_eq!(run.step(3)["error"]["code"], -32602, "{run}");
    assert_eq!(run.step(4)["progress_count"], 3, "{run}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while children(listening.pid()) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        children(listening.pid()),
        0,
        "the closed stream ended its server"
    );
}

/// HTTPS: with `--tls-cert`/`--tls-key` the listener speaks TLS (rustls), and the Python SDK
/// client, trusting the certificate's authority, works as over plain HTTP.
#[test]
fn https_with_a_certificate_from_the_operator() {
    setup(POLICIES);
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let listening = Listening::start(
        "everything.yaml",
        server_everything(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        listening.url.starts_with("https://127.0.0.1:"),
        "{}",
        listening.url
    );
    let url = listening.url.replace("127.0.0.1", "localhost");
    let run = drive_with_env(
        Client::Py1,
        &["--url".to_string(), url],
        &scenario(vec![
            call("echo", json!({"message": "over tls"})),
            call("get-env", json!({})),
        ]),
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    assert_eq!(text(run.result(0)), "Echo: over tls", "{run}");
    assert_eq!(
        run.result(1)["_meta"]["dev.tollgate/denial"]["code"],
        "denied",
        "{run}"
    );
}

/// Policy answers on the stateless revision (2026-07-28) take the status and shape the revision
/// gives their equivalents: a hidden tool is answered exactly as the server answers a tool it
/// does not have (status, code, message, id); a denial and a rate limit are tool results marked
/// `isError` (200), as the server's own tool failures are.
#[test]
fn on_the_stateless_revision_policy_answers_look_like_the_servers_own() {
    setup(&["stateless_answers.yaml"]);
    let listening = Listening::start("stateless_answers.yaml", fastmcp2(), &[], &[]);
    let a = listening.authority();
    let call = |id: u64, name: &str, arguments: &str| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{arguments},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
        );
        let headers = [
            JSON_BODY,
            JSON_AND_SSE,
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", name),
        ];
        let (status, _, answer) = http_request(&a, "POST", &headers, &body);
        let v: Value = serde_json::from_str(&answer).unwrap_or_else(|_| panic!("{answer}"));
        (status, v)
    };
    let (unknown_status, mut unknown) = call(1, "no_such_tool", "{}");
    let (hidden_status, hidden) = call(2, "change_tools", "{}");
    assert_eq!(hidden_status, unknown_status, "{hidden} / {unknown}");
    assert_eq!(hidden["id"], 2, "{hidden}");
    // The one difference: the server names itself in each result's `_meta`, which Tollgate's
    // own answer leaves out.
    if let Some(result) = unknown["result"].as_object_mut() {
        result.remove("_meta");
    }
    let same = |v: &Value, name: &str| {
        serde_json::from_str::<Value>(&v.to_string().replace(name, "X")).unwrap()
    };
    assert_eq!(
        same(&hidden, "change_tools")["result"],
        same(&unknown, "no_such_tool")["result"],
    );
    let (status, denied) = call(3, "delete_record", r#"{"id":"r1"}"#);
    assert_eq!(status, 200, "{denied}");
    assert_eq!(denied["result"]["isError"], true, "{denied}");
    assert_eq!(call(4, "add", r#"{"a":1,"b":2}"#).0, 200);
    let (status, limited) = call(5, "add", r#"{"a":1,"b":2}"#);
    assert_eq!(status, 200, "{limited}");
    assert_eq!(
        limited["result"]["_meta"]["dev.tollgate/denial"]["code"], "rate_limited",
        "{limited}"
    );
    assert!(listening.stop().success());
}
