//! Reading Server-Sent Events: a byte stream, in whatever chunks it arrives, split into the
//! `data` of its events (what a remote MCP server's event-stream answers carry).

use bytes::{Bytes, BytesMut};

/// Splits an SSE byte stream into the `data` of its events, keeping the last event id and the
/// server's `retry` (for resuming).
#[derive(Default)]
pub struct SseParser {
    buffer: BytesMut,
    /// The last event id seen (`id:`), to resume with `Last-Event-ID`.
    pub last_id: Option<String>,
    /// The server's last `retry:`, in milliseconds.
    pub retry_ms: Option<u64>,
    /// Events with data handed out so far.
    pub delivered: u64,
}

impl SseParser {
    /// Add bytes from the stream; returns the data of every event they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Bytes> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = find_event_end(&self.buffer) {
            let (len, sep) = end;
            let event = self.buffer.split_to(len + sep);
            let mut data = Vec::new();
            for line in event[..len].split(|b| *b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let field = |name: &[u8]| {
                    line.strip_prefix(name).map(|v| {
                        String::from_utf8_lossy(v.strip_prefix(b" ").unwrap_or(v)).into_owned()
                    })
                };
                if let Some(d) = line.strip_prefix(b"data:") {
                    if !data.is_empty() {
                        data.push(b'\n');
                    }
                    data.extend_from_slice(d.strip_prefix(b" ").unwrap_or(d));
                } else if let Some(id) = field(b"id:") {
                    self.last_id = Some(id);
                } else if let Some(retry) = field(b"retry:") {
                    self.retry_ms = retry.trim().parse().ok().or(self.retry_ms);
                }
            }
            if !data.is_empty() {
                self.delivered += 1;
                events.push(data.into());
            }
        }
        events
    }
}

/// Where the first event ends: its length and the separator's.
fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    for i in 0..buf.len() {
        if buf[i..].starts_with(b"\n\n") {
            return Some((i, 2));
        }
        if buf[i..].starts_with(b"\r\n\r\n") {
            return Some((i, 4));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_come_out_whole() {
        let mut p = SseParser::default();
        assert!(p.push(b"event: message\ndata: {\"a\"").is_empty());
        let out = p.push(b":1}\n\n: keepalive\n\nid: 2\r\ndata: {\r\ndata: }\r\n\r\n");
        assert_eq!(
            out,
            vec![
                Bytes::from_static(b"{\"a\":1}"),
                Bytes::from_static(b"{\n}")
            ]
        );
        assert_eq!(p.last_id.as_deref(), Some("2"));
    }

    #[test]
    fn a_priming_event_gives_the_id_and_retry_to_resume_with_and_no_message() {
        let mut p = SseParser::default();
        assert!(p.push(b"id: 17\nretry: 300\ndata: \n\n").is_empty());
        assert_eq!(
            (p.last_id.as_deref(), p.retry_ms, p.delivered),
            (Some("17"), Some(300), 0)
        );
    }
}
