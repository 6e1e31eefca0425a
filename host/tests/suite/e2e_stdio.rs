//! End to end over stdio with real MCP SDKs on both sides: a client driver (Python SDK 1.x and
//! 2.x, TypeScript SDK) starts `tollgate run --policy tests/policies/... -- SERVER`, where SERVER
//! is server-everything or a FastMCP server, and reports what the agent saw.
//! The peers are installed by scripts/test-peers.sh (run here once per test binary).

use crate::e2e::{
    assert_denial, assert_rate_limited, drive, drive_in_one_minute, fastmcp1, fastmcp2,
    server_everything, setup, text, tollgate, Client,
};
use serde_json::{json, Value};
use std::thread;

/// Every policy these tests use, checked (and its plugins compiled) before the first run.
const POLICIES: &[&str] = &["everything.yaml", "twilio.yaml", "default_deny.yaml"];

fn call(name: &str, arguments: Value) -> Value {
    json!({"op": "call_tool", "name": name, "arguments": arguments})
}

fn scenario(steps: Vec<Value>) -> Value {
    json!({"timeout": 60, "steps": steps})
}

const GET_ENV_DENIAL: &str =
    "Denied by policy: Environment variables may hold secrets; ask a human.";
const DELETE_DENIAL: &str = "Denied by policy: Deleting is not allowed from agents; ask a human.";

/// The calls Tollgate lets through unchanged, in the order both the proxied and the direct
/// scenarios make them.
fn passthrough_steps(client: Client) -> Vec<Value> {
    let mut steps = vec![
        call("echo", json!({"message": "hello through tollgate"})),
        call("get-sum", json!({"a": 2, "b": 3})),
        call("get-sum", json!({"a": 40, "b": 2})),
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
    steps
}

/// server-everything through Tollgate and directly, same client: allowed calls give identical
/// results; the policy's rate limit, deny rule and hidden tool apply.
fn everything_through_tollgate(client: Client) {
    setup(POLICIES);
    let pass = passthrough_steps(client);
    // Proxied: list, the three policy-bound calls, then the pass-through calls. The get-sum
    // calls are steps 2, 3 and 4 (the third is over the limit).
    let mut steps = vec![
        json!({"op": "list_tools"}),
        pass[0].clone(),
        pass[1].clone(),
        pass[2].clone(),
        call("get-sum", json!({"a": 1, "b": 1})),
        call("get-env", json!({})),
        call("toggle-subscriber-updates", json!({})),
    ];
    let first_pass = steps.len();
    steps.extend(pass[3..].iter().cloned());
    let proxied_scenario = scenario(steps);
    let direct_scenario = scenario(pass.clone());

    let (proxied, direct) = thread::scope(|s| {
        let direct = s.spawn(|| drive(client, &server_everything(), &direct_scenario));
        let proxied = drive_in_one_minute(
            client,
            &tollgate("everything.yaml", server_everything()),
            &proxied_scenario,
        );
        (proxied, direct.join().unwrap())
    });

    // The handshake passes through untouched.
    assert_eq!(proxied.out["server_info"], direct.out["server_info"]);
    assert_eq!(
        proxied.out["protocol_version"],
        direct.out["protocol_version"]
    );
    assert_eq!(
        proxied.out["server_info"]["name"], "mcp-servers/everything",
        "{proxied}"
    );

    // (d) the hidden tool is not listed; its neighbours are.
    let tools: Vec<&str> = proxied.step(0)["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for listed in ["echo", "get-sum", "get-env", "toggle-simulated-logging"] {
        assert!(tools.contains(&listed), "{listed} missing from {tools:?}");
    }
    assert!(
        !tools.contains(&"toggle-subscriber-updates"),
        "hidden tool listed: {tools:?}"
    );

    // (a) allowed calls: byte-for-byte the result the server gives without Tollgate.
    let proxied_pass = [1, 2, 3]
        .into_iter()
        .chain(first_pass..first_pass + pass.len() - 3);
    // The TS driver's `sdk_progress_count` is often one short either way (see ts_client.mjs).
    let comparable = |step: &Value| {
        let mut step = step.clone();
        step.as_object_mut().unwrap().remove("sdk_progress_count");
        step
    };
    for (direct_i, proxied_i) in proxied_pass.enumerate() {
        assert_eq!(
            comparable(proxied.step(proxied_i)),
            comparable(direct.step(direct_i)),
            "step {proxied_i} ({}) differs from the direct call\nproxied {proxied}\ndirect {direct}",
            pass[direct_i]["name"]
        );
    }
    assert_eq!(text(proxied.result(1)), "Echo: hello through tollgate");

    // (b) get-sum: 2 per minute.
    assert_eq!(text(proxied.result(2)), "The sum of 2 and 3 is 5.");
    assert_eq!(text(proxied.result(3)), "The sum of 40 and 2 is 42.");
    assert_rate_limited(proxied.result(4), "tools.get-sum.rules[0]", "2 per minute");

    // (c) a deny rule.
    assert_denial(
        proxied.result(5),
        "denied",
        "tools.get-env.rules[0]",
        GET_ENV_DENIAL,
    );

    // (d) calling the hidden tool: "Unknown tool", as if the server had no such tool.
    let error = &proxied.step(6)["error"];
    assert_eq!(error["code"], -32602, "{proxied}");
    assert_eq!(
        error["message"], "Unknown tool: toggle-subscriber-updates",
        "{proxied}"
    );

    // (e) progress notifications reach the client while the call is in flight.
    let progress = proxied.step(first_pass);
    assert_eq!(progress["progress_count"], 4, "{proxied}");
    assert_eq!(
        text(&progress["result"]),
        "Long running operation completed. Duration: 1 seconds, Steps: 4."
    );

    if client == Client::Py1 {
        // (f) sampling: server -> client request and its answer through the proxy.
        let sampled = text(proxied.result(first_pass + 1));
        assert!(
            sampled.contains("sampled: Resource trigger-sampling-request context: hello"),
            "{sampled}"
        );
        // (g) elicitation round trip (the driver accepts with name "tollgate").
        let elicited = proxied.result(first_pass + 2);
        assert!(elicited.to_string().contains("tollgate"), "{elicited}");
        assert_eq!(elicited["isError"], false, "{elicited}");
        // The server's requests reached the client exactly as without Tollgate.
        for key in ["sampling_requests", "elicitation_requests"] {
            assert_eq!(proxied.out[key].as_array().unwrap().len(), 1, "{proxied}");
            assert_eq!(proxied.out[key], direct.out[key], "{key} differ");
        }
        // (h) ping.
        assert_eq!(proxied.step(first_pass + 3), &json!({"result": {}}));
        assert_eq!(proxied.out["stream_errors"], json!([]), "{proxied}");
    } else {
        // The TS SDK sometimes reports a progress notification that arrives in the same chunk
        // as the response as "unknown token" (see ts_client.mjs); anything else is a failure.
        for e in proxied.out["stream_errors"].as_array().unwrap() {
            assert!(
                e.as_str().unwrap().contains("unknown token"),
                "stream error: {e}\n{proxied}"
            );
        }
    }
}

#[test]
fn everything_python1_client() {
    everything_through_tollgate(Client::Py1);
}

#[test]
fn everything_typescript_client() {
    everything_through_tollgate(Client::Ts);
}

/// Steps for the messaging policy (tests/policies/twilio.yaml) over a FastMCP server.
fn messaging_steps() -> Vec<Value> {
    let send = |to: &str, body: &str| call("send_message", json!({"to": to, "body": body}));
    vec![
        call("add", json!({"a": 2, "b": 3})),
        send("+15550001", "one"),
        send("+15550001", "two"),
        send("+15550001", "three"), // 3: over 2/minute for this recipient
        send("+15550002", "other"), // 4: another recipient still allowed
        call("send_message", json!({"to": "+15550003"})), // 5: no body
        call("delete_record", json!({"id": "r1"})), // 6
    ]
}

/// The assertions shared by the mcp 1.x and 2.x servers.
fn assert_messaging(run: &crate::e2e::Run) {
    let add = run.result(0);
    assert_eq!(text(add), "5", "{run}");
    assert_eq!(add["structuredContent"], json!({"result": 5}), "{run}");
    assert_eq!(add["isError"], false, "{run}");
    for (i, sent) in [
        (1, "sent to +15550001: one"),
        (2, "sent to +15550001: two"),
        (4, "sent to +15550002: other"),
    ] {
        assert_eq!(text(run.result(i)), sent, "{run}");
        assert_eq!(run.result(i)["isError"], false, "{run}");
    }
    assert_rate_limited(run.result(3), "tools.send_message.rules[1]", "2 per minute");
    assert_denial(
        run.result(5),
        "invalid_arguments",
        "tools.send_message.rules[0]",
        "Denied by policy: invalid arguments for `send_message`: arguments: \"body\" is a \
         required property",
    );
    assert_denial(
        run.result(6),
        "denied",
        "tools.delete_*.rules[0]",
        DELETE_DENIAL,
    );
    // send_message logs once per message it actually sends: the refused ones never ran.
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
            "sending message to +15550001",
            "sending message to +15550002"
        ],
        "{run}"
    );
    assert_eq!(run.out["stream_errors"], json!([]), "{run}");
}

#[test]
fn fastmcp1_messaging_policy() {
    setup(POLICIES);
    let run = drive_in_one_minute(
        Client::Py1,
        &tollgate("twilio.yaml", fastmcp1()),
        &scenario(messaging_steps()),
    );
    assert_eq!(run.out["server_info"]["name"], "tollgate-fastmcp", "{run}");
    assert_messaging(&run);
}

/// The 2026-07-28 (stateless) revision: the Python 2.x client in its default `auto` mode
/// discovers the mcp 2.x server through Tollgate and skips `initialize`. Allowed calls only.
#[test]
fn fastmcp2_stateless_revision_allowed_calls() {
    setup(POLICIES);
    let steps = vec![
        json!({"op": "list_tools"}),
        call("add", json!({"a": 2, "b": 3})),
        call("send_message", json!({"to": "+15550001", "body": "one"})),
    ];
    let run = drive(
        Client::Py2,
        &tollgate("twilio.yaml", fastmcp2()),
        &scenario(steps),
    );
    assert_eq!(run.out["protocol_version"], "2026-07-28", "{run}");
    assert_eq!(run.out["discover"], true, "{run}");
    assert_eq!(run.out["server_info"]["name"], "tollgate-fastmcp2", "{run}");
    assert_eq!(
        run.step(0)["tools"],
        json!([
            "add",
            "send_message",
            "delete_record",
            "wait",
            "change_tools"
        ]),
        "{run}"
    );
    let add = run.result(1);
    assert_eq!(text(add), "5", "{run}");
    assert_eq!(add["structuredContent"], json!({"result": 5}), "{run}");
    assert_eq!(add["resultType"], "complete", "{run}");
    assert_eq!(text(run.result(2)), "sent to +15550001: one", "{run}");
    assert_eq!(run.out["stream_errors"], json!([]), "{run}");
}

/// The same over 2026-07-28 with Tollgate's own answers: denials, the rate limit, validation.
/// The 2026-07-28 schema requires `resultType` in every result, so Tollgate's denials carry it
/// on such requests; without it the mcp 2.x client rejects each denial with a ValidationError
/// instead of showing the agent the reason.
#[test]
fn fastmcp2_stateless_revision_denials() {
    setup(POLICIES);
    let run = drive_in_one_minute(
        Client::Py2,
        &tollgate("twilio.yaml", fastmcp2()),
        &scenario(messaging_steps()),
    );
    assert_eq!(run.out["protocol_version"], "2026-07-28", "{run}");
    assert_eq!(run.out["discover"], true, "{run}");
    assert_messaging(&run);
    for i in [3, 5, 6] {
        assert_eq!(run.result(i)["resultType"], "complete", "{run}");
    }
}

/// `default: deny`: only the tools the policy names may be called.
#[test]
fn default_deny_policy() {
    setup(POLICIES);
    let run = drive(
        Client::Py1,
        &tollgate("default_deny.yaml", server_everything()),
        &scenario(vec![
            call("echo", json!({"message": "hi"})),
            call("get-sum", json!({"a": 2, "b": 3})),
        ]),
    );
    assert_eq!(
        run.result(0),
        &json!({"content": [{"type": "text", "text": "Echo: hi"}], "isError": false}),
        "{run}"
    );
    assert_denial(
        run.result(1),
        "denied",
        "default",
        "Denied by policy: the tool `get-sum` is not allowed by this policy (default: deny)",
    );
}

/// `subscriptions/listen` (2026-07-28) over stdio: the listen stream's events pass through.
#[test]
fn fastmcp2_subscriptions_listen_passes_through() {
    setup(POLICIES);
    let steps = vec![json!({
        "op": "listen_tools",
        "then": call("change_tools", json!({})),
        "wait": 10,
    })];
    let run = drive(
        Client::Py2,
        &tollgate("twilio.yaml", fastmcp2()),
        &scenario(steps),
    );
    let step = run.step(0);
    assert_eq!(step["honored"], json!({"toolsListChanged": true}), "{run}");
    assert_eq!(text(&step["then"]["result"]), "changed", "{run}");
    assert_eq!(step["event"], "ToolsListChanged", "{run}");
}

/// With an allow-all policy a client on stdio cannot tell Tollgate from the server it runs:
/// `differential_stdio.py` writes one corpus of lines (the handshake, every method family,
/// unknown methods and tools, invalid params, string ids, notifications, a batch, the stateless
/// revision's requests) to the server directly and through `tollgate run`, and compares every
/// message that comes back, for the Python SDK 1.x and 2.x servers and server-everything.
///
/// Three lines differ, on purpose: Tollgate answers every line it cannot read, where these
/// servers stay silent or only log (a malformed line is never forwarded, so a lenient parser
/// cannot read a call into it; a line without a method gets -32600 rather than no answer), and
/// a `tools/call` it cannot check (no tool name) is refused by Tollgate in its own words, never
/// forwarded.
#[test]
fn over_stdio_tollgate_answers_as_the_server_does() {
    setup(&["allow_all.yaml"]);
    let allow = crate::e2e::policy_path("allow_all.yaml");
    for server in [fastmcp1(), fastmcp2(), server_everything()] {
        let mut through = vec![
            env!("CARGO_BIN_EXE_tollgate").to_string(),
            "run".into(),
            "--state".into(),
            "memory".into(),
            "--policy".into(),
            allow.clone(),
            "--".into(),
        ];
        through.extend(server.iter().cloned());
        let out = std::process::Command::new(crate::e2e::peers().join(".env/py2/bin/python"))
            .arg(crate::e2e::peers().join("clients/differential_stdio.py"))
            .args(["--direct", &json!(server).to_string()])
            .args(["--through", &json!(through).to_string()])
            .args(["--json", "--timeout", "5"])
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        let differing: Vec<&str> = report["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| !r["diffs"].as_array().unwrap().is_empty())
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            differing,
            [
                "tools/call without a name",
                "malformed JSON",
                "not JSON-RPC"
            ],
            "{server:?}: {report:#}"
        );
    }
}
