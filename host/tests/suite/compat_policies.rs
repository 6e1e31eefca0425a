//! Policy files from other MCP proxies load as they are and decide calls as they would: Intercept's
//! YAML and PolicyLayer's JSON (format detected), decided through the chain with the real
//! built-in plugins; plus the two seed documents and the mistakes each format reports.

use crate::e2e::repo;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tollgate::chain::{Chain, ChainError, Decision, Denial, ServerOutcome};
use tollgate::config::{self, DefaultAction, Format, Policy};
use tollgate::engine::{CallInput, CodeCache, EngineConfig, PolicyEngine};
use tollgate::state::memory::MemoryStore;

const GUESTS: &str = env!("TOLLGATE_GUEST_DIR");

fn parse(text: &str) -> Policy {
    config::parse(text, Path::new(GUESTS)).expect("test policy parses")
}

async fn try_chain(policy: &Policy) -> Result<Chain, ChainError> {
    // Compiled code is cached under cargo's per-target test directory: a debug host compiles the
    // built-in components slowly, and every test loads them.
    let cache = CodeCache::new(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("code-cache"));
    let engine = PolicyEngine::new(EngineConfig {
        cache: Some(cache),
        ..EngineConfig::default()
    })
    .unwrap();
    Chain::load(policy, &engine, Arc::new(MemoryStore::new()), "test").await
}

async fn chain(policy: &Policy) -> Chain {
    try_chain(policy).await.expect("chain loads")
}

fn call_as(tool: &str, args: &str, caller: &str) -> CallInput {
    CallInput {
        tool: tool.into(),
        arguments: args.into(),
        server: "test".into(),
        caller: caller.into(),
        metadata: vec![],
    }
}

async fn decide_as(chain: &Chain, tool: &str, args: &str, caller: &str) -> Result<(), Denial> {
    match chain.decide(call_as(tool, args, caller)).await {
        Decision::Allow { ticket, .. } => {
            chain.settle(ticket, ServerOutcome::Success).await;
            Ok(())
        }
        Decision::Deny(d) => Err(d),
        other @ (Decision::AskClient(_) | Decision::Wait(_)) => {
            panic!("decide never asks in band or holds a call: {other:?}")
        }
        Decision::Unknown => Err(Denial {
            reason: "unknown tool".into(),
            code: "unknown".into(),
            rule: "hide".into(),
            plugin: String::new(),
            retry_after_ms: None,
            deny_as: config::DenyAs::Error,
            approval: None,
        }),
    }
}

async fn allowed(chain: &Chain, tool: &str, args: &str) -> bool {
    decide_as(chain, tool, args, "anonymous").await.is_ok()
}

async fn denial(chain: &Chain, tool: &str, args: &str) -> Denial {
    decide_as(chain, tool, args, "anonymous")
        .await
        .expect_err("expected a denial")
}

/// Counter windows are calendar-aligned: start a counting test well inside one window, so that
/// its calls cannot straddle a boundary.
async fn well_inside_a_window(window_ms: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let left = window_ms - now % window_ms;
    if left < 10_000 {
        tokio::time::sleep(Duration::from_millis(left + 50)).await;
    }
}

#[tokio::test]
async fn the_native_seed_allows_30_then_rate_limits_the_31st() {
    let policy = parse("tools: {send_conversation_message: {rules: [{action: allow, rate_limit: {max: 30, window: 60}}]}}\n");
    assert_eq!(policy.format, Format::Native);
    well_inside_a_window(60_000).await;
    let c = chain(&policy).await;
    for i in 0..30 {
        assert!(
            allowed(&c, "send_conversation_message", "{}").await,
            "call {i}"
        );
    }
    let d = denial(&c, "send_conversation_message", "{}").await;
    assert_eq!(d.code, "rate_limited");
    assert!(d.retry_after_ms.is_some_and(|ms| ms <= 60_000));
}

#[tokio::test]
async fn the_policylayer_seed_limits_each_grant_and_denies_unnamed_tools() {
    let policy = parse(
        r#"{"version":"1","default":"deny","tools":{"create_conversation":{"limits":[{"counter":"create_conversation_rate","window":"minute","max":30,"scope":"grant"}]}}}"#,
    );
    assert_eq!(policy.format, Format::PolicyLayer);
    assert_eq!(policy.default, DefaultAction::Deny);
    assert_eq!(policy.tools.len(), 1);
    assert_eq!(
        policy.tools[0].rules[0].config,
        json!({"counter": "create_conversation_rate", "max": 30, "window_ms": 60000,
               "algorithm": "fixed-window", "scope": "caller"})
    );
    well_inside_a_window(60_000).await;
    let c = chain(&policy).await;
    for i in 0..30 {
        assert!(
            decide_as(&c, "create_conversation", "{}", "grant-a")
                .await
                .is_ok(),
            "call {i}"
        );
    }
    let d = decide_as(&c, "create_conversation", "{}", "grant-a")
        .await
        .unwrap_err();
    assert_eq!(
        (d.code.as_str(), d.rule.as_str()),
        ("rate_limited", "tools.create_conversation.limits[0]")
    );
    assert!(
        d.reason.starts_with("rate limit of 30 per minute reached"),
        "{}",
        d.reason
    );
    assert!(
        decide_as(&c, "create_conversation", "{}", "grant-b")
            .await
            .is_ok(),
        "another grant has its own quota"
    );
    let d = decide_as(&c, "list_conversations", "{}", "grant-b")
        .await
        .unwrap_err();
    assert_eq!((d.code.as_str(), d.rule.as_str()), ("denied", "default"));
}

#[tokio::test]
async fn the_intercept_example_loads_as_intercept_and_decides_like_it() {
    let policy = config::load(&repo().join("policies/compat/intercept-example.yaml")).unwrap();
    assert_eq!(policy.format, Format::Intercept);
    assert_eq!(policy.format.to_string(), "Intercept policy");
    assert_eq!(policy.default, DefaultAction::Allow);
    assert_eq!(
        policy.hide,
        vec!["create_incoming_phone_number", "delete_account"]
    );
    let shape: Vec<(String, Vec<(String, String)>)> = policy
        .tools
        .iter()
        .map(|t| {
            (
                t.pattern.clone(),
                t.rules
                    .iter()
                    .map(|r| (r.label.clone(), r.plugin.clone()))
                    .collect(),
            )
        })
        .collect();
    let pair = |l: &str, p: &str| (l.to_string(), p.to_string());
    assert_eq!(
        shape,
        vec![
            (
                "send_message".into(),
                vec![
                    pair("e164 recipient", "validate"),
                    pair("hourly message limit", "rate-limit")
                ]
            ),
            (
                "create_call".into(),
                vec![
                    pair("daily call minutes", "validate"),
                    pair("daily call minutes", "rate-limit")
                ]
            ),
            (
                "update_call".into(),
                vec![pair("hourly call updates", "rate-limit")]
            ),
            (
                "delete_message".into(),
                vec![pair("block message deletion", "deny")]
            ),
        ]
    );
    assert_eq!(
        policy.tools[1].rules[1].config,
        json!({"counter": "create_call.daily_minutes", "max": 120, "window_ms": 86400000,
               "algorithm": "fixed-window", "scope": "global", "cost_from": "args.max_minutes",
               "message": "Daily budget of 120 call minutes reached."})
    );
    assert_eq!(
        policy.all_tools[0].config["counter"],
        "_global.calls_per_minute"
    );

    well_inside_a_window(60_000).await;
    let c = chain(&policy).await;
    // conditions: the call passes only when all hold; on_deny is what the agent reads.
    assert!(
        allowed(
            &c,
            "send_message",
            r#"{"to": "+15551234567", "body": "hi"}"#
        )
        .await
    );
    let d = denial(&c, "send_message", r#"{"to": "555-1234"}"#).await;
    assert_eq!(
        (d.code.as_str(), d.reason.as_str(), d.rule.as_str()),
        (
            "invalid_arguments",
            "Send to a valid E.164 number such as +15551234567.",
            "e164 recipient"
        )
    );
    assert!(denial(&c, "send_message", r#"{"to": "+15005550009"}"#)
        .await
        .reason
        .contains("E.164"));
    assert!(
        denial(&c, "send_message", "{}").await.code == "invalid_arguments",
        "a missing argument satisfies no condition"
    );
    // action: deny
    let d = denial(&c, "delete_message", r#"{"sid": "SM1"}"#).await;
    assert_eq!(
        (d.code.as_str(), d.reason.as_str()),
        (
            "denied",
            "Deleting messages is not permitted via AI agents."
        )
    );
    // state with increment_from: the post-increment total may reach 120, not pass it.
    assert!(allowed(&c, "create_call", r#"{"to": "+1555", "max_minutes": 100}"#).await);
    let d = denial(&c, "create_call", r#"{"to": "+1555", "max_minutes": 21}"#).await;
    assert_eq!(
        (d.code.as_str(), d.reason.as_str()),
        ("rate_limited", "Daily budget of 120 call minutes reached.")
    );
    assert!(allowed(&c, "create_call", r#"{"to": "+1555", "max_minutes": 20}"#).await);
    assert_eq!(
        denial(&c, "create_call", r#"{"to": "+1555"}"#).await.code,
        "invalid_arguments",
        "Intercept refuses a call whose increment argument is missing"
    );
    // rate_limit shorthand without on_deny: Intercept's generated message.
    for _ in 0..10 {
        assert!(allowed(&c, "update_call", "{}").await);
    }
    let d = denial(&c, "update_call", "{}").await;
    assert_eq!(
        (d.code.as_str(), d.reason.as_str()),
        (
            "rate_limited",
            "Rate limit of 10 per hour reached. Try again later."
        )
    );
    // hidden tools are answered as unknown (Tollgate's answer, not Intercept's denial text).
    assert!(matches!(
        c.decide(call_as("delete_account", "{}", "anonymous")).await,
        Decision::Unknown
    ));
    // The "*" counter is shared by every tool: 60 calls a minute in all (the 13 allowed above included).
    let mut granted = 13;
    while allowed(&c, "get_message", "{}").await {
        granted += 1;
        assert!(granted <= 60, "the global limit holds");
    }
    assert_eq!(granted, 60);
    let d = denial(&c, "list_calls", "{}").await;
    assert_eq!(d.reason, "Rate limit: at most 60 tool calls per minute.");
}

#[tokio::test]
async fn the_policylayer_example_loads_as_policylayer_and_decides_like_it() {
    let policy = config::load(&repo().join("policies/compat/policylayer-example.json")).unwrap();
    assert_eq!(policy.format, Format::PolicyLayer);
    assert_eq!(policy.format.to_string(), "PolicyLayer policy");
    assert_eq!(policy.default, DefaultAction::Deny);
    assert_eq!(policy.hide, vec!["create_incoming_phone_number"]);
    let patterns: Vec<&str> = policy.tools.iter().map(|t| t.pattern.as_str()).collect();
    assert_eq!(
        patterns,
        [
            "list_messages",
            "create_conversation",
            "send_message",
            "update_call"
        ]
    );
    assert!(policy.tools[0].rules.is_empty());
    let send: Vec<(&str, &str)> = policy.tools[2]
        .rules
        .iter()
        .map(|r| (r.label.as_str(), r.plugin.as_str()))
        .collect();
    assert_eq!(
        send,
        [
            ("tools.send_message.require", "validate"),
            ("tools.send_message.deny_if[0]", "deny"),
            ("tools.send_message.limits[0]", "rate-limit")
        ]
    );
    assert_eq!(
        policy.all_tools[0].config,
        json!({"counter": "all_calls", "max": 200, "window_ms": 3600000,
               "algorithm": "fixed-window", "scope": "caller"})
    );

    let c = chain(&policy).await;
    assert!(allowed(&c, "list_messages", "{}").await, "listed with {{}}");
    assert!(
        allowed(
            &c,
            "send_message",
            r#"{"to": "+15551234567", "body": "hi"}"#
        )
        .await
    );
    let d = denial(&c, "send_message", r#"{"to": "+15551234567"}"#).await;
    assert_eq!(
        (d.code.as_str(), d.reason.as_str()),
        (
            "invalid_arguments",
            "invalid arguments for `send_message`: `body` must be present"
        )
    );
    let d = denial(
        &c,
        "send_message",
        r#"{"to": "+19005550100", "body": "hi"}"#,
    )
    .await;
    assert_eq!(
        (d.code.as_str(), d.reason.as_str(), d.rule.as_str()),
        (
            "denied",
            "Premium-rate numbers are blocked; send to a regular number.",
            "tools.send_message.deny_if[0]"
        )
    );
    assert!(allowed(&c, "update_call", r#"{"status": "completed"}"#).await);
    assert!(
        allowed(&c, "update_call", "{}").await,
        "deny_if needs its conditions"
    );
    assert_eq!(
        denial(&c, "update_call", r#"{"status": "canceled"}"#)
            .await
            .reason,
        "Cancelling calls needs a human."
    );
    assert_eq!(denial(&c, "delete_message", "{}").await.rule, "default");
    assert!(matches!(
        c.decide(call_as("create_incoming_phone_number", "{}", "anonymous"))
            .await,
        Decision::Unknown
    ));
}

#[test]
fn tollgate_check_names_the_format_it_read() {
    for (file, format) in [
        ("policies/compat/intercept-example.yaml", "Intercept policy"),
        (
            "policies/compat/policylayer-example.json",
            "PolicyLayer policy",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("check")
            .arg(repo().join(file))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout
                .lines()
                .next()
                .is_some_and(|l| l.ends_with(&format!(": OK ({format})"))),
            "{stdout}"
        );
    }
}

fn load_error(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let e = config::load(&path).unwrap_err().to_string();
    let prefix = format!("{}: ", path.display());
    assert!(e.starts_with(&prefix), "{e}");
    e[prefix.len()..].to_string()
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let intercept = "version: \"1\"\ntools:\n  create_issue:\n    rules:\n      - name: hourly\n        rate_limit: 5/hour\n        on_deni: \"slow down\"\n";
    assert_eq!(
        load_error("intercept.yaml", intercept),
        "tools.create_issue.rules[0]: unknown field `on_deni`, expected one of `name`, `action`, `rate_limit`, `conditions`, `on_deny`, `state`, `approval_timeout` at line 7 column 9"
    );
    let policylayer = "{\n  \"version\": \"1\",\n  \"default\": \"deny\",\n  \"tools\": {\n    \"create_conversation\": {\n      \"limits\": [{\"counter\": \"c\", \"window\": \"minute\", \"max\": 30, \"scope\": \"grant\", \"burst\": 5}]\n    }\n  }\n}\n";
    let e = load_error("policylayer.json", policylayer);
    assert!(
        e.starts_with("tools.create_conversation.limits[0]: unknown field `burst`, expected one of `counter`, `window`, `max`, `scope` at line 6"),
        "{e}"
    );
}

#[test]
fn bad_windows_are_refused() {
    let intercept = "version: \"1\"\ntools:\n  create_issue:\n    rules:\n      - name: hourly\n        rate_limit: 5/fortnight\n";
    assert_eq!(
        load_error("intercept.yaml", intercept),
        "tools.create_issue.rules[0]: rate_limit window must be \"minute\", \"hour\", or \"day\", got \"fortnight\""
    );
    let state = "version: \"1\"\ntools:\n  t:\n    rules:\n      - name: daily\n        conditions: [{path: state.t.n, op: lte, value: 5}]\n        state: {counter: n, window: week}\n";
    let e = load_error("intercept.yaml", state);
    assert!(
        e.starts_with("tools.t.rules[0].state.window: unknown variant `week`, expected one of `minute`, `hour`, `day` at line 7"),
        "{e}"
    );
    let policylayer = r#"{"version": "1", "default": "allow", "tools": {"x": {"limits": [{"counter": "c", "window": "60s", "max": 3}]}}}"#;
    let e = load_error("policylayer.json", policylayer);
    assert!(
        e.contains("unknown variant `60s`, expected one of `minute`, `hour`, `day` at line 1"),
        "{e}"
    );
}

#[test]
fn counter_conditions_that_cannot_be_expressed_are_refused() {
    let gt = "version: \"1\"\ntools:\n  t:\n    rules:\n      - name: odd\n        conditions: [{path: state.t.n, op: gte, value: 5}]\n        state: {counter: n, window: day}\n";
    assert_eq!(
        load_error("intercept.yaml", gt),
        "tools.t.rules[0].conditions[0]: a counter condition must be `lt` or `lte` (a ceiling on the count), got `gte`; other comparisons on counters cannot be expressed"
    );
    let elsewhere = "version: \"1\"\ntools:\n  a:\n    rules:\n      - name: count\n        conditions: [{path: state.a.n, op: lte, value: 5}]\n        state: {counter: n, window: day}\n  b:\n    rules:\n      - name: peek\n        conditions: [{path: state.a.n, op: lt, value: 3}]\n";
    assert!(load_error("intercept.yaml", elsewhere)
        .starts_with("tools.b.rules[0].conditions[0]: `state.a.n` reads a counter that this rule's `state` block does not count"));
}

#[tokio::test]
async fn a_bad_regex_is_refused_when_the_plugins_load() {
    for text in [
        "version: \"1\"\ntools:\n  send:\n    rules:\n      - name: recipient\n        conditions: [{path: args.to, op: regex, value: \"^(+1\"}]\n",
        r#"{"version": "1", "default": "allow", "tools": {"send": {"deny_if": [{"conditions": [{"path": "args.to", "op": "regex", "value": "^(+1"}]}]}}}"#,
    ] {
        let policy = parse(text);
        let Err(e) = try_chain(&policy).await else {
            panic!("a bad regex loads: {text}")
        };
        let e = e.to_string();
        assert!(
            e.contains("invalid regular expression") && e.contains("args.to regex"),
            "{e}"
        );
    }
}
