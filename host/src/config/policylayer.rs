//! PolicyLayer's JSON policy documents (the hosted MCP gateway's "writing policies" format), read
//! as they are and compiled into the built-in plugins:
//!
//! ```json
//! {"version": "1", "default": "deny", "hide": ["delete_account"],
//!  "all_tools": {"limits": [{"counter": "all", "window": "hour", "max": 500, "scope": "grant"}]},
//!  "tools": {
//!    "create_refund": {
//!      "require": [{"path": "args.reason", "op": "exists", "value": true}],
//!      "deny_if": [{"conditions": [{"path": "args.amount", "op": "gt", "value": 10000}],
//!                   "on_deny": "Refunds over $100 need a human."}],
//!      "limits": [{"counter": "refunds", "window": "day", "max": 20, "scope": "grant"}]},
//!    "list_customers": {}}}
//! ```
//!
//! `require` -> validate (`require`), `deny_if` -> deny (`when`), `limits` -> rate-limit (fixed,
//! calendar-aligned windows; `scope: "grant"` = per caller; limits naming one counter share it);
//! `all_tools.limits` run after a tool's own rules. Conditions are Intercept's `{path, op, value}`
//! with the same evaluation (a missing argument satisfies no operator but `exists: false`).

use super::intercept::{
    builtin_rule, check_hide, condition_config, exact_tool_name, Condition, DefaultWord, Window,
};
use super::{Format, Policy, Rule, ToolRules};
use crate::builtin::Kind;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: Value,
    default: DefaultWord,
    #[serde(default)]
    hide: Vec<String>,
    #[serde(default)]
    all_tools: Option<AllTools>,
    #[serde(default)]
    tools: IndexMap<String, ToolFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllTools {
    #[serde(default)]
    limits: Vec<LimitFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolFile {
    #[serde(default)]
    require: Vec<Condition>,
    #[serde(default)]
    deny_if: Vec<DenyIf>,
    #[serde(default)]
    limits: Vec<LimitFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyIf {
    #[serde(default)]
    conditions: Vec<Condition>,
    #[serde(default)]
    on_deny: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitFile {
    counter: String,
    window: Window,
    max: u64,
    #[serde(default)]
    scope: Option<LimitScope>,
}

/// Who a limit's counter is kept for. PolicyLayer counts per grant (credential); Tollgate's
/// nearest notion is the caller.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum LimitScope {
    Grant,
}

/// Parse a PolicyLayer policy document.
pub fn parse_policylayer(text: &str) -> Result<Policy, String> {
    let file: File = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    if file.version != json!("1") {
        return Err(format!(
            "version must be \"1\" (the only PolicyLayer schema version), got {}",
            file.version
        ));
    }
    let hide = check_hide(&file.hide)?;
    let mut windows: HashMap<String, (Window, String)> = HashMap::new();
    let mut tools = Vec::new();
    for (tool, def) in &file.tools {
        let at = format!("tools.{tool}");
        if tool == "*" {
            return Err(format!(
                "{at}: PolicyLayer has no \"*\" tool; put limits for every tool under `all_tools`"
            ));
        }
        exact_tool_name(tool, &at)?;
        let mut rules = Vec::new();
        if !def.require.is_empty() {
            let mut require = Vec::new();
            for (j, c) in def.require.iter().enumerate() {
                require.extend(condition_config(c).map_err(|e| format!("{at}.require[{j}]: {e}"))?);
            }
            rules.push(builtin_rule(
                &format!("{at}.require"),
                Kind::Validate,
                json!({ "require": require }),
            ));
        }
        for (i, d) in def.deny_if.iter().enumerate() {
            let at = format!("{at}.deny_if[{i}]");
            let mut when = Vec::new();
            for (j, c) in d.conditions.iter().enumerate() {
                when.extend(condition_config(c).map_err(|e| format!("{at}.conditions[{j}]: {e}"))?);
            }
            let reason = d
                .on_deny
                .clone()
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| format!("calls to `{tool}` like this one are denied by policy"));
            rules.push(builtin_rule(
                &at,
                Kind::Deny,
                json!({ "reason": reason, "when": when }),
            ));
        }
        for (i, l) in def.limits.iter().enumerate() {
            rules.push(limit_rule(l, &format!("{at}.limits[{i}]"), &mut windows)?);
        }
        tools.push(ToolRules {
            pattern: tool.clone(),
            rules,
        });
    }
    let mut all_tools = Vec::new();
    if let Some(all) = &file.all_tools {
        for (i, l) in all.limits.iter().enumerate() {
            all_tools.push(limit_rule(
                l,
                &format!("all_tools.limits[{i}]"),
                &mut windows,
            )?);
        }
    }
    Ok(Policy {
        format: Format::PolicyLayer,
        default: file.default.into(),
        hide,
        tools,
        all_tools,
        pins: None,
        included: Vec::new(),
    })
}

/// A limit -> a rate-limit rule. Limits naming the same counter share it, so they must agree on
/// its window.
fn limit_rule(
    l: &LimitFile,
    at: &str,
    windows: &mut HashMap<String, (Window, String)>,
) -> Result<Rule, String> {
    if l.counter.trim().is_empty() {
        return Err(format!("{at}: counter must not be empty"));
    }
    if l.max == 0 {
        return Err(format!(
            "{at}: max must be at least 1 (to block a tool, list it in `hide` or leave it out under default: deny)"
        ));
    }
    if let Some((window, first)) = windows.get(&l.counter) {
        if *window != l.window {
            return Err(format!(
                "{at}: counter \"{}\" is counted per {} by {first} but per {} here; limits sharing a counter must share its window",
                l.counter,
                window.name(),
                l.window.name()
            ));
        }
    } else {
        windows.insert(l.counter.clone(), (l.window, at.to_string()));
    }
    let LimitScope::Grant = l.scope.unwrap_or(LimitScope::Grant);
    Ok(builtin_rule(
        at,
        Kind::RateLimit,
        json!({
            "counter": l.counter,
            "max": l.max,
            "window_ms": l.window.millis(),
            "algorithm": "fixed-window",
            "scope": "caller",
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DefaultAction;

    #[test]
    fn the_seed_document_compiles_to_a_per_caller_limit() {
        let p = parse_policylayer(r#"{"version":"1","default":"deny","tools":{"create_conversation":{"limits":[{"counter":"create_conversation_rate","window":"minute","max":30,"scope":"grant"}]}}}"#).unwrap();
        assert_eq!(p.format, Format::PolicyLayer);
        assert_eq!(p.default, DefaultAction::Deny);
        let rule = &p.tools[0].rules[0];
        assert_eq!(
            (rule.plugin.as_str(), rule.label.as_str()),
            ("rate-limit", "tools.create_conversation.limits[0]")
        );
        assert_eq!(
            rule.config,
            json!({"counter": "create_conversation_rate", "max": 30, "window_ms": 60000,
                   "algorithm": "fixed-window", "scope": "caller"})
        );
    }

    #[test]
    fn require_deny_if_and_all_tools_compile_in_order() {
        let p = parse_policylayer(
            r#"{"version": "1", "default": "allow", "hide": ["delete_account"],
  "all_tools": {"limits": [{"counter": "all", "window": "hour", "max": 500}]},
  "tools": {"create_refund": {
    "require": [{"path": "args.reason", "op": "exists", "value": true}],
    "deny_if": [{"conditions": [{"path": "args.amount", "op": "gt", "value": 10000}], "on_deny": "Too much."}],
    "limits": [{"counter": "refunds", "window": "day", "max": 20, "scope": "grant"}]}}}"#,
        )
        .unwrap();
        let plugins: Vec<&str> = p.tools[0].rules.iter().map(|r| r.plugin.as_str()).collect();
        assert_eq!(plugins, ["validate", "deny", "rate-limit"]);
        assert_eq!(
            p.tools[0].rules[1].config,
            json!({"reason": "Too much.", "when": [{"path": "args.amount", "op": "gt", "value": 10000}]})
        );
        assert_eq!(p.all_tools[0].config["scope"], "caller");
        assert_eq!(p.hide, vec!["delete_account"]);
    }

    #[test]
    fn mistakes_are_refused_with_where_and_what() {
        let e = |t: &str| parse_policylayer(t).unwrap_err();
        let missing = e(r#"{"version": "1", "tools": {}}"#);
        assert!(missing.contains("missing field `default`"), "{missing}");
        let window = e(r#"{"version": "1", "default": "allow",
 "tools": {"x": {"limits": [{"counter": "c", "window": "week", "max": 3}]}}}"#);
        assert!(
            window.contains("unknown variant `week`") && window.contains("line 2"),
            "{window}"
        );
        let unknown = e(r#"{"version": "1", "default": "allow", "tools": {"x": {"deny": []}}}"#);
        assert!(unknown.contains("unknown field `deny`"), "{unknown}");
        let shared = e(
            r#"{"version": "1", "default": "allow", "tools": {"x": {"limits": [{"counter": "c", "window": "day", "max": 3}]}},
 "all_tools": {"limits": [{"counter": "c", "window": "hour", "max": 3}]}}"#,
        );
        assert!(shared.contains("must share its window"), "{shared}");
    }
}
