//! The 2026-07-28 (stateless) revision's entry: what a request whose `MCP-Protocol-Version`
//! names no handshake revision is checked for before policy and the server see it, and the HTTP
//! status of its JSON answers.
//!
//! Tollgate answers these as the revision's reference server does (the Python SDK 2.x, the one
//! implementation of the revision here), so a client cannot tell them apart
//! (`tests/peers/clients/differential.py` compares the two): routing by the header, `405` with
//! `Allow: POST` for other methods, `406` without both media types in `Accept`, a `202` without
//! a body for notifications (dropped: the revision has no client-to-server notifications over
//! HTTP; a client cancels by closing the stream), and the rungs of the envelope ladder with the
//! same codes, ids, messages and `data`. Every JSON answer, the server's or Tollgate's, gets the
//! status [`status_of`] its error code maps to.

use super::{full, json_response};
use crate::jsonrpc::{self, codes, Kind, Parsed};
use crate::transport::http::ResponseBody;
use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

/// The revision served statelessly.
pub const REVISION: &str = "2026-07-28";

/// Revisions that open a session with `initialize`: any other `MCP-Protocol-Version` value
/// routes a request to this entry, which names it unsupported if it is not [`REVISION`].
pub const HANDSHAKE_REVISIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// Whether a request belongs to this entry: its `MCP-Protocol-Version` names no handshake
/// revision.
pub fn routes_here(headers: &HeaderMap) -> bool {
    headers
        .get("mcp-protocol-version")
        .is_some_and(|v| !HANDSHAKE_REVISIONS.contains(&v.to_str().unwrap_or("")))
}

/// The HTTP status of a JSON answer with this error code (200 for results and other codes).
pub fn status_of_code(code: i64) -> StatusCode {
    match code {
        codes::PARSE_ERROR
        | codes::INVALID_REQUEST
        | codes::INVALID_PARAMS
        | codes::HEADER_MISMATCH
        | codes::MISSING_REQUIRED_CLIENT_CAPABILITY
        | codes::UNSUPPORTED_PROTOCOL_VERSION => StatusCode::BAD_REQUEST,
        codes::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// The HTTP status of one JSON answer (see [`status_of_code`]).
pub fn status_of(answer: &[u8]) -> StatusCode {
    #[derive(serde::Deserialize)]
    struct Error {
        code: i64,
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        error: Option<Error>,
    }
    match serde_json::from_slice::<Answer>(answer) {
        Ok(Answer { error: Some(e) }) => status_of_code(e.code),
        _ => StatusCode::OK,
    }
}

/// An answer with no body.
fn bare(status: StatusCode) -> Response<ResponseBody> {
    let mut r = Response::new(full(""));
    *r.status_mut() = status;
    r
}

/// A JSON-RPC error with its mapped status.
fn rejection(id: &Value, code: i64, message: &str, data: Option<Value>) -> Response<ResponseBody> {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    let body = json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string();
    json_response(status_of_code(code), body)
}

/// What a POST's method and headers are refused for before its body is read.
pub fn screen_head(method: &hyper::Method, headers: &HeaderMap) -> Option<Response<ResponseBody>> {
    if method != hyper::Method::POST {
        let mut r = bare(StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return Some(r);
    }
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
        return Some(bare(StatusCode::NOT_ACCEPTABLE));
    }
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !json {
        let mut r = Response::new(full("Invalid Content-Type header"));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return Some(r);
    }
    None
}

/// The outcome of the envelope ladder for one body.
pub enum Screened {
    /// A request that passed every rung: forward it.
    Request,
    /// Answer this instead.
    Answer(Response<ResponseBody>),
}

/// Run the ladder over a body: one JSON object, a notification acknowledged and dropped, a
/// request's `_meta` envelope, its routing headers, and its revision.
pub fn screen_body(body: &[u8], headers: &HeaderMap) -> Screened {
    let null = Value::Null;
    let Ok(decoded) = serde_json::from_slice::<Value>(body) else {
        return Screened::Answer(rejection(&null, codes::PARSE_ERROR, "Parse error", None));
    };
    let invalid = || {
        Screened::Answer(rejection(
            &null,
            codes::INVALID_REQUEST,
            "Body must be a single JSON-RPC request or notification object",
            None,
        ))
    };
    let Some(object) = decoded.as_object() else {
        return invalid();
    };
    let version_header = header(headers, "mcp-protocol-version");
    let Some(id) = object.get("id") else {
        if object.get("method").and_then(Value::as_str).is_none() {
            return invalid();
        }
        return Screened::Answer(match unsupported(&null, version_header.as_deref()) {
            Some(r) => r,
            None => bare(StatusCode::ACCEPTED),
        });
    };
    let method = match object.get("method") {
        Some(Value::String(m)) if id.is_string() || id.is_number() => m.as_str(),
        _ => return invalid(),
    };
    let meta = object
        .get("params")
        .and_then(|p| p.get("_meta"))
        .and_then(Value::as_object);
    let Some(meta) = meta else {
        let message = format!(
            "params._meta must be an object carrying the required '{PROTOCOL_VERSION}' and '{CLIENT_CAPABILITIES}' envelope keys"
        );
        return Screened::Answer(rejection(id, codes::INVALID_PARAMS, &message, None));
    };
    if let Some(r) = ladder(id, method, object, meta, headers) {
        return Screened::Answer(r);
    }
    Screened::Request
}

/// The rungs after `_meta` is known to be an object.
fn ladder(
    id: &Value,
    method: &str,
    object: &Map<String, Value>,
    meta: &Map<String, Value>,
    headers: &HeaderMap,
) -> Option<Response<ResponseBody>> {
    let missing: Vec<&str> = [PROTOCOL_VERSION, CLIENT_CAPABILITIES]
        .into_iter()
        .filter(|k| !meta.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        let message = format!(
            "params._meta is missing the required envelope key(s): {}",
            missing.join(", ")
        );
        return Some(rejection(id, codes::INVALID_PARAMS, &message, None));
    }
    let version = &meta[PROTOCOL_VERSION];
    let mismatch = |m: &str| Some(rejection(id, codes::HEADER_MISMATCH, m, None));
    if header(headers, "mcp-protocol-version").as_deref() != version.as_str() {
        return mismatch(
            "mcp-protocol-version header does not match the request envelope's protocol version",
        );
    }
    if header(headers, "mcp-method").as_deref() != Some(method) {
        return mismatch("mcp-method header does not match the request body's method");
    }
    let name_key = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(key) = name_key {
        let body_value = object.get("params").and_then(|p| p.get(key));
        if let Some(v) = body_value.filter(|v| !v.is_null()) {
            if header(headers, "mcp-name").map(Value::String).as_ref() != Some(v) {
                return mismatch(&format!(
                    "mcp-name header does not match the request body's '{key}' parameter"
                ));
            }
        }
    }
    let Some(version) = version.as_str() else {
        return Some(rejection(
            id,
            codes::INVALID_PARAMS,
            &format!("params._meta '{PROTOCOL_VERSION}' must be a string"),
            None,
        ));
    };
    if let Some(r) = unsupported(id, Some(version)) {
        return Some(r);
    }
    // The handshake is gone in this revision: `initialize` is a method like any unknown one.
    if method == "initialize" {
        return Some(rejection(
            id,
            codes::METHOD_NOT_FOUND,
            "Method not found",
            Some(json!(method)),
        ));
    }
    None
}

/// The unsupported-version rejection, unless `requested` is [`REVISION`].
fn unsupported(id: &Value, requested: Option<&str>) -> Option<Response<ResponseBody>> {
    let requested = requested.unwrap_or("");
    (requested != REVISION).then(|| {
        rejection(
            id,
            codes::UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
            Some(json!({"supported": [REVISION], "requested": requested})),
        )
    })
}

/// A header's value, decoding the `=?base64?…?=` form.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    super::post::header(headers, name)
}

/// Stateless requests share a child, so their ids are replaced by unique ones on the way in
/// and restored on the way out.
pub(super) struct IdSwap {
    ours: String,
    theirs: Box<RawValue>,
}

impl IdSwap {
    pub(super) fn apply(message: &[u8], ours: String) -> Option<(Vec<u8>, IdSwap)> {
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
    pub(super) fn restore(&self, message: Bytes) -> Bytes {
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
                    && jsonrpc::subscription_id(env.params).as_deref()
                        == Some(self.ours.as_str()) =>
            {
                let Ok(mut v) = serde_json::from_slice::<Value>(&message) else {
                    return message;
                };
                v["params"]["_meta"][jsonrpc::SUBSCRIPTION_ID] = theirs();
                serde_json::to_vec(&v).map(Bytes::from).unwrap_or(message)
            }
            _ => message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_the_revisions_statuses() {
        assert_eq!(
            status_of(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}"#),
            404
        );
        assert_eq!(
            status_of(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x"}}"#),
            400
        );
        assert_eq!(
            status_of(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"x"}}"#),
            200
        );
        assert_eq!(status_of(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#), 200);
    }

    #[test]
    fn swapped_ids_come_back_as_the_clients_own() {
        let (bytes, swap) = IdSwap::apply(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send_message","arguments":{}}}"#, "tollgate-7".into()).unwrap();
        assert!(String::from_utf8_lossy(&bytes).contains(r#""id":"tollgate-7""#));
        let answer = Bytes::from_static(br#"{"jsonrpc":"2.0","id":"tollgate-7","result":{}}"#);
        let restored = swap.restore(answer);
        let v: Value = serde_json::from_slice(&restored).unwrap();
        assert_eq!(v["id"], 1);
        let other = Bytes::from_static(br#"{"jsonrpc":"2.0","id":"tollgate-8","result":{}}"#);
        assert_eq!(swap.restore(other.clone()), other);
    }
}
