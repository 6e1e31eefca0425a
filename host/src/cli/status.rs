//! `tollgate status`: what `tollgate wrap` put behind Tollgate on this machine, with each
//! server's policy and pins as they stand now, and the calls waiting for a person's approval in
//! the machine's state store.

use anyhow::Result;
use std::path::Path;
use tollgate::pins::{Baseline, Lock};
use tollgate::wrap::{self, ConfigFile, Record};

/// Print every wrapped configuration (each server, whether its entry is still the wrapped
/// one, whether its policy loads, and what pins it), then the pending approval requests.
pub(crate) async fn status() -> Result<i32> {
    wrapped()?;
    pending_approvals().await;
    Ok(0)
}

/// The calls waiting for a person in the default state store (the one `tollgate run` uses
/// without `--state`), if there is one.
async fn pending_approvals() {
    let Some(path) = tollgate::state::sqlite::SqliteStore::default_path().filter(|p| p.exists())
    else {
        println!("no calls wait for approval (no state store yet)");
        return;
    };
    let listed = match tollgate::state::sqlite::SqliteStore::open(&path) {
        Ok(store) => tollgate::approval::list(&store, 200).await,
        Err(e) => Err(e),
    };
    let now = tollgate::state::now_ms();
    match listed {
        Err(e) => println!("approval requests cannot be read: {e}"),
        Ok(all) => {
            let pending: Vec<_> = all
                .iter()
                .filter(|a| a.state == tollgate::approval::State::Pending && now < a.expires_ms)
                .collect();
            if pending.is_empty() {
                println!("no calls wait for approval in {}", path.display());
                return;
            }
            println!("calls waiting for approval in {}:", path.display());
            for a in pending {
                println!(
                    "  {}  {}/{}  from {}: {}  ({} s left; tollgate approvals approve {})",
                    a.id,
                    a.server,
                    a.tool,
                    a.caller,
                    a.message,
                    a.expires_ms.saturating_sub(now).div_ceil(1000),
                    a.id
                );
            }
        }
    }
}

/// Every wrapped configuration.
fn wrapped() -> Result<()> {
    let records = Record::all(&super::wrap::state_dir()?);
    if records.is_empty() {
        println!("nothing is wrapped (tollgate wrap --client NAME puts a client's servers behind Tollgate)");
        return Ok(());
    }
    for (path, record) in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                println!("{}: {e}", path.display());
                continue;
            }
        };
        println!("{}", record.config.display());
        let text = std::fs::read_to_string(&record.config).unwrap_or_default();
        let syntax = wrap::clients::syntax_of(&record.config, &text);
        let current = ConfigFile::read(&record.config, syntax).map(|f| f.servers());
        for (name, wrapped) in &record.servers {
            let entry = match &current {
                Ok(servers) => match servers.iter().find(|(n, _)| n == name) {
                    Some((_, e)) if *e == wrapped.wrapped => "wrapped",
                    Some(_) => "edited since it was wrapped",
                    None => "no longer in the file",
                },
                Err(_) => "the file cannot be read",
            };
            println!("  {name}: {entry}");
            println!(
                "    policy {}: {}",
                wrapped.policy.display(),
                policy(&wrapped.policy)
            );
        }
    }
    Ok(())
}

/// A policy file as it stands: whether it loads, its default and sections, and its pins.
fn policy(path: &Path) -> String {
    let policy = match tollgate::config::load(path) {
        Ok(p) => p,
        Err(e) => return format!("does not load: {e}"),
    };
    let default = match policy.default {
        tollgate::config::DefaultAction::Allow => "allow",
        tollgate::config::DefaultAction::Deny => "deny",
    };
    let pins = match policy.pins.as_ref().map(|p| &p.baseline) {
        None => "no pins".to_string(),
        Some(Baseline::FirstUse) => "pins: tofu (first-seen definitions in the state store)".into(),
        Some(Baseline::File(lock)) => match Lock::read(lock) {
            Ok(l) => format!("pins: {} tools in {}", l.tools.len(), lock.display()),
            Err(e) => format!("pins: {e}"),
        },
    };
    format!(
        "loads; default {default}, {} tool section{}, {pins}",
        policy.tools.len(),
        if policy.tools.len() == 1 { "" } else { "s" }
    )
}
