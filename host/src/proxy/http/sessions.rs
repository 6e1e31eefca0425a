//! The session table: one entry per agent session (its policy session, its server link, its
//! owner and its streams for resumption), looked up by `Mcp-Session-Id` and checked against the
//! caller; the children shared by stateless requests; `DELETE`; and reaping idle sessions.

use super::routes::ServerRoutes;
use super::streams::set_session;
use super::{json_response, refuse, resume, Listener};
use crate::jsonrpc::codes;
use crate::proxy::Session;
use crate::transport::http::ResponseBody;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One agent session: its policy session and its child.
pub(super) struct Entry {
    pub(super) session: Arc<Session>,
    pub(super) server: Arc<ServerRoutes>,
    /// The authenticated caller that created it; other tokens may not use it.
    pub(super) owner: Option<String>,
    pub(super) last_used: Mutex<Instant>,
    /// Its POST streams, for `Last-Event-ID` resumption.
    pub(super) replay: resume::Replay,
}

pub(super) async fn reap_idle(listener: std::sync::Weak<Listener>) {
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let Some(l) = listener.upgrade() else { return };
        let timeout = l.options.idle_timeout;
        let idle: Vec<(String, Arc<Entry>)> = {
            let mut sessions = l.sessions.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<String> = sessions
                .iter()
                .filter(|(_, e)| e.idle_for() > timeout)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| sessions.remove(&id).map(|e| (id, e)))
                .collect()
        };
        for (id, e) in idle {
            tracing::info!(session = %id, "closing a session idle for over {timeout:?}");
            e.server.shut_down(Duration::from_secs(2)).await;
        }
    }
}

impl Entry {
    pub(super) fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub(super) fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

/// A fresh session id: 128 random bits from the OS, in hex.
pub(super) fn new_session_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    if let Err(e) = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
        // Never fall back to something guessable.
        panic!("cannot read /dev/urandom for a session id: {e}");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Listener {
    /// The session a request names, checking it belongs to the same caller.
    pub(super) fn lookup(
        &self,
        req_headers: &hyper::HeaderMap,
        caller: &Option<String>,
    ) -> Result<Option<(String, Arc<Entry>)>, Response<ResponseBody>> {
        let Some(id) = req_headers.get("mcp-session-id") else {
            return Ok(None);
        };
        let id = id.to_str().unwrap_or("").to_string();
        // As the SDKs' servers answer it: the client starts a new session on a 404.
        let entry = self.session_of(&id, caller, "Session not found")?;
        entry.touch();
        Ok(Some((id, entry)))
    }

    /// Session `id` if `caller` may use it; else the 404 (saying `not_found`) or 403 answer.
    pub(super) fn session_of(
        &self,
        id: &str,
        caller: &Option<String>,
        not_found: &str,
    ) -> Result<Arc<Entry>, Response<ResponseBody>> {
        let entry = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        match entry {
            None => Err(refuse(
                StatusCode::NOT_FOUND,
                codes::INVALID_REQUEST,
                not_found,
            )),
            Some(e) if e.owner.is_some() && e.owner != *caller => Err(refuse(
                StatusCode::FORBIDDEN,
                codes::INVALID_REQUEST,
                "Forbidden: this session belongs to another caller",
            )),
            Some(e) => Ok(e),
        }
    }

    /// A new session with its own child.
    pub(super) fn open_session(
        &self,
        caller: &Option<String>,
    ) -> Result<(String, Arc<Entry>), Response<ResponseBody>> {
        let entry = self.new_entry(caller)?;
        let id = new_session_id();
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), entry.clone());
        tracing::info!(session = %id, caller = caller.as_deref().unwrap_or("-"), "session started");
        Ok((id, entry))
    }

    pub(super) fn new_entry(
        &self,
        caller: &Option<String>,
    ) -> Result<Arc<Entry>, Response<ResponseBody>> {
        let session =
            Arc::new(Session::shared(self.chain.clone()).with_recorder(self.recorder.clone()));
        // A session's POST streams (and the legacy SSE stream) carry Tollgate's questions.
        session.carry_questions();
        if let Some(c) = caller {
            session.set_authenticated_caller(c);
        }
        let server = ServerRoutes::start(
            &self.options.server,
            self.options.max_message_bytes,
            session.clone(),
        )
        .map_err(|e| {
            tracing::error!("{e}");
            refuse(
                StatusCode::BAD_GATEWAY,
                codes::INTERNAL_ERROR,
                &e.to_string(),
            )
        })?;
        let releases = session.take_releases();
        let entry = Arc::new(Entry {
            session,
            server,
            owner: caller.clone(),
            last_used: Mutex::new(Instant::now()),
            replay: resume::Replay::default(),
        });
        tokio::spawn(super::streams::serve_releases(
            Arc::downgrade(&entry),
            releases,
        ));
        Ok(entry)
    }

    /// The child shared by this caller's stateless requests.
    pub(super) async fn stateless_entry(
        &self,
        caller: &Option<String>,
    ) -> Result<Arc<Entry>, Response<ResponseBody>> {
        let mut shared = self.stateless.lock().await;
        if let Some(e) = shared.get(caller) {
            e.touch();
            return Ok(e.clone());
        }
        let e = self.new_entry(caller)?;
        shared.insert(caller.clone(), e.clone());
        Ok(e)
    }

    pub(super) async fn delete(
        &self,
        req: &Request<Incoming>,
        caller: Option<String>,
    ) -> Response<ResponseBody> {
        match self.lookup(req.headers(), &caller) {
            Ok(Some((id, entry))) => {
                self.sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                entry.server.close_general();
                entry.server.shut_down(Duration::from_secs(2)).await;
                tracing::info!(session = %id, "session deleted by the client");
                let mut r = json_response(StatusCode::OK, "");
                set_session(&mut r, Some(&id));
                r
            }
            Ok(None) => refuse(
                StatusCode::BAD_REQUEST,
                codes::INVALID_REQUEST,
                "Bad Request: DELETE needs an Mcp-Session-Id",
            ),
            Err(r) => r,
        }
    }

    pub(super) async fn take_all(&self) -> Vec<Arc<Entry>> {
        let mut all: Vec<Arc<Entry>> = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, e)| e)
            .collect();
        all.extend(self.stateless.lock().await.drain().map(|(_, e)| e));
        all
    }
}
