//! `POST /mcp`: one JSON-RPC message (or a batch) from the agent. Requests are answered on an
//! SSE stream (progress and server requests about them first, then the response) or, for
//! clients that accept only JSON, with the response itself; notifications and responses get
//! 202.

use super::upstream::{requested_progress_token, Stream};
use super::{json_response, refuse, sse_response, Entry, Listener};
use crate::jsonrpc::{self, Envelope, Kind, Parsed};
use crate::transport::http::{event_stream, read_body, sse_event, BodyError, ResponseBody};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::Arc;

use crate::jsonrpc::codes::HEADER_MISMATCH;

/// What the listener needs to know about a single message.
struct Inspected {
    method: Option<String>,
    /// `params.name` (tools/call, prompts/get) or `params.uri` (resources/read).
    name: Option<String>,
    /// The revision in `params._meta`, for stateless (2026-07-28) requests.
    revision: Option<String>,
    is_initialize: bool,
}

fn inspect(env: &Envelope<'_>) -> Inspected {
    let facts = jsonrpc::ParamFacts::of(env.params);
    let method = env.method.as_deref();
    Inspected {
        method: method.map(str::to_string),
        name: facts.target(method).map(str::to_string),
        revision: facts.revision().map(str::to_string),
        is_initialize: env.kind() == Kind::Request && method == Some("initialize"),
    }
}

/// A header value, decoding the `=?base64?…?=` form clients use for values that are not plain
/// ASCII.
pub(super) fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    let raw = headers.get(name)?.to_str().ok()?;
    match raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(payload) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(payload)
                .ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(raw.to_string()),
    }
}

/// The 2026-07-28 rule: `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` must match the
/// body (and must be there for stateless requests); policy reads the body, so a header that
/// says something else is refused rather than believed.
/// `stateless`: a 2026-07-28 request (routed by its `MCP-Protocol-Version` header, as the
/// revision's servers route it), which must carry the headers.
fn check_headers(headers: &HeaderMap, m: &Inspected, stateless: bool) -> Result<(), String> {
    if stateless {
        let version = header(headers, "mcp-protocol-version");
        if version != m.revision {
            return Err(
                "MCP-Protocol-Version header does not match the request's _meta protocol version"
                    .into(),
            );
        }
    }
    match header(headers, "mcp-method") {
        Some(h) if Some(&h) != m.method.as_ref() => {
            return Err(format!(
                "Mcp-Method header `{h}` does not match the body's method `{}`",
                m.method.as_deref().unwrap_or("")
            ))
        }
        None if stateless => return Err("Mcp-Method header is required".into()),
        _ => {}
    }
    if let Some(name) = &m.name {
        match header(headers, "mcp-name") {
            Some(h) if &h != name => {
                return Err(format!(
                    "Mcp-Name header `{h}` does not match the body's `{name}`"
                ))
            }
            None if stateless => return Err("Mcp-Name header is required".into()),
            _ => {}
        }
    }
    Ok(())
}

/// The requests (ids as JSON text) in `bytes`, with the progress tokens they asked for.
fn requests_in(bytes: &[u8]) -> (Vec<String>, Vec<(String, String)>) {
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    let mut note = |env: &Envelope<'_>| {
        if env.kind() == Kind::Request {
            let id = env.id_text().to_string();
            if let Some(t) = requested_progress_token(env.params) {
                tokens.push((t, id.clone()));
            }
            ids.push(id);
        }
    };
    match jsonrpc::parse(bytes) {
        Ok(Parsed::Single(env)) => note(&env),
        Ok(Parsed::Batch(items)) => {
            for item in items {
                if let Ok(env) = serde_json::from_str::<Envelope>(item.get()) {
                    note(&env);
                }
            }
        }
        Err(_) => {}
    }
    (ids, tokens)
}

/// Stateless requests share a child, so their ids are replaced by unique ones on the way in
/// and restored on the way out.
struct IdSwap {
    ours: String,
    theirs: Box<RawValue>,
}

impl IdSwap {
    fn apply(message: &[u8], ours: String) -> Option<(Vec<u8>, IdSwap)> {
        let mut v: Value = serde_json::from_slice(message).ok()?;
        let theirs = RawValue::from_string(v.get("id")?.to_string()).ok()?;
        v["id"] = Value::String(ours.clone());
        let bytes = serde_json::to_vec(&v).ok()?;
        Some((
            bytes,
            IdSwap {
                ours: format!("\"{ours}\""),
                theirs,
            },
        ))
    }

    /// Put the client's id back: on the response, and on the notifications of a
    /// `subscriptions/listen` stream, which name it in `params._meta`.
    fn restore(&self, message: Bytes) -> Bytes {
        let theirs = || serde_json::from_str(self.theirs.get()).unwrap_or(Value::Null);
        match jsonrpc::parse(&message) {
            Ok(Parsed::Single(env)) if env.kind() == Kind::Response => {
                if env.id_text() != self.ours {
                    return message;
                }
                let Ok(mut v) = serde_json::from_slice::<Value>(&message) else {
                    return message;
                };
                v["id"] = theirs();
                serde_json::to_vec(&v).map(Bytes::from).unwrap_or(message)
            }
            Ok(Parsed::Single(env))
                if env.kind() == Kind::Notification
                    && super::upstream::subscription_id(env.params).as_deref()
                        == Some(self.ours.as_str()) =>
            {
                let Ok(mut v) = serde_json::from_slice::<Value>(&message) else {
                    return message;
                };
                v["params"]["_meta"][super::upstream::SUBSCRIPTION_ID] = theirs();
                serde_json::to_vec(&v).map(Bytes::from).unwrap_or(message)
            }
            _ => message,
        }
    }
}

impl Listener {
    /// `modern`: a 2026-07-28 request ([`super::stateless`]), whose method and headers were
    /// screened already and whose body runs the revision's ladder here.
    pub(super) async fn post(
        self: Arc<Self>,
        req: Request<Incoming>,
        caller: Option<String>,
        modern: bool,
    ) -> Response<ResponseBody> {
        let (parts, body) = req.into_parts();
        let headers = parts.headers;
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Refused as the SDKs' servers refuse them (the transparency harness compares).
        if !modern && !content_type.starts_with("application/json") {
            let mut r = Response::new(crate::transport::http::full("Invalid Content-Type header"));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return r;
        }
        let accept = headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let sse_ok = accept.contains("text/event-stream");
        if !(sse_ok && accept.contains("application/json")) {
            return refuse(
                StatusCode::NOT_ACCEPTABLE,
                -32600,
                "Not Acceptable: Client must accept both application/json and text/event-stream",
            );
        }
        let body = match read_body(
            body,
            self.options.max_message_bytes,
            self.options.request_timeout,
        )
        .await
        {
            Ok(b) => b,
            Err(e @ BodyError::TooLarge(_)) => {
                return refuse(
                    e.status(),
                    -32600,
                    &format!("Invalid Request: {e} (--max-message-bytes)"),
                )
            }
            Err(e) => return refuse(e.status(), -32600, &e.to_string()),
        };
        if modern {
            if let super::stateless::Screened::Answer(r) =
                super::stateless::screen_body(&body, &headers)
            {
                return r;
            }
        }
        let inspected = match jsonrpc::parse(&body) {
            Err((code, message)) => return refuse(StatusCode::BAD_REQUEST, code, &message),
            Ok(Parsed::Single(env)) => {
                let m = inspect(&env);
                if let Err(why) = check_headers(&headers, &m, modern) {
                    let answer =
                        jsonrpc::error_response(env.id_text(), HEADER_MISMATCH, &why, None);
                    return json_response(StatusCode::BAD_REQUEST, answer);
                }
                Some(m)
            }
            Ok(Parsed::Batch(_)) => None,
        };
        let is_initialize = inspected.as_ref().is_some_and(|m| m.is_initialize);
        let stateless = modern;
        let (session_id, entry, shared) = match self.lookup(&headers, &caller) {
            Err(r) => return r,
            Ok(Some((id, e))) => (Some(id), e, false),
            Ok(None) if is_initialize => match self.open_session(&caller) {
                Ok((id, e)) => (Some(id), e, false),
                Err(r) => return r,
            },
            Ok(None) if stateless => match self.stateless_entry(&caller).await {
                Ok(e) => (None, e, true),
                Err(r) => return r,
            },
            Ok(None) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    -32600,
                    "Bad Request: Missing session ID",
                )
            }
        };
        // Batches left JSON-RPC over MCP in 2025-06-18: a server of a later revision refuses them
        // (and one over stdio may not answer at all).
        let batch_refused = entry
            .session
            .protocol_version()
            .is_some_and(|v| v.as_str() >= "2025-06-18");
        if inspected.is_none() && batch_refused {
            let mut r = refuse(
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: batches are not part of MCP since 2025-06-18; send one message per request",
            );
            set_session(&mut r, session_id.as_deref());
            return r;
        }
        let mut swap = None;
        let mut message = body.to_vec();
        if shared {
            let n = self
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some((bytes, s)) = IdSwap::apply(&message, format!("tollgate-{n}")) {
                message = bytes;
                swap = Some(s);
            }
        }
        let routed = entry.session.from_client(&message).await;
        if routed.release {
            return release(&entry, routed, session_id.as_deref()).await;
        }
        let restore = |m: Bytes| match &swap {
            Some(s) => s.restore(m),
            None => m,
        };
        let answers: Vec<Bytes> = routed
            .to_client
            .into_iter()
            .map(|a| restore(a.into()))
            .collect();
        if let Some(held) = routed.held {
            // The call waits for the client's answer to the question in `answers`: the stream
            // stays open for the call's own answer, which comes once the client has answered.
            let (raw_tx, raw_rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
            // Progress for the held call (a wait for an operator) goes to its stream too.
            let (_, tokens) = requests_in(&message);
            entry
                .upstream
                .expect(std::slice::from_ref(&held), &tokens, &raw_tx);
            drop(raw_tx);
            let awaiting = Awaiting {
                entry: entry.clone(),
                ids: vec![held],
                shared,
            };
            let (sink, body) = open_stream(&entry, shared, &answers);
            tokio::spawn(stream_answers(awaiting, raw_rx, sink, swap));
            return sse_response(body, session_id.as_deref());
        }
        let Some(to_server) = routed.to_server else {
            return answer_json(answers, session_id.as_deref(), modern);
        };
        let (ids, tokens) = requests_in(&to_server);
        if ids.is_empty() {
            if let Err(e) = entry.upstream.send(&to_server).await {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    -32603,
                    &format!("the MCP server is gone: {e}"),
                );
            }
            if answers.is_empty() {
                let mut r = json_response(StatusCode::ACCEPTED, "");
                set_session(&mut r, session_id.as_deref());
                return r;
            }
            return answer_json(answers, session_id.as_deref(), modern);
        }
        let (raw_tx, raw_rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        entry.upstream.expect(&ids, &tokens, &raw_tx);
        drop(raw_tx);
        // From here on, a handler dropped early (the client hung up) cleans up after itself.
        let mut awaiting = Awaiting {
            entry: entry.clone(),
            ids,
            shared,
        };
        if let Err(e) = entry.upstream.send(&to_server).await {
            awaiting.shared = false;
            return refuse(
                StatusCode::BAD_GATEWAY,
                -32603,
                &format!("the MCP server is gone: {e}"),
            );
        }
        // The headers wait for the server's first message. On the stateless revision, when that
        // is already the one awaited response, the answer is plain JSON with its mapped status,
        // as the revision's servers answer; session revisions' servers answer on a stream
        // (Tollgate did the same, so clients cannot tell; the harness compares).
        let mut raw_rx = raw_rx;
        let first = raw_rx.recv().await;
        if let Some(m) = &first {
            if modern && answers.is_empty() && awaiting.ids.len() == 1 && awaiting.answered(m) {
                let m = match &swap {
                    Some(s) => s.restore(m.clone()),
                    None => m.clone(),
                };
                return answer_json(vec![m], session_id.as_deref(), modern);
            }
        }
        let (sink, body) = open_stream(&entry, shared, &answers);
        if let Some(m) = first {
            awaiting.answered(&m);
            let m = match &swap {
                Some(s) => s.restore(m),
                None => m,
            };
            sink.send(&m);
        }
        tokio::spawn(stream_answers(awaiting, raw_rx, sink, swap));
        sse_response(body, session_id.as_deref())
    }
}

/// Requests sent upstream whose answers a handler still waits for. Dropped before every one is
/// answered (the client closed its stream, or hung up and hyper dropped the handler): their
/// routes are removed, and stateless requests are cancelled upstream (in the 2026-07-28
/// revision closing the stream is how a client cancels; in session revisions a disconnect is
/// not a cancellation, and the answer is dropped).
struct Awaiting {
    entry: Arc<Entry>,
    ids: Vec<String>,
    shared: bool,
}

impl Awaiting {
    /// Whether `m` answers one of the requests (which then no longer waits).
    fn answered(&mut self, m: &[u8]) -> bool {
        answers_one(m, &mut self.ids)
    }
}

impl Drop for Awaiting {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        self.entry.upstream.forget(&self.ids);
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
                    let _ = entry.upstream.send(cancel.as_bytes()).await;
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
async fn release(
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
            crate::proxy::Release::ToClient(bytes) => entry.upstream.deliver(bytes.into()),
        }
    }
}

/// Send a released call to the server, or its answer to the stream that holds it.
async fn release_held(entry: &Arc<Entry>, routed: crate::proxy::Routed) {
    for answer in routed.to_client {
        entry.upstream.deliver(answer.into());
    }
    if let Some(call) = routed.to_server {
        if let Err(e) = entry.upstream.send(&call).await {
            for id in requests_in(&call).0 {
                let gone = format!("the MCP server is gone: {e}");
                entry
                    .upstream
                    .deliver(jsonrpc::error_response(&id, -32603, &gone, None).into());
            }
        }
    }
}

/// Answer with JSON: one message, or several as an array.
/// `modern`: a 2026-07-28 answer, whose status follows its error code.
fn answer_json(
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

/// Whether `m` is the response to one of `ids`; removes it from `ids`.
fn answers_one(m: &[u8], ids: &mut Vec<String>) -> bool {
    match jsonrpc::parse(m) {
        Ok(Parsed::Single(env)) if env.kind() == Kind::Response => {
            let before = ids.len();
            ids.retain(|id| id != env.id_text());
            ids.len() < before
        }
        _ => false,
    }
}

/// A POST's SSE stream, `first` sent on it at once. A session's stream can be resumed; a
/// stateless request's (`shared`) ends, and cancels it, when the client closes it.
fn open_stream(entry: &Entry, shared: bool, first: &[Bytes]) -> (Sink, ResponseBody) {
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
enum Sink {
    /// Straight to the client (stateless requests: a closed stream cancels them).
    Plain(Stream),
    /// Through the session's replay buffer, with event ids (see `resume.rs`).
    Resumable(Arc<std::sync::Mutex<super::resume::Resumable>>),
}

impl Sink {
    fn send(&self, m: &[u8]) {
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
async fn stream_answers(
    mut awaiting: Awaiting,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
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
                        if tx.send(sse_event(&restore(m))).is_err() {
                            break;
                        }
                    }
                    _ = tx.closed() => break,
                }
            }
        }
        Sink::Resumable(stream) => {
            while !awaiting.ids.is_empty() {
                let Some(m) = rx.recv().await else { break };
                awaiting.answered(&m);
                let m = restore(m);
                stream.lock().unwrap_or_else(|p| p.into_inner()).send(&m);
            }
            awaiting.entry.replay.finish(&stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn inspected(body: &str) -> Inspected {
        match jsonrpc::parse(body.as_bytes()).unwrap() {
            Parsed::Single(env) => inspect(&env),
            Parsed::Batch(_) => panic!("batch"),
        }
    }

    const MODERN: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send_message","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;

    #[test]
    fn stateless_requests_need_headers_that_match_the_body() {
        let m = inspected(MODERN);
        let good = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "send_message"),
        ];
        assert_eq!(check_headers(&headers(&good), &m, true), Ok(()));
        let lying = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "list_messages"),
        ];
        assert!(check_headers(&headers(&lying), &m, true)
            .unwrap_err()
            .contains("Mcp-Name header `list_messages`"));
        let missing = [("mcp-protocol-version", "2026-07-28")];
        assert!(check_headers(&headers(&missing), &m, true)
            .unwrap_err()
            .contains("Mcp-Method header is required"));
        // Base64-wrapped values decode before comparing.
        let wrapped = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?c2VuZF9tZXNzYWdl?="),
        ];
        assert_eq!(check_headers(&headers(&wrapped), &m, true), Ok(()));
    }

    #[test]
    fn session_requests_may_omit_the_headers_but_not_contradict_the_body() {
        let m =
            inspected(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a"}}"#);
        assert_eq!(check_headers(&headers(&[]), &m, false), Ok(()));
        assert!(check_headers(&headers(&[("mcp-method", "tools/list")]), &m, false).is_err());
    }

    #[test]
    fn swapped_ids_come_back_as_the_clients_own() {
        let (bytes, swap) = IdSwap::apply(MODERN.as_bytes(), "tollgate-7".into()).unwrap();
        assert!(String::from_utf8_lossy(&bytes).contains(r#""id":"tollgate-7""#));
        let answer = Bytes::from_static(br#"{"jsonrpc":"2.0","id":"tollgate-7","result":{}}"#);
        let restored = swap.restore(answer);
        let v: Value = serde_json::from_slice(&restored).unwrap();
        assert_eq!(v["id"], 1);
        let other = Bytes::from_static(br#"{"jsonrpc":"2.0","id":"tollgate-8","result":{}}"#);
        assert_eq!(swap.restore(other.clone()), other);
    }
}
