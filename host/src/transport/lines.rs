//! Newline-delimited message framing with a size limit: a line longer than the limit is
//! skipped to its end without ever being held in memory whole.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

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
    buf: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// Frame `inner`, refusing lines over `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            buf: Vec::new(),
        }
    }

    /// The next line; `None` at end of stream. Blank lines are skipped. A last line without a
    /// newline is still returned.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            self.buf.clear();
            let mut total = 0usize;
            let mut overflow = false;
            loop {
                let available = self.inner.fill_buf().await?;
                if available.is_empty() {
                    if total == 0 {
                        return Ok(None);
                    }
                    break;
                }
                let (chunk, found) = match memchr(available) {
                    Some(i) => (&available[..i], Some(i)),
                    None => (available, None),
                };
                total += chunk.len();
                if !overflow && total <= self.max {
                    self.buf.extend_from_slice(chunk);
                } else {
                    overflow = true;
                    self.buf.clear();
                }
                let used = found.map(|i| i + 1).unwrap_or(chunk.len());
                self.inner.consume(used);
                if found.is_some() {
                    break;
                }
            }
            if overflow {
                return Ok(Some(Line::TooLong(total)));
            }
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
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
}
