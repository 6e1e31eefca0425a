//! Reading Intercept files: what each kind of rule compiles to, and how mistakes are named.

use super::*;

#[test]
fn each_rule_kind_compiles_to_its_plugin() {
    let p = parse_intercept(
            r#"
version: "1"
default: deny
hide: [transfer_repository]
tools:
  create_charge:
    rules:
      - name: max single charge
        conditions: [{ path: args.amount, op: lte, value: 50000 }, { path: args.currency, op: not_in, value: [jpy] }]
        on_deny: "Single charge cannot exceed $500.00"
      - name: daily spend cap
        conditions: [{ path: state.create_charge.daily_spend, op: lt, value: 1000000 }]
        state: { counter: daily_spend, window: day, increment_from: args.amount }
  delete_customer:
    rules: [{ name: block, action: deny, on_deny: "Not via agents" }]
  "*":
    rules:
      - name: global rate limit
        rate_limit: 60/minute
"#,
        )
        .unwrap();
    assert_eq!(p.format, Format::Intercept);
    assert_eq!(p.default, DefaultAction::Deny);
    assert_eq!(p.hide, vec!["transfer_repository"]);
    let charge = &p.tools[0].rules;
    assert_eq!(charge.len(), 3);
    assert_eq!(
        charge[0].config,
        json!({"require": [
                {"path": "args.amount", "op": "lte", "value": 50000},
                {"path": "args.currency", "op": "exists", "value": true},
                {"path": "args.currency", "op": "not_in", "value": ["jpy"]}],
              "message": "Single charge cannot exceed $500.00"})
    );
    assert_eq!(charge[1].plugin, "validate");
    assert_eq!(
        charge[2].config,
        json!({"counter": "create_charge.daily_spend", "max": 999999, "window_ms": 86400000,
                   "algorithm": "fixed-window", "scope": "global", "cost_from": "args.amount",
                   "message": "Rate limit exceeded for daily spend cap"})
    );
    assert_eq!(charge[2].label, "daily spend cap");
    assert_eq!(
        p.tools[1].rules[0].config,
        json!({"reason": "Not via agents"})
    );
    assert_eq!(p.all_tools[0].config["counter"], "_global._rate_minute");
    assert_eq!(
        p.all_tools[0].config["message"],
        "Rate limit of 60 per minute reached. Try again later."
    );
}

#[test]
fn mistakes_are_refused_with_intercepts_words() {
    let e = |text: &str| parse_intercept(text).unwrap_err();
    let rule = |body: &str| format!("version: \"1\"\ntools:\n  t:\n    rules:\n      - {body}\n");
    assert!(
        e(&rule("name: x\n        rate_limit: 3/fortnight")).ends_with(
            "rate_limit window must be \"minute\", \"hour\", or \"day\", got \"fortnight\""
        )
    );
    assert_eq!(
        e(&rule("action: deny")),
        "tools.t.rules[0]: rule must have a name"
    );
    assert_eq!(
        e(&rule(
            "name: x\n        action: deny\n        conditions: [{path: args.a, op: eq, value: 1}]"
        )),
        "tools.t.rules[0]: deny rules must not have conditions"
    );
    assert_eq!(
        e(&rule("name: x")),
        "tools.t.rules[0]: evaluate rules must have at least one condition"
    );
    assert!(e(&rule(
            "name: x\n        conditions: [{path: state.t.n, op: gt, value: 1}]\n        state: {counter: n, window: day}"
        ))
        .contains("must be `lt` or `lte`"));
    assert!(e(&rule(
        "name: x\n        conditions: [{path: args.a, op: lt, value: a}]"
    ))
    .ends_with("operator \"lt\" requires a numeric value"));
    assert!(e(&rule(
        "name: x\n        conditions: [{path: amount, op: lt, value: 1}]"
    ))
    .contains("path must start with \"args.\""));
    assert_eq!(
            e(&rule("name: x\n        on_deyn: y")),
            "tools.t.rules[0]: unknown field `on_deyn`, expected one of `name`, `action`, `rate_limit`, `conditions`, `on_deny`, `state`, `approval_timeout` at line 6 column 9"
        );
    assert!(e("version: \"1\"\nhide: [\"delete_*\"]\n").contains("is not a tool name"));
    assert!(e("version: \"2\"\n").starts_with("version must be \"1\""));
}

#[test]
fn require_approval_asks_when_its_conditions_hold_for_as_long_as_it_says() {
    let p = parse_intercept(
        r#"
version: "1"
approvals: { dedupe_window: "5m", notify: { webhook: { url: "https://hooks.example/a" } } }
tools:
  create_charge:
    rules:
      - name: large charge approval
        action: require_approval
        conditions: [{ path: args.amount, op: gt, value: 50000 }]
        on_deny: "Charges over $500.00 require human approval"
        approval_timeout: "30m"
"#,
    )
    .unwrap();
    let rule = &p.tools[0].rules[0];
    assert_eq!(rule.plugin, "deny");
    assert_eq!(
        rule.config,
        json!({"reason": "Charges over $500.00 require human approval", "ask": {},
                   "when": [{"path": "args.amount", "op": "gt", "value": 50000}]})
    );
    assert_eq!(rule.ask_timeout_ms, 30 * 60 * 1000);
    let e = parse_intercept(
            "version: \"1\"\ntools:\n  t:\n    rules:\n      - name: x\n        action: require_approval\n        rate_limit: 3/hour\n",
        )
        .unwrap_err();
    assert_eq!(e, "tools.t.rules[0]: require_approval rules cannot have rate_limit or state; use separate rules");
}

#[test]
fn limits_count_the_value_after_the_increment() {
    let max = |op: &str, v: &str| {
        let p = parse_intercept(&format!(
                "version: \"1\"\ntools:\n  t:\n    rules:\n      - name: x\n        conditions: [{{path: state.t.n, op: {op}, value: {v}}}]\n        state: {{counter: n, window: hour, increment: 2}}\n"
            ))
            .unwrap();
        let c = p.tools[0].rules[0].config.clone();
        assert_eq!(c["cost"], 2);
        c["max"].as_u64().unwrap()
    };
    assert_eq!(max("lte", "10"), 10);
    assert_eq!(max("lt", "10"), 9);
    assert_eq!(max("lte", "10.5"), 10);
    assert_eq!(max("lt", "10.5"), 10);
}
