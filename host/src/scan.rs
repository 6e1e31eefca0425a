//! `tollgate scan -- COMMAND ARGS…` / `tollgate scan --url URL`: ask an MCP server for its tools
//! and write a starter policy.
//!
//! A command runs as a child over stdio (a URL gets a Streamable HTTP session) for as long as it
//! takes to send `initialize`,
//! `notifications/initialized` and `tools/list` (every page), then it is stopped. Messages that
//! are not the awaited response (log notifications, progress, requests to the client) are skipped;
//! requests the server sends are answered "method not found" so it never waits on us.
//!
//! The session declares the client capabilities that make servers offer more tools (sampling and
//! elicitation: server-everything lists its sampling and elicitation tools only to clients that
//! have them), so a scan or a pin sees every tool a capable agent will be shown. Roots are not
//! declared: a server that has them asks for the roots, and a declined answer would change what
//! it serves (the filesystem server's allowed directories).

use crate::transport::server::{self, ServerAddress, ServerLink, ServerMessages};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// The protocol revision `scan` asks for.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Name fragments that suggest a tool destroys something.
const DESTRUCTIVE: &[&str] = &["delete", "remove", "drop", "destroy", "purge"];

/// Longest description kept in a policy comment, in characters.
const MAX_DESCRIPTION: usize = 100;

/// A tool as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedTool {
    /// Its name.
    pub name: String,
    /// Its description, if it has one.
    pub description: Option<String>,
    /// The whole definition as the server listed it.
    pub definition: Value,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// `serverInfo.name` from the initialize result.
    pub server_name: Option<String>,
    /// `serverInfo.version`.
    pub server_version: Option<String>,
    /// Every tool, in the server's order, pages concatenated.
    pub tools: Vec<ScannedTool>,
}

struct Peer {
    link: Arc<ServerLink>,
    messages: ServerMessages,
    next_id: u64,
    timeout: Duration,
}

impl Peer {
    async fn send(&mut self, message: &Value) -> Result<()> {
        self.link
            .send(message.to_string().as_bytes())
            .await
            .context("cannot write to the server (did it exit?)")
    }

    /// The server's next message; `None` when it is gone.
    async fn next_message(&mut self) -> Result<Option<String>> {
        Ok(self
            .messages
            .next()
            .await
            .map(|m| String::from_utf8_lossy(&m).into_owned()))
    }

    /// Send a request and wait for the response with its id, skipping everything else.
    async fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.response(id, method))
            .await
            .map_err(|_| anyhow!("the server did not answer `{method}` within {timeout:?}"))?
    }

    async fn response(&mut self, id: u64, method: &str) -> Result<Value> {
        loop {
            let line = self.next_message().await?.ok_or_else(|| {
                anyhow!("the server closed the connection before answering `{method}`")
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                tracing::debug!(line, "skipping a line that is not JSON");
                continue;
            };
            let messages = match message {
                Value::Array(items) => items,
                other => vec![other],
            };
            for m in messages {
                if let Some(answer) = self.handle(m, id).await? {
                    return answer
                        .map_err(|e| anyhow!("the server answered `{method}` with an error: {e}"));
                }
            }
        }
    }

    /// One incoming message: the awaited response (`Some`), or something to skip or answer.
    async fn handle(&mut self, m: Value, id: u64) -> Result<Option<Result<Value, Value>>> {
        let is_response = m.get("method").is_none();
        if is_response {
            if m.get("id").and_then(Value::as_u64) == Some(id) {
                return Ok(Some(match m.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(m.get("result").cloned().unwrap_or(Value::Null)),
                }));
            }
            tracing::debug!(message = %m, "skipping a response to another request");
        } else if let Some(req_id) = m.get("id") {
            // A request from the server (ping, roots/list, sampling…): decline it.
            let answer = if m["method"] == "ping" {
                json!({"jsonrpc": "2.0", "id": req_id, "result": {}})
            } else {
                json!({"jsonrpc": "2.0", "id": req_id,
                       "error": {"code": crate::jsonrpc::codes::METHOD_NOT_FOUND, "message": "Method not found: tollgate scan answers no requests"}})
            };
            self.send(&answer).await?;
        } else {
            tracing::debug!(method = %m["method"], "skipping a notification");
        }
        Ok(None)
    }
}

/// Start the server at `address`, list its tools, stop it (a remote session is ended). `timeout`
/// bounds each response.
pub async fn scan(address: &ServerAddress, timeout: Duration) -> Result<Scan> {
    let (link, messages) = server::start(address, 0)?;
    let mut peer = Peer {
        link,
        messages,
        next_id: 0,
        timeout,
    };
    let result = match talk(&mut peer).await {
        Ok(scan) => Ok(scan),
        // Say so when a child is gone: that is usually the real problem.
        Err(e) => match tokio::time::timeout(Duration::from_millis(500), peer.link.wait()).await {
            Ok(Some(Ok(status))) => Err(e.context(format!("the server exited ({status})"))),
            _ => Err(e),
        },
    };
    peer.link.shut_down(Duration::from_secs(2)).await;
    result.with_context(|| format!("scanning {address}"))
}

async fn talk(peer: &mut Peer) -> Result<Scan> {
    let init = peer
        .request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {"sampling": {}, "elicitation": {"form": {}, "url": {}}},
                "clientInfo": {"name": "tollgate-scan", "version": env!("CARGO_PKG_VERSION")},
            }),
        )
        .await?;
    if init
        .get("capabilities")
        .is_some_and(|c| c.get("tools").is_none())
    {
        tracing::warn!("the server does not declare the `tools` capability; asking anyway");
    }
    peer.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await?;
    let mut tools: Vec<ScannedTool> = Vec::new();
    let mut cursor: Option<Value> = None;
    for page in 1.. {
        if page > 1000 {
            bail!("the server kept returning `nextCursor` after 1000 pages of tools/list");
        }
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let result = peer.request("tools/list", params).await?;
        let listed = result
            .get("tools")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("tools/list result has no `tools` list: {result}"))?;
        for tool in listed {
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("a tool without a name in tools/list: {tool}"))?;
            if tools.iter().any(|t| t.name == name) {
                continue;
            }
            tools.push(ScannedTool {
                name: name.to_string(),
                description: tool
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                definition: tool.clone(),
            });
        }
        match result.get("nextCursor") {
            Some(next) if !next.is_null() && Some(next) != cursor.as_ref() => {
                cursor = Some(next.clone())
            }
            _ => break,
        }
    }
    let info = init.get("serverInfo");
    let text = |k: &str| {
        info.and_then(|i| i.get(k))
            .and_then(Value::as_str)
            .map(String::from)
    };
    Ok(Scan {
        server_name: text("name"),
        server_version: text("version"),
        tools,
    })
}

/// Whether the tool's name suggests it destroys something.
pub fn looks_destructive(name: &str) -> bool {
    let lower = name.to_lowercase();
    DESTRUCTIVE.iter().any(|w| lower.contains(w))
}

/// A description on one line, at most [`MAX_DESCRIPTION`] characters.
fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX_DESCRIPTION {
        return flat;
    }
    let cut: String = flat.chars().take(MAX_DESCRIPTION - 1).collect();
    format!("{}…", cut.trim_end())
}

/// A tool name as a YAML mapping key: plain when that is unambiguous, else double-quoted.
fn yaml_key(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && !matches!(
            name.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        name.to_string()
    } else {
        Value::String(name.to_string()).to_string()
    }
}

/// The starter policy: `default: allow`, every tool with `rules: []` under a comment with its
/// description, and a commented-out deny rule under tools whose names suggest destruction.
pub fn starter_policy(scan: &Scan, source: &str) -> String {
    let mut out = String::new();
    let server = match (&scan.server_name, &scan.server_version) {
        (Some(n), Some(v)) => format!("{n} {v}"),
        (Some(n), None) => n.clone(),
        _ => "the MCP server".into(),
    };
    let _ = writeln!(
        out,
        "# Starter policy for {}, written by `tollgate scan` from its tools/list ({} tool{}).",
        one_line(&server),
        scan.tools.len(),
        if scan.tools.len() == 1 { "" } else { "s" }
    );
    let _ = writeln!(out, "# Server: {}", one_line(source));
    out.push_str(
        "# Every tool is allowed with no rules. Add validate, deny and rate_limit rules where calls\n\
         # have real effects, consider `default: deny`, and check the file with `tollgate check`.\n",
    );
    out.push_str("version: 1\ndefault: allow\n");
    if scan.tools.is_empty() {
        out.push_str("tools: {}\n");
        return out;
    }
    out.push_str("tools:\n");
    for tool in &scan.tools {
        match tool.description.as_deref().map(one_line) {
            Some(d) if !d.is_empty() => {
                let _ = writeln!(out, "  # {d}");
            }
            _ => out.push_str("  # (no description)\n"),
        }
        let _ = writeln!(out, "  {}:", yaml_key(&tool.name));
        out.push_str("    rules: []\n");
        if looks_destructive(&tool.name) {
            out.push_str(
                "    # The name suggests it destroys something. To refuse it, replace `rules: []` with:\n\
                 \x20   # rules:\n\
                 \x20   #   - action: deny\n\
                 \x20   #     reason: \"This destroys data; agents may not call it. Ask a human.\"\n",
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_policy_lists_every_tool_and_parses() {
        let scan = Scan {
            server_name: Some("demo".into()),
            server_version: Some("1.0".into()),
            tools: vec![
                ScannedTool {
                    name: "send_message".into(),
                    description: Some("Send an SMS.\nIt costs   money. ".repeat(10)),
                    definition: Value::Null,
                },
                ScannedTool {
                    name: "deleteFile".into(),
                    description: None,
                    definition: Value::Null,
                },
                ScannedTool {
                    name: "weird name: yes".into(),
                    description: Some("x".into()),
                    definition: Value::Null,
                },
                ScannedTool {
                    name: "true".into(),
                    description: Some("".into()),
                    definition: Value::Null,
                },
            ],
        };
        let text = starter_policy(&scan, "`server`");
        let policy = crate::config::parse_native(&text, std::path::Path::new(".")).unwrap();
        let names: Vec<_> = policy.tools.iter().map(|t| t.pattern.as_str()).collect();
        assert_eq!(
            names,
            ["send_message", "deleteFile", "weird name: yes", "true"]
        );
        assert!(text.contains("  # Send an SMS. It costs money. Send an SMS."));
        assert!(text.lines().all(|l| l.chars().count() < 120), "{text}");
        assert!(text.contains("  deleteFile:\n    rules: []\n    # The name suggests"));
        assert_eq!(text.matches("#   - action: deny").count(), 1);
        // The suggestion, uncommented, is a valid rule.
        let uncommented = text
            .replace("    rules: []\n    # The name", "    # The name")
            .replace("    # rules:", "    rules:")
            .replace("    #   -", "      -")
            .replace("    #     reason", "        reason");
        let policy = crate::config::parse_native(&uncommented, std::path::Path::new(".")).unwrap();
        assert_eq!(policy.tools[1].rules[0].plugin, "deny");
    }

    #[test]
    fn destructive_names_are_spotted() {
        for name in [
            "delete_file",
            "removeItem",
            "DROP_TABLE",
            "destroy",
            "purge-cache",
        ] {
            assert!(looks_destructive(name), "{name}");
        }
        assert!(!looks_destructive("list_files"));
    }
}
