//! Built-in `rate-limit` plugin: at most `max` units per window on a counter kept by the host,
//! so the limit holds across plugin instances, restarts (SQLite) and replicas (Redis).
//!
//! ```json
//! {"counter": "sms", "max": 30, "window_ms": 60000, "algorithm": "fixed-window",
//!  "scope": "args.to", "cost_from": "args.count", "fail_mode": "closed"}
//! ```

use serde::Deserialize;
use tollgate_sdk::counters::{self, Algorithm};
use tollgate_sdk::{allow, deny_with, log, Call, Policy, Verdict};

/// What the counter is kept per.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One counter for every call that reaches the rule.
    Global,
    /// One counter per tool name.
    Tool,
    /// One counter per caller.
    Caller,
    /// One counter per value of the argument at this dotted path (e.g. per recipient).
    Argument(String),
}

impl Scope {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "global" => Ok(Scope::Global),
            "tool" => Ok(Scope::Tool),
            "caller" | "grant" => Ok(Scope::Caller),
            _ => match s.strip_prefix("args.") {
                Some(path) if !path.is_empty() => Ok(Scope::Argument(path.to_string())),
                _ => Err(format!(
                    "unknown scope `{s}`; expected global, tool, caller or args.<path>"
                )),
            },
        }
    }
}

/// Whether a call passes when the host's counter store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Deny (the default): never let an unchecked call through.
    #[default]
    Closed,
    /// Allow, and log a warning.
    Open,
}

/// Configuration of the `rate-limit` plugin.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Counter name; rules naming the same counter share it.
    pub counter: String,
    /// Units allowed per window.
    pub max: u64,
    /// Window length in milliseconds.
    pub window_ms: u64,
    /// Counting algorithm (default fixed-window).
    #[serde(default = "default_algorithm")]
    pub algorithm: Algorithm,
    /// `global`, `tool`, `caller` or `args.<path>` (default global).
    #[serde(default = "default_scope")]
    pub scope: String,
    /// Units one call costs (default 1).
    #[serde(default = "default_cost")]
    pub cost: u64,
    /// Take the cost from this argument path instead (a non-negative integer).
    #[serde(default)]
    pub cost_from: Option<String>,
    /// Reason given to the agent instead of the default message.
    #[serde(default)]
    pub message: Option<String>,
    /// What to do when the counter store is unreachable.
    #[serde(default)]
    pub fail_mode: FailMode,
}

fn default_algorithm() -> Algorithm {
    Algorithm::FixedWindow
}
fn default_scope() -> String {
    "global".into()
}
fn default_cost() -> u64 {
    1
}

/// The compiled plugin.
pub struct RateLimit {
    config: Config,
    scope: Scope,
    cost_from: Option<String>,
}

impl Policy for RateLimit {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.max == 0 {
            return Err(
                "`max` must be at least 1 (to block a tool entirely, use a deny rule)".into(),
            );
        }
        if config.window_ms == 0 {
            return Err("`window_ms` must be at least 1".into());
        }
        if config.counter.is_empty() {
            return Err("`counter` must not be empty".into());
        }
        let scope = Scope::parse(&config.scope)?;
        let cost_from = config
            .cost_from
            .as_deref()
            .map(|p| p.strip_prefix("args.").unwrap_or(p).to_string());
        Ok(Self {
            config,
            scope,
            cost_from,
        })
    }

    fn check_call(&self, call: &Call) -> Verdict {
        let cost = match self.cost(call) {
            Ok(cost) => cost,
            Err(reason) => return deny_with(tollgate_sdk::codes::INVALID_ARGUMENTS, reason, None),
        };
        let key = self.key(call);
        let c = &self.config;
        match counters::take(&key, cost, c.max, c.window_ms, c.algorithm) {
            Ok(t) if t.granted => allow(),
            Ok(t) => {
                let reason = c.message.clone().unwrap_or_else(|| {
                    format!(
                        "rate limit of {} per {} reached; try again in {}",
                        c.max,
                        describe_window(c.window_ms),
                        describe_delay(t.resets_in_ms)
                    )
                });
                deny_with(
                    tollgate_sdk::codes::RATE_LIMITED,
                    reason,
                    Some(t.resets_in_ms),
                )
            }
            Err(e) if c.fail_mode == FailMode::Open => {
                log::warn(&format!(
                    "counter store unavailable, allowing (fail_mode: open): {e}"
                ));
                allow()
            }
            Err(e) => deny_with(
                "state_unavailable",
                format!("the rate-limit state store is unavailable ({e})"),
                None,
            ),
        }
    }
}

impl RateLimit {
    /// The counter key for this call under the configured scope.
    pub fn key(&self, call: &Call) -> String {
        let counter = &self.config.counter;
        match &self.scope {
            Scope::Global => counter.clone(),
            Scope::Tool => format!("{counter}|tool={}", call.tool()),
            Scope::Caller => format!("{counter}|caller={}", call.caller()),
            Scope::Argument(path) => {
                let value = call.argument(path).map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                format!("{counter}|{path}={}", value.unwrap_or_default())
            }
        }
    }

    fn cost(&self, call: &Call) -> Result<u64, String> {
        let Some(path) = &self.cost_from else {
            return Ok(self.config.cost);
        };
        match call.argument(path) {
            None | Some(serde_json::Value::Null) => Ok(self.config.cost),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| format!("`{path}` must be a non-negative whole number, got {v}")),
        }
    }
}

/// `60000` -> `minute`, `7200000` -> `2 hours`.
fn describe_window(ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "day"),
        (3_600_000, "hour"),
        (60_000, "minute"),
        (1_000, "second"),
    ];
    for (size, name) in UNITS {
        if ms.is_multiple_of(size) {
            let n = ms / size;
            return if n == 1 {
                name.to_string()
            } else {
                format!("{n} {name}s")
            };
        }
    }
    format!("{ms} ms")
}

/// `1500` -> `1.5 s`.
fn describe_delay(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

tollgate_sdk::export_policy!(RateLimit);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tollgate_sdk::configure;
    use tollgate_sdk::counters::testing;

    fn limit(extra: &str) -> RateLimit {
        configure(&format!(
            r#"{{"counter": "c", "max": 2, "window_ms": 60000 {extra}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn the_call_after_max_is_rate_limited_with_retry_after() {
        testing::reset();
        let p = limit("");
        let call = Call::new("send", json!({}));
        assert!(p.check_call(&call).is_allow());
        assert!(p.check_call(&call).is_allow());
        let v = p.check_call(&call);
        let d = v.denial().unwrap();
        assert_eq!(d.code, "rate_limited");
        assert_eq!(d.retry_after_ms, Some(60000));
        assert_eq!(
            d.reason,
            "rate limit of 2 per minute reached; try again in 60.0 s"
        );
        testing::advance_ms(60000);
        assert!(p.check_call(&call).is_allow());
    }

    #[test]
    fn scopes_separate_counters() {
        testing::reset();
        let p = limit(r#", "scope": "args.to""#);
        let to = |n: &str| Call::new("send", json!({ "to": n }));
        assert!(p.check_call(&to("a")).is_allow());
        assert!(p.check_call(&to("a")).is_allow());
        assert!(p.check_call(&to("a")).is_deny());
        assert!(p.check_call(&to("b")).is_allow());
        let caller = limit(r#", "scope": "caller""#);
        assert_eq!(
            caller.key(&Call::new("t", json!({})).with_caller("alice")),
            "c|caller=alice"
        );
    }

    #[test]
    fn cost_comes_from_an_argument() {
        testing::reset();
        let p = limit(r#", "cost_from": "args.n""#);
        assert!(p.check_call(&Call::new("t", json!({"n": 3}))).is_deny());
        assert!(p.check_call(&Call::new("t", json!({"n": 2}))).is_allow());
        let bad = p.check_call(&Call::new("t", json!({"n": -1})));
        assert_eq!(
            bad.denial().unwrap().reason,
            "`n` must be a non-negative whole number, got -1"
        );
    }

    #[test]
    fn an_unreachable_store_fails_closed_unless_configured_open() {
        testing::reset();
        testing::set_unavailable(true);
        let closed = limit("").check_call(&Call::new("t", json!({})));
        assert_eq!(closed.denial().unwrap().code, "state_unavailable");
        assert!(limit(r#", "fail_mode": "open""#)
            .check_call(&Call::new("t", json!({})))
            .is_allow());
        testing::set_unavailable(false);
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let err = |extra: &str| {
            configure::<RateLimit>(&format!(r#"{{"counter": "c", "window_ms": 1000 {extra}}}"#))
                .err()
                .unwrap()
        };
        assert!(err(r#", "max": 0"#).starts_with("`max` must be at least 1"));
        assert!(err(r#", "max": 1, "scope": "planet""#).starts_with("unknown scope `planet`"));
        assert!(err(r#", "max": 1, "algorithm": "leaky""#).contains("unknown variant `leaky`"));
    }

    #[test]
    fn windows_read_naturally() {
        assert_eq!(describe_window(60_000), "minute");
        assert_eq!(describe_window(7_200_000), "2 hours");
        assert_eq!(describe_window(1_500), "1500 ms");
    }
}
