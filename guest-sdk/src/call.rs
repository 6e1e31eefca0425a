//! The call a plugin decides.

use serde_json::Value;
use std::sync::OnceLock;

/// One `tools/call` request, as the host hands it to a plugin.
#[derive(Debug, Clone)]
pub struct Call {
    tool: String,
    arguments_json: String,
    server: String,
    caller: String,
    metadata: Vec<(String, String)>,
    parsed: OnceLock<Value>,
}

impl Call {
    /// A call of `tool` with `arguments`, from caller `anonymous` to server `test` — for tests.
    pub fn new(tool: impl Into<String>, arguments: Value) -> Self {
        Self::from_parts(
            tool.into(),
            arguments.to_string(),
            "test".into(),
            "anonymous".into(),
            Vec::new(),
        )
    }

    /// The same call from another caller.
    pub fn with_caller(mut self, caller: impl Into<String>) -> Self {
        self.caller = caller.into();
        self
    }

    /// The same call with one more metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    #[doc(hidden)]
    pub fn from_parts(
        tool: String,
        arguments_json: String,
        server: String,
        caller: String,
        metadata: Vec<(String, String)>,
    ) -> Self {
        Self {
            tool,
            arguments_json,
            server,
            caller,
            metadata,
            parsed: OnceLock::new(),
        }
    }

    /// The tool's name.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// The arguments as the JSON text the host sent.
    pub fn arguments_json(&self) -> &str {
        &self.arguments_json
    }

    /// The arguments, parsed on first use (an object; `Null` if the host sent invalid JSON,
    /// which it never does).
    pub fn arguments(&self) -> &Value {
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.arguments_json).unwrap_or(Value::Null))
    }

    /// The argument at a dotted path such as `to` or `message.recipients.0`; array elements are
    /// addressed by their index.
    pub fn argument(&self, path: &str) -> Option<&Value> {
        lookup(self.arguments(), path)
    }

    /// The upstream server's configured name.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Who is calling (authenticated principal, else client/session identity, else `anonymous`).
    pub fn caller(&self) -> &str {
        &self.caller
    }

    /// The metadata value for `key`, if the host sent one.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Follow a dotted path (`a.b.0.c`) into a JSON value. An empty path is the value itself.
pub fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    if path.is_empty() {
        return Some(value);
    }
    path.split('.').try_fold(value, |v, part| match v {
        Value::Object(map) => map.get(part),
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argument_paths_reach_nested_objects_and_arrays() {
        let call = Call::new("t", json!({"a": {"b": [10, {"c": "x"}]}}));
        assert_eq!(call.argument("a.b.0"), Some(&json!(10)));
        assert_eq!(call.argument("a.b.1.c"), Some(&json!("x")));
        assert_eq!(call.argument("a.missing"), None);
        assert_eq!(call.argument("a.b.7"), None);
        assert_eq!(call.argument(""), Some(call.arguments()));
    }

    #[test]
    fn caller_and_metadata_are_visible_to_plugins() {
        let call = Call::new("t", json!({}))
            .with_caller("alice")
            .with_metadata("client-name", "claude");
        assert_eq!(call.caller(), "alice");
        assert_eq!(call.metadata("client-name"), Some("claude"));
        assert_eq!(call.metadata("absent"), None);
    }
}
