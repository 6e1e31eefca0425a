//! One agent session, independent of transport: every message from the agent goes through
//! [`Session::from_client`], every message from the server through [`Session::from_server`].
//! Only `tools/call` requests (decided by the chain), `tools/list` responses (hidden tools
//! removed) and responses to allowed calls (counters settled) are looked at; everything else is
//! forwarded as the original bytes.

use crate::audit::{AuditRecord, Recorder};
use crate::chain::{Chain, ChainCell, Denial, Ticket};
use crate::config::DenyAs;
use crate::engine::CallInput;
use crate::jsonrpc::{
    self, codes, Envelope, Kind, Parsed, CLIENT_INFO_META, PROTOCOL_VERSION_META,
};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

mod answers;
mod call;
mod in_band;
mod pinning;
mod waiting;

pub use waiting::Release;

/// Where a message from the agent goes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Routed {
    /// Bytes to send to the server (the original line unless a rule rewrote it).
    pub to_server: Option<Vec<u8>>,
    /// Answers Tollgate gives the agent itself (denials, errors), or a question it asks.
    pub to_client: Vec<Vec<u8>>,
    /// The `tools/call` (its id, as JSON text) held until the client answers the question in
    /// `to_client`: its own answer comes later, as if from the server.
    pub held: Option<String>,
    /// The message answered a question: `to_server` is the held call, released, and
    /// `to_client` its answer — both belong to the held call's exchange, not this message's.
    pub release: bool,
    /// The requests in `to_server`, as the session read them: what a transport routes the
    /// server's answers and progress by, without parsing the bytes again.
    pub forwarded: Vec<Forwarded>,
}

/// A request forwarded to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// Its id, as JSON text.
    pub id: String,
    /// The `_meta.progressToken` it asked for, as JSON text.
    pub progress_token: Option<String>,
}

impl Forwarded {
    /// `env`, when it is a request.
    fn of(env: &Envelope<'_>) -> Option<Forwarded> {
        (env.kind() == Kind::Request).then(|| Forwarded {
            id: env.id_text().to_string(),
            progress_token: jsonrpc::progress_token(env.params),
        })
    }
}

enum Pending {
    /// An allowed call: its counters are settled when the server answers.
    Call(PendingCall),
    /// A `tools/list` whose response is filtered.
    List,
}

/// An allowed call waiting for the server's answer.
struct PendingCall {
    ticket: Ticket,
    sent: Instant,
    /// The call as forwarded, when rules look at its result; and whether its request speaks
    /// the stateless revision (a denial then carries `resultType`).
    review: Option<(CallInput, bool)>,
}

/// State of one agent session.
pub struct Session {
    chain: Arc<ChainCell>,
    caller: Mutex<String>,
    /// Set when a transport authenticated the caller: the client's own name no longer replaces it.
    authenticated: std::sync::atomic::AtomicBool,
    pending: Mutex<HashMap<String, Pending>>,
    /// Where decisions are written (audit log, decision log).
    recorder: Recorder,
    /// What the client said of itself in `initialize` (sessions of the stateless revision say
    /// it in each request's `_meta` instead).
    client: Mutex<ClientFacts>,
    /// The tools the server listed in this session and how each compares with its pin (kept
    /// only when the policy pins the server; emptied when the server says its list changed).
    listed: Mutex<HashMap<String, crate::pins::Status>>,
    /// Approval questions put to the client in this session, awaiting its answer (and calls
    /// held while an operator decides).
    questions: in_band::Questions,
    /// Where held calls' waiters hand their releases, once a transport takes them.
    releases: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Release>>>,
}

/// What a client says of itself, handed to plugins as `call.metadata`.
#[derive(Debug, Default, Clone)]
struct ClientFacts {
    /// `clientInfo.name`.
    name: Option<String>,
    /// The protocol revision it asked for.
    protocol_version: Option<String>,
    /// Whether it declared the `elicitation` capability (it can ask its user).
    elicitation: bool,
}

/// The first revision whose results must say `resultType` (and that has no `initialize`).
const STATELESS_REVISION: &str = "2026-07-28";

/// Whether a request's `_meta` says it speaks the stateless revision or later (revisions are
/// dates, so they compare as strings).
fn is_stateless(meta: Option<&serde_json::Map<String, Value>>) -> bool {
    meta.and_then(|m| m.get(PROTOCOL_VERSION_META))
        .and_then(Value::as_str)
        .is_some_and(|v| v >= STATELESS_REVISION)
}

/// The answer a denial gives the agent: `prefix` then the reason. `stateless`: the request
/// speaks 2026-07-28 or later, whose results must carry `resultType`.
pub fn denial_response(id: &str, d: &Denial, prefix: &str, stateless: bool) -> Vec<u8> {
    let text = format!("{prefix}{}", d.reason);
    let mut data = json!({ "code": d.code, "rule": d.rule });
    if let Some(ms) = d.retry_after_ms {
        data["retryAfterMs"] = json!(ms);
    }
    if let Some(id) = &d.approval {
        data["approvalId"] = json!(id);
    }
    match d.deny_as {
        DenyAs::Error => jsonrpc::error_response(
            id,
            crate::jsonrpc::codes::of_denial(&d.code),
            &text,
            Some(&data),
        ),
        DenyAs::Result => {
            let mut result = json!({
                "content": [{ "type": "text", "text": text }],
                "isError": true,
                "_meta": { "dev.tollgate/denial": data },
            });
            if stateless {
                result["resultType"] = json!("complete");
            }
            jsonrpc::result_response(id, &result)
        }
    }
}

impl Session {
    /// A new session deciding with `chain`; the caller is `anonymous` until the client says who
    /// it is (`initialize`'s `clientInfo.name`) or a transport authenticates it.
    pub fn new(chain: Arc<Chain>) -> Self {
        Self::shared(Arc::new(ChainCell::new(chain)))
    }

    /// A new session deciding with whatever policy `cell` holds at each call (hot reload).
    pub fn shared(cell: Arc<ChainCell>) -> Self {
        Self {
            chain: cell,
            caller: Mutex::new("anonymous".into()),
            authenticated: std::sync::atomic::AtomicBool::new(false),
            pending: Mutex::new(HashMap::new()),
            recorder: Recorder::default(),
            client: Mutex::default(),
            listed: Mutex::default(),
            questions: in_band::Questions::default(),
            releases: Mutex::default(),
        }
    }

    /// Take the releases of calls held while an operator decides (the rules' `wait`): the
    /// transport passes each [`Release::Again`] through [`Session::from_client`] and sends each
    /// [`Release::ToClient`] to the agent. Until a transport takes them, no call waits.
    pub fn take_releases(&self) -> tokio::sync::mpsc::UnboundedReceiver<Release> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.releases.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// Say that the transport carries Tollgate's own requests to the client and its answers
    /// back (stdio): clients of earlier revisions that can elicit are then asked in band.
    pub fn carry_questions(&self) {
        self.questions.carry();
    }

    /// Record every decision with `recorder`.
    pub fn with_recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = recorder;
        self
    }

    /// The protocol revision the client asked for in `initialize`, once it has.
    pub fn protocol_version(&self) -> Option<String> {
        self.client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .protocol_version
            .clone()
    }

    /// Set the caller identity (an authenticated principal).
    pub fn set_caller(&self, caller: &str) {
        *self.caller.lock().unwrap_or_else(|p| p.into_inner()) = caller.to_string();
    }

    /// Set the caller to a principal the transport authenticated (a bearer token's identity);
    /// `initialize`'s `clientInfo.name` no longer changes it.
    pub fn set_authenticated_caller(&self, caller: &str) {
        self.set_caller(caller);
        self.authenticated
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The caller identity plugins see.
    pub fn caller(&self) -> String {
        self.caller
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What plugins get as `call.metadata`: `protocol-version` and `client-name` (from the
    /// request's `_meta` in the stateless revision, else from `initialize`), then every string
    /// entry of the request's `_meta` as sent.
    fn metadata(&self, meta: Option<&serde_json::Map<String, Value>>) -> Vec<(String, String)> {
        let session = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let from_meta = |key: &str, pointer: &str| {
            meta.and_then(|m| m.get(key))
                .and_then(|v| v.pointer(pointer))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let version = from_meta(PROTOCOL_VERSION_META, "").or(session.protocol_version);
        let name = from_meta(CLIENT_INFO_META, "/name").or(session.name);
        let mut metadata = Vec::new();
        metadata.extend(version.map(|v| ("protocol-version".to_string(), v)));
        metadata.extend(name.map(|n| ("client-name".to_string(), n)));
        metadata.extend(
            meta.into_iter()
                .flatten()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))),
        );
        metadata
    }

    /// The policy in force now.
    fn chain(&self) -> Arc<Chain> {
        self.chain.get()
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Route one message (line) from the agent.
    pub async fn from_client(&self, line: &[u8]) -> Routed {
        self.route(line, jsonrpc::parse(line)).await
    }

    /// Route one message from the agent that its transport has parsed already (`parsed` is
    /// [`jsonrpc::parse`] of `line`): the message is not read twice.
    pub async fn route(&self, line: &[u8], parsed: Result<Parsed<'_>, (i64, String)>) -> Routed {
        match parsed {
            Err((code, message)) => Routed {
                to_client: vec![jsonrpc::error_response("null", code, &message, None)],
                ..Routed::default()
            },
            Ok(Parsed::Single(env)) if self.cancels_a_held_call(&env) => Routed::default(),
            Ok(Parsed::Single(env)) => {
                let release = env.kind() == Kind::Response && self.questions.is_open(env.id_text());
                let outcome = self.client_message(&env, line).await;
                let held = (outcome.is_err()
                    && env.kind() == Kind::Request
                    && self.questions.holds(env.id_text()))
                .then(|| env.id_text().to_string());
                let (to_server, to_client) = match outcome {
                    Ok(None) => (Some(line.to_vec()), vec![]),
                    Ok(Some(rewritten)) => (Some(rewritten), vec![]),
                    Err(answer) if answer.is_empty() => (None, vec![]),
                    Err(answer) => (None, vec![answer]),
                };
                let forwarded = match &to_server {
                    Some(_) if !release => Forwarded::of(&env).into_iter().collect(),
                    _ => Vec::new(),
                };
                Routed {
                    to_server,
                    to_client,
                    held,
                    release,
                    forwarded,
                }
            }
            Ok(Parsed::Batch(items)) => self.client_batch(items).await,
        }
    }

    /// One message: `Ok(None)` forward as is, `Ok(Some)` forward these bytes, `Err` answer the
    /// agent instead.
    async fn client_message(
        &self,
        env: &Envelope<'_>,
        line: &[u8],
    ) -> Result<Option<Vec<u8>>, Vec<u8>> {
        match (env.kind(), env.method.as_deref()) {
            (Kind::Request, Some("tools/call")) => self.call(env, line, None, true).await,
            (Kind::Response, _) if self.questions.is_open(env.id_text()) => {
                self.answered(env).await
            }
            (Kind::Request, Some("tools/list")) => {
                let chain = self.chain();
                if chain.may_hide() || chain.pins().is_some() {
                    self.pending()
                        .insert(env.id_text().to_string(), Pending::List);
                }
                Ok(None)
            }
            (Kind::Request, Some("initialize")) => {
                let authenticated = self
                    .authenticated
                    .load(std::sync::atomic::Ordering::Relaxed);
                let facts = client_facts(env.params);
                if let Some(name) = facts.name.as_deref().filter(|_| !authenticated) {
                    self.set_caller(name);
                }
                *self.client.lock().unwrap_or_else(|p| p.into_inner()) = facts;
                Ok(None)
            }
            (Kind::Invalid, _) => Err(jsonrpc::error_response(
                env.id.map(RawValue::get).unwrap_or("null"),
                codes::INVALID_REQUEST,
                "Invalid Request: a message needs a method, or an id with a result or error",
                None,
            )),
            _ => Ok(None),
        }
    }

    async fn client_batch(&self, items: Vec<&RawValue>) -> Routed {
        let mut forward: Vec<String> = Vec::new();
        let mut forwarded: Vec<Forwarded> = Vec::new();
        let mut answers: Vec<String> = Vec::new();
        for item in items {
            let bytes = item.get().as_bytes();
            let outcome = match serde_json::from_str::<Envelope>(item.get()) {
                Ok(env) => {
                    let outcome = self.client_message(&env, bytes).await;
                    if outcome.is_ok() {
                        forwarded.extend(Forwarded::of(&env));
                    }
                    outcome
                }
                Err(e) => Err(jsonrpc::error_response(
                    "null",
                    codes::INVALID_REQUEST,
                    &format!("Invalid Request: {e}"),
                    None,
                )),
            };
            match outcome {
                Ok(None) => forward.push(item.get().to_string()),
                Ok(Some(rewritten)) => {
                    forward.push(String::from_utf8_lossy(&rewritten).into_owned())
                }
                Err(answer) => answers.push(String::from_utf8_lossy(&answer).into_owned()),
            }
        }
        let join = |parts: Vec<String>| {
            (!parts.is_empty()).then(|| format!("[{}]", parts.join(",")).into_bytes())
        };
        Routed {
            to_server: join(forward),
            to_client: join(answers).into_iter().collect(),
            forwarded,
            ..Routed::default()
        }
    }
}

/// `initialize` params' `clientInfo.name` and `protocolVersion`.
fn client_facts(params: Option<&RawValue>) -> ClientFacts {
    let Some(v) = params.and_then(|p| serde_json::from_str::<Value>(p.get()).ok()) else {
        return ClientFacts::default();
    };
    let text = |pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    ClientFacts {
        name: text("/clientInfo/name"),
        protocol_version: text("/protocolVersion"),
        elicitation: v
            .pointer("/capabilities/elicitation")
            .is_some_and(Value::is_object),
    }
}
