//! One agent session, independent of transport: every message from the agent goes through
//! [`Session::from_client`], every message from the server through [`Session::from_server`].
//! Only `tools/call` requests (decided by the chain), `tools/list` responses (hidden tools
//! removed) and responses to allowed calls (counters settled) are looked at; everything else is
//! forwarded as the original bytes.

use crate::audit::{AuditRecord, Recorder};
use crate::chain::{Chain, ChainCell, Decision, Denial, ServerOutcome, Ticket};
use crate::config::DenyAs;
use crate::engine::CallInput;
use crate::jsonrpc::{
    self, codes, Envelope, Kind, Parsed, Recipient, CLIENT_INFO_META, PROTOCOL_VERSION_META,
};
use crate::metrics;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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

    /// Decide a `tools/call`; `answer`: the client's answer to the question this call raised;
    /// `may_wait`: it may be held while an operator decides (not when it is decided again).
    async fn call(
        &self,
        env: &Envelope<'_>,
        line: &[u8],
        answer: Option<crate::chain::ClientAnswer>,
        may_wait: bool,
    ) -> Result<Option<Vec<u8>>, Vec<u8>> {
        let id = env.id_text();
        // One policy for the whole call, even if a reload swaps it meanwhile.
        let chain = self.chain();
        let params = jsonrpc::call_params(env.params)
            .map_err(|m| jsonrpc::error_response(id, codes::INVALID_PARAMS, &m, None))?;
        let stateless = is_stateless(params.meta.as_ref());
        let (in_band, answered, releases) = self.in_band(&params, stateless, answer, may_wait);
        // Tollgate's own round-trip fields never reach the server, which asked nothing.
        let stripped = answered.then(|| in_band::strip(line));
        let line = stripped.as_deref().unwrap_or(line);
        let arguments = match params.arguments.map(RawValue::get) {
            None | Some("null") => "{}".to_string(),
            Some(a) => a.to_string(),
        };
        let metadata = self.metadata(params.meta.as_ref());
        let audited_arguments = self.recorder.audit().map(|a| {
            if a.raw_arguments() {
                (None, RawValue::from_string(arguments.clone()).ok())
            } else {
                (Some(crate::audit::sha256_hex(&arguments)), None)
            }
        });
        let caller = self.caller();
        let call = CallInput {
            tool: params.name.clone(),
            arguments,
            server: chain.server().into(),
            caller: caller.clone(),
            metadata,
        };
        let mut review = chain
            .checks_results(&call.tool)
            .then(|| (call.clone(), stateless));
        metrics::call();
        let started = Instant::now();
        let pinned = match chain
            .pins()
            .and_then(|pins| self.pin_decision(pins, &params.name))
        {
            Some(refusal) if chain.is_dry_run() => {
                tracing::info!(tool = %params.name, ?refusal, "dry run: the pins would refuse this call");
                None
            }
            pinned => pinned,
        };
        let decision = match pinned {
            Some(decision) => decision,
            None => chain.decide_in(call, &in_band).await,
        };
        let latency = started.elapsed();
        let tool = params.name.as_str();
        let record = |verdict: &str,
                      denial: Option<&Denial>,
                      dry_run: bool,
                      approval: Option<crate::audit::ApprovalFacts<'_>>| {
            if !dry_run {
                metrics::decision(
                    tool,
                    verdict,
                    denial.map_or("", |d| d.rule.as_str()),
                    denial.map_or("", |d| d.code.as_str()),
                );
            }
            if !self.recorder.is_on() {
                return;
            }
            let (sha, raw) = match &audited_arguments {
                Some((sha, raw)) => (sha.clone(), raw.as_deref()),
                None => (None, None),
            };
            self.recorder.record(&AuditRecord {
                time: crate::audit::now_rfc3339(),
                caller: &caller,
                server: chain.server(),
                tool,
                verdict,
                code: denial.map(|d| d.code.as_str()),
                rule: denial.map(|d| d.rule.as_str()),
                plugin: denial.map(|d| d.plugin.as_str()).filter(|p| !p.is_empty()),
                reason: denial.map(|d| d.reason.as_str()),
                latency_us: latency.as_micros() as u64,
                arguments_sha256: sha,
                arguments: raw,
                dry_run,
                approval,
                changes: None,
            });
        };
        match decision {
            Decision::Allow {
                arguments,
                ticket,
                would_deny,
                approvals,
            } => {
                for d in &would_deny {
                    record("deny", Some(d), true, None);
                }
                record(
                    if arguments.is_some() {
                        "rewrite"
                    } else {
                        "allow"
                    },
                    None,
                    false,
                    approvals.last().map(crate::audit::ApprovalFacts::used),
                );
                if let (Some((call, _)), Some(new_args)) = (&mut review, &arguments) {
                    call.arguments = new_args.clone();
                }
                self.pending().insert(
                    id.to_string(),
                    Pending::Call(PendingCall {
                        ticket,
                        sent: Instant::now(),
                        review,
                    }),
                );
                match (arguments, stripped.is_some()) {
                    (None, false) => Ok(None),
                    (None, true) => Ok(Some(line.to_vec())),
                    (Some(new_args), _) => Ok(Some(rewrite_arguments(line, &new_args))),
                }
            }
            Decision::Deny(d) => {
                let approval = d.approval.as_deref().map(|id| crate::audit::ApprovalFacts {
                    id,
                    by: None,
                    channel: None,
                    waited_ms: None,
                });
                record("deny", Some(&d), false, approval);
                tracing::info!(tool = %params.name, code = %d.code, rule = %d.rule, reason = %d.reason, "denied");
                Err(denial_response(id, &d, chain.denial_prefix(), stateless))
            }
            Decision::AskClient(question) => {
                let approval = crate::audit::ApprovalFacts {
                    id: &question.approval,
                    by: None,
                    channel: Some("client"),
                    waited_ms: None,
                };
                record("ask", None, false, Some(approval));
                tracing::info!(tool = %params.name, rule = %question.rule, approval = %question.approval, "asking the client's user");
                Err(self.ask_client(id, line, &question, stateless, releases))
            }
            Decision::Wait(wait) => {
                let approval = crate::audit::ApprovalFacts {
                    id: &wait.approval,
                    by: None,
                    channel: Some("operator"),
                    waited_ms: None,
                };
                record("wait", None, false, Some(approval));
                tracing::info!(tool = %params.name, approval = %wait.approval, "holding the call while an operator decides");
                let progress = params.meta.as_ref().and_then(|m| m.get("progressToken"));
                self.hold(id, line, &chain, wait, progress.cloned(), releases);
                // Nothing to answer now: the call's answer comes when the wait is over.
                Err(Vec::new())
            }
            Decision::Unknown => {
                record("unknown", None, false, None);
                let unknown = format!("Unknown tool: {}", params.name);
                // As servers answer a tool they do not have: on the stateless revision the
                // reference server (mcp 2.x) says so in a failed tool result, earlier ones
                // with -32602.
                Err(if stateless {
                    let result = serde_json::json!({
                        "content": [{"type": "text", "text": unknown}],
                        "isError": true,
                        "resultType": "complete",
                    });
                    jsonrpc::result_response(id, &result)
                } else {
                    jsonrpc::error_response(id, codes::INVALID_PARAMS, &unknown, None)
                })
            }
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

    /// Route one message (line) from the server: `None` drops it (never, today), `Some` forwards
    /// these bytes (the original unless the rules replaced a result or hid tools from a
    /// `tools/list`).
    pub async fn from_server(&self, line: &[u8]) -> Option<Vec<u8>> {
        self.relay_from_server(line, false)
            .await
            .map(|(bytes, _)| bytes)
    }

    /// As [`Session::from_server`], with who the message is for: for transports that route the
    /// server's messages (HTTP), which then need not parse them again.
    pub async fn from_server_for(&self, line: &[u8]) -> Option<(Vec<u8>, Recipient)> {
        self.relay_from_server(line, true).await
    }

    async fn relay_from_server(
        &self,
        line: &[u8],
        recipient_wanted: bool,
    ) -> Option<(Vec<u8>, Recipient)> {
        self.note_list_changed(line);
        if self.pending().is_empty() && !recipient_wanted {
            return Some((line.to_vec(), Recipient::default()));
        }
        match jsonrpc::parse(line) {
            Ok(Parsed::Single(env)) => {
                let recipient = Recipient::of(&env);
                if env.kind() != Kind::Response {
                    return Some((line.to_vec(), recipient));
                }
                let pending = self.pending().remove(env.id_text());
                let out = match pending {
                    Some(Pending::Call(p)) => {
                        metrics::upstream_latency(p.sent.elapsed());
                        self.chain().settle(p.ticket, outcome_of(&env)).await;
                        match (&p.review, env.result) {
                            (Some((call, stateless)), Some(result)) => {
                                self.review_result(&env, line, call, result, *stateless)
                                    .await
                            }
                            _ => line.to_vec(),
                        }
                    }
                    Some(Pending::List) => self
                        .filter_list(&env)
                        .await
                        .unwrap_or_else(|| line.to_vec()),
                    None => line.to_vec(),
                };
                Some((out, recipient))
            }
            Ok(Parsed::Batch(items)) => {
                for item in items {
                    if let Ok(env) = serde_json::from_str::<Envelope>(item.get()) {
                        let pending = self.pending().remove(env.id_text());
                        if let Some(Pending::Call(p)) = pending {
                            self.chain().settle(p.ticket, outcome_of(&env)).await;
                        }
                    }
                }
                Some((line.to_vec(), Recipient::default()))
            }
            _ => Some((line.to_vec(), Recipient::default())),
        }
    }

    /// The server's answer to a call whose result the rules look at: its original bytes when no
    /// rule changed it, replaced (redacted), or — if a rule failed — a `policy_error` denial.
    async fn review_result(
        &self,
        env: &Envelope<'_>,
        original: &[u8],
        call: &CallInput,
        result: &RawValue,
        stateless: bool,
    ) -> Vec<u8> {
        let chain = self.chain();
        match chain.check_result(call, result.get()).await {
            // No rule changed it: the server's own bytes, as everything else.
            Ok(None) => original.to_vec(),
            Ok(Some(replaced)) => {
                tracing::info!(tool = %call.tool, "result replaced by policy");
                let value: Value = serde_json::from_str(&replaced).unwrap_or(Value::Null);
                jsonrpc::result_response(env.id_text(), &value)
            }
            Err(d) => {
                tracing::warn!(tool = %call.tool, rule = %d.rule, reason = %d.reason, "result check failed; answering with a denial");
                denial_response(env.id_text(), &d, chain.denial_prefix(), stateless)
            }
        }
    }

    /// Remove hidden tools from a `tools/list` result; `None` when nothing was removed.
    async fn filter_list(&self, env: &Envelope<'_>) -> Option<Vec<u8>> {
        let mut result: Value = serde_json::from_str(env.result?.get()).ok()?;
        let tools = result.get_mut("tools")?.as_array_mut()?;
        let caller = self.caller();
        let chain = self.chain();
        let mut keep = Vec::with_capacity(tools.len());
        for tool in tools.iter() {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
            let pinned = match chain.pins() {
                Some(pins) => self.judge_pin(&chain, pins, name, tool, &caller).await,
                None => true,
            };
            keep.push(pinned && chain.visible(name, &caller).await);
        }
        if keep.iter().all(|k| *k) {
            return None;
        }
        let mut flags = keep.into_iter();
        tools.retain(|_| flags.next().unwrap_or(false));
        // The list now depends on who asked: where the revision has a cache scope, keep shared
        // caches from serving it to anyone else.
        if let Some(scope) = result.get_mut("cacheScope") {
            *scope = json!("private");
        }
        Some(jsonrpc::result_response(env.id_text(), &result))
    }

    /// The server is gone: refund every call still waiting for an answer.
    pub async fn server_lost(&self) {
        let pending: Vec<Pending> = self.pending().drain().map(|(_, p)| p).collect();
        for p in pending {
            if let Pending::Call(p) = p {
                self.chain().settle(p.ticket, ServerOutcome::Failed).await;
            }
        }
    }
}

fn outcome_of(env: &Envelope<'_>) -> ServerOutcome {
    if env.error.is_some() {
        return ServerOutcome::Failed;
    }
    #[derive(serde::Deserialize)]
    struct IsError {
        #[serde(default, rename = "isError")]
        is_error: bool,
    }
    match env
        .result
        .and_then(|r| serde_json::from_str::<IsError>(r.get()).ok())
    {
        Some(IsError { is_error: true }) => ServerOutcome::ErrorResult,
        _ => ServerOutcome::Success,
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

/// The request with `params.arguments` replaced (everything else kept, in order).
fn rewrite_arguments(line: &[u8], new_args: &str) -> Vec<u8> {
    let mut message: Value = serde_json::from_slice(line).expect("the line was parsed before");
    let args: Value =
        serde_json::from_str(new_args).expect("the engine checked the rewrite is a JSON object");
    message["params"]["arguments"] = args;
    serde_json::to_vec(&message).expect("a Value always serialises")
}
