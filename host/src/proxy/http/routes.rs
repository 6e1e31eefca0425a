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
use crate::jsonrpc::{self, codes, Envelope, Kind, Parsed};
use crate::transport::server::{self, ServerAddress, ServerLink, StartError};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Messages (raw JSON-RPC, unframed) for one HTTP response stream.
pub type Stream = UnboundedSender<Bytes>;

/// Server-initiated messages kept while no stream can take them.
const BACKLOG: usize = 1024;

#[derive(Default)]
struct Routes {
    /// Request id (JSON text) -> the POST stream waiting for its response.
    requests: HashMap<String, Stream>,
    /// Progress token (JSON text) -> request id.
    tokens: HashMap<String, String>,
    /// The session's GET stream.
    general: Option<Stream>,
    backlog: VecDeque<Bytes>,
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
                this.from_server(&message).await;
            }
            if let Some(this) = pump.upgrade() {
                this.session.server_lost().await;
                this.fail_all();
            }
        });
        Ok(this)
    }

    /// A message from the server: through the session, then to its stream.
    async fn from_server(&self, message: &[u8]) {
        if let Some(out) = self.session.from_server(message).await {
            self.route(out.into());
        }
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send the responses to `ids` (and progress for `tokens`) to `stream`.
    pub fn expect(&self, ids: &[String], tokens: &[(String, String)], stream: &Stream) {
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
    pub fn open_general(&self, stream: Stream) -> bool {
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
            self.from_server(&answer).await;
        }
        Ok(())
    }

    /// Deliver a message of Tollgate's own (a denial) as if the server had sent it.
    pub fn deliver(&self, message: Bytes) {
        self.route(message);
    }

    fn route(&self, message: Bytes) {
        let mut r = self.routes();
        let target = match jsonrpc::parse(&message) {
            Ok(Parsed::Single(env)) => match env.kind() {
                Kind::Response => {
                    let id = env.id_text().to_string();
                    r.tokens.retain(|_, waiting| *waiting != id);
                    // Nobody waits on a POST stream (legacy HTTP+SSE): the session's stream.
                    let waiting = r.requests.remove(&id);
                    waiting.or_else(|| r.general.clone().filter(|g| !g.is_closed()))
                }
                _ => progress_target(&r, &env)
                    .or_else(|| subscription_target(&r, &env))
                    .or_else(|| unrelated_target(&r)),
            },
            _ => unrelated_target(&r),
        };
        match target {
            Some(stream) if stream.send(message.clone()).is_ok() => {}
            _ if r.backlog.len() < BACKLOG => r.backlog.push_back(message),
            _ => tracing::warn!("dropped a server message: no client stream to deliver it to"),
        }
    }

    /// The server is gone: every request still waiting gets an error.
    fn fail_all(&self) {
        let mut r = self.routes();
        for (id, stream) in r.requests.drain() {
            let _ = stream.send(
                jsonrpc::error_response(
                    &id,
                    codes::INTERNAL_ERROR,
                    "the MCP server exited before answering",
                    None,
                )
                .into(),
            );
        }
        r.general = None;
    }

    /// Stop the server (see [`ServerLink::shut_down`]).
    pub async fn shut_down(&self, grace: Duration) {
        self.link.shut_down(grace).await;
    }
}

fn progress_target(r: &Routes, env: &Envelope<'_>) -> Option<Stream> {
    if env.method.as_deref() != Some("notifications/progress") {
        return None;
    }
    let token = progress_token(env.params)?;
    let id = r.tokens.get(&token)?;
    r.requests.get(id).cloned()
}

/// The stream of the `subscriptions/listen` request a notification says it belongs to.
fn subscription_target(r: &Routes, env: &Envelope<'_>) -> Option<Stream> {
    let id = subscription_id(env.params)?;
    r.requests.get(&id).cloned()
}

/// Where a 2026-07-28 listen-stream notification names its `subscriptions/listen` request.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// A notification's `params._meta["io.modelcontextprotocol/subscriptionId"]` as JSON text.
pub fn subscription_id(params: Option<&serde_json::value::RawValue>) -> Option<String> {
    let params = params?.get();
    if !params.contains(SUBSCRIPTION_ID) {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(params).ok()?;
    v.get("_meta")?
        .get(SUBSCRIPTION_ID)
        .map(|id| id.to_string())
}

fn unrelated_target(r: &Routes) -> Option<Stream> {
    let mut open = r.requests.values().filter(|s| !s.is_closed());
    let first = open.next().cloned();
    let only_one = open.next().is_none();
    match (&first, &r.general) {
        (Some(s), _) if only_one => Some(s.clone()),
        (_, Some(g)) if !g.is_closed() => Some(g.clone()),
        _ => first,
    }
}

/// `params.progressToken` (a notification) as JSON text.
pub fn progress_token(params: Option<&serde_json::value::RawValue>) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct P<'a> {
        #[serde(rename = "progressToken", borrow)]
        token: Option<&'a serde_json::value::RawValue>,
    }
    let p: P = serde_json::from_str(params?.get()).ok()?;
    p.token.map(|t| t.get().to_string())
}
