//! rust-block-secrets: refuses tool calls whose arguments carry credentials (cloud keys, tokens,
//! private keys), so an agent cannot paste a secret into an issue, a message or a web request.
//! The denial names the kind of secret and what to do instead, never the secret itself.

use regex::Regex;
use tollgate_sdk::{allow, deny_with, Call, Policy, Verdict};

/// What the policy file configures.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Extra patterns to refuse, by name: `{ "ticket-id": "TCK-[0-9]{6}" }`.
    #[serde(default)]
    pub extra: std::collections::BTreeMap<String, String>,
    /// Tools exempt from the check (e.g. a vault tool that is supposed to receive secrets).
    #[serde(default)]
    pub allow_tools: Vec<String>,
}

/// The plugin: named detectors, checked in order.
pub struct BlockSecrets {
    detectors: Vec<(String, Regex)>,
    allow_tools: Vec<String>,
}

const BUILT_IN: &[(&str, &str)] = &[
    ("an AWS access key", r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("a GitHub token", r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    ("a Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("an API secret key", r"\bsk-[A-Za-z0-9_-]{20,}"),
    ("a private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
];

impl Policy for BlockSecrets {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        let mut detectors = Vec::new();
        for (name, pattern) in BUILT_IN {
            // ASCII word boundaries: a Unicode `\b` keeps the regex engine off its fast DFA.
            let ascii = format!("(?-u){pattern}");
            detectors.push((
                name.to_string(),
                Regex::new(&ascii).expect("built-in pattern"),
            ));
        }
        for (name, pattern) in config.extra {
            let re = Regex::new(&pattern)
                .map_err(|e| format!("extra pattern `{name}` is not a valid regex: {e}"))?;
            detectors.push((name, re));
        }
        Ok(Self {
            detectors,
            allow_tools: config.allow_tools,
        })
    }

    fn check_call(&self, call: &Call) -> Verdict {
        if self.allow_tools.iter().any(|t| t == call.tool()) {
            return allow();
        }
        let text = call.arguments_json();
        match self.detectors.iter().find(|(_, re)| re.is_match(text)) {
            Some((name, _)) => deny_with(
                "secret_in_arguments",
                format!(
                    "the arguments contain what looks like {name}; never send credentials to a tool, refer to the secret by its name instead"
                ),
                None,
            ),
            None => allow(),
        }
    }
}

tollgate_sdk::export_policy!(BlockSecrets);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plugin(config: &str) -> BlockSecrets {
        tollgate_sdk::configure::<BlockSecrets>(config).unwrap()
    }

    fn reason(v: &Verdict) -> &str {
        &v.denial().expect("a denial").reason
    }

    #[test]
    fn credentials_are_refused_by_kind_and_ordinary_text_passes() {
        let p = plugin("{}");
        let aws = p.check_call(&Call::new(
            "post",
            json!({"body": "key AKIAIOSFODNN7EXAMPLE"}),
        ));
        assert!(reason(&aws).contains("an AWS access key"), "{aws:?}");
        assert!(
            !reason(&aws).contains("AKIA"),
            "the reason never repeats the secret"
        );
        let pem = json!({"file": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn"});
        assert!(reason(&p.check_call(&Call::new("write", pem))).contains("a private key"));
        assert!(p
            .check_call(&Call::new(
                "post",
                json!({"body": "the AKIA prefix marks AWS keys"})
            ))
            .is_allow());
    }

    #[test]
    fn extra_patterns_and_exempt_tools() {
        let p =
            plugin(r#"{"extra": {"a ticket id": "TCK-[0-9]{6}"}, "allow_tools": ["vault_put"]}"#);
        assert!(
            reason(&p.check_call(&Call::new("post", json!({"t": "TCK-123456"}))))
                .contains("a ticket id")
        );
        let put = json!({"value": "AKIAIOSFODNN7EXAMPLE"});
        assert!(p.check_call(&Call::new("vault_put", put)).is_allow());
        let err = tollgate_sdk::configure::<BlockSecrets>(r#"{"extra": {"x": "("}}"#)
            .err()
            .unwrap();
        assert!(
            err.contains("extra pattern `x` is not a valid regex"),
            "{err}"
        );
    }
}
