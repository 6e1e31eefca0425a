//! The link to the MCP server, whichever kind it is: a child process speaking newline-delimited
//! JSON-RPC on its stdin/stdout, or a session on a remote server over Streamable HTTP
//! ([`super::remote`]). Every part of Tollgate that talks to a server — the stdio proxy, the
//! HTTP listener's sessions, `scan` — starts it here and gets the same two halves: a
//! [`ServerLink`] to send with and stop it, and [`ServerMessages`], everything the server says.
//!
//! The link only moves messages: it never looks into them for policy and never calls back into
//! a session. One size limit applies to a child's lines ([`SERVER_LINE_LIMIT`], or the agent's
//! limit when that is larger), one set of errors says why a server could not start, and one
//! shutdown closes a child's input, waits the grace period, then sends SIGTERM and, two seconds
//! later, SIGKILL (a remote session is ended with DELETE).

use super::lines::{Line, LineReader, SERVER_LINE_LIMIT};
use super::remote::{RemoteError, RemoteOptions, RemoteServer};
use bytes::Bytes;
use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, Mutex};

/// Where the MCP server is.
#[derive(Debug, Clone)]
pub enum ServerAddress {
    /// A command started as a child process.
    Command {
        /// The program and its arguments.
        argv: Vec<String>,
        /// Variables added to Tollgate's environment for the child.
        env: Vec<(String, String)>,
    },
    /// A remote server over Streamable HTTP.
    Url(RemoteOptions),
}

impl ServerAddress {
    /// A command with Tollgate's own environment.
    pub fn command(argv: Vec<String>) -> Self {
        ServerAddress::Command {
            argv,
            env: Vec::new(),
        }
    }

    /// Whether the server runs as a child of Tollgate.
    pub fn is_command(&self) -> bool {
        matches!(self, ServerAddress::Command { .. })
    }
}

/// How an error or a report names the server: the command line in backquotes, or the URL.
impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Command { argv, .. } => write!(f, "`{}`", argv.join(" ")),
            ServerAddress::Url(remote) => f.write_str(&remote.url),
        }
    }
}

/// The server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No command was given.
    #[error("no MCP server command given: use `tollgate run --policy FILE -- COMMAND [ARGS...]`")]
    NoCommand,
    /// The child could not be started.
    #[error("cannot start the MCP server `{command}`: {cause}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        cause: std::io::Error,
    },
    /// The URL or a header cannot be used.
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// The sending half of a server link; shared by whoever sends to the server.
pub struct ServerLink {
    kind: Kind,
}

// One per server: the size difference costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
enum Kind {
    Child {
        /// `None` once the input is closed.
        stdin: Mutex<Option<ChildStdin>>,
        child: Mutex<Child>,
        pid: Option<u32>,
    },
    Remote(Arc<RemoteServer>),
}

/// Everything the server says, message by message, unframed.
pub struct ServerMessages {
    source: Source,
}

enum Source {
    Lines(LineReader<BufReader<ChildStdout>>),
    Channel(mpsc::UnboundedReceiver<Bytes>),
}

/// Start the server at `address`. `agent_limit` is the largest message the agent may send: a
/// child's lines may be as long, and at least [`SERVER_LINE_LIMIT`]. A remote server is not
/// contacted until the first message is sent.
pub fn start(
    address: &ServerAddress,
    agent_limit: usize,
) -> Result<(Arc<ServerLink>, ServerMessages), StartError> {
    match address {
        ServerAddress::Command { argv, env } => {
            let (program, args) = argv.split_first().ok_or(StartError::NoCommand)?;
            let mut child = Command::new(program)
                .args(args)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|cause| StartError::Spawn {
                    command: argv.join(" "),
                    cause,
                })?;
            let stdin = child.stdin.take();
            let stdout = child.stdout.take().expect("stdout was piped");
            let lines = LineReader::new(
                BufReader::with_capacity(64 << 10, stdout),
                agent_limit.max(SERVER_LINE_LIMIT),
            );
            let link = ServerLink {
                kind: Kind::Child {
                    stdin: Mutex::new(stdin),
                    pid: child.id(),
                    child: Mutex::new(child),
                },
            };
            let messages = ServerMessages {
                source: Source::Lines(lines),
            };
            Ok((Arc::new(link), messages))
        }
        ServerAddress::Url(options) => {
            let (remote, rx) = RemoteServer::connect(options)?;
            let link = ServerLink {
                kind: Kind::Remote(remote),
            };
            let messages = ServerMessages {
                source: Source::Channel(rx),
            };
            Ok((Arc::new(link), messages))
        }
    }
}

fn closed_input() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the MCP server's input is closed",
    )
}

impl ServerLink {
    /// Send one message and return at once; whatever the server answers arrives on
    /// [`ServerMessages`]. Fails when a child's input is closed or broken.
    pub async fn send(&self, message: &[u8]) -> std::io::Result<()> {
        match &self.kind {
            Kind::Child { stdin, .. } => write_line(stdin, message).await,
            Kind::Remote(remote) => {
                remote.send(message.to_vec());
                Ok(())
            }
        }
    }

    /// Send one message, waiting on this task for what the server answers in the same
    /// exchange: a remote server's JSON answer is returned (an SSE answer, and everything from
    /// a child, still arrives on [`ServerMessages`]). Callers that route answers themselves save
    /// a task hand-off this way.
    pub async fn exchange(&self, message: &[u8]) -> std::io::Result<Vec<Bytes>> {
        match &self.kind {
            Kind::Child { stdin, .. } => write_line(stdin, message).await.map(|()| Vec::new()),
            Kind::Remote(remote) => Ok(remote.send_now(message.to_vec()).await),
        }
    }

    /// The child's process id (for signals and CPU placement); `None` for a remote server.
    pub fn pid(&self) -> Option<u32> {
        match &self.kind {
            Kind::Child { pid, .. } => *pid,
            Kind::Remote(_) => None,
        }
    }

    /// How the child exited, once it has; `None` for a remote server.
    pub async fn wait(&self) -> Option<std::io::Result<ExitStatus>> {
        match &self.kind {
            Kind::Child { child, .. } => Some(child.lock().await.wait().await),
            Kind::Remote(_) => None,
        }
    }

    /// Close a child's input, give it `grace` to exit, then SIGTERM and, two seconds later,
    /// SIGKILL; returns how it exited. A remote session is ended with DELETE (`None`).
    pub async fn shut_down(&self, grace: Duration) -> Option<std::io::Result<ExitStatus>> {
        let (stdin, child, pid) = match &self.kind {
            Kind::Child { stdin, child, pid } => (stdin, child, *pid),
            Kind::Remote(remote) => {
                remote.close().await;
                return None;
            }
        };
        stdin.lock().await.take();
        let mut child = child.lock().await;
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            tracing::warn!(
                "the MCP server did not exit {grace:?} after its input closed; sending SIGTERM"
            );
            signal(pid, libc::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(2), child.wait())
                .await
                .is_err()
            {
                tracing::warn!("the MCP server ignored SIGTERM; killing it");
                let _ = child.start_kill();
            }
        }
        Some(child.wait().await)
    }
}

async fn write_line(stdin: &Mutex<Option<ChildStdin>>, message: &[u8]) -> std::io::Result<()> {
    let mut stdin = stdin.lock().await;
    let w = stdin.as_mut().ok_or_else(closed_input)?;
    // One write per message keeps it whole.
    let mut framed = Vec::with_capacity(message.len() + 1);
    framed.extend_from_slice(message);
    framed.push(b'\n');
    w.write_all(&framed).await?;
    w.flush().await
}

/// Send `sig` to the process `pid`, if there is one.
pub fn signal(pid: Option<u32>, sig: i32) {
    if let Some(pid) = pid {
        // SAFETY: sending a signal to a child process of ours.
        unsafe {
            libc::kill(pid as i32, sig);
        }
    }
}

impl ServerMessages {
    /// The server's next message; `None` once it is gone (a child closed its output or could
    /// not be read, a remote link was dropped). A line over the limit is dropped and logged.
    pub async fn next(&mut self) -> Option<Bytes> {
        match &mut self.source {
            Source::Channel(rx) => rx.recv().await,
            Source::Lines(lines) => loop {
                match lines.next().await {
                    Ok(Some(Line::Message(bytes))) => return Some(bytes.into()),
                    Ok(Some(Line::TooLong(n))) => tracing::error!(
                        "dropped a message of {n} bytes from the MCP server: over the size limit"
                    ),
                    Ok(None) => return None,
                    Err(e) => {
                        tracing::error!(error = %e, "reading from the MCP server failed");
                        return None;
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> ServerAddress {
        ServerAddress::command(vec!["sh".into(), "-c".into(), script.into()])
    }

    #[tokio::test]
    async fn a_child_echoes_what_it_is_sent_and_its_exit_status_comes_back() {
        let (link, mut messages) = start(&sh("read line; echo \"$line\"; exit 3"), 0).unwrap();
        link.send(br#"{"jsonrpc":"2.0","method":"x"}"#)
            .await
            .unwrap();
        assert_eq!(
            messages.next().await.unwrap(),
            Bytes::from_static(br#"{"jsonrpc":"2.0","method":"x"}"#)
        );
        assert_eq!(messages.next().await, None);
        let status = link
            .shut_down(Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(3));
    }

    #[tokio::test]
    async fn a_child_that_ignores_its_closed_input_is_terminated_after_the_grace() {
        let (link, _messages) = start(&sh("trap '' TERM; exec sleep 30"), 0).unwrap();
        let status = link
            .shut_down(Duration::from_millis(100))
            .await
            .unwrap()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }

    #[tokio::test]
    async fn sending_after_shutdown_says_the_input_is_closed() {
        let (link, _messages) = start(&sh("cat >/dev/null"), 0).unwrap();
        link.shut_down(Duration::from_secs(5)).await;
        let e = link.send(b"{}").await.unwrap_err();
        assert_eq!(e.to_string(), "the MCP server's input is closed");
    }

    #[test]
    fn a_missing_program_is_named_with_its_arguments() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let address = ServerAddress::command(vec!["/nonexistent/server".into(), "--x".into()]);
        let Err(e) = start(&address, 0) else {
            panic!("started a program that does not exist")
        };
        assert_eq!(
            e.to_string(),
            "cannot start the MCP server `/nonexistent/server --x`: No such file or directory (os error 2)"
        );
        let Err(e) = start(&ServerAddress::command(Vec::new()), 0) else {
            panic!("started nothing")
        };
        assert!(matches!(e, StartError::NoCommand));
    }
}
