//! `tollgate check` (a policy loaded, its plugins configured, and shown) and `tollgate test`
//! (recorded calls replayed through a policy against the decisions expected).

use super::load_chain;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tollgate::config;
use tollgate::pins::annotations::{self, Selector};
use tollgate::pins::Baseline;
use tollgate::state::memory::MemoryStore;

#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// The policy file (YAML or JSON).
    pub(crate) policy: PathBuf,
    /// The cases: `cases: [{name, tool, arguments, caller?, expect: allow|deny|unknown, code?,
    /// reason_contains?, upstream?: success|error|error_result, wait?: SECONDS}]`, run in order
    /// on a clock that moves only by `wait`.
    pub(crate) cases: PathBuf,
    /// Server name counters are namespaced by, as plugins see it.
    #[arg(long, default_value = "test")]
    pub(crate) server_name: String,
    /// Directory of the compiled-plugin cache (default: the user's cache directory).
    #[arg(long)]
    pub(crate) cache_dir: Option<PathBuf>,
}

/// Load a policy (every plugin configured) and show what it does.
pub(crate) async fn check(path: &Path) -> Result<()> {
    let (policy, chain) = load_chain(path, Arc::new(MemoryStore::new()), "check", None).await?;
    println!("{}: OK ({})", path.display(), policy.format);
    let default = match policy.default {
        config::DefaultAction::Allow => "allow",
        config::DefaultAction::Deny => "deny",
    };
    println!("  default: {default}");
    let lock = chain.pins().and_then(|p| p.lock());
    // An annotation selector, with the locked tools it stands for.
    let selection = |pattern: &str| match (Selector::parse(pattern), lock) {
        (Some(Ok(selector)), Some(lock)) => {
            format!(
                "{pattern} [{}]",
                annotations::select(lock, selector).join(", ")
            )
        }
        _ => pattern.to_string(),
    };
    if let Some(pins) = chain.pins() {
        let p = pins.policy();
        let baseline = match (&p.baseline, lock) {
            (Baseline::File(path), Some(lock)) => {
                format!("{} ({} tools)", path.display(), lock.tools.len())
            }
            _ => "tofu (the first definition each tool is seen with, in the state store)".into(),
        };
        println!(
            "  pins: {baseline}; on_change: {}, on_new: {}, unlisted calls: {}",
            p.on_change.word(),
            p.on_new.word(),
            if p.refuse_unlisted { "deny" } else { "allow" }
        );
    }
    let mut included: Vec<&str> = Vec::new();
    let rules = policy.tools.iter().flat_map(|t| &t.rules);
    for origin in rules
        .chain(&policy.all_tools)
        .filter_map(|r| r.origin.as_deref())
    {
        if !included.contains(&origin) {
            included.push(origin);
        }
    }
    for origin in &included {
        println!("  includes {origin} (its rules run before this file's own for the same tool)");
    }
    if !policy.hide.is_empty() {
        let hidden: Vec<String> = policy.hide.iter().map(|h| selection(h)).collect();
        println!("  hidden: {}", hidden.join(", "));
    }
    let describe = |r: &config::Rule| {
        let asks = r.config.get("ask").is_some();
        let from = match &r.origin {
            Some(origin) => format!(" [from {origin}]"),
            None => String::new(),
        };
        format!(
            "{}{from} ({}{}): {}",
            r.label,
            r.plugin,
            if asks {
                format!(
                    ", asks a person; requests stay open {} s",
                    r.ask_timeout_ms / 1000
                )
            } else {
                String::new()
            },
            r.config
        )
    };
    for t in &policy.tools {
        println!("  {}:", selection(&t.pattern));
        if t.rules.is_empty() {
            println!("    (allowed, no rules)");
        }
        for r in &t.rules {
            println!("    - {}", describe(r));
        }
    }
    if !policy.all_tools.is_empty() {
        println!("  every tool, after its own rules (\"*\"):");
        for r in &policy.all_tools {
            println!("    - {}", describe(r));
        }
    }
    let rules: usize =
        policy.tools.iter().map(|t| t.rules.len()).sum::<usize>() + policy.all_tools.len();
    println!(
        "  {rules} rule{} run in {} plugin{}",
        if rules == 1 { "" } else { "s" },
        chain.plugins(),
        if chain.plugins() == 1 { "" } else { "s" }
    );
    Ok(())
}

/// Replay the cases through the policy; exit code 1 when any fails.
pub(crate) async fn test(args: TestArgs) -> Result<i32> {
    let text = std::fs::read_to_string(&args.cases)
        .with_context(|| format!("cannot read cases file {}", args.cases.display()))?;
    let cases = tollgate::replay::parse_cases(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.cases.display()))?;
    let clock = Arc::new(tollgate::replay::ReplayStore::new());
    let (_, chain) = load_chain(
        &args.policy,
        clock.clone(),
        &args.server_name,
        args.cache_dir,
    )
    .await?;
    println!(
        "{} against {} ({} case{})",
        args.policy.display(),
        args.cases.display(),
        cases.len(),
        if cases.len() == 1 { "" } else { "s" }
    );
    let outcomes = tollgate::replay::run(&chain, &clock, &cases).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        println!("{}", outcome.render(i));
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    if failed == 0 {
        println!("all {} passed", outcomes.len());
        Ok(0)
    } else {
        println!("{failed} of {} failed", outcomes.len());
        Ok(1)
    }
}
