//! `tollgate pin`: write a server's pin lock file, show what changed since, accept a change.
//! `tollgate unpin`: forget the definitions `pins: tofu` trusted on first use.

use anyhow::{bail, Result};
use std::path::PathBuf;
use tollgate::pins::{lock, Lock};

#[derive(Debug, clap::Args)]
pub(crate) struct PinArgs {
    /// The lock file to write, compare with or update.
    #[arg(long, default_value = "tollgate.pins.yaml")]
    lock: PathBuf,
    /// Show, field by field, what the server lists now against the lock; exit 1 if it differs.
    #[arg(long, conflicts_with = "update")]
    diff: bool,
    /// Show the differences, then write what the server lists now into the lock.
    #[arg(long)]
    update: bool,
    #[command(flatten)]
    server: super::scan::ServerArgs,
}

pub(crate) async fn pin(args: PinArgs) -> Result<i32> {
    let (found, source) = super::scan::scan_server(&args.server).await?;
    let label = match (&found.server_name, &found.server_version) {
        (Some(n), Some(v)) => Some(format!("{n} {v}")),
        (Some(n), None) => Some(n.clone()),
        _ => None,
    };
    let definitions: Vec<_> = found.tools.iter().map(|t| t.definition.clone()).collect();
    let now = Lock::of(label, &definitions);
    let path = args.lock.display();
    if !args.diff && !args.update {
        if args.lock.exists() {
            bail!("{path} exists: see what changed with --diff, accept the server's tools with --update");
        }
        now.write(&args.lock)?;
        eprintln!(
            "tollgate: pinned {} tool{} of {source} in {path}; review it, then name it in the policy: `pins: {path}`",
            now.tools.len(),
            if now.tools.len() == 1 { "" } else { "s" },
        );
        return Ok(0);
    }
    let reviewed = Lock::read(&args.lock)?;
    let changes = lock::diff(&reviewed, &now);
    if changes.is_empty() {
        println!("{source} lists exactly the tools pinned in {path}");
        return Ok(0);
    }
    print!("{changes}");
    if args.update {
        now.write(&args.lock)?;
        eprintln!("tollgate: {path} now pins what {source} lists");
        return Ok(0);
    }
    Ok(1)
}

#[derive(Debug, clap::Args)]
pub(crate) struct UnpinArgs {
    /// The server whose first-use pins to forget, as proxies name it (`--server-name`).
    #[arg(long)]
    server_name: String,
    /// Forget only this tool's pin (repeatable; default: every tool of the server).
    #[arg(long = "tool", value_name = "TOOL")]
    tools: Vec<String>,
    /// The state store the proxies share (as `tollgate run --state`).
    #[arg(long, env = "TOLLGATE_STATE", default_value = "sqlite")]
    state: String,
}

/// Forget first-use pins, so the next listing any proxy sees becomes the baseline again.
pub(crate) async fn unpin(args: UnpinArgs) -> Result<i32> {
    let store = super::open_state(&args.state)?;
    let Some(pins) = store.pins() else {
        bail!("{} keeps no pins", store.describe());
    };
    let forgotten = pins.forget_pins(&args.server_name, &args.tools).await?;
    eprintln!(
        "tollgate: forgot {forgotten} first-use pin{} of `{}` in {}; the next tools/list is trusted",
        if forgotten == 1 { "" } else { "s" },
        args.server_name,
        store.describe()
    );
    Ok(0)
}
