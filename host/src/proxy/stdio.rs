//! The stdio proxy: the MCP server runs as a child process; the agent talks to Tollgate on
//! Tollgate's own stdin/stdout, exactly as it would to the server.
//!
//! Process hygiene: the child's stderr is Tollgate's stderr; SIGINT/SIGTERM are passed to the
//! child; when the agent closes stdin the child's stdin is closed and the child gets a grace
//! period before SIGTERM and then SIGKILL; Tollgate exits with the child's exit code.

use super::colocate::{self, Colocation};
use super::Session;
use crate::jsonrpc::{self, codes};
use crate::transport::http_client::{HttpUpstream, UpstreamError, UpstreamOptions};
use crate::transport::lines::{Line, LineReader, SERVER_LINE_LIMIT};
use crate::transport::stdio;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// How the stdio proxy runs.
#[derive(Debug, Clone)]
pub struct StdioOptions {
    /// The server's command and arguments.
    pub command: Vec<String>,
    /// Largest message accepted from the agent, in bytes.
    pub max_message_bytes: usize,
    /// How long the child may take to exit after its stdin closes.
    pub shutdown_grace: Duration,
    /// Whether Tollgate and the child share a CPU.
    pub colocate: colocate::Mode,
}

/// The proxy could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No command was given.
    #[error("no MCP server command given: use `tollgate run --policy FILE -- COMMAND [ARGS...]`")]
    NoCommand,
    /// The child could not be started.
    #[error("cannot start the MCP server `{command}`: {cause}")]
    Spawn {
        /// The command.
        command: String,
        /// Why.
        cause: std::io::Error,
    },
    /// Waiting for the child failed.
    #[error("lost track of the MCP server process: {0}")]
    Wait(std::io::Error),
}

type Writer = Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

async fn send(out: &Writer, message: &[u8]) -> std::io::Result<()> {
    let mut w = out.lock().await;
    // One write per message keeps messages whole when several tasks answer the agent.
    let mut framed = Vec::with_capacity(message.len() + 1);
    framed.extend_from_slice(message);
    framed.push(b'\n');
    w.write_all(&framed).await?;
    w.flush().await
}

/// Run the proxy until the server exits or the agent goes away; returns the exit code to use.
pub async fn run(session: Arc<Session>, options: StdioOptions) -> Result<i32, ProxyError> {
    let (program, args) = options.command.split_first().ok_or(ProxyError::NoCommand)?;
    // Pinned before the spawn, so the child starts on the shared CPU.
    let colocation = Colocation::start(options.colocate);
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|cause| ProxyError::Spawn {
            command: options.command.join(" "),
            cause,
        })?;
    let pid = child.id();
    let child_in = child.stdin.take().expect("stdin was piped");
    let child_out = child.stdout.take().expect("stdout was piped");
    let to_client: Writer = Arc::new(Mutex::new(stdio::stdout()));

    // Agent -> server.
    let agent = tokio::spawn(pump_agent(
        session.clone(),
        to_client.clone(),
        options.max_message_bytes,
        Forward::Child(child_in),
    ));

    // Server -> agent.
    let server_session = session.clone();
    let max = options.max_message_bytes;
    let server = tokio::spawn(async move {
        let mut lines = LineReader::new(
            BufReader::with_capacity(64 << 10, child_out),
            max.max(SERVER_LINE_LIMIT),
        );
        loop {
            match lines.next().await {
                Ok(Some(Line::Message(bytes))) => {
                    if let Some(out) = server_session.from_server(&bytes).await {
                        if send(&to_client, &out).await.is_err() {
                            tracing::info!("the agent closed its output; stopping");
                            break;
                        }
                    }
                }
                Ok(Some(Line::TooLong(n))) => tracing::error!(
                    "dropped a message of {n} bytes from the MCP server: over the size limit"
                ),
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "reading from the MCP server failed");
                    break;
                }
            }
        }
        server_session.upstream_lost().await;
    });

    let signals = tokio::spawn(forward_signals(pid));
    let watcher = colocation.map(|c| tokio::spawn(c.watch()));
    let code = supervise(&mut child, agent, server, options.shutdown_grace).await;
    signals.abort();
    if let Some(w) = watcher {
        w.abort();
    }
    code
}

/// Where the agent's messages go.
enum Forward {
    /// A child process's stdin.
    Child(tokio::process::ChildStdin),
    /// A remote server over Streamable HTTP.
    Remote(Arc<HttpUpstream>),
}

impl Forward {
    async fn send(&mut self, message: Vec<u8>) -> std::io::Result<()> {
        match self {
            Forward::Child(stdin) => {
                let mut framed = message;
                framed.push(b'\n');
                stdin.write_all(&framed).await
            }
            Forward::Remote(upstream) => {
                upstream.send(message);
                Ok(())
            }
        }
    }
}

/// Read the agent's messages until it closes stdin; decide, answer or forward each — and the
/// calls held while an operator decides, when their wait is over.
async fn pump_agent(session: Arc<Session>, agent_out: Writer, max: usize, mut forward: Forward) {
    // The agent's stdout carries Tollgate's own questions, and its stdin brings the answers.
    session.carry_questions();
    let mut releases = session.take_releases();
    let mut lines = LineReader::new(BufReader::with_capacity(64 << 10, stdio::stdin()), max);
    loop {
        // `next` keeps a partly read line when a release wins the race.
        let routed = tokio::select! {
            // The agent's messages first: a release is never urgent to the microsecond.
            biased;
            line = lines.next() => match line {
                Ok(Some(Line::Message(bytes))) => session.from_client(&bytes).await,
                Ok(Some(Line::TooLong(n))) => {
                    let message = format!("Invalid Request: message of {n} bytes is over the limit of {max} bytes (--max-message-bytes)");
                    tracing::warn!("{message}");
                    super::Routed {
                        to_client: vec![jsonrpc::error_response(
                            "null",
                            codes::INVALID_REQUEST,
                            &message,
                            None,
                        )],
                        ..super::Routed::default()
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "reading from the agent failed");
                    break;
                }
            },
            Some(release) = releases.recv() => match release {
                super::Release::Again(bytes) => session.from_client(&bytes).await,
                super::Release::ToClient(bytes) => super::Routed {
                    to_client: vec![bytes],
                    ..super::Routed::default()
                },
            },
        };
        for answer in &routed.to_client {
            if send(&agent_out, answer).await.is_err() {
                return;
            }
        }
        if let Some(bytes) = routed.to_server {
            if let Err(e) = forward.send(bytes).await {
                tracing::error!(error = %e, "the MCP server stopped reading its input");
                break;
            }
        }
    }
    // Dropping the child's stdin tells it the session is over.
    drop(forward);
}

/// Serve the agent on stdio in front of a remote MCP server over Streamable HTTP, until the
/// agent closes stdin (then the remote session is ended with DELETE).
pub async fn run_remote(
    session: Arc<Session>,
    upstream: &UpstreamOptions,
    max_message_bytes: usize,
) -> Result<i32, UpstreamError> {
    let (remote, mut from_server) = HttpUpstream::connect(upstream)?;
    let to_client: Writer = Arc::new(Mutex::new(stdio::stdout()));
    let agent = tokio::spawn(pump_agent(
        session.clone(),
        to_client.clone(),
        max_message_bytes,
        Forward::Remote(remote.clone()),
    ));
    let server_session = session.clone();
    let server = tokio::spawn(async move {
        while let Some(message) = from_server.recv().await {
            if let Some(out) = server_session.from_server(&message).await {
                if send(&to_client, &out).await.is_err() {
                    break;
                }
            }
        }
    });
    let _ = agent.await;
    remote.close().await;
    server.abort();
    session.upstream_lost().await;
    Ok(0)
}

/// Wait for the end of the session and of the child; returns the exit code to use.
async fn supervise(
    child: &mut Child,
    agent: tokio::task::JoinHandle<()>,
    mut server: tokio::task::JoinHandle<()>,
    grace: Duration,
) -> Result<i32, ProxyError> {
    tokio::select! {
        _ = &mut server => {}
        _ = agent => {
            // The agent is gone and the child's stdin is closed: give the child time to exit.
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                tracing::warn!("the MCP server did not exit {grace:?} after its input closed; sending SIGTERM");
                signal(child.id(), libc::SIGTERM);
                if tokio::time::timeout(Duration::from_secs(2), child.wait()).await.is_err() {
                    tracing::warn!("the MCP server ignored SIGTERM; killing it");
                    let _ = child.start_kill();
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), &mut server).await;
        }
    }
    let status = child.wait().await.map_err(ProxyError::Wait)?;
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => {
            if code != 0 {
                tracing::error!("the MCP server exited with code {code}");
            }
            code
        }
        (None, Some(sig)) => {
            tracing::error!("the MCP server was killed by signal {sig}");
            128 + sig
        }
        _ => 1,
    }
}

fn signal(pid: Option<u32>, sig: i32) {
    if let Some(pid) = pid {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(pid as i32, sig);
        }
    }
}

/// Pass SIGINT and SIGTERM on to the child; it decides how to exit, and Tollgate follows.
async fn forward_signals(pid: Option<u32>) {
    use tokio::signal::unix::{signal as listen, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        listen(SignalKind::interrupt()),
        listen(SignalKind::terminate()),
    ) else {
        return;
    };
    loop {
        let sig = tokio::select! {
            _ = int.recv() => libc::SIGINT,
            _ = term.recv() => libc::SIGTERM,
        };
        signal(pid, sig);
    }
}
