//! Built-in `deny` plugin: refuse a call with a reason, unconditionally or only when all of its
//! conditions on the arguments hold (Intercept's operators).
//!
//! ```json
//! {"reason": "Deleting is not allowed from agents; ask a human.",
//!  "code": "denied",
//!  "when": [{"path": "args.force", "op": "eq", "value": true}]}
//! ```

use serde::Deserialize;
use tollgate_sdk::conditions::{compile_all, Condition, ConditionSpec};
use tollgate_sdk::{allow, deny_with, Call, Policy, Verdict};

/// Configuration of the `deny` plugin.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// What the agent is told.
    pub reason: String,
    /// Machine-readable code in the denial (default `denied`).
    #[serde(default = "default_code")]
    pub code: String,
    /// Deny only when all of these hold; no conditions means always deny.
    #[serde(default)]
    pub when: Vec<ConditionSpec>,
}

fn default_code() -> String {
    "denied".into()
}

/// The compiled plugin.
pub struct Deny {
    reason: String,
    code: String,
    when: Vec<Condition>,
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
        })
    }

    fn check_call(&self, call: &Call) -> Verdict {
        let args = call.arguments();
        if self.when.iter().all(|c| c.holds(args)) {
            deny_with(self.code.clone(), self.reason.clone(), None)
        } else {
            allow()
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
