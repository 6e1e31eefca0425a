//! One rule of a native policy file: its YAML shape (`action`, `when`, `rate_limit`,
//! `validate`, `redact`, `plugin`, `ask`'s `message`/`timeout`/`channels`/`wait`, …) and how it
//! becomes one plugin rule of the chain.

use super::{LimitsFile, PluginFile};
use crate::builtin::Kind;
use crate::config::include::Origin;
use crate::config::{
    parse_duration_secs, parse_rate, parse_window_secs, Channels, DenyAs, LimitSpec, PluginSource,
    Rule,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum ActionWord {
    Allow,
    Deny,
    /// Hold the call for a person's approval.
    Ask,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleFile {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    action: Option<ActionWord>,
    #[serde(default)]
    reason: Option<String>,
    /// What an `ask` rule asks (`reason` is accepted too).
    #[serde(default)]
    message: Option<String>,
    /// How long an `ask` rule's request stays open, in seconds.
    #[serde(default)]
    timeout: Option<Value>,
    /// Which answers count for an `ask` rule.
    #[serde(default)]
    channels: Option<Vec<String>>,
    /// How long an `ask` rule's call waits for an operator (seconds, or `true`).
    #[serde(default)]
    wait: Option<Value>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default, alias = "conditions")]
    when: Option<Vec<Value>>,
    #[serde(default)]
    rate_limit: Option<Value>,
    #[serde(default)]
    validate: Option<Value>,
    #[serde(default)]
    redact: Option<Value>,
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    deny_as: Option<DenyAsWord>,
    #[serde(default)]
    refund_on_error_result: Option<bool>,
    #[serde(default)]
    limits: Option<LimitsFile>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum DenyAsWord {
    Result,
    Error,
}

/// One rule of the file -> one plugin rule, or `None` for a plain `action: allow`.
pub(super) fn compile_rule(
    r: &RuleFile,
    label: &str,
    pattern: &str,
    index: usize,
    plugins: &BTreeMap<String, (PluginSource, &PluginFile)>,
    defaults: LimitSpec,
    origin: &Origin,
) -> Result<Option<Rule>, String> {
    let at = |msg: String| format!("rule {label}: {msg}");
    let kinds: Vec<&str> = [
        (r.action == Some(ActionWord::Deny), "action: deny"),
        (r.action == Some(ActionWord::Ask), "action: ask"),
        (r.rate_limit.is_some(), "rate_limit"),
        (r.validate.is_some(), "validate"),
        (r.redact.is_some(), "redact"),
        (r.plugin.is_some(), "plugin"),
    ]
    .iter()
    .filter(|(present, _)| *present)
    .map(|(_, name)| *name)
    .collect();
    if kinds.len() > 1 {
        return Err(at(format!(
            "a rule does one thing, but this one has {}; split it into several rules",
            kinds.join(" and ")
        )));
    }
    let asks = r.action == Some(ActionWord::Ask);
    if r.when.is_some() && !matches!(r.action, Some(ActionWord::Deny | ActionWord::Ask)) {
        return Err(at(
            "`when` conditions belong to an `action: deny` or `action: ask` rule (or use `validate.require`)".into(),
        ));
    }
    if !asks && r.message.is_some() {
        return Err(at(
            "`message` is what an `action: ask` rule asks; a denial says `reason`".into(),
        ));
    }
    if asks && r.code.is_some() {
        return Err(at("an `action: ask` rule has no `code`: its answers have codes of their own (approval_pending, approval_denied, approval_expired)".into()));
    }
    if !(asks || r.plugin.is_some())
        && (r.timeout.is_some() || r.channels.is_some() || r.wait.is_some())
    {
        return Err(at("`timeout`, `channels` and `wait` belong to a rule that can ask for approval (action: ask, or plugin)".into()));
    }
    let wait_ms = match &r.wait {
        None | Some(Value::Bool(false)) => 0,
        Some(Value::Bool(true)) => crate::approval::DEFAULT_WAIT_MS,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(secs @ 1..=crate::approval::MAX_WAIT_SECS) => secs * 1000,
            _ => return Err(at(format!(
                "wait: {n} seconds is not allowed: at most {} (clients give up on a call after about 60 s), or true for {} s",
                crate::approval::MAX_WAIT_SECS,
                crate::approval::DEFAULT_WAIT_MS / 1000
            ))),
        },
        Some(other) => return Err(at(format!("wait: expected seconds or true, got {other}"))),
    };
    let timeout_ms = match &r.timeout {
        None => None,
        Some(t) => Some(
            parse_duration_secs(t)
                .map_err(|e| at(format!("timeout: {e}")))?
                .saturating_mul(1000),
        ),
    };
    let channels = match &r.channels {
        Some(channels) => channels_of(channels).map_err(at)?,
        None => Channels::default(),
    };
    let (plugin, source, mut config, plugin_limits) = if asks {
        let message = r
            .message
            .clone()
            .or_else(|| r.reason.clone())
            .ok_or_else(|| {
                at("an `action: ask` rule needs a `message`: what the person is asked".into())
            })?;
        let mut c = Map::new();
        c.insert("reason".into(), json!(message));
        c.insert("ask".into(), json!({}));
        if let Some(when) = &r.when {
            c.insert("when".into(), Value::Array(when.clone()));
        }
        builtin(Kind::Deny, Value::Object(c))
    } else if r.action == Some(ActionWord::Deny) {
        let mut c = Map::new();
        c.insert(
            "reason".into(),
            json!(r
                .reason
                .clone()
                .unwrap_or_else(|| "this tool is not allowed by policy".into())),
        );
        if let Some(code) = &r.code {
            c.insert("code".into(), json!(code));
        }
        if let Some(when) = &r.when {
            c.insert("when".into(), Value::Array(when.clone()));
        }
        builtin(Kind::Deny, Value::Object(c))
    } else if let Some(spec) = &r.rate_limit {
        let counter = format!("{}{pattern}#{index}", origin.prefix);
        builtin(
            Kind::RateLimit,
            rate_limit_config(spec, &counter, r.reason.as_deref()).map_err(at)?,
        )
    } else if let Some(spec) = &r.validate {
        let mut c = spec.clone();
        if let (Value::Object(map), Some(reason)) = (&mut c, &r.reason) {
            map.entry("message").or_insert_with(|| json!(reason));
        }
        builtin(Kind::Validate, c)
    } else if let Some(spec) = &r.redact {
        builtin(Kind::Redact, spec.clone())
    } else if let Some(name) = &r.plugin {
        match plugins.get(name) {
            // An included fragment's plugin carries its pack's name, like its rules.
            Some((source, p)) => (
                format!("{}{name}", origin.prefix),
                source.clone(),
                p.config.clone().unwrap_or_else(|| json!({})),
                p.limits.map(LimitSpec::from),
            ),
            None => match Kind::from_name(name) {
                Some(kind) => builtin(kind, json!({})),
                None => {
                    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                    return Err(at(format!(
                        "plugin `{name}` is not defined under `plugins:` and is not built in ({})",
                        names.join(", ")
                    )));
                }
            },
        }
    } else {
        if r.reason.is_some() || r.code.is_some() || r.config.is_some() {
            return Err(at("`reason`, `code` and `config` need a rule that can deny (action: deny, rate_limit, validate or plugin)".into()));
        }
        return Ok(None);
    };
    if let Some(c) = &r.config {
        if r.plugin.is_none() {
            return Err(at("`config` goes with `plugin:`".into()));
        }
        config = c.clone();
    }
    let limits = r
        .limits
        .map(LimitSpec::from)
        .unwrap_or_default()
        .or(plugin_limits.unwrap_or_default())
        .or(defaults);
    Ok(Some(Rule {
        label: label.to_string(),
        origin: origin.shown.clone(),
        plugin,
        source,
        config,
        deny_as: match r.deny_as {
            Some(DenyAsWord::Error) => DenyAs::Error,
            _ => DenyAs::Result,
        },
        refund_on_error_result: r.refund_on_error_result.unwrap_or(true),
        limits,
        dry_run: r.dry_run.unwrap_or(false),
        ask_timeout_ms: timeout_ms.unwrap_or(crate::approval::DEFAULT_TIMEOUT_MS),
        ask_channels: channels,
        ask_wait_ms: wait_ms,
    }))
}

/// The approval channels a rule names: `client` (the agent's client asks its user, where the
/// request can) and `operator` (`tollgate approvals`).
fn channels_of(names: &[String]) -> Result<Channels, String> {
    if names.is_empty() {
        return Err("`channels` is empty: no answer could ever approve the call".into());
    }
    let mut channels = Channels {
        client: false,
        operator: false,
    };
    for name in names {
        match name.as_str() {
            "client" => channels.client = true,
            "operator" => channels.operator = true,
            other => {
                return Err(format!(
                    "unknown approval channel `{other}`; expected client or operator"
                ))
            }
        }
    }
    Ok(channels)
}

fn builtin(kind: Kind, config: Value) -> (String, PluginSource, Value, Option<LimitSpec>) {
    (
        kind.name().to_string(),
        PluginSource::Builtin(kind),
        config,
        None,
    )
}

/// `rate_limit: "30/minute"` or `{max, window, scope, algorithm, counter, cost, cost_from,
/// fail_mode}` -> the rate-limit plugin's configuration.
fn rate_limit_config(
    spec: &Value,
    default_counter: &str,
    reason: Option<&str>,
) -> Result<Value, String> {
    let mut c = Map::new();
    c.insert("counter".into(), json!(default_counter));
    match spec {
        Value::String(s) => {
            let (max, secs) = parse_rate(s)?;
            c.insert("max".into(), json!(max));
            c.insert("window_ms".into(), json!(secs * 1000));
        }
        Value::Object(map) => {
            for (key, value) in map {
                match key.as_str() {
                    "max" => {
                        let max = value.as_u64().ok_or_else(|| format!("rate_limit.max must be a whole number, got {value}"))?;
                        c.insert("max".into(), json!(max));
                    }
                    "window" => {
                        c.insert("window_ms".into(), json!(parse_window_secs(value)? * 1000));
                    }
                    "scope" | "algorithm" | "counter" | "cost" | "cost_from" | "fail_mode" => {
                        c.insert(key.clone(), value.clone());
                    }
                    other => {
                        return Err(format!(
                            "unknown key `rate_limit.{other}`; expected max, window, scope, algorithm, counter, cost, cost_from or fail_mode"
                        ))
                    }
                }
            }
            for required in ["max", "window_ms"] {
                if !c.contains_key(required) {
                    return Err(format!(
                        "rate_limit needs `{}`",
                        required.trim_end_matches("_ms")
                    ));
                }
            }
        }
        other => {
            return Err(format!(
                "rate_limit must be \"N/minute\" or {{max, window}}, got {other}"
            ))
        }
    }
    if let Some(reason) = reason {
        c.insert("message".into(), json!(reason));
    }
    Ok(Value::Object(c))
}
