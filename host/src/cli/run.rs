//! `tollgate run`: the proxy itself, on stdio or as an HTTP listener, in front of a command or a
//! remote server, with its policy reloaded when its files change.

use super::{load_chain, open_state, upstream_header};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tollgate::audit::{decisions::DecisionLog, AuditLog, AuditOptions, Recorder};
use tollgate::chain::ChainCell;
use tollgate::config::{self, Policy};
use tollgate::pins::Baseline;
use tollgate::proxy::colocate;
use tollgate::proxy::http;
use tollgate::proxy::stdio::{self, StdioOptions};
use tollgate::proxy::Session;
use tollgate::transport::remote::RemoteOptions;
use tollgate::transport::server::ServerAddress;

#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
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

pub(super) async fn run(args: RunArgs, threads: u16) -> Result<i32> {
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
