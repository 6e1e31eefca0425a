//! `POST /mcp`: one JSON-RPC message (or a batch) from the agent. Requests are answered on an
//! SSE stream (progress and server requests about them first, then the response) or, for
//! clients that accept only JSON, with the response itself; notifications and responses get
//! 202.

use super::routes::Delivered;
use super::stateless::IdSwap;
use super::streams::{
    answer_json, open_stream, release, set_session, sse_response, stream_answers, Awaiting,
};
use super::{json_response, refuse, Listener};
use crate::jsonrpc::{self, codes, Envelope, Kind, Parsed};
use crate::transport::http::{read_body, BodyError, ResponseBody};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, ACCEPT, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;

use codes::HEADER_MISMATCH;

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
pub(super) fn requests_in(bytes: &[u8]) -> (Vec<String>, Vec<(String, String)>) {
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    let mut note = |env: &Envelope<'_>| {
        if env.kind() == Kind::Request {
            let id = env.id_text().to_string();
            if let Some(t) = jsonrpc::progress_token(env.params) {
                tokens.push((t, id.clone()));
            }
            ids.push(id);
        }
    };
    if let Ok(parsed) = jsonrpc::parse(bytes) {
        parsed.envelopes().for_each(|env| note(&env));
    }
    (ids, tokens)
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
                codes::INVALID_REQUEST,
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
                    codes::INVALID_REQUEST,
                    &format!("Invalid Request: {e} (--max-message-bytes)"),
                )
            }
            Err(e) => return refuse(e.status(), codes::INVALID_REQUEST, &e.to_string()),
        };
        if modern {
            if let super::stateless::Screened::Answer(r) =
                super::stateless::screen_body(&body, &headers)
            {
                return r;
            }
        }
        // Parsed once: the same parse goes to the session (unless ids are swapped below).
        let parsed = match jsonrpc::parse(&body) {
            Err((code, message)) => return refuse(StatusCode::BAD_REQUEST, code, &message),
            Ok(parsed) => parsed,
        };
        let inspected = match &parsed {
            Parsed::Single(env) => {
                let m = inspect(env);
                if let Err(why) = check_headers(&headers, &m, modern) {
                    let answer =
                        jsonrpc::error_response(env.id_text(), HEADER_MISMATCH, &why, None);
                    return json_response(StatusCode::BAD_REQUEST, answer);
                }
                Some(m)
            }
            Parsed::Batch(_) => None,
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
                    codes::INVALID_REQUEST,
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
                codes::INVALID_REQUEST,
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
        let routed = match swap {
            // Other bytes than those parsed above: the session reads them.
            Some(_) => entry.session.from_client(&message).await,
            None => entry.session.route(&message, Ok(parsed)).await,
        };
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
            let (raw_tx, raw_rx) = tokio::sync::mpsc::unbounded_channel::<Delivered>();
            // Progress for the held call (a wait for an operator) goes to its stream too.
            let (_, tokens) = requests_in(&message);
            entry
                .server
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
        // What the session read of the forwarded requests: no third parse of the bytes.
        let ids: Vec<String> = routed.forwarded.iter().map(|f| f.id.clone()).collect();
        let tokens: Vec<(String, String)> = routed
            .forwarded
            .into_iter()
            .filter_map(|f| Some((f.progress_token?, f.id)))
            .collect();
        if ids.is_empty() {
            if let Err(e) = entry.server.send(&to_server).await {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    codes::INTERNAL_ERROR,
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
        let (raw_tx, raw_rx) = tokio::sync::mpsc::unbounded_channel::<Delivered>();
        entry.server.expect(&ids, &tokens, &raw_tx);
        drop(raw_tx);
        // From here on, a handler dropped early (the client hung up) cleans up after itself.
        let mut awaiting = Awaiting {
            entry: entry.clone(),
            ids,
            shared,
        };
        if let Err(e) = entry.server.send(&to_server).await {
            awaiting.shared = false;
            return refuse(
                StatusCode::BAD_GATEWAY,
                codes::INTERNAL_ERROR,
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
                    Some(s) => s.restore(m.bytes.clone()),
                    None => m.bytes.clone(),
                };
                return answer_json(vec![m], session_id.as_deref(), modern);
            }
        }
        let (sink, body) = open_stream(&entry, shared, &answers);
        if let Some(m) = first {
            awaiting.answered(&m);
            let m = match &swap {
                Some(s) => s.restore(m.bytes),
                None => m.bytes,
            };
            sink.send(&m);
        }
        if awaiting.ids.is_empty() {
            // The first message was the only answer awaited: the stream ends with it, and no
            // task has to run (and wake the body) to end it.
            sink.finish(&entry);
        } else {
            tokio::spawn(stream_answers(awaiting, raw_rx, sink, swap));
        }
        sse_response(body, session_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

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
}
