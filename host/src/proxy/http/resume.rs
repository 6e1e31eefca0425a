//! Resumable POST streams (the 2025-06-18 and 2025-11-25 revisions): every SSE event Tollgate
//! sends on a session's POST stream carries an id (`p<stream>-<n>`). When the client's connection
//! drops before the request is answered, the stream goes on collecting what the server says; a
//! `GET` with `Last-Event-ID` replays the events after that id and continues the stream. In the
//! stateless 2026-07-28 revision a closed stream is a cancellation instead (see `post.rs`).

use super::streams::Stream;
use crate::transport::http::sse_event_with_id;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Events kept per stream for replay; older ones are dropped.
const MAX_EVENTS: usize = 512;
/// Finished streams kept per session, so a client that lost the last events can still get them.
const MAX_FINISHED: usize = 16;

/// One resumable POST stream.
pub struct Resumable {
    key: String,
    events: VecDeque<(u64, Bytes)>,
    next: u64,
    live: Option<Stream>,
}

impl Resumable {
    /// Send `message` to the connected client (if any) as the stream's next event, and keep it
    /// for replay. False when no client is connected.
    pub fn send(&mut self, message: &[u8]) -> bool {
        let n = self.next;
        self.next += 1;
        let event = sse_event_with_id(&format!("{}-{n}", self.key), message);
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back((n, event.clone()));
        match &self.live {
            Some(live) if live.send(event).is_ok() => true,
            _ => {
                self.live = None;
                false
            }
        }
    }

    /// Whether a client is connected to the stream.
    pub fn is_live(&self) -> bool {
        self.live.as_ref().is_some_and(|l| !l.is_closed())
    }
}

/// Why a `Last-Event-ID` cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// Not an id Tollgate issued in this session (or its stream is long gone).
    #[error("Not Found: no stream of this session has the event id `{0}`")]
    Unknown(String),
    /// Another connection is already reading that stream.
    #[error("Conflict: another connection is reading the stream of event `{0}`")]
    Busy(String),
}

/// A session's resumable streams.
#[derive(Default)]
pub struct Replay {
    streams: Mutex<HashMap<String, Arc<Mutex<Resumable>>>>,
    finished: Mutex<VecDeque<String>>,
    next: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Replay {
    /// A new stream whose events go to `live`.
    pub fn open(&self, live: Stream) -> Arc<Mutex<Resumable>> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = format!("p{n}");
        let stream = Arc::new(Mutex::new(Resumable {
            key: key.clone(),
            events: VecDeque::new(),
            next: 0,
            live: Some(live),
        }));
        lock(&self.streams).insert(key, stream.clone());
        stream
    }

    /// The stream has said everything: its client's response ends, and it stays replayable
    /// among the last [`MAX_FINISHED`] finished streams.
    pub fn finish(&self, stream: &Arc<Mutex<Resumable>>) {
        let key = {
            let mut s = lock(stream);
            s.live = None;
            s.key.clone()
        };
        let mut finished = lock(&self.finished);
        finished.push_back(key);
        while finished.len() > MAX_FINISHED {
            if let Some(old) = finished.pop_front() {
                lock(&self.streams).remove(&old);
            }
        }
    }

    /// Replay the events after `last_event_id` to `live` and, when the stream is still going,
    /// make `live` its client.
    pub fn resume(&self, last_event_id: &str, live: Stream) -> Result<(), ResumeError> {
        let unknown = || ResumeError::Unknown(last_event_id.to_string());
        let (key, n) = last_event_id.trim().rsplit_once('-').ok_or_else(unknown)?;
        let n: u64 = n.parse().map_err(|_| unknown())?;
        let stream = lock(&self.streams).get(key).cloned().ok_or_else(unknown)?;
        let finished = lock(&self.finished).iter().any(|k| k == key);
        let mut s = lock(&stream);
        if n >= s.next {
            return Err(unknown());
        }
        if s.is_live() {
            return Err(ResumeError::Busy(last_event_id.to_string()));
        }
        for (_, event) in s.events.iter().filter(|(i, _)| *i > n) {
            let _ = live.send(event.clone());
        }
        if !finished {
            s.live = Some(live);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &Bytes) -> String {
        String::from_utf8_lossy(b).to_string()
    }

    #[test]
    fn a_dropped_stream_is_replayed_after_the_last_event_and_continues() {
        let replay = Replay::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let stream = replay.open(tx);
        assert!(lock(&stream).send(b"{\"a\":1}"));
        assert!(text(&rx.try_recv().unwrap()).starts_with("id: p0-0\n"));
        drop(rx);
        assert!(!lock(&stream).send(b"{\"a\":2}"), "nobody is listening");
        assert!(!lock(&stream).send(b"{\"a\":3}"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        replay.resume("p0-0", tx).unwrap();
        assert!(text(&rx.try_recv().unwrap()).contains("{\"a\":2}"));
        assert!(text(&rx.try_recv().unwrap()).contains("{\"a\":3}"));
        assert!(
            lock(&stream).send(b"{\"a\":4}"),
            "the resumed client is live"
        );
        assert!(text(&rx.try_recv().unwrap()).starts_with("id: p0-3\n"));
        let (tx2, _rx2) = tokio::sync::mpsc::unbounded_channel();
        assert!(matches!(
            replay.resume("p0-1", tx2),
            Err(ResumeError::Busy(_))
        ));
        replay.finish(&stream);
        assert!(rx.try_recv().is_err(), "finishing ends the response");
        let (tx3, mut rx3) = tokio::sync::mpsc::unbounded_channel();
        replay.resume("p0-2", tx3).unwrap();
        assert!(text(&rx3.try_recv().unwrap()).contains("{\"a\":4}"));
        let (tx4, _) = tokio::sync::mpsc::unbounded_channel();
        assert!(matches!(
            replay.resume("p9-0", tx4),
            Err(ResumeError::Unknown(_))
        ));
    }
}
