//! Command-line interface: `run` here; `check` and `test`, `scan`, `pack`, `pin` and `unpin`,
//! `wrap` and `unwrap`, `approvals`, `status` and `console` in modules of their own.

mod approvals;
mod check;
mod console;
mod pack;
mod pin;
mod scan;
mod status;
mod wrap;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tollgate::audit::{decisions::DecisionLog, AuditLog, AuditOptions, Recorder};
use tollgate::chain::{Chain, ChainCell};
use tollgate::config::{self, LimitSpec, Policy};
use tollgate::engine::{CodeCache, EngineConfig, PolicyEngine};
use tollgate::pins::Baseline;
use tollgate::proxy::colocate;
use tollgate::proxy::http;
use tollgate::proxy::stdio::{self, StdioOptions};
use tollgate::proxy::Session;
use tollgate::state::memory::MemoryStore;
use tollgate::state::sqlite::SqliteStore;
use tollgate::state::CounterStore;
use tollgate::transport::remote::RemoteOptions;
use tollgate::transport::server::ServerAddress;

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
    Run(Box<RunArgs>),
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

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The policy file (YAML or JSON).
    #[arg(long, short)]
    policy: PathBuf,
    /// Where counters live: `sqlite` (default: a file under the user's state directory, shared by
    /// every Tollgate on the machine and kept across restarts), `sqlite:PATH`, `memory`
    /// (forgotten when Tollgate exits), or `redis://HOST:PORT[/DB]` (one limit across replicas).
    #[arg(long, env = "TOLLGATE_STATE", default_value = "sqlite")]
    state: String,
    /// Name of the upstream server, as plugins see it and as counters are namespaced
    /// (default: the command's file name).
    #[arg(long)]
    server_name: Option<String>,
    /// Largest message accepted from the agent, in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    max_message_bytes: usize,
    /// Whether Tollgate and the MCP servers it starts share one CPU (a COMMAND upstream). Each
    /// call hands off to the server and back; on one CPU those are cheap wake-ups of the next
    /// process in line instead of wake-ups of an idle CPU (tens of µs less per call on a small
    /// VM). `auto` spreads both out again as soon as together they keep that CPU busy (a
    /// server working in parallel); `on` never does; `off` leaves placement to the scheduler.
    #[arg(long, value_enum, env = "TOLLGATE_COLOCATE", default_value = "auto")]
    colocate: Colocate,
    /// Directory of the compiled-plugin cache (default: the user's cache directory).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    ops: OpsArgs,
    /// A remote MCP server's Streamable HTTP endpoint (http://HOST:PORT/mcp) to put the policy
    /// in front of, instead of a COMMAND.
    #[arg(long, value_name = "URL", conflicts_with = "command")]
    upstream: Option<String>,
    /// A header sent with every request to --upstream, e.g. `Authorization: Bearer …`;
    /// `$NAME` in the value is replaced by environment variable NAME. Repeatable.
    #[arg(long, value_name = "NAME: VALUE", requires = "upstream")]
    upstream_header: Vec<String>,
    /// The MCP server's command and arguments, after `--`.
    #[arg(last = true, required_unless_present = "upstream")]
    command: Vec<String>,
}

/// Operating Tollgate: audit, metrics, dry run, reload.
#[derive(Debug, clap::Args)]
struct OpsArgs {
    /// Append one JSON line per decision to FILE (arguments as a sha256), flushed per record.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Record raw arguments in the audit log instead of their sha256.
    #[arg(long, requires = "audit_log")]
    audit_arguments: bool,
    /// Rotate the audit log when it would pass this many bytes.
    #[arg(long, default_value_t = 100 << 20)]
    audit_max_bytes: u64,
    /// Rotated audit files kept (FILE.1 … FILE.N).
    #[arg(long, default_value_t = 5)]
    audit_keep: usize,
    /// Keep no decision log (by default each proxy keeps its recent decisions, without
    /// arguments, under the state directory for `tollgate status` and `tollgate console`).
    #[arg(long)]
    no_decision_log: bool,
    /// Enforce nothing: would-be denials are logged, audited and counted, and calls pass.
    #[arg(long)]
    dry_run: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (stdio mode; the HTTP listener serves
    /// /metrics itself).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Do not watch the policy file for changes.
    #[arg(long)]
    no_reload: bool,
    /// POST each new approval request an operator can decide to URL (https, or http on
    /// loopback), signed with HMAC-SHA256 under the secret in TOLLGATE_APPROVAL_WEBHOOK_SECRET.
    #[arg(long, value_name = "URL")]
    approval_webhook: Option<String>,
}

impl OpsArgs {
    /// The approval webhook, if one is asked for; its secret comes from the environment.
    fn approval_webhook(&self) -> Result<Option<Arc<tollgate::approval::webhook::Webhook>>> {
        let Some(url) = &self.approval_webhook else {
            return Ok(None);
        };
        const SECRET: &str = "TOLLGATE_APPROVAL_WEBHOOK_SECRET";
        let secret = std::env::var(SECRET).with_context(|| {
            format!(
                "--approval-webhook: environment variable {SECRET} (the signing secret) is not set"
            )
        })?;
        Ok(Some(Arc::new(tollgate::approval::webhook::Webhook::new(
            url, &secret,
        )?)))
    }
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

/// Serving agents over Streamable HTTP instead of stdio.
#[derive(Debug, clap::Args)]
struct HttpArgs {
    /// Serve MCP over Streamable HTTP at http://ADDR/mcp (e.g. 127.0.0.1:8080; port 0 picks a
    /// free one) instead of on stdin/stdout; each session gets its own server process.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Accept `Authorization: Bearer <token>` (or the key form, `X-API-Key: <token>`) with the
    /// token read from environment variable ENV; the caller (what `scope: caller` and plugins
    /// see) is CALLER. Repeatable.
    #[arg(long, value_name = "CALLER=ENV")]
    auth_token: Vec<String>,
    /// This caller (one of --auth-token's) may list and decide approval requests at
    /// /approvals on the listener. Repeatable.
    #[arg(long, value_name = "CALLER")]
    approver: Vec<String>,
    /// Accept this browser Origin besides loopback ones (e.g. https://app.example.com).
    #[arg(long, value_name = "ORIGIN")]
    allowed_origin: Vec<String>,
    /// Accept this Host header name besides loopback names and the bound address.
    #[arg(long, value_name = "HOST")]
    allowed_host: Vec<String>,
    /// Allow a non-loopback --listen address without --auth-token (something in front of
    /// Tollgate authenticates).
    #[arg(long)]
    allow_remote_without_auth: bool,
    /// Close a session (and stop its server process) after this many seconds without requests.
    #[arg(long, default_value_t = 1800)]
    session_idle_secs: u64,
    /// Seconds a client may take to send a request's headers, its body (else 408), or the TLS
    /// handshake: a slow or stalled client cannot hold a connection open.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout_secs: u64,
    /// Serve HTTPS: PEM certificate chain (leaf first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Serve HTTPS: PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl HttpArgs {
    fn access(&self, listen: std::net::SocketAddr) -> Result<http::Access> {
        let tokens = self
            .auth_token
            .iter()
            .map(|spec| {
                let (caller, var) = spec
                    .split_once('=')
                    .with_context(|| format!("--auth-token `{spec}`: expected CALLER=ENV_VAR"))?;
                let secret = std::env::var(var).with_context(|| {
                    format!("--auth-token {caller}: environment variable {var} is not set")
                })?;
                if secret.len() < 16 {
                    bail!(
                        "--auth-token {caller}: the token in {var} is shorter than 16 characters"
                    );
                }
                Ok(http::Token {
                    caller: caller.to_string(),
                    secret,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(unknown) = self
            .approver
            .iter()
            .find(|a| !tokens.iter().any(|t| &t.caller == *a))
        {
            bail!("--approver {unknown}: an approver must authenticate with a token of its own (--auth-token {unknown}=ENV_VAR)");
        }
        let loopback = listen.ip().is_loopback();
        Ok(http::Access {
            loopback,
            approvers: self.approver.clone(),
            tokens,
            allowed_hosts: self.allowed_host.clone(),
            allowed_origins: self.allowed_origin.clone(),
            bound: None,
        })
    }
}

/// Entry point: run the command, print errors plainly, return the exit code.
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

/// `--colocate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Colocate {
    /// Share a CPU until the pair keeps it busy.
    Auto,
    /// Always share a CPU.
    On,
    /// Never pin.
    Off,
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
        Command::Run(args) => run(*args, threads).await,
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

async fn run(args: RunArgs, threads: u16) -> Result<i32> {
    let server = args
        .server_name
        .clone()
        .unwrap_or_else(|| match &args.upstream {
            Some(url) => url
                .parse::<hyper::Uri>()
                .ok()
                .and_then(|u| u.host().map(str::to_string))
                .unwrap_or_else(|| "server".into()),
            None => Path::new(&args.command[0])
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "server".into()),
        });
    let state = open_state(&args.state)?;
    let console_store = state.clone();
    let (policy, mut chain) =
        load_chain(&args.policy, state.clone(), &server, args.cache_dir.clone()).await?;
    chain.set_dry_run(args.ops.dry_run);
    let webhook = args.ops.approval_webhook()?;
    chain.set_approval_webhook(webhook.clone());
    if args.ops.dry_run {
        tracing::warn!(
            "dry run: nothing is enforced; would-be denials are logged, audited and counted"
        );
    }
    tracing::info!(policy = %args.policy.display(), server, "policy loaded");
    let cell = Arc::new(ChainCell::new(Arc::new(chain)));
    if !args.ops.no_reload {
        let (path, cache_dir, dry_run) = (
            args.policy.clone(),
            args.cache_dir.clone(),
            args.ops.dry_run,
        );
        let server = server.clone();
        tollgate::reload::watch(
            cell.clone(),
            watched_files(&args.policy, &policy),
            move || {
                let (path, state, server, cache_dir, webhook) = (
                    path.clone(),
                    state.clone(),
                    server.clone(),
                    cache_dir.clone(),
                    webhook.clone(),
                );
                async move {
                    let (policy, mut chain) = load_chain(&path, state, &server, cache_dir)
                        .await
                        .map_err(|e| format!("{e:#}"))?;
                    chain.set_dry_run(dry_run);
                    chain.set_approval_webhook(webhook);
                    Ok(tollgate::reload::Loaded {
                        files: watched_files(&path, &policy),
                        chain,
                    })
                }
            },
        );
    }
    let audit = match &args.ops.audit_log {
        Some(path) => Some(Arc::new(AuditLog::open(AuditOptions {
            path: path.clone(),
            max_bytes: args.ops.audit_max_bytes,
            keep: args.ops.audit_keep,
            raw_arguments: args.ops.audit_arguments,
        })?)),
        None => None,
    };
    let decisions = match tollgate::audit::decisions::default_dir() {
        _ if args.ops.no_decision_log => None,
        None => {
            tracing::warn!("no state directory: no decision log is kept");
            None
        }
        // Status and the console need it, but a proxy runs without: a failure is a warning.
        Some(dir) => match DecisionLog::open(&dir, &server) {
            Ok(log) => Some(Arc::new(log)),
            Err(e) => {
                tracing::warn!(error = %e, "no decision log is kept");
                None
            }
        },
    };
    let recorder = Recorder {
        audit,
        decisions: decisions.clone(),
    };
    // What is still in memory is written when the proxy ends, however it ends.
    let _flush = FlushAtExit(decisions);
    let address = match &args.upstream {
        Some(url) => ServerAddress::Url(RemoteOptions {
            url: url.clone(),
            headers: args
                .upstream_header
                .iter()
                .map(|h| upstream_header(h))
                .collect::<Result<Vec<_>>>()?,
            timeout: Duration::from_secs(300),
        }),
        None => ServerAddress::command(args.command),
    };
    let colocate = match args.colocate {
        // Several runtime threads were asked for to use several CPUs.
        Colocate::Auto if threads > 1 => colocate::Mode::Off,
        Colocate::Auto => colocate::Mode::Auto,
        Colocate::On => colocate::Mode::On,
        Colocate::Off => colocate::Mode::Off,
    };
    if let Some(listen) = args.http.listen {
        let access = args.http.access(listen)?;
        let options = http::HttpOptions {
            listen,
            server: address,
            access,
            max_message_bytes: args.max_message_bytes,
            idle_timeout: Duration::from_secs(args.http.session_idle_secs),
            request_timeout: Duration::from_secs(args.http.request_timeout_secs),
            shutdown_grace: Duration::from_secs(10),
            allow_remote_without_auth: args.http.allow_remote_without_auth,
            tls: match (&args.http.tls_cert, &args.http.tls_key) {
                (Some(cert), Some(key)) => Some(http::tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            colocate,
            console: Some(tollgate::console::Console::new(
                console_store,
                tollgate::audit::decisions::default_dir(),
                {
                    let (server, policy) = (server.clone(), args.policy.clone());
                    Arc::new(move || vec![(server.clone(), policy.clone())])
                },
            )),
        };
        return Ok(http::run(cell, recorder, options).await?);
    }
    if let Some(addr) = args.ops.metrics {
        let bound = http::serve_metrics(addr).await?;
        eprintln!("tollgate: metrics on http://{bound}/metrics");
    }
    let session = Arc::new(Session::shared(cell).with_recorder(recorder));
    let options = StdioOptions {
        server: address,
        max_message_bytes: args.max_message_bytes,
        shutdown_grace: Duration::from_secs(5),
        colocate,
    };
    Ok(stdio::run(session, options).await?)
}

/// Writes the decision log's last records when `run` returns (the sessions holding the log may
/// outlive it until the process exits).
struct FlushAtExit(Option<Arc<DecisionLog>>);

impl Drop for FlushAtExit {
    fn drop(&mut self) {
        if let Some(log) = &self.0 {
            log.flush();
        }
    }
}

/// The files whose change reloads the policy: the file itself, its plugin files and its pin
/// lock file.
fn watched_files(path: &Path, policy: &Policy) -> Vec<PathBuf> {
    let mut files = vec![path.to_path_buf()];
    for rule in policy
        .tools
        .iter()
        .flat_map(|t| &t.rules)
        .chain(&policy.all_tools)
    {
        if let config::PluginSource::File { path, .. } = &rule.source {
            // A pack folder changes through its manifest (which holds every digest).
            let watched = if path.is_dir() {
                path.join(tollgate::pack::manifest::FILE)
            } else {
                path.clone()
            };
            if !files.contains(&watched) {
                files.push(watched);
            }
        }
    }
    if let Some(Baseline::File(lock)) = policy.pins.as_ref().map(|p| &p.baseline) {
        files.push(lock.clone());
    }
    for included in &policy.included {
        if !files.contains(included) {
            files.push(included.clone());
        }
    }
    files
}
