//! Built-in `validate` plugin: a call's arguments must satisfy a JSON Schema (draft 2020-12 by
//! default) and every listed condition; otherwise the call is denied with code
//! `invalid_arguments` and a reason that names the failing path and why.
//!
//! ```json
//! {"schema": {"type": "object", "required": ["to"], "properties": {"to": {"type": "string"}}},
//!  "require": [{"path": "args.amount", "op": "lte", "value": 100}]}
//! ```

use serde::Deserialize;
use serde_json::Value;
use tollgate_sdk::conditions::{compile_all, Condition, ConditionSpec};
use tollgate_sdk::{allow, deny_with, Call, Policy, Verdict};

/// How many schema errors one denial lists at most.
const MAX_ERRORS: usize = 3;

/// Configuration of the `validate` plugin.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A JSON Schema the arguments must satisfy.
    #[serde(default)]
    pub schema: Option<Value>,
    /// Conditions that must all hold.
    #[serde(default)]
    pub require: Vec<ConditionSpec>,
    /// Reason given to the agent instead of the generated one.
    #[serde(default)]
    pub message: Option<String>,
}

/// The compiled plugin.
pub struct Validate {
    schema: Option<jsonschema::Validator>,
    require: Vec<Condition>,
    message: Option<String>,
}

impl Policy for Validate {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.schema.is_none() && config.require.is_empty() {
            return Err("give a `schema`, `require` conditions, or both".into());
        }
        let schema = match &config.schema {
            None => None,
            // `validator_for` checks the schema against its draft's meta-schema, which the
            // library builds once per instance and every rule shares.
            Some(schema) => Some(
                jsonschema::validator_for(schema)
                    .map_err(|e| format!("`schema` is not a valid JSON Schema: {e}"))?,
            ),
        };
        Ok(Self {
            schema,
            require: compile_all(&config.require)?,
            message: config.message,
        })
    }

    fn check_call(&self, call: &Call) -> Verdict {
        let args = call.arguments();
        let mut problems: Vec<String> = Vec::new();
        // `is_valid` allocates nothing; the errors are collected only when there are some.
        if let Some(schema) = self.schema.as_ref().filter(|s| !s.is_valid(args)) {
            problems.extend(schema.iter_errors(args).take(MAX_ERRORS).map(|e| {
                let path = e.instance_path.to_string();
                if path.is_empty() {
                    format!("arguments: {e}")
                } else {
                    format!(
                        "argument `{}`: {e}",
                        path.trim_start_matches('/').replace('/', ".")
                    )
                }
            }));
        }
        problems.extend(
            self.require
                .iter()
                .filter(|c| !c.holds(args))
                .map(Condition::describe),
        );
        if problems.is_empty() {
            return allow();
        }
        let reason = self.message.clone().unwrap_or_else(|| {
            format!(
                "invalid arguments for `{}`: {}",
                call.tool(),
                problems.join("; ")
            )
        });
        deny_with(tollgate_sdk::codes::INVALID_ARGUMENTS, reason, None)
    }
}

tollgate_sdk::export_policy!(Validate);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tollgate_sdk::configure;

    #[test]
    fn schema_violations_name_the_path_and_why() {
        let p: Validate = configure(
            r#"{"schema": {"type": "object", "required": ["to"],
                "properties": {"to": {"type": "string"}, "n": {"type": "integer", "maximum": 5}}}}"#,
        )
        .unwrap();
        assert!(p
            .check_call(&Call::new("send", json!({"to": "x", "n": 5})))
            .is_allow());
        let v = p.check_call(&Call::new("send", json!({"to": 3, "n": 9})));
        let d = v.denial().unwrap();
        assert_eq!(d.code, "invalid_arguments");
        assert!(
            d.reason.starts_with("invalid arguments for `send`: "),
            "{}",
            d.reason
        );
        assert!(
            d.reason
                .contains("argument `to`: 3 is not of type \"string\""),
            "{}",
            d.reason
        );
        assert!(
            d.reason
                .contains("argument `n`: 9 is greater than the maximum of 5"),
            "{}",
            d.reason
        );
        let missing = p.check_call(&Call::new("send", json!({})));
        assert!(missing
            .denial()
            .unwrap()
            .reason
            .contains("arguments: \"to\" is a required property"));
    }

    #[test]
    fn required_conditions_must_hold() {
        let p: Validate =
            configure(r#"{"require": [{"path": "args.amount", "op": "lte", "value": 100}]}"#)
                .unwrap();
        assert!(p
            .check_call(&Call::new("pay", json!({"amount": 100})))
            .is_allow());
        let v = p.check_call(&Call::new("pay", json!({"amount": 101})));
        assert_eq!(
            v.denial().unwrap().reason,
            "invalid arguments for `pay`: `amount` must be a number at most 100"
        );
    }

    #[test]
    fn an_invalid_schema_is_rejected_at_configure() {
        let err = configure::<Validate>(r#"{"schema": {"type": "strnig"}}"#)
            .err()
            .unwrap();
        assert!(
            err.starts_with("`schema` is not a valid JSON Schema"),
            "{err}"
        );
        assert_eq!(
            configure::<Validate>("{}").err().unwrap(),
            "give a `schema`, `require` conditions, or both"
        );
    }
}
