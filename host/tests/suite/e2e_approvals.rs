//! Human approval end to end: a real client calls a real server through `tollgate run` under an
//! `action: ask` rule, and an operator decides from another process with `tollgate approvals`.
//! The server's own call log says what executed.

use crate::e2e::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const POLICY: &str = r#"version: 1
tools:
  send_message:
    rules:
      - action: ask
        message: "Send {args.body} to {args.to}?"
        when: [{ path: args.to, op: neq, value: self }]
        timeout: 120
"#;

const RULE: &str = "tools.send_message.rules[0]";

/// [`POLICY`] counting only the client's answer.
fn client_policy() -> String {
    POLICY.replace("timeout: 120", "timeout: 120\n        channels: [client]")
}

/// `tollgate approvals ARGS… --state sqlite:STATE`: its stdout, or a panic with its stderr.
fn approvals(state: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("approvals")
        .args(args)
        .arg("--state")
        .arg(format!("sqlite:{}", state.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tollgate approvals {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Wait until a pending request whose arguments contain `needle` is listed; its record.
fn pending_with(state: &Path, needle: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = approvals(state, &["list", "--pending", "--json"]);
        let found = listed
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|a| a["arguments"].as_str().unwrap().contains(needle));
        if let Some(a) = found {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "no pending request with {needle} in:\n{listed}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn executed(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn call(to: &str, body: &str) -> Value {
    json!({"op": "call_tool", "name": "send_message", "arguments": {"to": to, "body": body}})
}

fn wait_for(flag: &Path) -> Value {
    json!({"op": "wait_file", "path": flag, "seconds": 60})
}

struct Scene {
    _dir: tempfile::TempDir,
    policy: PathBuf,
    state: PathBuf,
    audit: PathBuf,
    calls: PathBuf,
    command: Vec<String>,
    approved: PathBuf,
    denied: PathBuf,
}

impl Scene {
    /// `client` drives `scenario` through this scene's proxy, the server logging its calls.
    fn drive(&self, client: Client, scenario: &Value) -> Run {
        let calls = self.calls.to_str().unwrap();
        drive_with_env(
            client,
            &self.command,
            scenario,
            &[("TOLLGATE_TEST_CALL_LOG", calls)],
        )
    }

    /// [`Scene::drive`] on a thread of its own (while the test plays the operator).
    fn agent(&self, client: Client, scenario: Value) -> std::thread::JoinHandle<Run> {
        let (command, calls) = (self.command.clone(), self.calls.clone());
        std::thread::spawn(move || {
            let calls = calls.to_str().unwrap().to_string();
            drive_with_env(
                client,
                &command,
                &scenario,
                &[("TOLLGATE_TEST_CALL_LOG", &calls)],
            )
        })
    }
}

/// The approval request a denial names (`_meta."dev.tollgate/denial".approvalId`) of step `i`.
fn approval_id(run: &Run, i: usize) -> String {
    run.result(i)["_meta"]["dev.tollgate/denial"]["approvalId"]
        .as_str()
        .unwrap_or_else(|| panic!("step {i} names no approval request\n{run}"))
        .to_string()
}

fn scene() -> Scene {
    scene_with(POLICY, fastmcp1())
}

fn scene_with(policy: &str, server: Vec<String>) -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    std::fs::write(p("policy.yaml"), policy).unwrap();
    let mut command = vec![
        env!("CARGO_BIN_EXE_tollgate").to_string(),
        "run".into(),
        "--state".into(),
        format!("sqlite:{}", p("state.sqlite").display()),
        "--audit-log".into(),
        p("audit.jsonl").to_str().unwrap().into(),
        "--policy".into(),
        p("policy.yaml").to_str().unwrap().into(),
        "--".into(),
    ];
    command.extend(server);
    Scene {
        policy: p("policy.yaml"),
        state: p("state.sqlite"),
        audit: p("audit.jsonl"),
        calls: p("calls.jsonl"),
        approved: p("approved"),
        denied: p("denied"),
        command,
        _dir: dir,
    }
}

/// The transfer story with a message: asked, approved by an operator in another process, used
/// once; other arguments asked again and refused; the server ran exactly the approved call.
#[test]
fn an_operator_approves_one_call_from_another_process_and_only_that_call_reaches_the_server() {
    let s = scene();
    let scenario = json!({"steps": [
        call("bob", "hi"),
        wait_for(&s.approved),
        call("bob", "hi"),
        call("bob", "hi"),
        call("bob", "hi!"),
        wait_for(&s.denied),
        call("bob", "hi!"),
        call("self", "note"),
    ]});
    let agent = s.agent(Client::Py1, scenario);

    let first = pending_with(&s.state, r#""hi""#);
    assert_eq!(first["message"], "Send hi to bob?");
    let id = first["id"].as_str().unwrap();
    let shown = approvals(&s.state, &["show", id]);
    assert!(shown.contains("asks:       Send hi to bob?"), "{shown}");
    assert!(
        executed(&s.calls).is_empty(),
        "nothing ran before the approval"
    );
    approvals(&s.state, &["approve", id, "--as", "alice"]);
    std::fs::write(&s.approved, "").unwrap();

    let second = pending_with(&s.state, r#""hi!""#);
    let second = second["id"].as_str().unwrap();
    approvals(&s.state, &["deny", second, "--as", "alice"]);
    std::fs::write(&s.denied, "").unwrap();
    let run = agent.join().unwrap();

    let pending = run.result(0);
    assert_denial(pending, "approval_pending", RULE, &format!(
        "Denied by policy: Send hi to bob? This call waits for a person's approval (request {id}, open for 120 more seconds). Call again with the same arguments once it is approved; other arguments need an approval of their own."
    ));
    assert_eq!(pending["_meta"]["dev.tollgate/denial"]["approvalId"], id);
    assert_eq!(
        pending["_meta"]["dev.tollgate/denial"]["retryAfterMs"],
        10_000
    );
    assert_eq!(text(run.result(2)), "sent to bob: hi", "{run}");
    let reused = run.result(3);
    assert_eq!(
        reused["_meta"]["dev.tollgate/denial"]["code"],
        "approval_pending"
    );
    assert_ne!(
        reused["_meta"]["dev.tollgate/denial"]["approvalId"], id,
        "used once"
    );
    let refused = run.result(6);
    assert_denial(refused, "approval_denied", RULE, &format!(
        "Denied by policy: Send hi! to bob? Refused by alice (request {second}). Do not retry it unchanged; calling again asks again."
    ));
    assert_eq!(
        text(run.result(7)),
        "sent to self: note",
        "calls the rule does not pick pass"
    );
    assert_eq!(
        executed(&s.calls),
        [
            json!({"tool": "send_message", "arguments": {"to": "bob", "body": "hi"}}),
            json!({"tool": "send_message", "arguments": {"to": "self", "body": "note"}}),
        ],
        "the server ran the approved call once, and nothing it was not allowed to"
    );

    let audit: Vec<Value> = executed(&s.audit);
    let approved = audit
        .iter()
        .find(|r| r["verdict"] == "allow" && r["approval"].is_object())
        .expect("the approved call is audited with its approval");
    assert_eq!(approved["approval"]["id"], id);
    assert_eq!(approved["approval"]["by"], "alice");
    assert_eq!(approved["approval"]["channel"], "operator");
    assert!(approved["approval"]["waited_ms"].as_u64().is_some());
    let listed = approvals(&s.state, &["list"]);
    assert!(
        listed.contains(&format!("{id}  used (approved by alice)")),
        "{listed}"
    );
}

/// Where the policy counts the client's answer, a 2026-07-28 client is asked in band: the
/// Python SDK 2.x client gets an `input_required` result, puts the question to its user (the
/// driver's elicitation callback) and retries with the answer. An approval lets that call
/// through; a refusal or a dismissed question each get their own code. Clients of earlier
/// revisions (the Python SDK 1.x and TypeScript clients) are
/// asked with an `elicitation/create` request of Tollgate's while the call waits. The server ran
/// only the approved calls.
#[test]
fn clients_ask_their_users_in_band_and_only_the_calls_they_approve_reach_the_server() {
    let s = scene_with(&client_policy(), fastmcp2());
    let drive_as = |client: Client, elicitation: Value, body: &str| {
        s.drive(
            client,
            &json!({"steps": [call("bob", body)], "elicitation": elicitation}),
        )
    };

    let approved = drive_as(Client::Py2, json!({"action": "accept"}), "hi");
    assert_eq!(approved.out["protocol_version"], "2026-07-28", "{approved}");
    assert_eq!(text(approved.result(0)), "sent to bob: hi", "{approved}");
    let asked = &approved.out["elicitation_requests"][0];
    let message = asked["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("Send hi to bob? (An approval this agent's policy asks for: request ap-"),
        "{approved}"
    );
    assert!(
        message.ends_with(", rule tools.send_message.rules[0].)"),
        "{message}"
    );
    assert_eq!(asked["requestedSchema"]["required"], json!(["approve"]));

    for (elicitation, code) in [
        (json!({"action": "decline"}), "approval_denied"),
        (
            json!({"action": "accept", "content": {"approve": false}}),
            "approval_denied",
        ),
        (json!({"action": "cancel"}), "approval_cancelled"),
    ] {
        let run = drive_as(Client::Py2, elicitation.clone(), "no");
        let denial = &run.result(0)["_meta"]["dev.tollgate/denial"];
        assert_eq!(denial["code"], code, "{elicitation}: {run}");
    }
    // Clients of earlier revisions are asked with an elicitation/create request of Tollgate's.
    let legacy = drive_as(Client::Py1, json!({"action": "accept"}), "legacy");
    assert_eq!(text(legacy.result(0)), "sent to bob: legacy", "{legacy}");
    let asked = legacy.out["elicitation_requests"][0]["message"]
        .as_str()
        .unwrap();
    assert!(
        asked.starts_with("Send legacy to bob? (An approval"),
        "{legacy}"
    );
    let cancelled = drive_as(Client::Py1, json!({"action": "cancel"}), "dismissed");
    assert_eq!(
        cancelled.result(0)["_meta"]["dev.tollgate/denial"]["code"],
        "approval_cancelled",
        "{cancelled}"
    );
    let ts = drive_as(Client::Ts, json!({"action": "decline"}), "from ts");
    assert_eq!(
        ts.result(0)["_meta"]["dev.tollgate/denial"]["code"],
        "approval_denied",
        "{ts}"
    );
    let ts = drive_as(Client::Ts, json!({"action": "accept"}), "from ts");
    assert_eq!(text(ts.result(0)), "sent to bob: from ts", "{ts}");

    assert_eq!(
        executed(&s.calls),
        [
            json!({"tool": "send_message", "arguments": {"to": "bob", "body": "hi"}}),
            json!({"tool": "send_message", "arguments": {"to": "bob", "body": "legacy"}}),
            json!({"tool": "send_message", "arguments": {"to": "bob", "body": "from ts"}}),
        ],
        "only the approved calls ran"
    );
    let audit = executed(&s.audit);
    let used = audit
        .iter()
        .find(|r| r["verdict"] == "allow")
        .expect("the approved call is audited");
    assert_eq!(used["approval"]["by"], "client elicitation");
    assert_eq!(used["approval"]["channel"], "client");
    assert!(
        audit.iter().any(|r| r["verdict"] == "ask"),
        "the question is audited"
    );
}

/// The same round trip over Streamable HTTP: the `input_required` result and the retry each
/// travel as a request of their own, and the server sees the retry without Tollgate's fields.
/// Clients of earlier revisions are asked on the call's POST stream, and answer with a POST.
#[test]
fn over_http_clients_of_both_eras_are_asked_in_band_and_only_approved_calls_reach_the_server() {
    let s = scene_with(&client_policy(), fastmcp2());
    let calls = s.calls.to_str().unwrap().to_string();
    let policy = s.policy.to_str().unwrap().to_string();
    let listening = Listening::start(
        &policy,
        fastmcp2(),
        &[],
        &[("TOLLGATE_TEST_CALL_LOG", calls.as_str())],
    );
    let url = vec!["--url".to_string(), listening.url.clone()];
    let run = drive(
        Client::Py2,
        &url,
        &json!({"steps": [call("bob", "over http"), call("bob", "a second one")],
                "elicitation": {"action": "accept"}}),
    );
    assert_eq!(text(run.result(0)), "sent to bob: over http", "{run}");
    assert_eq!(
        run.out["elicitation_requests"].as_array().unwrap().len(),
        2,
        "each call is asked about on its own"
    );
    // A 2025-11-25 session: the question rides the call's POST stream, the answer is a POST of
    // its own, and the call's answer comes on the first stream.
    let legacy = drive(
        Client::Py1,
        &url,
        &json!({"steps": [call("bob", "legacy over http")], "elicitation": {"action": "accept"}}),
    );
    assert_eq!(
        text(legacy.result(0)),
        "sent to bob: legacy over http",
        "{legacy}"
    );
    let ts = drive(
        Client::Ts,
        &url,
        &json!({"steps": [call("bob", "ts over http")], "elicitation": {"action": "decline"}}),
    );
    assert_eq!(
        ts.result(0)["_meta"]["dev.tollgate/denial"]["code"],
        "approval_denied",
        "{ts}"
    );
    assert_eq!(
        executed(&s.calls),
        [
            json!({"tool": "send_message", "arguments": {"to": "bob", "body": "over http"}}),
            json!({"tool": "send_message", "arguments": {"to": "bob", "body": "a second one"}}),
            json!({"tool": "send_message", "arguments": {"to": "bob", "body": "legacy over http"}}),
        ],
        "{run}"
    );
}

/// The operator channel over HTTP: an approver's token lists and decides requests at
/// `/approvals` on the listener; other tokens may not, and an approver never decides a request
/// for a call of its own. The listener's console page is served behind the Host/Origin checks,
/// and its data only to approvers.
#[test]
fn an_approver_decides_over_http_and_nobody_approves_their_own_call() {
    const AGENT: &str = "agent-token-0123456789";
    const ALICE: &str = "alice-token-0123456789";
    const BOB: &str = "bob-token-0123456789";
    let s = scene_with(POLICY, fastmcp1());
    let home = tempfile::tempdir().unwrap();
    let policy = s.policy.to_str().unwrap().to_string();
    let calls = s.calls.to_str().unwrap().to_string();
    let listening = Listening::start(
        &policy,
        fastmcp1(),
        &[
            "--auth-token",
            "agent=TG_AGENT",
            "--auth-token",
            "alice=TG_ALICE",
            "--auth-token",
            "bob=TG_BOB",
            "--approver",
            "alice",
            "--approver",
            "agent",
        ],
        &[
            ("TG_AGENT", AGENT),
            ("TG_ALICE", ALICE),
            ("TG_BOB", BOB),
            ("TOLLGATE_TEST_CALL_LOG", calls.as_str()),
            ("XDG_STATE_HOME", home.path().to_str().unwrap()),
        ],
    );
    let authority = listening.authority();
    let as_ = |token: &str| format!("Bearer {token}");
    let scenario = json!({"steps": [
        call("bob", "hi"),
        wait_for(&s.approved),
        call("bob", "hi"),
    ]});
    let url = vec!["--url".to_string(), listening.url.clone()];
    let headers = json!({"Authorization": as_(AGENT)}).to_string();
    let agent = std::thread::spawn(move || {
        drive_with_env(Client::Py1, &url, &scenario, &[("MCP_HEADERS", &headers)])
    });

    let alice = as_(ALICE);
    let deadline = Instant::now() + Duration::from_secs(60);
    let pending = loop {
        let (status, _, body) = http_request_to(
            &authority,
            "GET",
            "/approvals?pending",
            &[("authorization", &alice)],
            "",
        );
        assert_eq!(status, 200, "{body}");
        let listed: Vec<Value> = serde_json::from_str(&body).unwrap();
        if let Some(first) = listed.into_iter().next() {
            break first;
        }
        assert!(Instant::now() < deadline, "no pending request appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(pending["caller"], "agent");
    let id = pending["id"].as_str().unwrap();
    let approve = format!("/approvals/{id}/approve");
    let refused = |token: &str| {
        let bearer = as_(token);
        let (status, _, body) = http_request_to(
            &authority,
            "POST",
            &approve,
            &[("authorization", &bearer)],
            "",
        );
        assert_eq!(status, 403, "{body}");
        body
    };
    assert!(refused(BOB).contains("only the callers named with --approver"));
    assert!(
        refused(AGENT).contains(&format!("`{id}` is for a call of agent's own")),
        "an approver never decides its own calls"
    );
    let (status, _, body) = http_request_to(
        &authority,
        "POST",
        &approve,
        &[("authorization", &alice)],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let decided: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&decided["state"], &decided["by"]),
        (&json!("approved"), &json!("alice"))
    );
    let (status, _, body) = http_request_to(
        &authority,
        "POST",
        &approve,
        &[("authorization", &alice)],
        "",
    );
    assert_eq!(
        status, 409,
        "a decided request cannot be decided again: {body}"
    );
    std::fs::write(&s.approved, "").unwrap();

    let run = agent.join().unwrap();
    assert_eq!(
        run.result(0)["_meta"]["dev.tollgate/denial"]["code"],
        "approval_pending",
        "{run}"
    );
    assert_eq!(text(run.result(2)), "sent to bob: hi", "{run}");
    assert_eq!(
        executed(&s.calls),
        [json!({"tool": "send_message", "arguments": {"to": "bob", "body": "hi"}})]
    );

    // The console: the page for any request that passes the Host/Origin checks (it holds no
    // data), the data for approvers only.
    let (status, headers, page) = http_request_to(&authority, "GET", "/console", &[], "");
    assert_eq!(status, 200, "{page}");
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("text/html")));
    assert!(page.contains("<title>Tollgate console</title>"));
    let (status, _, body) = http_request_to(
        &authority,
        "GET",
        "/console",
        &[("origin", "https://evil.example")],
        "",
    );
    assert_eq!(status, 403, "{body}");
    let state = |token: Option<&str>| {
        let bearer = token.map(as_);
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        http_request_to(&authority, "GET", "/console/api/state", &headers, "")
    };
    assert_eq!(state(None).0, 401);
    let (status, _, body) = state(Some(BOB));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Forbidden: only the callers named with --approver may use the console"));
    // The decision log is written within 200 ms of a decision: wait for the second one.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (body, snapshot) = loop {
        let (status, _, body) = state(Some(ALICE));
        assert_eq!(status, 200, "{body}");
        let snapshot: Value = serde_json::from_str(&body).unwrap();
        if snapshot["decisions"].as_array().unwrap().len() >= 2 || Instant::now() > deadline {
            break (body, snapshot);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let verdicts: Vec<_> = snapshot["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["caller"].as_str().unwrap(),
                d["verdict"].as_str().unwrap(),
                d["code"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("agent", "deny", Some("approval_pending")),
            ("agent", "allow", None)
        ],
        "{body}"
    );
    assert_eq!(snapshot["approvals"], json!([]), "nothing waits any more");
    assert_eq!(snapshot["policies"][0]["path"], json!(policy));
    assert!(snapshot["policies"][0]["summary"]
        .as_str()
        .unwrap()
        .starts_with("loads; default allow, 1 tool section"));
}

/// An operator hears of a new request through the webhook: over HTTPS (verified against the
/// CA bundle in `SSL_CERT_FILE`), signed with HMAC-SHA256 under the shared secret, and retried
/// when the receiver fails — while the agent was answered at once.
#[test]
fn a_new_request_is_posted_to_the_webhook_signed_and_retried_after_a_failure() {
    const SECRET: &str = "webhook-secret-0123456789";
    let s = scene();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let received = dir.path().join("received.jsonl");
    let mut receiver = std::process::Command::new(peers().join(".env/py1/bin/python"))
        .arg(peers().join("servers/webhook_receiver.py"))
        .args(["--fail-first", "1", "--out"])
        .arg(&received)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(receiver.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    let url = format!("https://localhost:{}/hooks/tollgate", port.trim());
    let mut command = s.command.clone();
    let at = command.iter().position(|a| a == "--").unwrap();
    command.splice(at..at, ["--approval-webhook".to_string(), url]);
    let run = drive_with_env(
        Client::Py1,
        &command,
        &json!({"steps": [call("bob", "hi"), {"op": "sleep", "seconds": 4}]}),
        &[
            ("TOLLGATE_APPROVAL_WEBHOOK_SECRET", SECRET),
            ("SSL_CERT_FILE", ca.to_str().unwrap()),
        ],
    );
    let _ = receiver.kill();
    let _ = receiver.wait();
    let id = approval_id(&run, 0);
    let posts = executed(&received);
    assert_eq!(
        posts
            .iter()
            .map(|p| p["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [500, 204],
        "one failure, then the retry is delivered\n{run}"
    );
    for post in &posts {
        assert_eq!(post["path"], "/hooks/tollgate");
        let body = post["body"].as_str().unwrap();
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["event"], "approval_requested");
        assert_eq!(event["approval"]["id"], id.as_str());
        assert_eq!(event["approval"]["message"], "Send hi to bob?");
        assert_eq!(event["decide"], format!("tollgate approvals approve {id}"));
        let signature = post["headers"]["x-tollgate-signature"].as_str().unwrap();
        let (stamp, mac) = signature
            .strip_prefix("t=")
            .and_then(|s| s.split_once(",v1="))
            .unwrap_or_else(|| panic!("{signature}"));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
        let mac: Vec<u8> = (0..mac.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&mac[i..i + 2], 16).unwrap())
            .collect();
        ring::hmac::verify(&key, format!("{stamp}.{body}").as_bytes(), &mac)
            .expect("the signature verifies under the shared secret");
    }
}

/// `tollgate status` after real calls through two proxies of the machine (the default store and
/// decision log): the counters in use with their limits, the calls waiting for a person, and
/// the last decisions of both.
#[test]
fn status_shows_counters_waiting_calls_and_the_last_decisions_of_the_machines_proxies() {
    let s = scene();
    let state_home = tempfile::tempdir().unwrap();
    let xdg = [("XDG_STATE_HOME", state_home.path().to_str().unwrap())];
    let status = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("status")
            .envs(xdg)
            .env("HOME", state_home.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = status();
    assert!(
        shown.contains("no counters in use and no calls wait for approval (no state store yet)")
            && shown.contains("no decisions yet in "),
        "{shown}"
    );
    assert!(
        !state_home.path().join("tollgate/counters.sqlite").exists(),
        "status makes no store"
    );
    let default_store = |policy: &Path, server: &str| {
        let mut command = s.command.clone();
        let at = command.iter().position(|a| a == "--state").unwrap();
        command.drain(at..at + 2);
        let at = command.iter().position(|a| a == "--policy").unwrap();
        command[at + 1] = policy.to_str().unwrap().to_string();
        command.splice(2..2, ["--server-name".to_string(), server.to_string()]);
        command
    };
    let run = drive_with_env(
        Client::Py1,
        &default_store(&s.policy, "messages"),
        &json!({"steps": [call("bob", "hi")]}),
        &xdg,
    );
    let id = approval_id(&run, 0);
    let limited = s.policy.with_file_name("limited.yaml");
    std::fs::write(
        &limited,
        "version: 1\ntools:\n  add:\n    rules:\n      - rate_limit: { max: 5, window: 3600 }\n",
    )
    .unwrap();
    let add = json!({"op": "call_tool", "name": "add", "arguments": {"a": 2, "b": 3}});
    let run = drive_with_env(
        Client::Py1,
        &default_store(&limited, "adder"),
        &json!({"steps": [add, add]}),
        &xdg,
    );
    assert_eq!(text(run.result(1)), "5", "{run}");

    let shown = status();
    let line = shown
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        line.starts_with(&format!(
            "  {id}  messages/send_message  from tollgate-py-driver: Send hi to bob?  ("
        )) && line.ends_with(&format!(" s left; tollgate approvals approve {id})")),
        "{shown}"
    );
    let counter = shown
        .lines()
        .find(|l| l.contains("adder"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        counter.contains("  2/5 per 60 min (fixed; ") && counter.ends_with(" left)"),
        "{shown}"
    );
    let pending = format!("messages/send_message  deny (approval_pending)  by tollgate-py-driver  rule tools.send_message.rules[0]: Send hi to bob? This call waits for a person's approval (request {id}, open for 120 more seconds). Call again with the same arguments once it is approved; other arguments need an approval of their own.");
    let decisions: Vec<_> = shown
        .lines()
        .skip_while(|l| !l.starts_with("last decisions (from "))
        .skip(1)
        .map(|l| l.split_once("Z  ").map_or(l, |(_, rest)| rest))
        .collect();
    assert_eq!(
        decisions,
        [
            pending.as_str(),
            "adder/add  allow  by tollgate-py-driver",
            "adder/add  allow  by tollgate-py-driver",
        ],
        "{shown}"
    );
}

/// With `wait`, the call is held while an operator decides: the client gets progress
/// notifications meanwhile (it asked for progress), and the call goes through as soon as it is
/// approved; a call nobody decides within the wait is answered that it is pending. Over stdio
/// and over HTTP.
#[test]
fn with_wait_a_call_is_held_until_an_operator_decides_and_goes_through() {
    let s = scene_with(
        &POLICY.replace("timeout: 120", "timeout: 120\n        wait: 7"),
        fastmcp1(),
    );
    let calls = s.calls.to_str().unwrap().to_string();
    let mut progress = call("bob", "hi");
    progress["progress"] = json!(true);
    let scenario = json!({"steps": [progress, call("bob", "nobody decides")], "timeout": 30});
    let agent = s.agent(Client::Py1, scenario);
    let held = pending_with(&s.state, r#""hi""#);
    std::thread::sleep(Duration::from_millis(5_500));
    assert!(executed(&s.calls).is_empty(), "held, not forwarded");
    approvals(
        &s.state,
        &["approve", held["id"].as_str().unwrap(), "--as", "alice"],
    );
    let run = agent.join().unwrap();
    assert_eq!(text(run.result(0)), "sent to bob: hi", "{run}");
    assert!(
        run.step(0)["progress_count"].as_u64().unwrap() >= 1,
        "progress while held: {run}"
    );
    let pending = &run.result(1)["_meta"]["dev.tollgate/denial"];
    assert_eq!(pending["code"], "approval_pending", "{run}");

    // Over HTTP the held call's POST stream stays open until the decision.
    let listening = Listening::start(
        s.policy.to_str().unwrap(),
        fastmcp1(),
        &["--state", &format!("sqlite:{}", s.state.display())],
        &[("TOLLGATE_TEST_CALL_LOG", calls.as_str())],
    );
    let url = vec!["--url".to_string(), listening.url.clone()];
    let agent = std::thread::spawn(move || {
        drive(
            Client::Py1,
            &url,
            &json!({"steps": [call("bob", "over http")]}),
        )
    });
    let held = pending_with(&s.state, "over http");
    approvals(&s.state, &["approve", held["id"].as_str().unwrap()]);
    let run = agent.join().unwrap();
    assert_eq!(text(run.result(0)), "sent to bob: over http", "{run}");
    assert_eq!(
        executed(&s.calls),
        [
            json!({"tool": "send_message", "arguments": {"to": "bob", "body": "hi"}}),
            json!({"tool": "send_message", "arguments": {"to": "bob", "body": "over http"}}),
        ]
    );
}

/// A request raised through one proxy is approved from the CLI and used through another proxy
/// process on the same sqlite file: the store, not the process, holds approvals.
#[test]
fn an_approval_given_for_one_proxys_call_is_used_through_another_proxy() {
    let s = scene();
    let once = json!({"steps": [call("bob", "hi")]});
    let first = s.drive(Client::Py1, &once);
    approvals(&s.state, &["approve", &approval_id(&first, 0)]);
    let second = s.drive(Client::Ts, &once);
    assert_eq!(
        second.result(0)["_meta"]["dev.tollgate/denial"]["code"],
        "approval_pending",
        "the TypeScript client is another caller: the approval was for the Python client's call\n{second}"
    );
    let again = s.drive(Client::Py1, &once);
    assert_eq!(text(again.result(0)), "sent to bob: hi", "{again}");
    assert_eq!(
        executed(&s.calls),
        [json!({"tool": "send_message", "arguments": {"to": "bob", "body": "hi"}})]
    );
}

/// The console, in a real browser: `tollgate console` serves this machine's proxies; headless
/// Chromium opens the address it printed, sees a denial appear after a real call, and approves
/// a held call, which then reaches the server.
#[test]
fn the_console_shows_a_denial_and_approves_a_waiting_call_in_a_real_browser() {
    let policy = r#"version: 1
tools:
  send_message:
    rules:
      - action: deny
        reason: "secrets stay here"
        when: [{ path: args.body, op: eq, value: secret }]
      - action: ask
        message: "Send {args.body} to {args.to}?"
        timeout: 120
        wait: 45
"#;
    let s = scene_with(policy, fastmcp1());
    let home = tempfile::tempdir().unwrap();
    let xdg = home.path().to_str().unwrap().to_string();
    let mut console = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "console",
            "--listen",
            "127.0.0.1:0",
            "--as",
            "alice",
            "--state",
        ])
        .arg(format!("sqlite:{}", s.state.display()))
        .env("XDG_STATE_HOME", &xdg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(console.stdout.take().unwrap()),
        &mut printed,
    )
    .unwrap();
    let url = printed
        .trim()
        .strip_prefix("tollgate: console on ")
        .unwrap_or_else(|| panic!("{printed}"))
        .to_string();
    assert!(url.contains("/console#token="), "{url}");

    let (command, calls) = (s.command.clone(), s.calls.clone());
    let scenario = json!({"steps": [call("bob", "secret"), call("bob", "hi")], "timeout": 90});
    let agent = std::thread::spawn(move || {
        let calls = calls.to_str().unwrap().to_string();
        let env = [
            ("TOLLGATE_TEST_CALL_LOG", calls.as_str()),
            ("XDG_STATE_HOME", &xdg),
        ];
        drive_with_env(Client::Py1, &command, &scenario, &env)
    });
    let browser = std::process::Command::new(peers().join(".env/bin/node"))
        .arg(peers().join("clients/console_browser.mjs"))
        .arg(&url)
        .output()
        .unwrap();
    let _ = console.kill();
    let _ = console.wait();
    let run = agent.join().unwrap();
    assert!(
        browser.status.success(),
        "{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    let seen: Value = serde_json::from_slice(&browser.stdout).unwrap();
    let denial = seen["denial"].as_str().unwrap();
    assert!(
        denial.contains("send_message")
            && denial.contains("deny (denied)")
            && denial.contains("secrets stay here"),
        "{denial}"
    );
    assert_denial(
        run.result(0),
        "denied",
        "tools.send_message.rules[0]",
        "Denied by policy: secrets stay here",
    );
    assert_eq!(text(run.result(1)), "sent to bob: hi", "{run}");
    assert_eq!(
        executed(&s.calls),
        [json!({"tool": "send_message", "arguments": {"to": "bob", "body": "hi"}})],
        "only the approved call ran"
    );
    let decided = approvals(&s.state, &["show", seen["approved"].as_str().unwrap()]);
    assert!(decided.contains("alice"), "{decided}");
}
