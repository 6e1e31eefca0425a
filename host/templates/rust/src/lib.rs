//! __NAME__: a Tollgate policy plugin. It refuses every tool call whose arguments contain the
//! configured word. Edit `check_call` (and optionally `check_result` or `visible`) to make it yours.

use tollgate_sdk::{allow, deny, Call, Policy, Verdict};

/// The plugin's configuration (`config:` in the policy file), checked against
/// `tollgate-pack.json`'s `config_schema` by Tollgate and parsed here.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Calls whose arguments contain this text are refused.
    pub forbidden: String,
}

/// The plugin.
pub struct Plugin {
    forbidden: String,
}

impl Policy for Plugin {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.forbidden.is_empty() {
            return Err("`forbidden` must not be empty".into());
        }
        Ok(Self {
            forbidden: config.forbidden,
        })
    }

    fn check_call(&self, call: &Call) -> Verdict {
        if call.arguments_json().contains(&self.forbidden) {
            deny(format!("the arguments contain '{}'", self.forbidden))
        } else {
            allow()
        }
    }
}

tollgate_sdk::export_policy!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plugin() -> Plugin {
        tollgate_sdk::configure::<Plugin>(r#"{"forbidden": "rm -rf"}"#).unwrap()
    }

    #[test]
    fn ordinary_calls_pass_and_the_forbidden_word_is_refused() {
        let p = plugin();
        assert!(p
            .check_call(&Call::new("run", json!({"command": "ls"})))
            .is_allow());
        let v = p.check_call(&Call::new("run", json!({"command": "rm -rf /"})));
        assert_eq!(v.denial().unwrap().reason, "the arguments contain 'rm -rf'");
    }

    #[test]
    fn a_bad_configuration_says_what_is_wrong() {
        let err = tollgate_sdk::configure::<Plugin>(r#"{"forbiden": "x"}"#)
            .err()
            .unwrap();
        assert!(err.contains("unknown field `forbiden`"), "{err}");
    }
}
