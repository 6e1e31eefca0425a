//! One server entry of a client's configuration: what it is, and the same server behind Tollgate.

use serde_json::{json, Map, Value};
use std::path::Path;

/// What a server entry starts or connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// A command the client runs, talking MCP on its stdin and stdout.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// A Streamable HTTP endpoint.
    Remote {
        /// The endpoint.
        url: String,
        /// The key the client writes it under (`url`, `httpUrl`, `serverUrl`).
        key: &'static str,
    },
    /// A server on the legacy HTTP+SSE transport, which Tollgate does not speak upstream.
    Sse,
    /// Already Tollgate in front of a server.
    Wrapped,
}

/// Keys a client may write a Streamable HTTP endpoint under, in the order they are looked for.
const URL_KEYS: &[&str] = &["httpUrl", "serverUrl", "url"];

/// The environment variables wrapped remote entries pass their headers in (so secrets stay out
/// of process listings): `TOLLGATE_UPSTREAM_HEADER_1`, `_2`, …
const HEADER_VAR: &str = "TOLLGATE_UPSTREAM_HEADER_";

/// What a server entry is; an error saying why for a shape Tollgate does not know.
/// `sse_url_key`: the key under which this client means the legacy SSE transport (Gemini CLI's
/// `url`), if any.
pub fn shape(entry: &Value, sse_url_key: Option<&str>) -> Result<Shape, String> {
    let Some(map) = entry.as_object() else {
        return Err("the entry is not an object".into());
    };
    if let Some(command) = map.get("command") {
        let command = command
            .as_str()
            .ok_or("its `command` is not a string")?
            .to_string();
        let args = match map.get("args") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|a| a.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("its `args` are not all strings")?,
            Some(_) => return Err("its `args` is not a list".into()),
        };
        if is_tollgate(&command) && args.first().is_some_and(|a| a == "run") {
            return Ok(Shape::Wrapped);
        }
        return Ok(Shape::Stdio { command, args });
    }
    let transport = map.get("type").or_else(|| map.get("transport"));
    for key in URL_KEYS {
        if let Some(url) = map.get(*key) {
            let url = url.as_str().ok_or(format!("its `{key}` is not a string"))?;
            if transport.and_then(Value::as_str) == Some("sse") || sse_url_key == Some(*key) {
                return Ok(Shape::Sse);
            }
            return Ok(Shape::Remote {
                url: url.to_string(),
                key,
            });
        }
    }
    Err("it has neither a `command` nor a URL (`url`, `httpUrl`, `serverUrl`)".into())
}

/// Whether a command is Tollgate itself.
fn is_tollgate(command: &str) -> bool {
    Path::new(command)
        .file_stem()
        .is_some_and(|s| s == "tollgate")
}

/// The entry with Tollgate in front: `tollgate run --policy POLICY --server-name NAME -- COMMAND
/// ARGS…` for a command, `… --upstream URL` (its headers passed through environment variables)
/// for a remote server. Every other field (`env`, `cwd`, the client's own settings) is kept.
pub fn wrap(entry: &Value, shape: &Shape, tollgate: &Path, policy: &Path, name: &str) -> Value {
    let mut map = entry.as_object().cloned().unwrap_or_default();
    let mut args = vec![
        json!("run"),
        json!("--policy"),
        json!(policy.to_string_lossy()),
        json!("--server-name"),
        json!(name),
    ];
    match shape {
        Shape::Stdio {
            command,
            args: original,
        } => {
            args.push(json!("--"));
            args.push(json!(command));
            args.extend(original.iter().map(|a| json!(a)));
        }
        Shape::Remote { url, key } => {
            map.remove(*key);
            args.extend([json!("--upstream"), json!(url)]);
            let env = map
                .entry("env")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object()
                .cloned()
                .unwrap_or_default();
            let (headers, env) = upstream_headers(&mut map, env);
            for header in headers {
                args.extend([json!("--upstream-header"), json!(header)]);
            }
            if env.is_empty() {
                map.remove("env");
            } else {
                map.insert("env".into(), Value::Object(env));
            }
            if map.contains_key("type") {
                map.insert("type".into(), json!("stdio"));
            }
            map.remove("transport");
        }
        Shape::Sse | Shape::Wrapped => return entry.clone(),
    }
    map.insert("command".into(), json!(tollgate.to_string_lossy()));
    map.insert("args".into(), Value::Array(args));
    Value::Object(map)
}

/// The headers a remote entry sends, as `--upstream-header` values, taken out of the entry:
/// `headers` (most clients) and Codex's `http_headers`, each value passed in an environment
/// variable of the entry added to `env`; Codex's `env_http_headers` (header → the client's
/// environment variable) and `bearer_token_env_var` name a variable already there.
fn upstream_headers(
    map: &mut Map<String, Value>,
    mut env: Map<String, Value>,
) -> (Vec<String>, Map<String, Value>) {
    let mut out = Vec::new();
    for key in ["headers", "http_headers"] {
        if let Some(Value::Object(headers)) = map.remove(key) {
            for (header, value) in headers {
                let var = format!("{HEADER_VAR}{}", out.len() + 1);
                out.push(format!("{header}: ${var}"));
                env.insert(var, value);
            }
        }
    }
    if let Some(Value::Object(headers)) = map.remove("env_http_headers") {
        for (header, var) in headers {
            if let Some(var) = var.as_str() {
                out.push(format!("{header}: ${var}"));
            }
        }
    }
    if let Some(Value::String(var)) = map.remove("bearer_token_env_var") {
        out.push(format!("Authorization: Bearer ${var}"));
    }
    (out, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_wrapped_keeping_its_env_and_a_remote_server_passes_headers_by_environment() {
        let stdio = json!({"command": "npx", "args": ["-y", "srv"], "env": {"TOKEN": "t"}, "disabled": false});
        let shape_ = shape(&stdio, None).unwrap();
        let wrapped = wrap(
            &stdio,
            &shape_,
            Path::new("/bin/tollgate"),
            Path::new("/p/srv.yaml"),
            "srv",
        );
        assert_eq!(
            wrapped,
            json!({"command": "/bin/tollgate", "args": ["run", "--policy", "/p/srv.yaml", "--server-name", "srv", "--", "npx", "-y", "srv"],
                   "env": {"TOKEN": "t"}, "disabled": false})
        );
        assert_eq!(shape(&wrapped, None).unwrap(), Shape::Wrapped);
        let remote = json!({"type": "http", "url": "https://mcp.example/mcp", "headers": {"Authorization": "Bearer s3cret"}});
        let shape_ = shape(&remote, None).unwrap();
        let wrapped = wrap(
            &remote,
            &shape_,
            Path::new("/bin/tollgate"),
            Path::new("/p/r.yaml"),
            "r",
        );
        assert_eq!(
            wrapped,
            json!({"type": "stdio", "env": {"TOLLGATE_UPSTREAM_HEADER_1": "Bearer s3cret"}, "command": "/bin/tollgate",
                   "args": ["run", "--policy", "/p/r.yaml", "--server-name", "r", "--upstream", "https://mcp.example/mcp",
                            "--upstream-header", "Authorization: $TOLLGATE_UPSTREAM_HEADER_1"]})
        );
    }

    #[test]
    fn codex_headers_literal_from_the_environment_and_bearer_reach_the_upstream() {
        let remote = json!({"url": "https://mcp.example/mcp", "http_headers": {"X-Key": "k"},
                            "env_http_headers": {"X-Org": "ORG_ID"}, "bearer_token_env_var": "MCP_TOKEN"});
        let shape_ = shape(&remote, None).unwrap();
        let wrapped = wrap(
            &remote,
            &shape_,
            Path::new("/bin/tollgate"),
            Path::new("/p/r.yaml"),
            "r",
        );
        assert_eq!(
            wrapped,
            json!({"env": {"TOLLGATE_UPSTREAM_HEADER_1": "k"}, "command": "/bin/tollgate",
                   "args": ["run", "--policy", "/p/r.yaml", "--server-name", "r", "--upstream", "https://mcp.example/mcp",
                            "--upstream-header", "X-Key: $TOLLGATE_UPSTREAM_HEADER_1",
                            "--upstream-header", "X-Org: $ORG_ID",
                            "--upstream-header", "Authorization: Bearer $MCP_TOKEN"]})
        );
    }

    #[test]
    fn shapes_tollgate_cannot_front_are_named() {
        assert_eq!(
            shape(&json!({"type": "sse", "url": "http://x/sse"}), None).unwrap(),
            Shape::Sse
        );
        assert_eq!(
            shape(&json!({"url": "http://x/sse"}), Some("url")).unwrap(),
            Shape::Sse
        );
        assert_eq!(
            shape(&json!({"command": 3}), None).unwrap_err(),
            "its `command` is not a string"
        );
        assert_eq!(
            shape(&json!({"name": "x"}), None).unwrap_err(),
            "it has neither a `command` nor a URL (`url`, `httpUrl`, `serverUrl`)"
        );
    }
}
