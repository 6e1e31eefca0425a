//! `tollgate status`: what `tollgate wrap` put behind Tollgate on this machine, with each
//! server's policy and pins as they stand now; the counters in use and the calls waiting for a
//! person's approval in the state store the proxies share; the last decisions of every proxy of
//! the machine, from the decision log.

use anyhow::Result;
use tollgate::approval::{self, State};
use tollgate::audit::decisions;
use tollgate::state::CounterStore;
use tollgate::wrap::{self, ConfigFile, Record};

/// `tollgate status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    store: super::approvals::StoreArg,
    /// How many of the last decisions to show.
    #[arg(long, default_value_t = 10, value_name = "N")]
    decisions: usize,
}

/// Print every wrapped configuration, then what the state store holds, then the last decisions.
pub(crate) async fn status(args: StatusArgs) -> Result<i32> {
    wrapped()?;
    println!();
    let default = tollgate::state::sqlite::SqliteStore::default_path();
    if args.store.state == "sqlite" && !default.as_ref().is_some_and(|p| p.exists()) {
        // Reading must not make a store: none yet means nothing counted or asked yet.
        println!("no counters in use and no calls wait for approval (no state store yet)");
    } else {
        match super::open_state(&args.store.state) {
            Ok(store) => {
                counters(&*store).await;
                pending_approvals(&*store).await;
            }
            Err(e) => println!(
                "the state store {} cannot be opened: {e:#}",
                args.store.state
            ),
        }
    }
    println!();
    last_decisions(args.decisions);
    Ok(0)
}

/// The counters in use, with their limits and windows.
async fn counters(store: &dyn CounterStore) {
    match store.counters(50).await {
        Err(e) => println!("counters cannot be read: {e}"),
        Ok(listed) if listed.is_empty() => {
            println!("no counters in use in {}", store.describe())
        }
        Ok(listed) => {
            println!("counters in use in {}:", store.describe());
            for c in listed {
                println!(
                    "  {}  {}/{} per {} ({}; {} left)",
                    c.key,
                    c.used,
                    c.limit,
                    duration(c.window_ms),
                    c.algorithm,
                    duration(c.resets_in_ms)
                );
            }
        }
    }
}

/// `90 s`, `15 min`, `2 h` (rounded up).
fn duration(ms: u64) -> String {
    match ms {
        ms if ms < 120_000 => format!("{} s", ms.div_ceil(1000)),
        ms if ms < 7_200_000 => format!("{} min", ms.div_ceil(60_000)),
        ms => format!("{} h", ms.div_ceil(3_600_000)),
    }
}

/// The calls waiting for a person in the state store.
async fn pending_approvals(store: &dyn CounterStore) {
    let Some(approvals) = store.approvals() else {
        return println!("{} keeps no approval requests", store.describe());
    };
    let now = store.now_ms();
    match approval::list(approvals, 200).await {
        Err(e) => println!("approval requests cannot be read: {e}"),
        Ok(all) => {
            let pending: Vec<_> = all
                .iter()
                .filter(|a| a.state == State::Pending && now < a.expires_ms)
                .collect();
            if pending.is_empty() {
                return println!("no calls wait for approval in {}", store.describe());
            }
            println!("calls waiting for approval in {}:", store.describe());
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

/// The last decisions of every proxy of the machine.
fn last_decisions(limit: usize) {
    let Some(dir) = decisions::default_dir() else {
        return println!("no state directory, so no decision log");
    };
    let recent = decisions::recent(&dir, limit);
    if recent.is_empty() {
        return println!("no decisions yet in {}", dir.display());
    }
    println!("last decisions (from {}):", dir.display());
    for d in recent {
        let mut line = format!("  {}  {}/{}  {}", d.time, d.server, d.tool, d.verdict);
        if let Some(code) = &d.code {
            line.push_str(&format!(" ({code})"));
        }
        line.push_str(&format!("  by {}", d.caller));
        if let Some(rule) = &d.rule {
            line.push_str(&format!("  rule {rule}"));
        }
        if let Some(reason) = &d.reason {
            line.push_str(&format!(": {reason}"));
        }
        if d.dry_run {
            line.push_str("  [dry run]");
        }
        println!("{line}");
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
                tollgate::console::summary(&wrapped.policy)
            );
        }
    }
    Ok(())
}
