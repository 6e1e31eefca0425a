//! A remote MCP server over Streamable HTTP, presented like a child process: messages go in with
//! [`RemoteServer::send`], and everything the server says (responses, notifications, its own
//! requests, from POST answers and the GET stream alike) comes out of one channel.
//!
//! It keeps the session (`Mcp-Session-Id` from the `initialize` answer, `MCP-Protocol-Version`
//! afterwards), opens the GET stream once a session exists, mirrors `Mcp-Method`/`Mcp-Name` from
//! the body actually sent on 2026-07-28 requests (so a rewritten call stays consistent), and
//! ends the session with DELETE. A failed request becomes a JSON-RPC error for its id, so the
//! agent always gets an answer and counters are refunded.
//!
//! One file of about 450 lines on purpose: a request's exchange, its answer read as JSON or as an
//! event stream, and that stream's resumption share the session's state and one failure path
//! (every request still awaited gets an error); the header facts and the SSE reader are apart.

mod facts;

use super::sse::SseParser;
use crate::jsonrpc::{self, codes, Kind, Parsed};
use bytes::Bytes;
use facts::{Facts, VERSION};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The upstream URL or a header could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Not an `http://` URL.
    #[error("--upstream `{0}`: expected an http:// URL (for https, put a TLS-terminating proxy in front or use a plain-HTTP loopback address)")]
    Url(String),
    /// A header that is not `Name: value`.
    #[error("--upstream-header `{0}`: expected `Name: value`")]
    Header(String),
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The MCP endpoint, e.g. `http://127.0.0.1:3001/mcp`.
    pub url: String,
    /// Extra headers sent with every request (e.g. `Authorization`).
    pub headers: Vec<(String, String)>,
    /// How long one request may take to get its response headers.
    pub timeout: Duration,
}

struct State {
    session_id: Option<HeaderValue>,
    protocol_version: Option<HeaderValue>,
    general_opened: bool,
}

/// A connection to a remote MCP server.
pub struct RemoteServer {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
    state: Mutex<State>,
    out: mpsc::UnboundedSender<Bytes>,
}

const SESSION: &str = "mcp-session-id";

impl RemoteServer {
    /// Prepare a connection (nothing is sent yet); the receiver yields every message the server
    /// sends.
    pub fn connect(
        options: &RemoteOptions,
    ) -> Result<(Arc<Self>, mpsc::UnboundedReceiver<Bytes>), RemoteError> {
        let uri: Uri = options
            .url
            .parse()
            .map_err(|_| RemoteError::Url(options.url.clone()))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(RemoteError::Url(options.url.clone()));
        }
        let headers = options
            .headers
            .iter()
            .map(|(k, v)| {
                let bad = || RemoteError::Header(format!("{k}: {v}"));
                Ok((
                    HeaderName::try_from(k.as_str()).map_err(|_| bad())?,
                    HeaderValue::try_from(v.as_str()).map_err(|_| bad())?,
                ))
            })
            .collect::<Result<Vec<_>, RemoteError>>()?;
        let mut connector = HttpConnector::new();
        // Without it an SSE answer written in pieces waits on delayed ACKs: tens of ms a call.
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(30)));
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let (out, rx) = mpsc::unbounded_channel();
        let upstream = Arc::new(Self {
            client,
            uri,
            headers,
            timeout: options.timeout,
            state: Mutex::new(State {
                session_id: None,
                protocol_version: None,
                general_opened: false,
            }),
            out,
        });
        Ok((upstream, rx))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn request(&self, method: Method, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::builder()
            .method(method)
            .uri(self.uri.clone())
            .header(ACCEPT, "application/json, text/event-stream")
            .body(Full::new(body))
            .expect("a request from parts that were checked");
        let h = req.headers_mut();
        for (k, v) in &self.headers {
            h.insert(k.clone(), v.clone());
        }
        let state = self.state();
        if let Some(id) = &state.session_id {
            h.insert(SESSION, id.clone());
        }
        if let Some(v) = &state.protocol_version {
            h.insert(VERSION, v.clone());
        }
        req
    }

    /// Send one message; its answers arrive on the receiver. Returns at once: the exchange runs
    /// in the background.
    pub fn send(self: &Arc<Self>, message: Vec<u8>) {
        let this = self.clone();
        tokio::spawn(async move { this.exchange(message.into(), None).await });
    }

    /// Send one message and wait for the server's answer on this task: a JSON answer (or a
    /// failure) is returned; an SSE answer is read on its own task and its messages arrive on
    /// the receiver as with [`RemoteServer::send`]. Saves the task hand-offs of the usual case.
    pub async fn send_now(self: &Arc<Self>, message: Vec<u8>) -> Vec<Bytes> {
        let mut got = Vec::new();
        self.clone().exchange(message.into(), Some(&mut got)).await;
        got
    }

    async fn exchange(self: Arc<Self>, message: Bytes, mut collect: Option<&mut Vec<Bytes>>) {
        let facts = Facts::of(&message);
        let mut req = self.request(Method::POST, message);
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        facts.mirror(req.headers_mut());
        let response = match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return self.fail(
                    &mut collect,
                    &facts.ids,
                    &format!("cannot reach the MCP server: {e}"),
                )
            }
            Err(_) => {
                return self.fail(
                    &mut collect,
                    &facts.ids,
                    "the MCP server did not answer in time",
                )
            }
        };
        let status = response.status();
        if facts.initialize && status.is_success() {
            if let Some(id) = response.headers().get(SESSION) {
                self.state().session_id = Some(id.clone());
            }
        }
        match status {
            StatusCode::ACCEPTED => {}
            s if s.is_success() => {
                if collect.is_some() && is_sse(&response) {
                    let this = self.clone();
                    let (initialize, ids) = (facts.initialize, facts.ids.clone());
                    tokio::spawn(async move {
                        this.read_answer(response, initialize, None, Awaited::Answers(ids))
                            .await
                    });
                } else {
                    let awaited = Awaited::Answers(facts.ids.clone());
                    self.read_answer(response, facts.initialize, collect.as_deref_mut(), awaited)
                        .await;
                }
            }
            StatusCode::NOT_FOUND if self.state().session_id.is_some() => self.fail(
                &mut collect,
                &facts.ids,
                "the MCP server ended the session (404); reconnect",
            ),
            s => {
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                // A JSON-RPC error body answers the request as it is; anything else is reported.
                if is_json_rpc(&body) {
                    self.deliver(body, false, collect.as_deref_mut());
                } else {
                    let text = String::from_utf8_lossy(&body);
                    self.fail(
                        &mut collect,
                        &facts.ids,
                        &format!("the MCP server answered HTTP {s}: {}", text.trim()),
                    );
                }
            }
        }
        if facts.initialized_notification {
            self.open_general();
        }
    }

    /// Read an answer: a JSON body, or an event stream to its end. A stream the server closes
    /// before it answered every request awaited on it (SSE polling: a priming event with an id
    /// and `retry`, then the stream ends) is resumed here, with `GET` and `Last-Event-ID` after
    /// the server's `retry`, until the answers come: an agent on stdio cannot resume a stream
    /// itself, and an agent over HTTP keeps its own stream to Tollgate open meanwhile. The
    /// server's GET stream is resumed the same way whenever it ends after an event id. A stream
    /// that ends unanswered and cannot be resumed answers its requests with an error.
    async fn read_answer(
        &self,
        response: Response<Incoming>,
        initialize: bool,
        mut collect: Option<&mut Vec<Bytes>>,
        mut awaited: Awaited,
    ) {
        if !is_sse(&response) {
            match response.into_body().collect().await {
                Ok(b) => self.deliver(b.to_bytes(), initialize, collect),
                Err(e) => tracing::warn!(error = %e, "reading the MCP server's answer failed"),
            }
            return;
        }
        let mut events = SseParser::default();
        let mut response = response;
        let mut quiet = 0;
        loop {
            let seen = events.delivered;
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Some(data) = f.data_ref() {
                            for m in events.push(data) {
                                awaited.answered(&m);
                                self.deliver(m, initialize, collect.as_deref_mut());
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the MCP server's event stream broke");
                        break;
                    }
                }
            }
            if awaited.is_done() {
                return;
            }
            let Some(last) = events.last_id.clone() else {
                break;
            };
            quiet = if events.delivered == seen {
                quiet + 1
            } else {
                0
            };
            if matches!(awaited, Awaited::Answers(_)) && quiet > MAX_QUIET_RESUMES {
                break;
            }
            // Never faster than MIN_RETRY_MS, and slower while resumptions bring nothing (a
            // server that closes its GET stream at once is not polled in a tight loop).
            let retry = events.retry_ms.unwrap_or(DEFAULT_RETRY_MS);
            let wait = (retry.max(MIN_RETRY_MS) * (1 + u64::from(quiet.min(10)))).min(MAX_RETRY_MS);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let mut req = self.request(Method::GET, Bytes::new());
            let h = req.headers_mut();
            h.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
            if let Ok(v) = HeaderValue::from_str(&last) {
                h.insert("last-event-id", v);
            }
            response = match tokio::time::timeout(self.timeout, self.client.request(req)).await {
                Ok(Ok(r)) if r.status().is_success() && is_sse(&r) => r,
                Ok(Ok(r)) => {
                    tracing::warn!(status = %r.status(), "the MCP server refused to resume its event stream");
                    break;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot resume the MCP server's event stream");
                    break;
                }
                Err(_) => {
                    tracing::warn!("the MCP server did not resume its event stream in time");
                    break;
                }
            };
        }
        if let Awaited::Answers(ids) = &awaited {
            if !ids.is_empty() {
                self.fail(
                    &mut collect,
                    ids,
                    "the MCP server's event stream ended before it answered",
                );
            }
        }
    }

    /// Hand a server message on: to `collect` when the caller waits for it, else to the
    /// receiver.
    fn deliver(&self, message: Bytes, initialize: bool, collect: Option<&mut Vec<Bytes>>) {
        if initialize {
            if let Some(v) = negotiated_version(&message) {
                self.state().protocol_version = HeaderValue::try_from(v).ok();
            }
        }
        match collect {
            Some(c) => c.push(message),
            None => {
                let _ = self.out.send(message);
            }
        }
    }

    /// Answer each of `ids` with an error (and log why once).
    fn fail(&self, collect: &mut Option<&mut Vec<Bytes>>, ids: &[String], why: &str) {
        tracing::error!("{why}");
        for id in ids {
            let error = jsonrpc::error_response(id, codes::INTERNAL_ERROR, why, None).into();
            self.deliver(error, false, collect.as_deref_mut());
        }
    }

    /// Open the GET stream for messages the server starts, once there is a session.
    fn open_general(self: &Arc<Self>) {
        {
            let mut s = self.state();
            if s.general_opened || s.session_id.is_none() {
                return;
            }
            s.general_opened = true;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut req = this.request(Method::GET, Bytes::new());
            req.headers_mut()
                .insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
            match this.client.request(req).await {
                Ok(r) if r.status().is_success() => {
                    this.read_answer(r, false, None, Awaited::Nothing).await
                }
                Ok(r) => {
                    tracing::debug!(status = %r.status(), "the MCP server offers no GET stream")
                }
                Err(e) => tracing::debug!(error = %e, "cannot open the GET stream"),
            }
        });
    }

    /// End the session (DELETE), if there is one.
    pub async fn close(&self) {
        if self.state().session_id.is_none() {
            return;
        }
        let req = self.request(Method::DELETE, Bytes::new());
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.request(req)).await;
    }
}

/// How long to wait before resuming a stream whose server named no `retry`.
const DEFAULT_RETRY_MS: u64 = 1_000;
/// The shortest wait before resuming, whatever `retry` says.
const MIN_RETRY_MS: u64 = 250;
/// The longest `retry` honoured.
const MAX_RETRY_MS: u64 = 30_000;
/// Resumptions in a row that bring nothing before a POST's stream is given up.
const MAX_QUIET_RESUMES: u32 = 20;

/// What a stream is read for.
enum Awaited {
    /// The answers to these requests (ids as JSON text): once all came, the stream is done.
    Answers(Vec<String>),
    /// Nothing in particular (the GET stream): resumed for as long as the server allows.
    Nothing,
}

impl Awaited {
    /// Note a message: an answer to an awaited request is no longer awaited.
    fn answered(&mut self, message: &[u8]) {
        let Awaited::Answers(ids) = self else { return };
        if let Ok(Parsed::Single(env)) = jsonrpc::parse(message) {
            if env.kind() == Kind::Response {
                let id = env.id_text();
                ids.retain(|awaited| awaited != id);
            }
        }
    }

    /// Whether every awaited answer came (a POST's stream with nothing awaited is done when
    /// it ends).
    fn is_done(&self) -> bool {
        match self {
            Awaited::Answers(ids) => ids.is_empty(),
            Awaited::Nothing => false,
        }
    }
}

fn is_json_rpc(body: &[u8]) -> bool {
    matches!(jsonrpc::parse(body), Ok(Parsed::Single(env)) if env.kind() == Kind::Response)
}

/// `result.protocolVersion` of an `initialize` answer.
fn negotiated_version(message: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(message).ok()?;
    v.pointer("/result/protocolVersion")?
        .as_str()
        .map(str::to_string)
}

/// Whether an answer is an event stream.
fn is_sse(response: &Response<Incoming>) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_done_once_every_awaited_request_is_answered() {
        let mut awaited = Awaited::Answers(vec!["4".into()]);
        awaited.answered(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#);
        assert!(!awaited.is_done());
        awaited.answered(br#"{"jsonrpc":"2.0","id":4,"result":{}}"#);
        assert!(awaited.is_done());
    }
}
