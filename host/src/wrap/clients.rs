//! The MCP clients `tollgate wrap` knows: where each keeps its servers, and how it names them.

use std::path::PathBuf;

/// An MCP client whose configuration `tollgate wrap` can edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// Claude Desktop: `claude_desktop_config.json` in the platform's configuration directory.
    ClaudeDesktop,
    /// Claude Code, user scope: `~/.claude.json`.
    ClaudeCode,
    /// Cursor, global: `~/.cursor/mcp.json`.
    Cursor,
    /// Visual Studio Code, user profile: `Code/User/mcp.json` (servers under `servers`).
    Vscode,
    /// Windsurf: `~/.codeium/windsurf/mcp_config.json` (remote servers as `serverUrl`).
    Windsurf,
    /// Gemini CLI: `~/.gemini/settings.json` (Streamable HTTP servers as `httpUrl`).
    GeminiCli,
    /// OpenAI Codex CLI: `$CODEX_HOME/config.toml` (default `~/.codex`), `[mcp_servers.NAME]`.
    Codex,
}

/// Every client by the name `--client` takes.
pub const CLIENTS: &[(&str, Client)] = &[
    ("claude-desktop", Client::ClaudeDesktop),
    ("claude-code", Client::ClaudeCode),
    ("cursor", Client::Cursor),
    ("vscode", Client::Vscode),
    ("windsurf", Client::Windsurf),
    ("gemini-cli", Client::GeminiCli),
    ("codex", Client::Codex),
];

/// How a configuration file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// JSON; servers under the given key.
    Json(&'static str),
    /// TOML; servers as tables under `mcp_servers`.
    Toml,
}

impl Client {
    /// The client `--client` names, or an error listing the known ones.
    pub fn parse(name: &str) -> Result<Client, String> {
        CLIENTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                let known: Vec<&str> = CLIENTS.iter().map(|(n, _)| *n).collect();
                format!("unknown client `{name}` (known: {})", known.join(", "))
            })
    }

    /// The name `--client` takes.
    pub fn name(self) -> &'static str {
        CLIENTS
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(n, _)| *n)
            .unwrap_or("client")
    }

    /// Where this client keeps its MCP servers for the current user, on this OS, as its
    /// documentation says.
    pub fn config_path(self) -> Option<PathBuf> {
        let home = dirs::home_dir();
        match self {
            Client::ClaudeDesktop => {
                dirs::config_dir().map(|d| d.join("Claude").join("claude_desktop_config.json"))
            }
            Client::ClaudeCode => home.map(|h| h.join(".claude.json")),
            Client::Cursor => home.map(|h| h.join(".cursor").join("mcp.json")),
            Client::Vscode => {
                dirs::config_dir().map(|d| d.join("Code").join("User").join("mcp.json"))
            }
            Client::Windsurf => {
                home.map(|h| h.join(".codeium").join("windsurf").join("mcp_config.json"))
            }
            Client::GeminiCli => home.map(|h| h.join(".gemini").join("settings.json")),
            Client::Codex => std::env::var_os("CODEX_HOME")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".codex")))
                .map(|d| d.join("config.toml")),
        }
    }

    /// How its file is written.
    pub fn syntax(self) -> Syntax {
        match self {
            Client::Vscode => Syntax::Json("servers"),
            Client::Codex => Syntax::Toml,
            _ => Syntax::Json("mcpServers"),
        }
    }
}

/// The syntax of a file named with `--config`: TOML by its extension, else JSON with its servers
/// under `servers` if it has that key and no `mcpServers`.
pub fn syntax_of(path: &std::path::Path, text: &str) -> Syntax {
    if path.extension().is_some_and(|e| e == "toml") {
        return Syntax::Toml;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) if v.get("mcpServers").is_none() && v.get("servers").is_some() => {
            Syntax::Json("servers")
        }
        _ => Syntax::Json("mcpServers"),
    }
}
