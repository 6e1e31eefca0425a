//! The stdio proxy: the agent talks to Tollgate on Tollgate's own stdin/stdout, exactly as it
//! would to the server — a child process, or a remote server over Streamable HTTP.
//!
//! Process hygiene: the child's stderr is Tollgate's stderr; SIGINT/SIGTERM are passed to the
//! child; when the agent closes stdin the server link shuts down (the child's stdin is closed
//! and it gets a grace period before SIGTERM and then SIGKILL; a remote session is ended) and
//! Tollgate exits with the child's exit code (0 with a remote server).

use super::colocate::Colocation;
use super::Session;
use crate::jsonrpc::{self, codes};
use crate::transport::lines::{Line, LineReader};
use crate::transport::server::{self, ServerAddress, ServerLink, StartError};
use crate::transport::stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

/// How the stdio proxy runs.
#[derive(Debug, Clone)]
pub struct StdioOptions {
    /// The server.
    pub server: ServerAddress,
    /// Largest message accepted from the agent, in bytes.
    pub max_message_bytes: usize,
    /// How long the child may take to exit after its stdin closes.
    pub shutdown_grace: Duration,
    /// Whether Tollgate and a child server share a CPU.
    pub colocate: super::colocate::Mode,
}

/// The proxy could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The server could not be started.
    #[error(transparent)]
    Start(#[from] StartError),
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

/// Run the proxy until the server goes away or the agent does; returns the exit code to use.
pub async fn run(session: Arc<Session>, options: StdioOptions) -> Result<i32, ProxyError> {
    // Pinned before the spawn, so the child starts on the shared CPU.
    let colocation = match options.server.is_command() {
        true => Colocation::start(options.colocate),
        false => None,
    };
    let (link, mut messages) = server::start(&options.server, options.max_message_bytes)?;
    let to_client: Writer = Arc::new(Mutex::new(stdio::stdout()));

    // Agent -> server.
    let agent = tokio::spawn(pump_agent(
        session.clone(),
        to_client.clone(),
        options.max_message_bytes,
        link.clone(),
    ));

    // Server -> agent.
    let server_session = session.clone();
    let server = tokio::spawn(async move {
        while let Some(bytes) = messages.next().await {
            if let Some(out) = server_session.from_server(&bytes).await {
                if send(&to_client, &out).await.is_err() {
                    tracing::info!("the agent closed its output; stopping");
                    break;
                }
            }
        }
        server_session.server_lost().await;
    });

    // Only a child gets the signals: without one, they stop Tollgate as usual.
    let signals = link.pid().map(|pid| tokio::spawn(forward_signals(pid)));
    let watcher = colocation.map(|c| tokio::spawn(c.watch()));
    let mut server = server;
    let code = supervise(&link, agent, &mut server, options.shutdown_grace).await;
    // Calls still waiting for the server are settled as failed.
    server.abort();
    session.server_lost().await;
    for task in signals.into_iter().chain(watcher) {
        task.abort();
    }
    code
}

/// Read the agent's messages until it closes stdin; decide, answer or forward each — and the
/// calls held while an operator decides, when their wait is over.
async fn pump_agent(session: Arc<Session>, agent_out: Writer, max: usize, link: Arc<ServerLink>) {
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
            if let Err(e) = link.send(&bytes).await {
                tracing::error!(error = %e, "the MCP server stopped reading its input");
                break;
            }
        }
    }
}

/// Wait for the end of the session and of the server; returns the exit code to use.
async fn supervise(
    link: &ServerLink,
    agent: tokio::task::JoinHandle<()>,
    server: &mut tokio::task::JoinHandle<()>,
    grace: Duration,
) -> Result<i32, ProxyError> {
    let status = tokio::select! {
        // The server closed its output: a child is exiting, or a remote link is gone.
        _ = &mut *server => link.wait().await,
        // The agent is gone: the link closes the child's input and gives it time to exit (or
        // ends the remote session).
        _ = agent => {
            let status = link.shut_down(grace).await;
            if status.is_some() {
                // What the child said before it exited still reaches the agent.
                let _ = tokio::time::timeout(Duration::from_secs(1), &mut *server).await;
            }
            status
        }
    };
    match status {
        Some(status) => Ok(exit_code(status.map_err(ProxyError::Wait)?)),
        None => Ok(0),
    }
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

/// Pass SIGINT and SIGTERM on to the child; it decides how to exit, and Tollgate follows.
async fn forward_signals(pid: u32) {
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
        server::signal(Some(pid), sig);
    }
}
