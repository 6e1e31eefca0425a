//! The decision chain with the real built-in plugins, loaded from policy text: each rule kind's
//! verdicts, rule order, refunds, default-deny, hiding, and a failing third-party plugin.

use std::path::Path;
use std::sync::Arc;
use tollgate::chain::{Chain, Decision, Denial, ServerOutcome};
use tollgate::config::{parse_native, DenyAs};
use tollgate::engine::{CallInput, CodeCache, EngineConfig, PolicyEngine};
use tollgate::state::memory::MemoryStore;
use tollgate::state::now_ms;

const GUESTS: &str = env!("TOLLGATE_GUEST_DIR");

async fn chain(policy: &str) -> Chain {
    chain_on(policy, Arc::new(MemoryStore::new())).await
}

async fn chain_on(policy: &str, store: Arc<MemoryStore>) -> Chain {
    let policy = parse_native(policy, Path::new(GUESTS)).expect("test policy parses");
    let engine = PolicyEngine::new(engine_config()).unwrap();
    Chain::load(&policy, &engine, store, "test")
        .await
        .expect("chain loads")
}

/// Compiled code is cached under cargo's per-target test directory: a debug host compiles the
/// built-in components slowly, and every test loads them.
fn engine_config() -> EngineConfig {
    let cache =
        CodeCache::new(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("code-cache"));
    EngineConfig {
        cache: Some(cache),
        ..EngineConfig::default()
    }
}

fn call(tool: &str, args: &str) -> CallInput {
    CallInput {
        tool: tool.into(),
        arguments: args.into(),
        server: "test".into(),
        caller: "anonymous".into(),
        metadata: vec![],
    }
}

async fn denial(chain: &Chain, tool: &str, args: &str) -> Denial {
    match chain.decide(call(tool, args)).await {
        Decision::Deny(d) => d,
        other => panic!("expected a denial of {tool} {args}, got {other:?}"),
    }
}

async fn allowed(chain: &Chain, tool: &str, args: &str) -> bool {
    match chain.decide(call(tool, args)).await {
        Decision::Allow { ticket, .. } => {
            chain.settle(ticket, ServerOutcome::Success).await;
            true
        }
        _ => false,
    }
}

#[tokio::test]
async fn deny_rules_deny_always_or_when_their_conditions_hold() {
    let c = chain(
        r#"
version: 1
tools:
  "delete_*":
    rules: [{ action: deny, reason: "ask a human" }]
  send:
    rules:
      - action: deny
        reason: no premium numbers
        deny_as: error
        when: [{ path: args.to, op: regex, value: "^\\+1900" }]
"#,
    )
    .await;
    let d = denial(&c, "delete_file", "{}").await;
    assert_eq!(
        (d.code.as_str(), d.reason.as_str(), d.rule.as_str()),
        ("denied", "ask a human", "tools.delete_*.rules[0]")
    );
    assert_eq!(d.deny_as, DenyAs::Result);
    let d = denial(&c, "send", r#"{"to":"+1900123"}"#).await;
    assert_eq!(
        (d.reason.as_str(), d.deny_as),
        ("no premium numbers", DenyAs::Error)
    );
    assert!(allowed(&c, "send", r#"{"to":"+1555123"}"#).await);
    assert!(allowed(&c, "other", "{}").await, "default: allow");
}

#[tokio::test]
async fn validate_rules_name_the_failing_argument() {
    let c = chain(
        r#"
version: 1
tools:
  create:
    rules:
      - validate:
          schema: { type: object, required: [name], properties: { name: { type: string, minLength: 3 } } }
          require: [{ path: args.count, op: lte, value: 10 }]
"#,
    )
    .await;
    assert!(allowed(&c, "create", r#"{"name":"abc","count":10}"#).await);
    let d = denial(&c, "create", r#"{"name":"ab","count":11}"#).await;
    assert_eq!(d.code, "invalid_arguments");
    assert_eq!(
        d.reason,
        "invalid arguments for `create`: argument `name`: \"ab\" is shorter than 3 characters; `count` must be a number at most 10"
    );
}

#[tokio::test]
async fn the_call_after_the_limit_is_rate_limited_and_failures_are_refunded() {
    let c = chain("version: 1\ntools:\n  send:\n    rules:\n      - action: allow\n        rate_limit: { max: 2, window: 60 }\n").await;
    assert!(allowed(&c, "send", "{}").await);
    // A call the server fails does not count.
    let Decision::Allow { ticket, .. } = c.decide(call("send", "{}")).await else {
        panic!()
    };
    c.settle(ticket, ServerOutcome::Failed).await;
    // Nor does one whose result has isError (refund_on_error_result defaults to true).
    let Decision::Allow { ticket, .. } = c.decide(call("send", "{}")).await else {
        panic!()
    };
    c.settle(ticket, ServerOutcome::ErrorResult).await;
    assert!(allowed(&c, "send", "{}").await);
    let d = denial(&c, "send", "{}").await;
    assert_eq!(d.code, "rate_limited");
    let retry = d.retry_after_ms.expect("a rate limit says when to retry");
    assert!(retry > 0 && retry <= 60_000, "{retry}");
    assert!(
        d.reason
            .starts_with("rate limit of 2 per minute reached; try again in "),
        "{}",
        d.reason
    );
}

#[tokio::test]
async fn error_results_can_be_made_to_count() {
    let c = chain("version: 1\ntools:\n  send:\n    rules:\n      - rate_limit: 1/minute\n        refund_on_error_result: false\n").await;
    let Decision::Allow { ticket, .. } = c.decide(call("send", "{}")).await else {
        panic!()
    };
    c.settle(ticket, ServerOutcome::ErrorResult).await;
    assert_eq!(denial(&c, "send", "{}").await.code, "rate_limited");
}

#[tokio::test]
async fn a_later_denial_refunds_what_earlier_rules_reserved() {
    let c = chain(
        r#"
version: 1
tools:
  send:
    rules:
      - rate_limit: 1/minute
      - action: deny
        reason: no empty bodies
        when: [{ path: args.body, op: exists, value: false }]
"#,
    )
    .await;
    assert_eq!(denial(&c, "send", "{}").await.reason, "no empty bodies");
    assert!(
        allowed(&c, "send", r#"{"body":"x"}"#).await,
        "the denied call's reservation was refunded"
    );
}

#[tokio::test]
async fn star_rules_run_after_a_tools_own_and_default_deny_blocks_unnamed_tools() {
    let c = chain(
        r#"
version: 1
default: deny
hide: [secret_tool]
tools:
  read: { rules: [] }
  write:
    rules: [{ validate: { require: [{ path: args.path, op: exists }] } }]
  "*":
    rules: [{ action: deny, reason: "no writes to /etc", when: [{ path: args.path, op: regex, value: "^/etc" }] }]
"#,
    )
    .await;
    assert!(
        allowed(&c, "read", "{}").await,
        "a listed tool with no rules is allowed"
    );
    let d = denial(&c, "unlisted", "{}").await;
    assert_eq!(
        (d.rule.as_str(), d.reason.as_str()),
        (
            "default",
            "the tool `unlisted` is not allowed by this policy (default: deny)"
        )
    );
    assert_eq!(
        denial(&c, "write", "{}").await.code,
        "invalid_arguments",
        "own rules first"
    );
    assert_eq!(
        denial(&c, "write", r#"{"path":"/etc/x"}"#).await.reason,
        "no writes to /etc",
        "then the \"*\" rules"
    );
    assert!(matches!(
        c.decide(call("secret_tool", "{}")).await,
        Decision::Unknown
    ));
    assert!(!c.visible("secret_tool", "anonymous").await);
    assert!(c.visible("read", "anonymous").await);
}

#[tokio::test]
async fn a_failing_plugin_denies_with_policy_error_and_the_chain_keeps_serving() {
    let c = chain(
        r#"
version: 1
plugins:
  flaky:
    source: tollgate_fixture_misbehave.wasm
    config: { mode: trap }
tools:
  "*":
    rules: [{ plugin: flaky }]
"#,
    )
    .await;
    let d = denial(&c, "anything", "{}").await;
    assert_eq!(d.code, "policy_error");
    assert_eq!(
        d.reason,
        "plugin `flaky` trapped: wasm trap: wasm `unreachable` instruction executed"
    );
    assert!(
        allowed(&c, "ok", "{}").await,
        "the fixture allows `ok`; the chain still serves"
    );
}

#[tokio::test]
async fn a_pinned_digest_that_does_not_match_refuses_the_policy() {
    let policy = parse_native(
        "version: 1\nplugins:\n  p: { source: tollgate_fixture_misbehave.wasm, sha256: \"00\", config: { mode: allow } }\ntools:\n  x: { rules: [{ plugin: p }] }\n",
        Path::new(GUESTS),
    )
    .unwrap();
    let engine = PolicyEngine::new(engine_config()).unwrap();
    let err = Chain::load(&policy, &engine, Arc::new(MemoryStore::new()), "t")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("rule tools.x.rules[0]: plugin `p`: ")
            && err.contains("tollgate_fixture_misbehave.wasm: the file has sha256 "),
        "{err}"
    );
    assert!(err.ends_with(", but the policy file says 00"), "{err}");
}

/// `tools.tool_N` for N below `n`, each with three rules: a conditional deny, a schema and a
/// rate limit — the shape of a reviewed policy for a large server.
fn policy_with_rules_on(n: usize) -> String {
    let mut p = String::from("version: 1\ntools:\n");
    for i in 0..n {
        p.push_str(&format!(
            "  tool_{i}:\n    rules:\n      - action: deny\n        reason: \"tool {i} refuses drafts\"\n        when: [{{ path: args.title, op: regex, value: \"^draft-{i}\" }}]\n      - validate: {{ schema: {{ type: object, required: [title], properties: {{ title: {{ type: string, maxLength: {} }} }} }} }}\n      - action: allow\n        rate_limit: {{ max: 2, window: 60 }}\n",
            20 + i % 7
        ));
    }
    p
}

#[tokio::test]
async fn a_policy_with_three_rules_on_each_of_a_thousand_tools_loads_and_decides() {
    let c = chain(&policy_with_rules_on(1000)).await;
    // One plugin (and instance pool) per rule kind, not one per rule.
    assert_eq!(c.plugins(), 3);
    for i in [0, 499, 999] {
        let tool = format!("tool_{i}");
        let d = denial(&c, &tool, &format!(r#"{{"title":"draft-{i}"}}"#)).await;
        assert_eq!(
            (d.reason.as_str(), d.rule.as_str()),
            (
                format!("tool {i} refuses drafts").as_str(),
                format!("tools.{tool}.rules[0]").as_str()
            )
        );
        let d = denial(&c, &tool, "{}").await;
        assert_eq!(d.code, "invalid_arguments");
        assert_eq!(d.rule, format!("tools.{tool}.rules[1]"));
        assert!(allowed(&c, &tool, r#"{"title":"ok"}"#).await);
        assert!(allowed(&c, &tool, r#"{"title":"ok"}"#).await);
        // Each rule keeps its own configuration in the shared instance: its own counter.
        assert_eq!(
            denial(&c, &tool, r#"{"title":"ok"}"#).await.code,
            "rate_limited"
        );
    }
}

#[tokio::test]
async fn a_rule_whose_configuration_its_plugin_rejects_is_named() {
    let mut p = policy_with_rules_on(3);
    p.push_str("  broken:\n    rules:\n      - validate: { schema: { type: 12 } }\n");
    let policy = parse_native(&p, Path::new(GUESTS)).unwrap();
    let engine = PolicyEngine::new(engine_config()).unwrap();
    let err = Chain::load(&policy, &engine, Arc::new(MemoryStore::new()), "t")
        .await
        .err()
        .expect("a schema that is not a JSON Schema refuses the policy")
        .to_string();
    assert!(
        err.starts_with("rule tools.broken.rules[0]: plugin `validate` rejected its configuration: `schema` is not a valid JSON Schema: "),
        "{err}"
    );
}

const V0_1_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/v0.1/misbehave.wasm"
);

#[tokio::test]
async fn a_0_1_plugin_built_before_0_2_and_0_2_plugins_decide_in_one_policy() {
    let c = chain(&format!(
        r#"
version: 1
plugins:
  old: {{ source: "{V0_1_FIXTURE}", config: {{ mode: trap-when-asked }} }}
  new: {{ source: tollgate_fixture_misbehave.wasm, config: {{ mode: trap-when-asked }} }}
tools:
  send:
    rules:
      - plugin: old
      - plugin: new
      - action: deny
        reason: "no sending to strangers"
        when: [{{ path: args.to, op: eq, value: stranger }}]
"#
    ))
    .await;
    assert!(allowed(&c, "send", r#"{"to":"friend"}"#).await);
    assert_eq!(
        denial(&c, "send", r#"{"to":"stranger"}"#).await.reason,
        "no sending to strangers"
    );
    // Each version's failures still fail closed, naming the plugin, and each recovers.
    let d = denial(&c, "send", r#"{"trap":true}"#).await;
    assert_eq!(
        (d.code.as_str(), d.plugin.as_str()),
        ("policy_error", "old")
    );
    assert!(allowed(&c, "send", r#"{"to":"friend"}"#).await);
}

#[tokio::test]
async fn a_rule_that_traps_costs_its_own_rebuild_not_the_other_rules_of_its_plugin() {
    let c = chain(
        r#"
version: 1
plugins:
  fixture: { source: tollgate_fixture_misbehave.wasm, config: { mode: allow } }
tools:
  boom: { rules: [{ plugin: fixture, config: { mode: trap } }] }
  fine: { rules: [{ plugin: fixture }] }
"#,
    )
    .await;
    assert_eq!(c.plugins(), 1, "both rules share the plugin's instances");
    for _ in 0..3 {
        let d = denial(&c, "boom", "{}").await;
        assert_eq!(
            (d.reason.as_str(), d.rule.as_str()),
            (
                "plugin `fixture` trapped: wasm trap: wasm `unreachable` instruction executed",
                "tools.boom.rules[0]"
            )
        );
        assert!(
            allowed(&c, "fine", "{}").await,
            "the other rule serves the next call"
        );
    }
}

#[tokio::test]
async fn an_ask_holds_exactly_that_call_until_a_person_approves_it_and_then_lets_it_through_once() {
    let store = Arc::new(MemoryStore::new());
    let c = chain_on(
        r#"
version: 1
plugins:
  asker: { source: tollgate_fixture_misbehave.wasm, config: { mode: ask } }
tools:
  transfer:
    rules:
      - action: ask
        message: "Transfer {args.amount} to {args.to}?"
        when: [{ path: args.amount, op: gt, value: 100 }]
        timeout: 120
  wire: { rules: [{ plugin: asker }] }
"#,
        store.clone(),
    )
    .await;
    let big = r#"{"amount": 250, "to": "ACME"}"#;
    assert!(allowed(&c, "transfer", r#"{"amount": 50, "to": "ACME"}"#).await);
    let d = denial(&c, "transfer", big).await;
    let id = d.approval.clone().expect("the denial names the request");
    assert_eq!(
        (d.code.as_str(), d.retry_after_ms, d.reason.clone()),
        ("approval_pending", Some(10_000), format!("Transfer 250 to ACME? This call waits for a person's approval (request {id}, open for 120 more seconds). Call again with the same arguments once it is approved; other arguments need an approval of their own."))
    );
    tollgate::approval::decide(&*store, &id, true, "ops", "operator", now_ms())
        .await
        .unwrap();
    let other = denial(&c, "transfer", r#"{"amount": 251, "to": "ACME"}"#).await;
    assert_eq!(other.code, "approval_pending");
    assert_ne!(
        other.approval,
        Some(id.clone()),
        "other arguments, another request"
    );
    match c
        .decide(call("transfer", r#"{"to":"ACME","amount":250}"#))
        .await
    {
        Decision::Allow { approvals, .. } => assert_eq!(approvals[0].id, id),
        other => panic!("the approved call goes through, got {other:?}"),
    }
    let again = denial(&c, "transfer", big).await;
    assert_eq!(again.code, "approval_pending", "an approval is used once");
    assert_ne!(again.approval, Some(id));
    let asked = denial(&c, "wire", "{}").await;
    assert_eq!(
        asked.code, "approval_pending",
        "a plugin's ask is held the same way"
    );
    assert!(
        asked
            .reason
            .starts_with("Run wire as asked? This call waits"),
        "{}",
        asked.reason
    );
}

/// An approval is used only when the whole chain lets the call through: a later rule's
/// refusal leaves it for the call that does go through.
#[tokio::test]
async fn a_later_rules_refusal_does_not_use_up_an_approval() {
    let store = Arc::new(MemoryStore::new());
    let c = chain_on(
        r#"
version: 1
tools:
  transfer:
    rules:
      - action: ask
        message: "Transfer?"
      - rate_limit: "1/minute"
"#,
        store.clone(),
    )
    .await;
    let id = denial(&c, "transfer", "{}").await.approval.unwrap();
    tollgate::approval::decide(&*store, &id, true, "ops", "operator", now_ms())
        .await
        .unwrap();
    let other = denial(&c, "transfer", r#"{"other": 1}"#).await;
    assert_eq!(
        other.code, "approval_pending",
        "another call's approval is not this one's"
    );
    // Use the only unit of the rate limit with another approved call first.
    let spend = denial(&c, "transfer", r#"{"spend": 1}"#)
        .await
        .approval
        .unwrap();
    tollgate::approval::decide(&*store, &spend, true, "ops", "operator", now_ms())
        .await
        .unwrap();
    assert!(allowed(&c, "transfer", r#"{"spend": 1}"#).await);
    let limited = denial(&c, "transfer", "{}").await;
    assert_eq!(limited.code, "rate_limited");
    let kept = tollgate::approval::get(&*store, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kept.state.name(),
        "approved",
        "the refused call did not use the approval"
    );
}

/// In band, the answer must be for exactly this call: a request state naming another call's
/// request (or none) is refused, and so is a client answer where the rule counts only operators.
/// A dry run asks nobody.
#[tokio::test]
async fn an_answer_for_another_call_is_refused_and_a_dry_run_asks_nobody() {
    use tollgate::chain::{ClientAnswer, InBand};
    let store = Arc::new(MemoryStore::new());
    let policy = r#"
version: 1
tools:
  transfer:
    rules:
      - action: ask
        message: "Transfer {args.amount}?"
        channels: [client]
"#;
    let c = chain_on(policy, store.clone()).await;
    let can_ask = InBand {
        can_ask: true,
        ..InBand::default()
    };
    let asked = match c
        .decide_in(call("transfer", r#"{"amount": 5}"#), &can_ask)
        .await
    {
        Decision::AskClient(q) => q,
        other => panic!("a client that can ask is asked, got {other:?}"),
    };
    assert_eq!(asked.message, "Transfer 5?");
    let answering = |id: &str| InBand {
        can_ask: true,
        answer: Some(ClientAnswer::Approved(id.into())),
        ..InBand::default()
    };
    for (args, id) in [
        (r#"{"amount": 500}"#, asked.approval.as_str()),
        (r#"{"amount": 5}"#, "ap-forged"),
    ] {
        match c.decide_in(call("transfer", args), &answering(id)).await {
            Decision::Deny(d) => assert_eq!(d.code, "approval_state_invalid", "{args} {id}"),
            other => panic!("{args} {id}: {other:?}"),
        }
    }
    assert!(matches!(
        c.decide_in(
            call("transfer", r#"{"amount": 5}"#),
            &answering(&asked.approval)
        )
        .await,
        Decision::Allow { .. }
    ));
    let unanswered = InBand {
        can_ask: true,
        answer: Some(ClientAnswer::TimedOut(asked.approval.clone())),
        ..InBand::default()
    };
    match c
        .decide_in(call("transfer", r#"{"amount": 5}"#), &unanswered)
        .await
    {
        Decision::Deny(d) => assert_eq!(d.code, "approval_expired"),
        other => panic!("a question nobody answered: {other:?}"),
    }
    let d = denial(&c, "transfer", r#"{"amount": 5}"#).await;
    assert_eq!(
        d.code, "approval_required",
        "a client that cannot ask, and no operator: {d:?}"
    );

    let mut dry = chain_on(policy, Arc::new(MemoryStore::new())).await;
    dry.set_dry_run(true);
    match dry.decide_in(call("transfer", "{}"), &can_ask).await {
        Decision::Allow { would_deny, .. } => {
            assert_eq!(would_deny[0].code, "approval_required");
            assert_eq!(would_deny[0].reason, "would ask a person: Transfer (none)?");
        }
        other => panic!("a dry run asks nobody: {other:?}"),
    }
}

#[tokio::test]
async fn a_result_a_rule_withholds_reaches_the_agent_as_its_denial() {
    let c = chain(
        r#"
version: 1
plugins:
  keeper: { source: tollgate_fixture_misbehave.wasm, config: { mode: withhold-result } }
tools:
  read: { rules: [{ plugin: keeper }] }
"#,
    )
    .await;
    let d = c
        .check_result(&call("read", "{}"), r#"{"content":[]}"#)
        .await
        .expect_err("the rule withholds every result");
    assert_eq!(
        (d.code.as_str(), d.reason.as_str(), d.rule.as_str()),
        (
            "withheld",
            "the result is withheld on purpose",
            "tools.read.rules[0]"
        )
    );
}

#[tokio::test]
async fn a_tools_own_entry_wins_over_globs_and_the_first_matching_glob_wins_over_later_ones() {
    let c = chain(
        r#"
version: 1
tools:
  "delete_*": { rules: [{ action: deny, reason: "first glob" }] }
  "delete_?ile": { rules: [{ action: deny, reason: "second glob" }] }
  delete_file: { rules: [] }
"#,
    )
    .await;
    assert!(
        allowed(&c, "delete_file", "{}").await,
        "its own entry, though listed last"
    );
    assert_eq!(denial(&c, "delete_pile", "{}").await.reason, "first glob");
}

/// Sections named by annotation apply to the tools the lock file says have it, after the tool's
/// own rules; under `default: deny` they count as naming the tool; `hide: ["@…"]` hides by
/// annotation (`fetch` says nothing of the open world: the specification's default is open).
/// A tool the lock does not know is selected by no annotation section.
#[tokio::test]
async fn annotation_sections_select_locked_tools_by_their_reviewed_annotations() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("t.pins.yaml");
    tollgate::pins::Lock::of(
        None,
        &[
            json!({"name": "read", "annotations": {"readOnlyHint": true, "openWorldHint": false}}),
            json!({"name": "write", "annotations": {"destructiveHint": true, "openWorldHint": false}}),
            json!({"name": "append", "annotations": {"destructiveHint": false, "openWorldHint": false}}),
            json!({"name": "fetch", "annotations": {"readOnlyHint": true}}),
            json!({"name": "own", "annotations": {"readOnlyHint": true, "openWorldHint": false}}),
        ],
    )
    .write(&lock)
    .unwrap();
    let chain = chain(&format!(
        r#"
default: deny
pins: {}
hide: ["@open-world"]
tools:
  own:
    rules:
      - action: deny
        reason: own section first
  "@read-only":
    rules: []
  "@destructive":
    rules:
      - action: deny
        reason: destructive
"#,
        lock.display()
    ))
    .await;
    assert!(allowed(&chain, "read", "{}").await);
    assert_eq!(denial(&chain, "write", "{}").await.reason, "destructive");
    assert_eq!(
        denial(&chain, "own", "{}").await.reason,
        "own section first"
    );
    let unnamed = denial(&chain, "append", "{}").await;
    assert_eq!(
        (unnamed.rule.as_str(), unnamed.code.as_str()),
        ("default", "denied")
    );
    assert_eq!(denial(&chain, "unlocked", "{}").await.rule, "default");
    assert!(!chain.visible("fetch", "anonymous").await);
    assert!(chain.visible("read", "anonymous").await);
}
