//! Streams to the agent: the answers to a POST (on an SSE stream, or one JSON body), held calls
//! released when an operator decides, the standalone `GET` stream of server messages, and what
//! happens when a client closes a stream before its answers came.

use super::post::requests_in;
use super::resume;
use super::routes::Delivered;
use super::sessions::Entry;
use super::stateless::IdSwap;
use super::{json_response, refuse, Listener};
use crate::jsonrpc::{self, codes};
use crate::transport::http::{event_stream, sse_event, ResponseBody};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;

impl Listener {
    pub(super) fn get(
        &self,
        req: &Request<Incoming>,
        caller: Option<String>,
    ) -> Response<ResponseBody> {
        let accepts_sse = req
            .headers()
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/event-stream"));
        if !accepts_sse {
            return refuse(
                StatusCode::NOT_ACCEPTABLE,
                codes::INVALID_REQUEST,
                "Not Acceptable: Client must accept text/event-stream",
            );
        }
        let (id, entry) = match self.lookup(req.headers(), &caller) {
            Ok(Some(found)) => found,
            Ok(None) => {
                return refuse(
                    StatusCode::METHOD_NOT_ALLOWED,
                    codes::INVALID_REQUEST,
                    "Method Not Allowed: a GET stream needs an Mcp-Session-Id",
                )
            }
            Err(r) => return r,
        };
        let (tx, body) = event_stream();
        if let Some(last) = req.headers().get("last-event-id") {
            let last = last.to_str().unwrap_or_default();
            return match entry.replay.resume(last, tx) {
                Ok(()) => sse_response(body, Some(&id)),
                Err(e @ resume::ResumeError::Unknown(_)) => refuse(
                    StatusCode::NOT_FOUND,
                    codes::INVALID_REQUEST,
                    &e.to_string(),
                ),
                Err(e) => refuse(StatusCode::CONFLICT, codes::INVALID_REQUEST, &e.to_string()),
            };
        }
        let (raw_tx, mut raw_rx) = tokio::sync::mpsc::unbounded_channel::<Delivered>();
        if !entry.server.open_general(raw_tx) {
            return refuse(
                StatusCode::CONFLICT,
                codes::INVALID_REQUEST,
                "Conflict: this session already has a GET stream",
            );
        }
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    m = raw_rx.recv() => match m {
                        Some(m) => if tx.send(crate::transport::http::sse_event(&m.bytes)).is_err() { break },
                        None => break,
                    },
                    _ = tx.closed() => break,
                }
            }
        });
        sse_response(body, Some(&id))
    }
}

/// Messages (raw JSON-RPC, unframed) for one HTTP response stream: each becomes an SSE event.
pub type Stream = tokio::sync::mpsc::UnboundedSender<Bytes>;

/// An SSE response, with the session id when one was just created.
pub(super) fn sse_response(body: ResponseBody, session_id: Option<&str>) -> Response<ResponseBody> {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    if let Some(id) = session_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        h.insert("mcp-session-id", id);
    }
    r
}

/// Requests sent upstream whose answers a handler still waits for. Dropped before every one is
/// answered (the client closed its stream, or hung up and hyper dropped the handler): their
/// routes are removed, and stateless requests are cancelled upstream (in the 2026-07-28
/// revision closing the stream is how a client cancels; in session revisions a disconnect is
/// not a cancellation, and the answer is dropped).
pub(super) struct Awaiting {
    pub(super) entry: Arc<Entry>,
    pub(super) ids: Vec<String>,
    pub(super) shared: bool,
}

impl Awaiting {
    /// Whether `m` answers one of the requests (which then no longer waits).
    pub(super) fn answered(&mut self, m: &Delivered) -> bool {
        let Some(id) = &m.answers else { return false };
        let before = self.ids.len();
        self.ids.retain(|awaited| awaited != id);
        self.ids.len() < before
    }
}

impl Drop for Awaiting {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        self.entry.server.forget(&self.ids);
        if !self.shared {
            return;
        }
        let ids = std::mem::take(&mut self.ids);
        let entry = self.entry.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for id in ids {
                    let cancel = format!(
                        r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{id},"reason":"the client closed its stream"}}}}"#
                    );
                    let _ = entry.server.send(cancel.as_bytes()).await;
                }
            });
        }
    }
}

pub(super) fn set_session(r: &mut Response<ResponseBody>, id: Option<&str>) {
    if let Some(v) = id.and_then(|id| HeaderValue::from_str(id).ok()) {
        r.headers_mut().insert("mcp-session-id", v);
    }
}

/// The client answered a question that held a call: the call goes to the server, or its
/// refusal to the stream that holds it (its route was set when it was held); this POST, a
/// response, is accepted.
pub(super) async fn release(
    entry: &Arc<Entry>,
    routed: crate::proxy::Routed,
    session: Option<&str>,
) -> Response<ResponseBody> {
    release_held(entry, routed).await;
    let mut r = json_response(StatusCode::ACCEPTED, "");
    set_session(&mut r, session);
    r
}

/// Pass the releases of the session's held calls (waits for an operator that are over, and
/// progress while they last) to the streams that hold those calls, until the session ends.
pub(super) async fn serve_releases(
    entry: std::sync::Weak<Entry>,
    mut releases: tokio::sync::mpsc::UnboundedReceiver<crate::proxy::Release>,
) {
    while let Some(release) = releases.recv().await {
        let Some(entry) = entry.upgrade() else {
            return;
        };
        match release {
            crate::proxy::Release::Again(bytes) => {
                let routed = entry.session.from_client(&bytes).await;
                release_held(&entry, routed).await;
            }
            crate::proxy::Release::ToClient(bytes) => entry.server.deliver(bytes.into()),
        }
    }
}

/// Send a released call to the server, or its answer to the stream that holds it.
pub(super) async fn release_held(entry: &Arc<Entry>, routed: crate::proxy::Routed) {
    for answer in routed.to_client {
        entry.server.deliver(answer.into());
    }
    if let Some(call) = routed.to_server {
        if let Err(e) = entry.server.send(&call).await {
            for id in requests_in(&call).0 {
                let gone = format!("the MCP server is gone: {e}");
                entry.server.deliver(
                    jsonrpc::error_response(&id, codes::INTERNAL_ERROR, &gone, None).into(),
                );
            }
        }
    }
}

/// Answer with JSON: one message, or several as an array.
/// `modern`: a 2026-07-28 answer, whose status follows its error code.
pub(super) fn answer_json(
    mut answers: Vec<Bytes>,
    session: Option<&str>,
    modern: bool,
) -> Response<ResponseBody> {
    let status = match &answers[..] {
        [one] if modern => super::stateless::status_of(one),
        _ => StatusCode::OK,
    };
    let body: Bytes = match answers.len() {
        1 => answers.remove(0),
        _ => {
            let parts: Vec<&[u8]> = answers.iter().map(|a| &a[..]).collect();
            let mut joined = b"[".to_vec();
            joined.extend_from_slice(&parts.join(&b","[..]));
            joined.push(b']');
            joined.into()
        }
    };
    let mut r = json_response(status, body);
    set_session(&mut r, session);
    r
}

/// A POST's SSE stream, `first` sent on it at once. A session's stream can be resumed; a
/// stateless request's (`shared`) ends, and cancels it, when the client closes it.
pub(super) fn open_stream(entry: &Entry, shared: bool, first: &[Bytes]) -> (Sink, ResponseBody) {
    let (tx, body) = event_stream();
    let sink = if shared {
        Sink::Plain(tx)
    } else {
        Sink::Resumable(entry.replay.open(tx))
    };
    for m in first {
        sink.send(m);
    }
    (sink, body)
}

/// Where a POST's SSE events go.
pub(super) enum Sink {
    /// Straight to the client (stateless requests: a closed stream cancels them).
    Plain(Stream),
    /// Through the session's replay buffer, with event ids (see `resume.rs`).
    Resumable(Arc<std::sync::Mutex<super::resume::Resumable>>),
}

impl Sink {
    /// Everything was said: the client's response ends (a session's stream stays replayable).
    pub(super) fn finish(self, entry: &Entry) {
        match self {
            Sink::Plain(tx) => drop(tx),
            Sink::Resumable(stream) => entry.replay.finish(&stream),
        }
    }

    pub(super) fn send(&self, m: &[u8]) {
        match self {
            Sink::Plain(tx) => {
                let _ = tx.send(sse_event(m));
            }
            Sink::Resumable(r) => {
                r.lock().unwrap_or_else(|p| p.into_inner()).send(m);
            }
        }
    }
}

/// Forward what the server says about these requests as SSE events until every one is
/// answered. A stateless client that closes its stream first cancels them ([`Awaiting`]); a
/// session's stream goes on collecting for a client that resumes it with `Last-Event-ID`.
pub(super) async fn stream_answers(
    mut awaiting: Awaiting,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Delivered>,
    sink: Sink,
    swap: Option<IdSwap>,
) {
    let restore = |m: Bytes| match &swap {
        Some(s) => s.restore(m),
        None => m,
    };
    match sink {
        Sink::Plain(tx) => {
            while !awaiting.ids.is_empty() {
                tokio::select! {
                    m = rx.recv() => {
                        let Some(m) = m else { break };
                        awaiting.answered(&m);
                        if tx.send(sse_event(&restore(m.bytes))).is_err() {
                            break;
                        }
                    }
                    _ = tx.closed() => break,
                }
            }
        }
        Sink::Resumable(ref stream) => {
            while !awaiting.ids.is_empty() {
                let Some(m) = rx.recv().await else { break };
                awaiting.answered(&m);
                let m = restore(m.bytes);
                stream.lock().unwrap_or_else(|p| p.into_inner()).send(&m);
            }
            sink.finish(&awaiting.entry);
        }
    }
}
