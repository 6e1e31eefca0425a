//! The legacy HTTP+SSE transport (protocol 2024-11-05) for old clients: `GET /sse` opens a
//! session and an event stream whose first event names the endpoint to POST to
//! (`/message?sessionId=…`); every message to the agent — responses included — then arrives on
//! that stream, and each POST is answered 202. The session (and its server process) ends when
//! the stream closes.

use super::routes::Delivered;
use super::streams::sse_response;
use super::{json_response, refuse, Listener};
use crate::jsonrpc::codes;
use crate::transport::http::{event_stream, read_body, sse_event, ResponseBody};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// Where legacy clients open their stream.
pub const SSE_PATH: &str = "/sse";
/// Where legacy clients post their messages.
pub const MESSAGE_PATH: &str = "/message";

/// `sessionId` from a query string.
fn session_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("sessionId="))
        .filter(|id| !id.is_empty())
}

impl Listener {
    pub(super) fn legacy_stream(
        self: &Arc<Self>,
        caller: Option<String>,
    ) -> Response<ResponseBody> {
        let (id, entry) = match self.open_session(&caller) {
            Ok(opened) => opened,
            Err(r) => return r,
        };
        let (tx, body) = event_stream();
        let endpoint = format!("event: endpoint\ndata: {MESSAGE_PATH}?sessionId={id}\n\n");
        let _ = tx.send(Bytes::from(endpoint));
        let (raw_tx, mut raw_rx) = tokio::sync::mpsc::unbounded_channel::<Delivered>();
        entry.server.open_general(raw_tx);
        let listener = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    m = raw_rx.recv() => match m {
                        Some(m) => if tx.send(sse_event(&m.bytes)).is_err() { break },
                        None => break,
                    },
                    _ = tx.closed() => break,
                }
            }
            // The stream is the session: when it ends, so does the server process.
            let gone = listener
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            if let Some(e) = gone {
                e.server.shut_down(Duration::from_secs(2)).await;
                tracing::info!(session = %id, "legacy SSE session closed");
            }
        });
        sse_response(body, None)
    }

    pub(super) async fn legacy_message(
        &self,
        req: Request<Incoming>,
        caller: Option<String>,
    ) -> Response<ResponseBody> {
        let Some(id) = session_param(req.uri().query()).map(str::to_string) else {
            return refuse(
                StatusCode::BAD_REQUEST,
                codes::INVALID_REQUEST,
                "Bad Request: sessionId query parameter required",
            );
        };
        let entry =
            match self.session_of(&id, &caller, "Session not found: open a new stream at /sse") {
                Ok(e) => e,
                Err(r) => return r,
            };
        entry.touch();
        let body = match read_body(
            req.into_body(),
            self.options.max_message_bytes,
            self.options.request_timeout,
        )
        .await
        {
            Ok(b) => b,
            Err(e) => {
                return refuse(
                    e.status(),
                    codes::INVALID_REQUEST,
                    &format!("Invalid Request: {e}"),
                )
            }
        };
        let routed = entry.session.from_client(&body).await;
        for answer in routed.to_client {
            entry.server.deliver(answer.into());
        }
        if let Some(bytes) = routed.to_server {
            if let Err(e) = entry.server.send(&bytes).await {
                return refuse(
                    StatusCode::BAD_GATEWAY,
                    codes::INTERNAL_ERROR,
                    &format!("the MCP server is gone: {e}"),
                );
            }
        }
        json_response(StatusCode::ACCEPTED, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_id_comes_from_the_query() {
        assert_eq!(session_param(Some("sessionId=abc&x=1")), Some("abc"));
        assert_eq!(session_param(Some("x=1&sessionId=def")), Some("def"));
        assert_eq!(session_param(Some("sessionId=")), None);
        assert_eq!(session_param(None), None);
    }
}
