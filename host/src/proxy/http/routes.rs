//! One agent session's MCP server behind the HTTP listener (its [`ServerLink`]: a child process,
//! or a session on a remote server) and where its messages go.
//!
//! A response goes to the POST stream of the request it answers; a progress notification to the
//! stream of the request that asked for progress with that token; anything else the server
//! starts (sampling, elicitation, roots, logging, list_changed) goes to the only open POST
//! stream when exactly one request is in flight (it is almost surely about that request, and
//! the SDK clients accept it there), else to the session's GET stream, else to any open POST
//! stream, else it waits (bounded) for a GET stream to open.

use super::super::Session;
use crate::jsonrpc::{self, codes, Recipient};
use crate::transport::server::{self, ServerAddress, ServerLink, StartError};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// A server message routed to one of the session's streams, with what the stream needs to know
/// of it (read where the session parsed it).
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The message as it goes to the agent.
    pub bytes: Bytes,
    /// For a response: the id of the request it answers (JSON text).
    pub answers: Option<String>,
}

/// Where a session's routes deliver: a POST's stream, or the session's GET stream.
pub type Inbox = UnboundedSender<Delivered>;

/// Server-initiated messages kept while no stream can take them.
const BACKLOG: usize = 1024;

#[derive(Default)]
struct Routes {
    /// Request id (JSON text) -> the POST stream waiting for its response.
    requests: HashMap<String, Inbox>,
    /// Progress token (JSON text) -> request id.
    tokens: HashMap<String, String>,
    /// The session's GET stream.
    general: Option<Inbox>,
    backlog: VecDeque<Delivered>,
}

/// One session's server: the link to it, and where its messages go.
pub struct ServerRoutes {
    link: Arc<ServerLink>,
    /// The session the server's messages pass through on their way to the agent.
    session: Arc<Session>,
    routes: Mutex<Routes>,
}

impl ServerRoutes {
    /// Start the session's server; its messages pass through `session` and are routed until it
    /// is gone (then every request still waiting gets an error).
    pub fn start(
        address: &ServerAddress,
        agent_limit: usize,
        session: Arc<Session>,
    ) -> Result<Arc<Self>, StartError> {
        let (link, mut messages) = server::start(address, agent_limit)?;
        let this = Arc::new(Self {
            link,
            session,
            routes: Mutex::new(Routes::default()),
        });
        // Weak: the task must not keep the session's server alive (a remote link's messages
        // end only when the link is dropped).
        let pump = Arc::downgrade(&this);
        tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                let Some(this) = pump.upgrade() else { return };
                this.relay(&message).await;
            }
            if let Some(this) = pump.upgrade() {
                this.session.server_lost().await;
                this.fail_all();
            }
        });
        Ok(this)
    }

    /// A message from the server: through the session, then to its stream.
    async fn relay(&self, message: &[u8]) {
        if let Some((out, recipient)) = self.session.from_server_for(message).await {
            self.route(out.into(), recipient);
        }
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send the responses to `ids` (and progress for `tokens`) to `stream`.
    pub fn expect(&self, ids: &[String], tokens: &[(String, String)], stream: &Inbox) {
        let mut r = self.routes();
        for id in ids {
            r.requests.insert(id.clone(), stream.clone());
        }
        for (token, id) in tokens {
            r.tokens.insert(token.clone(), id.clone());
        }
    }

    /// Stop expecting `ids` (the client went away).
    pub fn forget(&self, ids: &[String]) {
        let mut r = self.routes();
        for id in ids {
            r.requests.remove(id);
        }
        r.tokens.retain(|_, id| !ids.contains(id));
    }

    /// Make `stream` the session's GET stream, delivering what waited for one. False when one
    /// is already open.
    pub fn open_general(&self, stream: Inbox) -> bool {
        let mut r = self.routes();
        if r.general.as_ref().is_some_and(|g| !g.is_closed()) {
            return false;
        }
        while let Some(m) = r.backlog.pop_front() {
            let _ = stream.send(m);
        }
        r.general = Some(stream);
        true
    }

    /// Close the GET stream, if any.
    pub fn close_general(&self) {
        self.routes().general = None;
    }

    /// Send one message to the server. A remote server's JSON answer is routed before this
    /// returns, on this task, so the waiting handler finds it without a wake-up.
    pub async fn send(&self, message: &[u8]) -> std::io::Result<()> {
        for answer in self.link.exchange(message).await? {
            self.relay(&answer).await;
        }
        Ok(())
    }

    /// Deliver a message of Tollgate's own (a denial) as if the server had sent it.
    pub fn deliver(&self, message: Bytes) {
        let recipient = Recipient::read(&message);
        self.route(message, recipient);
    }

    fn route(&self, bytes: Bytes, recipient: Recipient) {
        let mut r = self.routes();
        let target = match &recipient.answers {
            Some(id) => {
                r.tokens.retain(|_, waiting| waiting != id);
                // Nobody waits on a POST stream (legacy HTTP+SSE): the session's stream.
                let waiting = r.requests.remove(id);
                waiting.or_else(|| r.general.clone().filter(|g| !g.is_closed()))
            }
            None => progress_target(&r, &recipient)
                .or_else(|| subscription_target(&r, &recipient))
                .or_else(|| unrelated_target(&r)),
        };
        let message = Delivered {
            bytes,
            answers: recipient.answers,
        };
        let unsent = match target {
            Some(stream) => stream.send(message).err().map(|e| e.0),
            None => Some(message),
        };
        match unsent {
            None => {}
            Some(m) if r.backlog.len() < BACKLOG => r.backlog.push_back(m),
            Some(_) => {
                tracing::warn!("dropped a server message: no client stream to deliver it to")
            }
        }
    }

    /// The server is gone: every request still waiting gets an error.
    fn fail_all(&self) {
        let mut r = self.routes();
        for (id, stream) in r.requests.drain() {
            let bytes = jsonrpc::error_response(
                &id,
                codes::INTERNAL_ERROR,
                "the MCP server exited before answering",
                None,
            );
            let _ = stream.send(Delivered {
                bytes: bytes.into(),
                answers: Some(id),
            });
        }
        r.general = None;
    }

    /// Stop the server (see [`ServerLink::shut_down`]).
    pub async fn shut_down(&self, grace: Duration) {
        self.link.shut_down(grace).await;
    }
}

fn progress_target(r: &Routes, recipient: &Recipient) -> Option<Inbox> {
    let id = r.tokens.get(recipient.progress.as_ref()?)?;
    r.requests.get(id).cloned()
}

/// The stream of the `subscriptions/listen` request a notification says it belongs to.
fn subscription_target(r: &Routes, recipient: &Recipient) -> Option<Inbox> {
    r.requests.get(recipient.subscription.as_ref()?).cloned()
}

fn unrelated_target(r: &Routes) -> Option<Inbox> {
    let mut open = r.requests.values().filter(|s| !s.is_closed());
    let first = open.next().cloned();
    let only_one = open.next().is_none();
    match (&first, &r.general) {
        (Some(s), _) if only_one => Some(s.clone()),
        (_, Some(g)) if !g.is_closed() => Some(g.clone()),
        _ => first,
    }
}
