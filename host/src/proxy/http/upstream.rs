//! One agent session's MCP server behind the HTTP listener — a child process, or a session on a
//! remote server over Streamable HTTP — and where its messages go.
//!
//! A response goes to the POST stream of the request it answers; a progress notification to the
//! stream of the request that asked for progress with that token; anything else the server
//! starts (sampling, elicitation, roots, logging, list_changed) goes to the only open POST
//! stream when exactly one request is in flight (it is almost surely about that request, and
//! the SDK clients accept it there), else to the session's GET stream, else to any open POST
//! stream, else it waits (bounded) for a GET stream to open.

use super::super::Session;
use crate::jsonrpc::{self, codes, Envelope, Kind, Parsed};
use crate::transport::http_client::{HttpUpstream, UpstreamError, UpstreamOptions};
use crate::transport::lines::{Line, LineReader};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc::UnboundedSender;

/// Messages (raw JSON-RPC, unframed) for one HTTP response stream.
pub type Stream = UnboundedSender<Bytes>;

/// Server-initiated messages kept while no stream can take them.
const BACKLOG: usize = 1024;

/// Upstream messages may be much larger than what agents send.
const UPSTREAM_LIMIT: usize = 64 << 20;

#[derive(Default)]
struct Routes {
    /// Request id (JSON text) -> the POST stream waiting for its response.
    requests: HashMap<String, Stream>,
    /// Progress token (JSON text) -> request id.
    tokens: HashMap<String, String>,
    /// The session's GET stream.
    general: Option<Stream>,
    backlog: VecDeque<Bytes>,
}

/// How messages reach the server.
// One per session (or scan): the size difference costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
enum Link {
    /// A child process: its stdin, and the process to stop.
    Child {
        stdin: tokio::sync::Mutex<Option<ChildStdin>>,
        child: tokio::sync::Mutex<Child>,
    },
    /// A remote server, and the session its answers pass through.
    Remote(Arc<HttpUpstream>, Arc<Session>),
}

/// A session's server and its routing table.
pub struct SessionUpstream {
    link: Link,
    routes: Mutex<Routes>,
}

/// The child could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the MCP server `{command}`: {cause}")]
pub struct SpawnError {
    command: String,
    cause: std::io::Error,
}

impl SessionUpstream {
    /// Start `command`; its output is routed through `session` until it exits.
    pub fn spawn(command: &[String], session: Arc<Session>) -> Result<Arc<Self>, SpawnError> {
        let spawn_error = |cause| SpawnError {
            command: command.join(" "),
            cause,
        };
        let (program, args) = command.split_first().ok_or_else(|| {
            spawn_error(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no command",
            ))
        })?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_error)?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout was piped");
        let upstream = Arc::new(Self {
            link: Link::Child {
                stdin: tokio::sync::Mutex::new(stdin),
                child: tokio::sync::Mutex::new(child),
            },
            routes: Mutex::new(Routes::default()),
        });
        let pump = upstream.clone();
        tokio::spawn(async move {
            let mut lines =
                LineReader::new(BufReader::with_capacity(64 << 10, stdout), UPSTREAM_LIMIT);
            loop {
                match lines.next().await {
                    Ok(Some(Line::Message(bytes))) => {
                        if let Some(out) = session.from_server(&bytes).await {
                            pump.route(out.into());
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
            session.upstream_lost().await;
            pump.fail_all();
        });
        Ok(upstream)
    }

    /// Open a session on a remote server; its messages are routed through `session`.
    pub fn connect(
        options: &UpstreamOptions,
        session: Arc<Session>,
    ) -> Result<Arc<Self>, UpstreamError> {
        let (remote, mut from_server) = HttpUpstream::connect(options)?;
        let upstream = Arc::new(Self {
            link: Link::Remote(remote, session.clone()),
            routes: Mutex::new(Routes::default()),
        });
        let pump = upstream.clone();
        tokio::spawn(async move {
            while let Some(message) = from_server.recv().await {
                if let Some(out) = session.from_server(&message).await {
                    pump.route(out.into());
                }
            }
        });
        Ok(upstream)
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send the responses to `ids` (and progress for `tokens`) to `stream`.
    pub fn expect(&self, ids: &[String], tokens: &[(String, String)], stream: &Stream) {
        let mut r = self.routes();
        for id in ids {
            r.requests.insert(id.clone(), stream.clone());
        }
        for (token, id) in tokens {
            r.tokens.insert(token.clone(), id.clone());
        }
    }

    /// Stop expecting `ids` (the client went away).
    pub fn forget(&self, ids: &[String]) {
        let mut r = self.routes();
        for id in ids {
            r.requests.remove(id);
        }
        r.tokens.retain(|_, id| !ids.contains(id));
    }

    /// Make `stream` the session's GET stream, delivering what waited for one. False when one
    /// is already open.
    pub fn open_general(&self, stream: Stream) -> bool {
        let mut r = self.routes();
        if r.general.as_ref().is_some_and(|g| !g.is_closed()) {
            return false;
        }
        while let Some(m) = r.backlog.pop_front() {
            let _ = stream.send(m);
        }
        r.general = Some(stream);
        true
    }

    /// Close the GET stream, if any.
    pub fn close_general(&self) {
        self.routes().general = None;
    }

    /// Send one message to the server.
    pub async fn send(&self, message: &[u8]) -> std::io::Result<()> {
        let stdin = match &self.link {
            Link::Child { stdin, .. } => stdin,
            Link::Remote(remote, session) => {
                // On this task: a JSON answer is routed before this returns, so the waiting
                // handler finds it without a wake-up (SSE answers stream on their own task).
                for m in remote.send_now(message.to_vec()).await {
                    if let Some(out) = session.from_server(&m).await {
                        self.route(out.into());
                    }
                }
                return Ok(());
            }
        };
        let mut stdin = stdin.lock().await;
        let Some(w) = stdin.as_mut() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the MCP server's input is closed",
            ));
        };
        let mut framed = Vec::with_capacity(message.len() + 1);
        framed.extend_from_slice(message);
        framed.push(b'\n');
        w.write_all(&framed).await?;
        w.flush().await
    }

    /// Deliver a message of Tollgate's own (a denial) as if the server had sent it.
    pub fn deliver(&self, message: Bytes) {
        self.route(message);
    }

    fn route(&self, message: Bytes) {
        let mut r = self.routes();
        let target = match jsonrpc::parse(&message) {
            Ok(Parsed::Single(env)) => match env.kind() {
                Kind::Response => {
                    let id = env.id_text().to_string();
                    r.tokens.retain(|_, waiting| *waiting != id);
                    // Nobody waits on a POST stream (legacy HTTP+SSE): the session's stream.
                    let waiting = r.requests.remove(&id);
                    waiting.or_else(|| r.general.clone().filter(|g| !g.is_closed()))
                }
                _ => progress_target(&r, &env)
                    .or_else(|| subscription_target(&r, &env))
                    .or_else(|| unrelated_target(&r)),
            },
            _ => unrelated_target(&r),
        };
        match target {
            Some(stream) if stream.send(message.clone()).is_ok() => {}
            _ if r.backlog.len() < BACKLOG => r.backlog.push_back(message),
            _ => tracing::warn!("dropped a server message: no client stream to deliver it to"),
        }
    }

    /// The server is gone: every request still waiting gets an error.
    fn fail_all(&self) {
        let mut r = self.routes();
        for (id, stream) in r.requests.drain() {
            let _ = stream.send(
                jsonrpc::error_response(
                    &id,
                    codes::INTERNAL_ERROR,
                    "the MCP server exited before answering",
                    None,
                )
                .into(),
            );
        }
        r.general = None;
    }

    /// Close the child's input, give it `grace` to exit, then kill it; or end the remote
    /// session.
    pub async fn shut_down(&self, grace: Duration) {
        let (stdin, child) = match &self.link {
            Link::Child { stdin, child } => (stdin, child),
            Link::Remote(remote, _) => return remote.close().await,
        };
        stdin.lock().await.take();
        let mut child = child.lock().await;
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

fn progress_target(r: &Routes, env: &Envelope<'_>) -> Option<Stream> {
    if env.method.as_deref() != Some("notifications/progress") {
        return None;
    }
    let token = progress_token(env.params)?;
    let id = r.tokens.get(&token)?;
    r.requests.get(id).cloned()
}

/// The stream of the `subscriptions/listen` request a notification says it belongs to.
fn subscription_target(r: &Routes, env: &Envelope<'_>) -> Option<Stream> {
    let id = subscription_id(env.params)?;
    r.requests.get(&id).cloned()
}

/// Where a 2026-07-28 listen-stream notification names its `subscriptions/listen` request.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// A notification's `params._meta["io.modelcontextprotocol/subscriptionId"]` as JSON text.
pub fn subscription_id(params: Option<&serde_json::value::RawValue>) -> Option<String> {
    let params = params?.get();
    if !params.contains(SUBSCRIPTION_ID) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(params).ok()?;
    v.get("_meta")?
        .get(SUBSCRIPTION_ID)
        .map(|id| id.to_string())
}

fn unrelated_target(r: &Routes) -> Option<Stream> {
    let mut open = r.requests.values().filter(|s| !s.is_closed());
    let first = open.next().cloned();
    let only_one = open.next().is_none();
    match (&first, &r.general) {
        (Some(s), _) if only_one => Some(s.clone()),
        (_, Some(g)) if !g.is_closed() => Some(g.clone()),
        _ => first,
    }
}

/// `params.progressToken` (a notification) as JSON text.
pub fn progress_token(params: Option<&serde_json::value::RawValue>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct P<'a> {
        #[serde(rename = "progressToken", borrow)]
        token: Option<&'a serde_json::value::RawValue>,
    }
    let p: P = serde_json::from_str(params?.get()).ok()?;
    p.token.map(|t| t.get().to_string())
}
