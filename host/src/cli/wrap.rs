//! `tollgate wrap` / `tollgate unwrap`: put Tollgate in front of every server of an MCP client's
//! configuration, each with a policy, and restore the entries exactly.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tollgate::transport::remote::RemoteOptions;
use tollgate::transport::server::ServerAddress;
use tollgate::wrap::{self, catalog, Client, ConfigFile, Record, Shape, Syntax};

#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// The client whose MCP configuration to edit, at its documented place for this user and OS:
    /// claude-desktop, claude-code, cursor, vscode, windsurf, gemini-cli or codex.
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    client: Option<String>,
    /// A configuration file to edit instead: JSON with `mcpServers` (or `servers`), or TOML with
    /// `[mcp_servers.NAME]` tables.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Show the change as a diff and write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct WrapArgs {
    #[command(flatten)]
    target: Target,
    /// Where each server's policy is written, as SERVER.yaml (default: the user's configuration
    /// directory, `tollgate/policies`). A policy already there is used as it is.
    #[arg(long, value_name = "DIR")]
    policy_dir: Option<PathBuf>,
    /// Do not start the servers to read their tools: a server without a reviewed policy gets a
    /// pass-through one to fill in.
    #[arg(long)]
    no_scan: bool,
    /// Seconds to wait for each of a server's answers while reading its tools.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

/// The file to edit, its syntax and the client it belongs to.
fn target(t: &Target) -> Result<(PathBuf, Syntax, Option<Client>)> {
    if let Some(path) = &t.config {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        return Ok((path.clone(), wrap::clients::syntax_of(path, &text), None));
    }
    let name = t.client.as_deref().unwrap_or_default();
    let client = Client::parse(name).map_err(anyhow::Error::msg)?;
    let path = client
        .config_path()
        .with_context(|| format!("no home directory to find {name}'s configuration in"))?;
    if !path.exists() {
        bail!(
            "{name}: no configuration at {} (is {name} installed for this user? name another file with --config)",
            path.display()
        );
    }
    Ok((path, client.syntax(), Some(client)))
}

pub(crate) fn state_dir() -> Result<PathBuf> {
    tollgate::state::home().context("no state directory to keep the record of wrapped entries in")
}

/// Write `text` over the file (after a backup) or, under --dry-run, print the diff.
fn commit(file: &ConfigFile, text: &str, dry_run: bool) -> Result<bool> {
    if text == file.original {
        return Ok(false);
    }
    if dry_run {
        print!("{}", wrap::diff(&file.path, &file.original, text));
        return Ok(false);
    }
    let backup = PathBuf::from(format!("{}.tollgate-backup", file.path.display()));
    file.write(text, &backup)?;
    eprintln!(
        "tollgate: wrote {} (the previous version is in {})",
        file.path.display(),
        backup.display()
    );
    Ok(true)
}

pub(crate) async fn wrap(args: WrapArgs) -> Result<i32> {
    let (path, syntax, client) = target(&args.target)?;
    let mut file = ConfigFile::read(&path, syntax)?;
    let servers = wrap::survey(&file, client)?;
    if servers.is_empty() {
        eprintln!("tollgate: {} names no MCP servers", path.display());
        return Ok(0);
    }
    let tollgate = std::env::current_exe().context("cannot tell where this tollgate binary is")?;
    let policy_dir = match &args.policy_dir {
        // The client starts servers from a directory of its choosing: paths must be absolute.
        Some(dir) => std::path::absolute(dir)
            .with_context(|| format!("cannot make {} absolute", dir.display()))?,
        None => dirs::config_dir()
            .map(|d| d.join("tollgate").join("policies"))
            .context("no configuration directory for the policies; name one with --policy-dir")?,
    };
    let record_path = Record::path(&state_dir()?, &path);
    let mut record = Record::load(&record_path, &path)?;
    let mut wrapped = Vec::new();
    for server in &servers {
        match &server.shape {
            Shape::Wrapped => eprintln!("tollgate: `{}` is already wrapped", server.name),
            Shape::Sse => eprintln!(
                "tollgate: `{}` is left as it is: it uses the legacy HTTP+SSE transport, and Tollgate fronts Streamable HTTP servers only",
                server.name
            ),
            shape => {
                let policy = policy_dir.join(format!("{}.yaml", file_name(&server.name)));
                let entry = wrap::entry::wrap(&server.entry, shape, &tollgate, &policy, &server.name);
                wrapped.push((server, policy, entry));
            }
        }
    }
    for (server, policy, entry) in &wrapped {
        file.set(&server.name, entry);
        if !args.target.dry_run {
            write_policy(server, policy, &args).await?;
            record.servers.insert(
                server.name.clone(),
                wrap::Wrapped {
                    policy: policy.clone(),
                    original: server.entry.clone(),
                    original_text: file.entry_text(&server.name),
                    wrapped: entry.clone(),
                },
            );
        }
    }
    let text = file.render();
    // The record first: an entry is never wrapped without a way back.
    if !args.target.dry_run && text != file.original {
        record.save(&record_path)?;
    }
    if commit(&file, &text, args.target.dry_run)? {
        eprintln!(
            "tollgate: {} server{} wrapped; `tollgate unwrap {}` restores them",
            wrapped.len(),
            if wrapped.len() == 1 { "" } else { "s" },
            match (&args.target.client, &args.target.config) {
                (Some(c), _) => format!("--client {c}"),
                (_, Some(p)) => format!("--config {}", p.display()),
                _ => String::new(),
            }
        );
    }
    Ok(0)
}

/// A server name as a file name.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Give a wrapped server its policy, unless it has one: a reviewed one for its package, else a
/// starter policy from its tools, else (it could not be listed, or --no-scan) a pass-through.
async fn write_policy(server: &wrap::Server, policy: &Path, args: &WrapArgs) -> Result<()> {
    if policy.exists() {
        eprintln!(
            "tollgate: `{}` keeps its policy {}",
            server.name,
            policy.display()
        );
        return Ok(());
    }
    if let Some(dir) = policy.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let (text, how) = match policy_text(server, args).await {
        Ok(found) => found,
        Err(e) => (
            format!(
                "# Tollgate could not list the tools of `{}` ({e:#}).\n# Every call passes until you write rules here; `tollgate scan` writes a starter policy.\nversion: 1\ndefault: allow\n",
                server.name
            ),
            "a pass-through policy (its tools could not be listed)".to_string(),
        ),
    };
    std::fs::write(policy, text).with_context(|| format!("cannot write {}", policy.display()))?;
    eprintln!(
        "tollgate: `{}` gets {how}: {}",
        server.name,
        policy.display()
    );
    Ok(())
}

/// An entry's object of strings (`env`, `headers`) as pairs; values that are not strings left out.
fn string_pairs(entry: &Value, key: &str) -> Vec<(String, String)> {
    entry
        .get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

async fn policy_text(server: &wrap::Server, args: &WrapArgs) -> Result<(String, String)> {
    if let Shape::Stdio { command, args: a } = &server.shape {
        if let Some(reviewed) = catalog::find(command, a) {
            return Ok((
                reviewed.text.to_string(),
                format!("the reviewed `{}` policy", reviewed.name),
            ));
        }
    }
    if args.no_scan {
        bail!("--no-scan");
    }
    let timeout = Duration::from_secs(args.timeout.max(1));
    let address = match &server.shape {
        Shape::Stdio { command, args: a } => ServerAddress::Command {
            argv: std::iter::once(command.clone())
                .chain(a.iter().cloned())
                .collect(),
            env: string_pairs(&server.entry, "env"),
        },
        Shape::Remote { url, .. } => ServerAddress::Url(RemoteOptions {
            url: url.clone(),
            headers: string_pairs(&server.entry, "headers"),
            timeout,
        }),
        Shape::Sse | Shape::Wrapped => bail!("not a server Tollgate fronts"),
    };
    let found = tollgate::scan::scan(&address, timeout).await?;
    let source = address.to_string();
    let tools = found.tools.len();
    Ok((
        tollgate::scan::starter_policy(&found, &source),
        format!("a starter policy naming its {tools} tools"),
    ))
}

pub(crate) async fn unwrap(args: Target) -> Result<i32> {
    let (path, syntax, client) = target(&args)?;
    let mut file = ConfigFile::read(&path, syntax)?;
    let servers = wrap::survey(&file, client)?;
    let record_path = Record::path(&state_dir()?, &path);
    let mut record = Record::load(&record_path, &path)?;
    let mut restored = Vec::new();
    let mut edited = Vec::new();
    for server in servers.iter().filter(|s| s.shape == Shape::Wrapped) {
        match record.servers.get(&server.name) {
            Some(w) if w.wrapped == server.entry => {
                match &w.original_text {
                    Some(text) => file.set_text(&server.name, text),
                    None => file.set(&server.name, &w.original),
                }
                restored.push(server.name.clone());
            }
            Some(_) => edited.push(format!("`{}` (edited since it was wrapped)", server.name)),
            None => edited.push(format!(
                "`{}` (not wrapped by this user's tollgate wrap)",
                server.name
            )),
        }
    }
    if !edited.is_empty() {
        bail!(
            "{}: cannot restore {}; nothing was changed. Restore them by hand from {}.tollgate-backup, or remove them from the file and run unwrap again",
            path.display(),
            edited.join(", "),
            path.display()
        );
    }
    let text = file.render();
    if restored.is_empty() {
        eprintln!("tollgate: nothing in {} is wrapped", path.display());
        return Ok(0);
    }
    if commit(&file, &text, args.dry_run)? {
        for name in &restored {
            record.servers.remove(name);
        }
        record.save(&record_path)?;
        eprintln!("tollgate: restored {}", restored.join(", "));
    }
    Ok(0)
}
