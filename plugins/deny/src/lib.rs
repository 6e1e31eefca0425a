//! Built-in `deny` plugin: refuse a call with a reason — or, with `ask`, hold it for a person's
//! approval — unconditionally or only when all of its conditions on the arguments hold
//! (Intercept's operators). The reason may quote the arguments (`{args.path}`, see
//! [`tollgate_sdk::message`]).
//!
//! ```json
//! {"reason": "Deleting {args.path} is not allowed from agents; ask a human.",
//!  "code": "denied",
//!  "when": [{"path": "args.force", "op": "eq", "value": true}]}
//! {"reason": "Transfer {args.amount} to {args.to}?",
//!  "ask": {"timeout_ms": 120000},
//!  "when": [{"path": "args.amount", "op": "gt", "value": 100}]}
//! ```

use serde::Deserialize;
use tollgate_sdk::conditions::{compile_all, Condition, ConditionSpec};
use tollgate_sdk::message::fill;
use tollgate_sdk::{allow, deny_with, ApprovalRequest, Call, Policy, Verdict};

/// Configuration of the `deny` plugin.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What the agent is told (with `ask`: what the person is asked).
    pub reason: String,
    /// Machine-readable code in the denial (default `denied`).
    #[serde(default = "default_code")]
    pub code: String,
    /// Deny only when all of these hold; no conditions means always deny.
    #[serde(default)]
    pub when: Vec<ConditionSpec>,
    /// Ask a person instead of refusing.
    #[serde(default)]
    pub ask: Option<AskConfig>,
}

/// How an `ask` rule's request is made.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskConfig {
    /// How long the request may stay open (the host caps it by the policy's timeout).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

fn default_code() -> String {
    tollgate_sdk::codes::DENIED.into()
}

/// The compiled plugin.
pub struct Deny {
    reason: String,
    code: String,
    when: Vec<Condition>,
    ask: Option<AskConfig>,
}

impl Policy for Deny {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.reason.trim().is_empty() {
            return Err("`reason` must not be empty: say why the call is refused".into());
        }
        Ok(Self {
            reason: config.reason,
            code: config.code,
            when: compile_all(&config.when)?,
            ask: config.ask,
        })
    }

    fn check_call(&self, call: &Call) -> Verdict {
        let args = call.arguments();
        if !self.when.iter().all(|c| c.holds(args)) {
            return allow();
        }
        let reason = fill(&self.reason, call);
        match &self.ask {
            Some(ask) => Verdict::Ask(ApprovalRequest {
                message: reason,
                timeout_ms: ask.timeout_ms,
            }),
            None => deny_with(self.code.clone(), reason, None),
        }
    }
}

tollgate_sdk::export_policy!(Deny);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tollgate_sdk::configure;

    #[test]
    fn denies_unconditionally_with_the_reason() {
        let p: Deny = configure(r#"{"reason": "ask a human"}"#).unwrap();
        let v = p.check_call(&Call::new("delete_file", json!({})));
        let d = v.denial().unwrap();
        assert_eq!(
            (d.code.as_str(), d.reason.as_str()),
            ("denied", "ask a human")
        );
    }

    #[test]
    fn denies_only_when_every_condition_holds() {
        let p: Deny = configure(
            r#"{"reason": "no forced deletes", "when": [{"path": "args.force", "op": "eq", "value": true},
                {"path": "args.path", "op": "regex", "value": "^/etc"}]}"#,
        )
        .unwrap();
        assert!(p
            .check_call(&Call::new(
                "rm",
                json!({"force": true, "path": "/etc/passwd"})
            ))
            .is_deny());
        assert!(p
            .check_call(&Call::new("rm", json!({"force": true, "path": "/tmp/x"})))
            .is_allow());
        assert!(p
            .check_call(&Call::new("rm", json!({"path": "/etc/x"})))
            .is_allow());
    }

    #[test]
    fn an_ask_rule_asks_about_the_calls_its_conditions_pick_quoting_their_arguments() {
        let p: Deny = configure(
            r#"{"reason": "Transfer {args.amount} to {args.to}?", "ask": {"timeout_ms": 120000},
                "when": [{"path": "args.amount", "op": "gt", "value": 100}]}"#,
        )
        .unwrap();
        let big = p.check_call(&Call::new("transfer", json!({"amount": 250, "to": "ACME"})));
        assert_eq!(
            big,
            Verdict::Ask(ApprovalRequest {
                message: "Transfer 250 to ACME?".into(),
                timeout_ms: Some(120_000)
            })
        );
        assert!(p
            .check_call(&Call::new("transfer", json!({"amount": 99, "to": "ACME"})))
            .is_allow());
    }

    #[test]
    fn bad_configs_are_rejected_with_their_cause() {
        assert_eq!(
            configure::<Deny>(r#"{"reason": " "}"#).err().unwrap(),
            "`reason` must not be empty: say why the call is refused"
        );
        let unknown = configure::<Deny>(r#"{"reason": "x", "whne": []}"#)
            .err()
            .unwrap();
        assert!(
            unknown.starts_with("invalid configuration: unknown field `whne`"),
            "{unknown}"
        );
        let missing = configure::<Deny>("{}").err().unwrap();
        assert!(missing.contains("missing field `reason`"), "{missing}");
    }
}
