//! Built-in `redact` plugin: replace every match of its patterns in a tool result's text (text
//! content blocks and `structuredContent` strings) before the agent sees it. Calls are never
//! refused; results that contain no match pass untouched.
//!
//! ```json
//! {"patterns": ["\\b\\d{3}-\\d{2}-\\d{4}\\b", "(?i)api[_-]?key\\s*[:=]\\s*\\S+"],
//!  "replacement": "[redacted]"}
//! ```

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use tollgate_sdk::{Call, Policy, ResultVerdict};

/// Configuration of the `redact` plugin.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Regular expressions (Rust syntax) whose matches are replaced.
    pub patterns: Vec<String>,
    /// What each match becomes (default `[redacted]`).
    #[serde(default = "default_replacement")]
    pub replacement: String,
}

fn default_replacement() -> String {
    "[redacted]".into()
}

/// The compiled plugin.
pub struct Redact {
    patterns: Vec<Regex>,
    replacement: String,
}

impl Redact {
    fn redact_text(&self, text: &str) -> Option<String> {
        let mut out = std::borrow::Cow::Borrowed(text);
        for p in &self.patterns {
            if let std::borrow::Cow::Owned(s) = p.replace_all(&out, self.replacement.as_str()) {
                out = std::borrow::Cow::Owned(s);
            }
        }
        match out {
            std::borrow::Cow::Owned(s) => Some(s),
            std::borrow::Cow::Borrowed(_) => None,
        }
    }

    /// Redact every string in `v`; whether anything changed.
    fn redact_strings(&self, v: &mut Value) -> bool {
        match v {
            Value::String(s) => match self.redact_text(s) {
                Some(new) => {
                    *s = new;
                    true
                }
                None => false,
            },
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, i| self.redact_strings(i) | changed),
            Value::Object(map) => map
                .values_mut()
                .fold(false, |changed, i| self.redact_strings(i) | changed),
            _ => false,
        }
    }
}

impl Policy for Redact {
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        if config.patterns.is_empty() {
            return Err("`patterns` must name at least one regular expression".into());
        }
        let patterns = config
            .patterns
            .iter()
            .map(|p| Regex::new(p).map_err(|e| format!("invalid pattern `{p}`: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            patterns,
            replacement: config.replacement,
        })
    }

    fn check_result(&self, _call: &Call, result: &str) -> ResultVerdict {
        let Ok(mut value) = serde_json::from_str::<Value>(result) else {
            return ResultVerdict::Pass;
        };
        let mut changed = false;
        if let Some(blocks) = value.get_mut("content").and_then(Value::as_array_mut) {
            for block in blocks {
                if block.get("type").and_then(Value::as_str) == Some("text") {
                    if let Some(text) = block.get_mut("text") {
                        changed |= self.redact_strings(text);
                    }
                }
            }
        }
        if let Some(structured) = value.get_mut("structuredContent") {
            changed |= self.redact_strings(structured);
        }
        if changed {
            ResultVerdict::Replace(value)
        } else {
            ResultVerdict::Pass
        }
    }
}

tollgate_sdk::export_policy!(Redact);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plugin() -> Redact {
        tollgate_sdk::configure::<Redact>(
            r#"{"patterns": ["\\b\\d{3}-\\d{2}-\\d{4}\\b", "sk-[A-Za-z0-9]{8,}"]}"#,
        )
        .unwrap()
    }

    #[test]
    fn matches_in_text_and_structured_content_are_replaced() {
        let result = json!({
            "content": [{"type": "text", "text": "SSN 123-45-6789, key sk-abcdefgh123"},
                        {"type": "image", "data": "123-45-6789"}],
            "structuredContent": {"ssn": "123-45-6789", "n": 5},
            "isError": false
        });
        let call = Call::new("lookup", json!({}));
        match plugin().check_result(&call, &result.to_string()) {
            ResultVerdict::Replace(v) => {
                assert_eq!(v["content"][0]["text"], "SSN [redacted], key [redacted]");
                assert_eq!(v["content"][1]["data"], "123-45-6789", "only text blocks");
                assert_eq!(v["structuredContent"], json!({"ssn": "[redacted]", "n": 5}));
                assert_eq!(v["isError"], false);
            }
            other => panic!("expected a replacement, got {other:?}"),
        }
    }

    #[test]
    fn clean_results_pass_untouched() {
        let call = Call::new("lookup", json!({}));
        let clean = json!({"content": [{"type": "text", "text": "nothing here"}]}).to_string();
        assert_eq!(plugin().check_result(&call, &clean), ResultVerdict::Pass);
    }

    #[test]
    fn bad_patterns_are_refused_at_configure() {
        let err = tollgate_sdk::configure::<Redact>(r#"{"patterns": ["(unclosed"]}"#)
            .err()
            .unwrap();
        assert!(err.contains("invalid pattern `(unclosed`"), "{err}");
        let err = tollgate_sdk::configure::<Redact>(r#"{"patterns": []}"#)
            .err()
            .unwrap();
        assert!(err.contains("at least one"), "{err}");
    }
}
