//! Intercept's YAML policy format (the open-source MCP proxy `PolicyLayer/Intercept`, its
//! `POLICY.md`), read as it is and compiled into the built-in plugins:
//!
//! ```yaml
//! version: "1"
//! default: allow
//! hide: [transfer_repository]
//! tools:
//!   create_issue:
//!     rules:
//!       - name: "hourly issue limit"
//!         rate_limit: 5/hour                   # -> rate-limit, counter create_issue._rate_hour
//!   create_charge:
//!     rules:
//!       - name: "max single charge"
//!         conditions: [{ path: args.amount, op: lte, value: 50000 }]   # -> validate.require
//!         on_deny: "Single charge cannot exceed $500.00"
//!       - name: "daily spend cap"
//!         conditions: [{ path: state.create_charge.daily_spend, op: lte, value: 1000000 }]
//!         state: { counter: daily_spend, window: day, increment_from: args.amount }  # -> rate-limit
//!   delete_customer:
//!     rules: [{ name: "block", action: deny, on_deny: "Not via agents" }]    # -> deny
//!   refund_charge:
//!     rules:
//!       - name: "large refunds"
//!         action: require_approval           # -> deny with `ask`: held for a person's approval
//!         conditions: [{ path: args.amount, op: gt, value: 50000 }]  # asks when all hold
//!         on_deny: "Refunds over $500.00 need a person's approval"
//!         approval_timeout: "30m"
//! ```
//!
//! Semantics follow Intercept's documentation and code: an `evaluate` rule denies unless all of
//! its conditions hold; a missing argument satisfies no operator but `exists: false`; a counter
//! limit `lte N` allows the call while the post-increment value stays at most N (`lt N`: below N);
//! counters are calendar-aligned UTC windows, per tool (`state.<tool>.<counter>`) or shared by all
//! tools for `"*"` rules (`state._global.<counter>`). The agent reads `on_deny` prefixed with
//! `[INTERCEPT POLICY DENIED] ` as Intercept sends it. A `require_approval` rule asks when all
//! of its conditions hold (always, without conditions), as Intercept's example reads; the
//! request is decided with `tollgate approvals`, and the top-level `approvals:` block (Intercept's
//! dedupe window and webhook) is read but not used.

mod conditions;

use super::{DefaultAction, Format, Policy, Rule, ToolRules};
use crate::builtin::Kind;
pub(super) use conditions::{builtin_rule, condition_config, Condition, Window};
use conditions::{parse_intercept_rate, rate_config};
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// What Intercept puts before every denial message the agent reads.
pub const DENIAL_PREFIX: &str = "[INTERCEPT POLICY DENIED] ";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: Value,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    default: Option<DefaultWord>,
    #[serde(default)]
    hide: Vec<String>,
    #[serde(default)]
    tools: IndexMap<String, ToolFile>,
    /// Intercept's approval settings (`dedupe_window`, `notify.webhook`): read, not used.
    #[serde(default)]
    approvals: Option<Value>,
}

/// `default: allow | deny`.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum DefaultWord {
    Allow,
    Deny,
}

impl From<DefaultWord> for DefaultAction {
    fn from(d: DefaultWord) -> Self {
        match d {
            DefaultWord::Allow => DefaultAction::Allow,
            DefaultWord::Deny => DefaultAction::Deny,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolFile {
    #[serde(default)]
    rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Action {
    Evaluate,
    Deny,
    /// Hold the call for a person's approval (Intercept's approval workflow).
    #[serde(rename = "require_approval")]
    RequireApproval,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    action: Option<Action>,
    #[serde(default)]
    rate_limit: Option<String>,
    #[serde(default)]
    conditions: Vec<Condition>,
    #[serde(default)]
    on_deny: Option<String>,
    #[serde(default)]
    state: Option<StateFile>,
    /// How long a `require_approval` request stays open (`"30m"`).
    #[serde(default)]
    approval_timeout: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    counter: String,
    window: Window,
    #[serde(default)]
    increment: Option<i64>,
    #[serde(default)]
    increment_from: Option<String>,
}

/// Parse an Intercept policy document (YAML or JSON).
pub fn parse_intercept(text: &str) -> Result<Policy, String> {
    let file: File = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    // Intercept reads `version` into a string, so `1` unquoted is "1" too.
    if file.version != json!("1") && file.version.as_u64() != Some(1) {
        return Err(format!("version must be \"1\", got {}", file.version));
    }
    let hide = check_hide(&file.hide)?;
    if let Some(approvals) = &file.approvals {
        tracing::warn!(%approvals, "this Intercept policy's `approvals:` settings (dedupe window, webhook) are not used by Tollgate: approval requests are listed by `tollgate approvals list`");
    }
    let mut tools = Vec::new();
    let mut all_tools = Vec::new();
    for (tool, def) in &file.tools {
        exact_tool_name(tool, &format!("tools.{tool}"))?;
        let scope = if tool == "*" {
            "_global"
        } else {
            tool.as_str()
        };
        let mut counters: HashMap<String, usize> = HashMap::new();
        let mut rules = Vec::new();
        for (i, r) in def.rules.iter().enumerate() {
            let at = format!("tools.{tool}.rules[{i}]");
            rules.extend(compile_rule(r, &at, i, scope, &mut counters)?);
        }
        if tool == "*" {
            all_tools = rules;
        } else {
            tools.push(ToolRules {
                pattern: tool.clone(),
                rules,
            });
        }
    }
    Ok(Policy {
        format: Format::Intercept,
        default: file.default.unwrap_or(DefaultWord::Allow).into(),
        hide,
        tools,
        all_tools,
        pins: None,
        included: Vec::new(),
    })
}

/// `hide`: tool names, or `"*"` for every tool. Tollgate reads hide entries as globs, so a name
/// with `*` or `?` in it (which no MCP tool name has) would change meaning: refused.
pub(super) fn check_hide(hide: &[String]) -> Result<Vec<String>, String> {
    let mut seen = Vec::new();
    for (i, name) in hide.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(format!("hide[{i}]: entry must not be empty"));
        }
        if seen.contains(name) {
            return Err(format!("hide: duplicate entry \"{name}\""));
        }
        exact_tool_name(name, &format!("hide[{i}]"))?;
        seen.push(name.clone());
    }
    Ok(seen)
}

/// Tool keys and hide entries are exact names (or `"*"`), never patterns.
pub(super) fn exact_tool_name(name: &str, at: &str) -> Result<(), String> {
    if name != "*" && name.contains(['*', '?']) {
        return Err(format!(
            "{at}: `{name}` is not a tool name: this format matches tool names exactly (only \"*\" alone means every tool), and MCP tool names cannot contain `*` or `?`; write a Tollgate policy (version: 1) to use glob patterns"
        ));
    }
    Ok(())
}

/// One Intercept rule -> the Tollgate rules that enforce it, in order.
fn compile_rule(
    r: &RuleFile,
    at: &str,
    index: usize,
    scope: &str,
    counters: &mut HashMap<String, usize>,
) -> Result<Vec<Rule>, String> {
    let err = |m: &str| format!("{at}: {m}");
    let name = r
        .name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| err("rule must have a name"))?;
    let on_deny = r.on_deny.as_deref().filter(|m| !m.is_empty());
    let message = |fallback: String| on_deny.unwrap_or(&fallback).to_string();
    let denied_by_rule = || message(format!("Denied by rule \"{name}\""));

    if r.approval_timeout.is_some() && r.action != Some(Action::RequireApproval) {
        return Err(err(
            "approval_timeout goes with action \"require_approval\"",
        ));
    }
    if r.action == Some(Action::RequireApproval) {
        if r.rate_limit.is_some() || r.state.is_some() {
            return Err(err(
                "require_approval rules cannot have rate_limit or state; use separate rules",
            ));
        }
        let mut when = Vec::new();
        for (j, c) in r.conditions.iter().enumerate() {
            when.extend(condition_config(c).map_err(|e| format!("{at}.conditions[{j}]: {e}"))?);
        }
        let mut rule = builtin_rule(
            name,
            Kind::Deny,
            json!({ "reason": message(format!("Approval required by rule \"{name}\"")), "ask": {}, "when": when }),
        );
        if let Some(t) = &r.approval_timeout {
            rule.ask_timeout_ms = super::parse_duration_secs(t)
                .map_err(|e| err(&format!("approval_timeout: {e}")))?
                .saturating_mul(1000);
        }
        return Ok(vec![rule]);
    }

    if r.action == Some(Action::Deny) {
        if r.rate_limit.is_some() {
            return Err(err("rate_limit cannot be used with action \"deny\""));
        }
        if !r.conditions.is_empty() {
            return Err(err("deny rules must not have conditions"));
        }
        if r.state.is_some() {
            return Err(err(
                "deny rules must not have a state block: they deny every call, so nothing is ever counted",
            ));
        }
        return Ok(vec![builtin_rule(
            name,
            Kind::Deny,
            json!({ "reason": denied_by_rule() }),
        )]);
    }

    if let Some(rate) = &r.rate_limit {
        if !r.conditions.is_empty() || r.state.is_some() {
            return Err(err("rate_limit cannot be combined with conditions or state; use separate rules or the full syntax instead"));
        }
        let (count, window) = parse_intercept_rate(rate).map_err(|e| err(&e))?;
        let counter = format!("_rate_{}", window.name());
        claim_counter(counters, &counter, at, index)?;
        let config = rate_config(
            &format!("{scope}.{counter}"),
            count,
            window,
            1,
            None,
            message(format!(
                "Rate limit of {count} per {} reached. Try again later.",
                window.name()
            )),
        );
        return Ok(vec![builtin_rule(name, Kind::RateLimit, config)]);
    }

    // An `evaluate` rule: denies unless every condition holds.
    if r.conditions.is_empty() {
        return Err(err("evaluate rules must have at least one condition"));
    }
    type Numbered<'a> = Vec<(usize, &'a Condition)>;
    let (state_conditions, arg_conditions): (Numbered, Numbered) = r
        .conditions
        .iter()
        .enumerate()
        .partition(|(_, c)| c.path.starts_with("state."));
    let mut out = Vec::new();
    if !arg_conditions.is_empty() {
        let mut require = Vec::new();
        for (j, c) in &arg_conditions {
            require.extend(condition_config(c).map_err(|e| format!("{at}.conditions[{j}]: {e}"))?);
        }
        out.push(builtin_rule(
            name,
            Kind::Validate,
            json!({ "require": require, "message": denied_by_rule() }),
        ));
    }
    let Some(state) = &r.state else {
        if let Some((j, c)) = state_conditions.first() {
            return Err(format!(
                "{at}.conditions[{j}]: `{}` reads a counter that this rule's `state` block does not count; Tollgate enforces a counter limit only in the rule whose `state` block counts it (a read-only check of another rule's counter cannot be expressed)",
                c.path
            ));
        }
        return Ok(out);
    };

    if state.counter.trim().is_empty() {
        return Err(err("state: counter must not be empty"));
    }
    claim_counter(counters, &state.counter, at, index)?;
    let own = format!("state.{scope}.{}", state.counter);
    let mut limit: Option<f64> = None;
    for (j, c) in &state_conditions {
        let at = format!("{at}.conditions[{j}]");
        if c.path != own {
            return Err(format!(
                "{at}: `{}` is not this rule's counter (`{own}`); Tollgate enforces a counter limit only in the rule whose `state` block counts it",
                c.path
            ));
        }
        let Some(n) = c
            .value
            .as_ref()
            .filter(|v| v.is_number())
            .and_then(Value::as_f64)
        else {
            return Err(format!(
                "{at}: operator \"{}\" requires a numeric value",
                c.op
            ));
        };
        // The limit is checked against the value after this call's increment.
        let max = match c.op.as_str() {
            "lte" => n.floor(),
            "lt" => n.ceil() - 1.0,
            other => {
                return Err(format!(
                    "{at}: a counter condition must be `lt` or `lte` (a ceiling on the count), got `{other}`; other comparisons on counters cannot be expressed"
                ))
            }
        };
        limit = Some(limit.map_or(max, |l: f64| l.min(max)));
    }
    let Some(limit) = limit else {
        return Err(err(&format!(
            "state counter `{}` has no `lt`/`lte` condition on `{own}`, so it limits nothing (Intercept never counts it); add one, or remove the state block",
            state.counter
        )));
    };
    if limit < 1.0 {
        return Err(err(&format!(
            "the limit on `{own}` allows no call at all; use `action: deny` to block the tool"
        )));
    }
    let increment = match state.increment {
        None | Some(0) => 1,
        Some(n) if n > 0 => n as u64,
        Some(n) => {
            return Err(err(&format!(
                "state: increment must not be negative, got {n}"
            )))
        }
    };
    if let Some(from) = &state.increment_from {
        if !from.starts_with("args.") || from.len() <= "args.".len() {
            return Err(err(&format!(
                "state: increment_from must start with \"args.\", got \"{from}\""
            )));
        }
        // Intercept refuses a call whose increment argument is missing.
        out.push(builtin_rule(
            name,
            Kind::Validate,
            json!({ "require": [{ "path": from, "op": "exists", "value": true }] }),
        ));
    }
    let config = rate_config(
        &format!("{scope}.{}", state.counter),
        limit as u64,
        state.window,
        increment,
        state.increment_from.as_deref(),
        message(format!("Rate limit exceeded for {name}")),
    );
    out.push(builtin_rule(name, Kind::RateLimit, config));
    Ok(out)
}

/// Two rules of one tool counting on the same counter is a mistake in Intercept.
fn claim_counter(
    counters: &mut HashMap<String, usize>,
    counter: &str,
    at: &str,
    index: usize,
) -> Result<(), String> {
    if let Some(prev) = counters.insert(counter.to_string(), index) {
        return Err(format!(
            "{at}: duplicate state counter \"{counter}\" (also used by rules[{prev}])"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
