//! The Streamable HTTP listener: agents reach Tollgate at `http://ADDR/mcp` and every message
//! goes through a [`Session`](crate::proxy::Session) to the MCP server — a child process, or a remote server over
//! Streamable HTTP (each agent session then opens its own session there).
//!
//! **One child per session.** An `initialize` starts a new child and a new `Mcp-Session-Id`; its
//! messages never mix with another agent's. A shared child with id rewriting would save
//! processes but breaks what servers legitimately keep per connection — the negotiated protocol
//! version and capabilities, `roots`, `logging/setLevel`, resource subscriptions, and who a
//! sampling or elicitation request must reach — so the cost (one process per agent, reaped when
//! the session is deleted or idle) is worth it. Stateless 2026-07-28 requests have no session:
//! they share one child per caller (one for all when there is no authentication), which is safe
//! because that revision keeps no per-connection state (version and client info ride in each
//! request), and their ids are rewritten so concurrent agents' ids cannot collide.
//!
//! Along a request: this file accepts connections and routes by path and method; `access`
//! checks Host, Origin and tokens; `post` reads a `POST /mcp` and hands it to the session;
//! `sessions` is the table of agent sessions (and `DELETE`); `streams` carries answers back (SSE
//! or JSON), the `GET` stream and held calls' release; `resume` replays a stream after
//! `Last-Event-ID`; `stateless` is the 2026-07-28 revision's entry; `legacy` the 2024-11-05
//! SSE transport; `routes` each session's server link and where its messages go; `approvals` and `console` the
//! operator's endpoints; `alone` the small server stdio mode runs for `/metrics` and the console.

// Helpers return the early answer (a refusal) as the error: a whole Response, built at most once
// per request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod access;
mod alone;
mod approvals;
pub mod console;
mod legacy;
mod post;
mod resume;
mod routes;
mod sessions;
mod stateless;
mod streams;
pub mod tls;

use crate::jsonrpc::codes;
pub use access::{Access, Refusal, Token};
use alone::metrics_response;
pub use alone::{serve_metrics, METRICS_PATH};

use crate::audit::Recorder;
use crate::chain::ChainCell;
use crate::transport::http::{full, ResponseBody};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use sessions::{reap_idle, Entry};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// How the listener runs.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The MCP server: a command started once per session, or a remote endpoint on which each
    /// agent session opens its own session.
    pub server: crate::transport::server::ServerAddress,
    /// Who may connect.
    pub access: Access,
    /// Largest request body, in bytes.
    pub max_message_bytes: usize,
    /// How long a client may take to send a request's headers, its body, or (HTTPS) the TLS
    /// handshake; a slower one is cut off (408 for a body) so it cannot hold a connection.
    pub request_timeout: Duration,
    /// Sessions unused this long are closed and their child stopped.
    pub idle_timeout: Duration,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Serve a non-loopback address without tokens (something in front authenticates).
    pub allow_remote_without_auth: bool,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<tls::TlsFiles>,
    /// Whether Tollgate and the servers it starts (a command) share a CPU.
    pub colocate: super::colocate::Mode,
    /// The operator's console at `/console` (for `--approver` callers).
    pub console: Option<crate::console::Console>,
}

/// The listener could not run.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Binding failed.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        cause: std::io::Error,
    },
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// A non-loopback address without authentication.
    #[error("refusing to listen on {0} without authentication: give --auth-token, or --allow-remote-without-auth if something in front of Tollgate authenticates")]
    Unauthenticated(SocketAddr),
}

/// The MCP endpoint's path.
pub const PATH: &str = "/mcp";

/// Shared state of the listener.
struct Listener {
    chain: Arc<ChainCell>,
    recorder: Recorder,
    options: HttpOptions,
    sessions: Mutex<HashMap<String, Arc<Entry>>>,
    /// The children shared by stateless (2026-07-28) requests, per authenticated caller,
    /// started on first use.
    stateless: tokio::sync::Mutex<HashMap<Option<String>, Arc<Entry>>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// Serve until SIGINT/SIGTERM; returns the exit code.
pub async fn run(
    chain: Arc<ChainCell>,
    recorder: Recorder,
    options: HttpOptions,
) -> Result<i32, HttpError> {
    if !options.access.loopback
        && options.access.tokens.is_empty()
        && !options.allow_remote_without_auth
    {
        return Err(HttpError::Unauthenticated(options.listen));
    }
    let socket = TcpListener::bind(options.listen)
        .await
        .map_err(|cause| HttpError::Bind {
            addr: options.listen,
            cause,
        })?;
    let bound = socket.local_addr().unwrap_or(options.listen);
    let tls = match &options.tls {
        Some(t) => Some(tls::acceptor(t)?),
        None => None,
    };
    let mut options = options;
    options.access.bound = Some(bound);
    // Before any session starts its server, so every server starts on the shared CPU.
    if options.server.is_command() {
        if let Some(c) = super::colocate::Colocation::start(options.colocate) {
            tokio::spawn(c.watch());
        }
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("tollgate: listening on {scheme}://{bound}{PATH}");
    let listener = Arc::new(Listener {
        chain,
        recorder,
        options,
        sessions: Mutex::new(HashMap::new()),
        stateless: tokio::sync::Mutex::new(HashMap::new()),
        next_id: std::sync::atomic::AtomicU64::new(1),
    });
    tokio::spawn(reap_idle(Arc::downgrade(&listener)));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = socket.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                // Without it a response written in several pieces (SSE) waits on Nagle's
                // algorithm and the peer's delayed ACK: tens of milliseconds per call.
                let _ = stream.set_nodelay(true);
                let listener = listener.clone();
                let stop = stop_rx.clone();
                let tls = tls.clone();
                let handshake = listener.options.request_timeout;
                connections.spawn(async move {
                    match tls {
                        None => serve_connection(stream, listener, stop).await,
                        Some(acceptor) => {
                            match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => serve_connection(stream, listener, stop).await,
                                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!("TLS handshake timed out"),
                            }
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down: letting in-flight requests finish");
    let _ = stop_tx.send(true);
    let entries: Vec<Arc<Entry>> = listener.take_all().await;
    for e in &entries {
        e.server.close_general();
    }
    let grace = listener.options.shutdown_grace;
    let _ = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    for e in entries {
        e.server.shut_down(Duration::from_secs(2)).await;
    }
    Ok(0)
}

/// Serve one connection (plain or TLS) until it ends or shutdown asks it to finish.
async fn serve_connection<IO>(
    io: IO,
    listener: Arc<Listener>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = listener.options.request_timeout;
    let service = hyper::service::service_fn(move |req| {
        let listener = listener.clone();
        async move { Ok::<_, std::convert::Infallible>(listener.handle(req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        }
        _ => std::future::pending().await,
    }
}

/// A JSON answer.
fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An HTTP-level refusal carrying a JSON-RPC error body clients can show.
fn refuse(status: StatusCode, code: i64, message: &str) -> Response<ResponseBody> {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    json_response(status, body.to_string())
}

/// How a request the access rules refuse is answered: 403, or 401 with the bearer challenge.
fn refused(refusal: Refusal) -> Response<ResponseBody> {
    match refusal {
        Refusal::Forbidden(m) => refuse(
            StatusCode::FORBIDDEN,
            codes::INVALID_REQUEST,
            &format!("Forbidden: {m}"),
        ),
        Refusal::Unauthorized(m) => {
            let mut r = refuse(
                StatusCode::UNAUTHORIZED,
                codes::INVALID_REQUEST,
                &format!("Unauthorized: {m}"),
            );
            r.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="tollgate""#),
            );
            r
        }
    }
}

impl Listener {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<ResponseBody> {
        let path = req.uri().path();
        if let (true, Some(c)) = (console::owns(path), &self.options.console) {
            return console::answer(c, &self.options.access, &req).await;
        }
        if ![PATH, METRICS_PATH, legacy::SSE_PATH, legacy::MESSAGE_PATH].contains(&path)
            && !approvals::owns(path)
        {
            return refuse(
                StatusCode::NOT_FOUND,
                codes::INVALID_REQUEST,
                &format!("Not Found: the MCP endpoint is {PATH}"),
            );
        }
        // The same Host/Origin/token rules everywhere: even metrics name tools.
        let caller = match self.options.access.check(req.headers()) {
            Ok(caller) => caller,
            Err(refusal) => return refused(refusal),
        };
        if approvals::owns(req.uri().path()) {
            let (method, path, query) = (req.method(), req.uri().path(), req.uri().query());
            return self.approvals(method, path, query, caller).await;
        }
        match (req.uri().path(), req.method()) {
            (METRICS_PATH, &Method::GET) => return metrics_response(),
            (legacy::SSE_PATH, &Method::GET) => return self.legacy_stream(caller),
            (legacy::MESSAGE_PATH, &Method::POST) => return self.legacy_message(req, caller).await,
            (METRICS_PATH | legacy::SSE_PATH | legacy::MESSAGE_PATH, _) => {
                return refuse(
                    StatusCode::METHOD_NOT_ALLOWED,
                    codes::INVALID_REQUEST,
                    "Method Not Allowed",
                )
            }
            _ => {}
        }
        if stateless::routes_here(req.headers()) {
            if let Some(r) = stateless::screen_head(req.method(), req.headers()) {
                return r;
            }
            return self.post(req, caller, true).await;
        }
        // Every answer about a live session names it, refusals included, as the SDKs' servers do.
        let named = req
            .headers()
            .get("mcp-session-id")
            .filter(|id| {
                let id = id.to_str().unwrap_or("");
                let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
                sessions
                    .get(id)
                    .is_some_and(|e| e.owner.is_none() || e.owner == caller)
            })
            .cloned();
        let mut r = self.endpoint(req, caller).await;
        // (Not on a refusal without a JSON-RPC body, which the SDKs make before any session.)
        if let (Some(id), true) = (named, r.headers().contains_key(CONTENT_TYPE)) {
            r.headers_mut().entry("mcp-session-id").or_insert(id);
        }
        r
    }

    /// A request to the MCP endpoint, past the access rules.
    async fn endpoint(
        self: Arc<Self>,
        req: Request<Incoming>,
        caller: Option<String>,
    ) -> Response<ResponseBody> {
        match *req.method() {
            Method::POST => self.post(req, caller, false).await,
            Method::GET => self.get(&req, caller),
            Method::DELETE => self.delete(&req, caller).await,
            _ => {
                let mut r = refuse(
                    StatusCode::METHOD_NOT_ALLOWED,
                    codes::INVALID_REQUEST,
                    "Method Not Allowed",
                );
                r.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
                r
            }
        }
    }
}
