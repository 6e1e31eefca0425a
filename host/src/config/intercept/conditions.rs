//! Intercept's condition language and counter windows, compiled into the built-in plugins'
//! configurations; PolicyLayer's files use the same pieces.

use crate::builtin::Kind;
use crate::config::{Channels, DenyAs, LimitSpec, PluginSource, Rule};
use serde::Deserialize;
use serde_json::{json, Map, Value};
/// The operators of Intercept's (and PolicyLayer's) condition language.
const OPERATORS: &[&str] = &[
    "eq", "neq", "in", "not_in", "lt", "lte", "gt", "gte", "regex", "contains", "exists",
];

/// A counter window: calendar-aligned UTC minute, hour or day.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(in crate::config) enum Window {
    Minute,
    Hour,
    Day,
}

impl Window {
    pub(in crate::config) fn name(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    pub(in crate::config) fn millis(self) -> u64 {
        match self {
            Window::Minute => 60_000,
            Window::Hour => 3_600_000,
            Window::Day => 86_400_000,
        }
    }
}

/// `{path, op, value}`, as Intercept and PolicyLayer write it.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct Condition {
    pub(in crate::config) path: String,
    pub(in crate::config) op: String,
    #[serde(default)]
    pub(in crate::config) value: Option<Value>,
}

/// `"5/hour"` -> (5, hour). Intercept accepts exactly `N/minute`, `N/hour` or `N/day`.
pub(super) fn parse_intercept_rate(text: &str) -> Result<(u64, Window), String> {
    let Some((count, window)) = text.split_once('/') else {
        return Err(format!(
            "rate_limit must be in the format \"N/window\" (e.g. \"5/hour\"), got \"{text}\""
        ));
    };
    let count = count
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("rate_limit count must be a positive integer, got \"{count}\""))?;
    let window = match window {
        "minute" => Window::Minute,
        "hour" => Window::Hour,
        "day" => Window::Day,
        other => {
            return Err(format!(
                "rate_limit window must be \"minute\", \"hour\", or \"day\", got \"{other}\""
            ))
        }
    };
    Ok((count, window))
}

/// The rate-limit plugin's configuration for a fixed, calendar-aligned window.
pub(in crate::config) fn rate_config(
    counter: &str,
    max: u64,
    window: Window,
    cost: u64,
    cost_from: Option<&str>,
    message: String,
) -> Value {
    let mut c = Map::new();
    c.insert("counter".into(), json!(counter));
    c.insert("max".into(), json!(max));
    c.insert("window_ms".into(), json!(window.millis()));
    c.insert("algorithm".into(), json!("fixed-window"));
    c.insert("scope".into(), json!("global"));
    if cost != 1 {
        c.insert("cost".into(), json!(cost));
    }
    if let Some(from) = cost_from {
        c.insert("cost_from".into(), json!(from));
    }
    c.insert("message".into(), json!(message));
    Value::Object(c)
}

/// A condition on the arguments -> the conditions the built-in plugins evaluate. Checks what
/// Intercept's validator checks (path, operator, operand type). A missing argument satisfies no
/// operator in Intercept (the plugins' `neq`/`not_in` hold for a missing argument), so `neq` and
/// `not_in` get an `exists` condition in front.
pub(in crate::config) fn condition_config(c: &Condition) -> Result<Vec<Value>, String> {
    if c.path.strip_prefix("args.").is_none_or(str::is_empty) {
        return Err(format!(
            "path must start with \"args.\" (a path into the tool's arguments), got \"{}\"",
            c.path
        ));
    }
    if !OPERATORS.contains(&c.op.as_str()) {
        return Err(format!(
            "unknown operator \"{}\"; use one of: {}",
            c.op,
            OPERATORS.join(", ")
        ));
    }
    let value = c.value.clone();
    match (c.op.as_str(), &value) {
        ("in" | "not_in", Some(Value::Array(_))) => {}
        ("in" | "not_in", _) => return Err(format!("operator \"{}\" requires a list value", c.op)),
        ("lt" | "lte" | "gt" | "gte", Some(Value::Number(_))) => {}
        ("lt" | "lte" | "gt" | "gte", _) => {
            return Err(format!("operator \"{}\" requires a numeric value", c.op))
        }
        ("exists", Some(Value::Bool(_))) => {}
        ("exists", _) => return Err("operator \"exists\" requires a boolean value".into()),
        ("regex", Some(Value::String(_))) => {}
        ("regex", _) => return Err("regex value must be a string".into()),
        (_, None) => return Err(format!("operator \"{}\" requires a value", c.op)),
        _ => {}
    }
    let mut out = Vec::new();
    if matches!(c.op.as_str(), "neq" | "not_in") {
        out.push(json!({ "path": c.path, "op": "exists", "value": true }));
    }
    out.push(json!({ "path": c.path, "op": c.op, "value": value }));
    Ok(out)
}

/// A rule run by a built-in plugin, with Tollgate's defaults (denials as `isError` results,
/// counters refunded when the server fails).
pub(in crate::config) fn builtin_rule(label: &str, kind: Kind, config: Value) -> Rule {
    Rule {
        label: label.to_string(),
        origin: None,
        plugin: kind.name().to_string(),
        source: PluginSource::Builtin(kind),
        config,
        deny_as: DenyAs::Result,
        refund_on_error_result: true,
        dry_run: false,
        ask_timeout_ms: crate::approval::DEFAULT_TIMEOUT_MS,
        ask_channels: Channels::default(),
        ask_wait_ms: 0,
        limits: LimitSpec::default(),
    }
}
