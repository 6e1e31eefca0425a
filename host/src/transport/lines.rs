//! Newline-delimited message framing with a size limit: a line longer than the limit is
//! skipped to its end without ever being held in memory whole.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// The least a server's line may hold: server messages may be much larger than what agents send
/// (file contents, images).
pub const SERVER_LINE_LIMIT: usize = 64 << 20;

/// One framed message.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its newline (and without a trailing `\r`).
    Message(Vec<u8>),
    /// A line longer than the limit, skipped; its length in bytes.
    TooLong(usize),
}

/// Reads lines of at most `max` bytes.
pub struct LineReader<R> {
    inner: R,
    max: usize,
    /// The line read so far (kept across a cancelled `next`).
    buf: Vec<u8>,
    /// Its length so far, counting what an overlong line dropped.
    total: usize,
    /// Whether it is over `max`.
    overflow: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// Frame `inner`, refusing lines over `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            buf: Vec::new(),
            total: 0,
            overflow: false,
        }
    }

    /// The next line; `None` at end of stream. Blank lines are skipped. A last line without a
    /// newline is still returned. Cancel-safe: a line partly read when the future is dropped is
    /// completed by the next call (nothing read is lost), so `next` can race other events.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            loop {
                let available = self.inner.fill_buf().await?;
                if available.is_empty() {
                    if self.total == 0 {
                        return Ok(None);
                    }
                    break;
                }
                let (chunk, found) = match memchr(available) {
                    Some(i) => (&available[..i], Some(i)),
                    None => (available, None),
                };
                self.total += chunk.len();
                if !self.overflow && self.total <= self.max {
                    self.buf.extend_from_slice(chunk);
                } else {
                    self.overflow = true;
                    self.buf.clear();
                }
                let used = found.map(|i| i + 1).unwrap_or(chunk.len());
                self.inner.consume(used);
                if found.is_some() {
                    break;
                }
            }
            let (total, overflow) = (
                std::mem::take(&mut self.total),
                std::mem::take(&mut self.overflow),
            );
            if overflow {
                self.buf.clear();
                return Ok(Some(Line::TooLong(total)));
            }
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                self.buf.clear();
                continue;
            }
            return Ok(Some(Line::Message(std::mem::take(&mut self.buf))));
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut r = LineReader::new(tokio::io::BufReader::with_capacity(4, input), max);
        let mut out = vec![];
        while let Some(l) = r.next().await.unwrap() {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn frames_lines_across_buffer_boundaries() {
        let got = lines(b"{\"a\":1}\r\n\n  \n{\"b\":22}\nlast", 100).await;
        assert_eq!(
            got,
            vec![
                Line::Message(b"{\"a\":1}".to_vec()),
                Line::Message(b"{\"b\":22}".to_vec()),
                Line::Message(b"last".to_vec())
            ]
        );
    }

    #[tokio::test]
    async fn overlong_lines_are_skipped_and_reported() {
        let got = lines(b"0123456789\nok\n", 5).await;
        assert_eq!(got, vec![Line::TooLong(10), Line::Message(b"ok".to_vec())]);
    }

    #[tokio::test]
    async fn a_line_half_read_when_next_is_cancelled_is_completed_by_the_next_call() {
        use tokio::io::AsyncWriteExt;
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut r = LineReader::new(tokio::io::BufReader::new(rx), 100);
        tx.write_all(b"{\"half\":").await.unwrap();
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(20), r.next()).await;
        assert!(cancelled.is_err(), "no whole line yet");
        tx.write_all(b"1}\n").await.unwrap();
        assert_eq!(
            r.next().await.unwrap(),
            Some(Line::Message(b"{\"half\":1}".to_vec()))
        );
    }
}
