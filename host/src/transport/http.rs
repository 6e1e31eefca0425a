//! HTTP plumbing for the Streamable HTTP listener: response bodies (a whole JSON message or a
//! Server-Sent Events stream fed from a channel), SSE framing, size-limited request bodies and
//! accepted sockets with `TCP_NODELAY`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// The body of every response the listener sends.
pub type ResponseBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).boxed()
}

/// An SSE stream: each message sent on the returned sender becomes one `message` event; the
/// stream ends when every sender is dropped.
pub fn event_stream() -> (mpsc::UnboundedSender<Bytes>, ResponseBody) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, ChannelBody { rx }.boxed())
}

/// One JSON-RPC message as an SSE event.
pub fn sse_event(message: &[u8]) -> Bytes {
    event(None, message)
}

/// One JSON-RPC message as an SSE event with an `id:` (what a client sends back as
/// `Last-Event-ID` to resume).
pub fn sse_event_with_id(id: &str, message: &[u8]) -> Bytes {
    event(Some(id), message)
}

fn event(id: Option<&str>, message: &[u8]) -> Bytes {
    let mut event = Vec::with_capacity(message.len() + 24 + id.map_or(0, |i| i.len() + 5));
    if let Some(id) = id {
        event.extend_from_slice(b"id: ");
        event.extend_from_slice(id.as_bytes());
        event.push(b'\n');
    }
    event.extend_from_slice(b"event: message\ndata: ");
    // A JSON text has no raw newlines outside strings (and none inside them), but a server may
    // pretty-print: every line must be its own `data:` field.
    for (i, line) in message.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            event.extend_from_slice(b"\ndata: ");
        }
        event.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
    }
    event.extend_from_slice(b"\n\n");
    event.into()
}

/// A body whose chunks arrive on a channel.
struct ChannelBody {
    rx: mpsc::UnboundedReceiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Reading a request body failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Larger than allowed.
    #[error("request body over the limit of {0} bytes")]
    TooLarge(usize),
    /// The connection failed while reading.
    #[error("cannot read the request body: {0}")]
    Read(String),
    /// The client did not send the whole body in time.
    #[error("the request body did not arrive within {0:?}")]
    TimedOut(std::time::Duration),
}

impl BodyError {
    /// The HTTP status that answers it.
    pub fn status(&self) -> hyper::StatusCode {
        match self {
            BodyError::TooLarge(_) => hyper::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Read(_) => hyper::StatusCode::BAD_REQUEST,
            BodyError::TimedOut(_) => hyper::StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// Read a whole request body, refusing more than `max` bytes or a body that takes longer than
/// `timeout` to arrive.
pub async fn read_body(
    body: Incoming,
    max: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Err(_) => Err(BodyError::TimedOut(timeout)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(max)),
        Ok(Err(e)) => Err(BodyError::Read(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_each_line_in_its_own_data_field() {
        assert_eq!(
            &sse_event(br#"{"a":1}"#)[..],
            b"event: message\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            &sse_event(b"{\r\n\"a\": 1\n}")[..],
            b"event: message\ndata: {\ndata: \"a\": 1\ndata: }\n\n"
        );
    }
}
