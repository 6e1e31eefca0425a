//! Command-line interface: the commands and what they share (logging, the runtime, the state
//! store, loading a policy's chain); each command in a module of its own (`run` the proxy).

mod approvals;
mod check;
mod console;
mod pack;
mod pin;
mod run;
mod scan;
mod status;
mod wrap;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tollgate::chain::Chain;
use tollgate::config::{self, LimitSpec, Policy};
use tollgate::engine::{CodeCache, EngineConfig, PolicyEngine};
use tollgate::state::memory::MemoryStore;
use tollgate::state::sqlite::SqliteStore;
use tollgate::state::CounterStore;

/// Tollgate: an MCP policy proxy. Every tools/call passes sandboxed WebAssembly policy plugins
/// before the MCP server sees it.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version = tollgate::engine::version::TOLLGATE_VERSION, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (also RUST_LOG), e.g. `info`, `tollgate=debug`.
    #[arg(long, global = true, env = "TOLLGATE_LOG", default_value = "info")]
    log: String,
    /// Log lines as text or JSON (on stderr).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Threads that run sessions, decisions and I/O. 1 (the default) does everything on one
    /// thread, which costs the least per call: a hand-off between threads is a wake-up of
    /// another CPU, tens of microseconds on a small VM, and a call through Tollgate would pay
    /// several. More threads let CPU-heavy plugins (JavaScript, Python) of many concurrent
    /// agents use more cores, at that price per call.
    #[arg(long, global = true, env = "TOLLGATE_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
}

/// The async runtime: one thread, or a pool of `threads`.
fn runtime(threads: u16) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads.into());
        b
    };
    builder.enable_all().build()
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Put the policy in front of an MCP server (a COMMAND run as a child, or --upstream URL)
    /// and serve the agent on stdin/stdout, or over Streamable HTTP with --listen.
    Run(Box<run::RunArgs>),
    /// Validate a policy file, load and configure every plugin it names, and print what each
    /// tool gets.
    Check {
        /// The policy file (YAML or JSON).
        policy: PathBuf,
    },
    /// Replay recorded calls through the policy (in-memory counters) and compare each decision
    /// with the expected one; exit 1 when any case fails.
    Test(check::TestArgs),
    /// Start the MCP server COMMAND (or connect to --url), list its tools, stop it, and write a
    /// starter policy naming every tool.
    Scan(scan::ScanArgs),
    /// Write, build, sign and verify policy packs (plugins in Rust, C, JavaScript or Python).
    #[command(subcommand)]
    Pack(pack::PackCommand),
    /// Pin a server's tools: start it (or connect to --url), list its tools and write their
    /// reviewed definitions to a lock file that a policy names with `pins:`; --diff shows what
    /// changed since, field by field, and --update accepts it.
    Pin(pin::PinArgs),
    /// Forget the tool definitions that `pins: tofu` trusted on first use for a server (in the
    /// state store every proxy shares), so the next listing is trusted again.
    Unpin(pin::UnpinArgs),
    /// List, show, approve or refuse the calls that wait for a person's approval (in the state
    /// store every proxy shares).
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// Serve the operator's page for this machine's proxies on loopback: live decisions,
    /// counters, pin mismatches, pending approvals to approve or deny, the policies in force.
    Console(console::ConsoleArgs),
    /// Put Tollgate in front of every MCP server of a client's configuration (--client NAME or
    /// --config FILE), each with a policy: a reviewed one for its package, else a starter policy
    /// from its tools. Keeps every other field, writes a backup; --dry-run prints the diff.
    Wrap(wrap::WrapArgs),
    /// Restore the entries `tollgate wrap` changed, exactly as they were.
    Unwrap(wrap::Target),
    /// What `tollgate wrap` put behind Tollgate on this machine: each server, its policy (does
    /// it load) and its pins; the counters in use and their limits, the calls waiting for a
    /// person's approval, and the last decisions of every proxy of the machine.
    Status(status::StatusArgs),
}

/// `Name: value` with `$VAR` expanded from the environment.
fn upstream_header(spec: &str) -> Result<(String, String)> {
    let (name, value) = spec
        .split_once(':')
        .with_context(|| format!("--upstream-header `{spec}`: expected `Name: value`"))?;
    let mut expanded = String::new();
    let mut rest = value.trim();
    while let Some(at) = rest.find('$') {
        expanded.push_str(&rest[..at]);
        let var: String = rest[at + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if var.is_empty() {
            expanded.push('$');
            rest = &rest[at + 1..];
            continue;
        }
        let v = std::env::var(&var).with_context(|| {
            format!(
                "--upstream-header {}: environment variable {var} is not set",
                name.trim()
            )
        })?;
        expanded.push_str(&v);
        rest = &rest[at + 1 + var.len()..];
    }
    expanded.push_str(rest);
    Ok((name.trim().to_string(), expanded))
}
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_)) {
        // A report piped into `head` ends quietly, as other command-line tools do, instead of
        // panicking in println!. (`run` keeps broken pipes as errors: stdout is the agent.)
        // SAFETY: restoring a signal's default disposition at start-up, before any thread.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    init_logging(&cli.log, cli.log_format);
    let runtime = match runtime(cli.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command, cli.threads)) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str, format: LogFormat) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_string());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // A parent that closed our stderr must not bring calls down: tracing would report the
        // failed write with eprintln!, which panics on a broken pipe, inside the call's task.
        .log_internal_errors(false)
        .with_target(false);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

async fn dispatch(command: Command, threads: u16) -> Result<i32> {
    match command {
        Command::Run(args) => run::run(*args, threads).await,
        Command::Check { policy } => check::check(&policy).await.map(|_| 0),
        Command::Test(args) => check::test(args).await,
        Command::Scan(args) => scan::scan(args).await.map(|_| 0),
        Command::Pack(command) => pack::dispatch(command).await,
        Command::Pin(args) => pin::pin(args).await,
        Command::Unpin(args) => pin::unpin(args).await,
        Command::Approvals(command) => approvals::dispatch(command).await,
        Command::Console(args) => console::console(args).await,
        Command::Wrap(args) => wrap::wrap(args).await,
        Command::Unwrap(args) => wrap::unwrap(args).await,
        Command::Status(args) => status::status(args).await,
    }
}

/// The engine settings a policy needs: slots big enough for its largest memory limit, fuel
/// metering when any rule sets fuel.
fn engine_config(policy: &Policy, cache_dir: Option<PathBuf>) -> EngineConfig {
    let rules = policy
        .tools
        .iter()
        .flat_map(|t| &t.rules)
        .chain(&policy.all_tools);
    let limits: Vec<LimitSpec> = rules.map(|r| r.limits).collect();
    let defaults = EngineConfig::default();
    EngineConfig {
        cache: cache_dir.map(CodeCache::new).or(defaults.cache.clone()),
        max_memory_bytes: limits
            .iter()
            .map(|l| l.to_limits().memory_bytes)
            .max()
            .unwrap_or(0)
            .max(defaults.max_memory_bytes),
        fuel: limits.iter().any(|l| l.fuel.is_some()),
        ..defaults
    }
}

pub(crate) fn open_state(spec: &str) -> Result<Arc<dyn CounterStore>> {
    let store: Arc<dyn CounterStore> = match spec.split_once(':') {
        None if spec == "memory" => Arc::new(MemoryStore::new()),
        None if spec == "sqlite" => {
            let path = SqliteStore::default_path().context(
                "no state directory for the default sqlite store; use --state sqlite:PATH",
            )?;
            Arc::new(SqliteStore::open(&path)?)
        }
        Some(("sqlite", path)) if !path.is_empty() => Arc::new(SqliteStore::open(Path::new(path))?),
        Some(("redis", _)) => Arc::new(tollgate::state::redis::RedisStore::connect(spec)?),
        _ => bail!(
            "unknown --state `{spec}`: expected sqlite, sqlite:PATH, memory or redis://HOST:PORT[/DB]"
        ),
    };
    tracing::debug!(state = %store.describe(), "counter store");
    Ok(store)
}

async fn load_chain(
    path: &Path,
    state: Arc<dyn CounterStore>,
    server: &str,
    cache_dir: Option<PathBuf>,
) -> Result<(Policy, Chain)> {
    let policy = config::load(path)?;
    let engine = PolicyEngine::new(engine_config(&policy, cache_dir))?;
    let chain = Chain::load(&policy, &engine, state, server)
        .await
        .with_context(|| format!("{}: cannot load the policy's plugins", path.display()))?;
    Ok((policy, chain))
}
