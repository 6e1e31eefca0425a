//! Approval asked in band: the agent's client asks its user (an `elicitation/create` form).
//! - On requests of the 2026-07-28 revision, instead of a result the client gets an
//!   `input_required` result carrying the question and a request state naming the approval
//!   request; it retries the call with the user's answer and that state. Tollgate's own
//!   round-trip fields are removed from the retry before the server sees it (the server never
//!   asked anything); a server's own `requestState` and input responses pass through untouched.
//! - In sessions of earlier revisions (2025-06-18, 2025-11-25) whose client declared
//!   `elicitation`, Tollgate sends the client an `elicitation/create` request with an id of its
//!   own (over stdio; over HTTP on the call's POST stream, which stays open for the call's
//!   answer)
//!   (`"dev.tollgate/approval/N:ID"`, a string no server numbering produces) and holds the call;
//!   the client's answer decides it, and the call then goes to the server or is refused. Other
//!   messages keep flowing meanwhile.

use crate::chain::{ClientAnswer, ClientQuestion, InBand};
use crate::jsonrpc::{self, CallParams, Envelope, Kind};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::mpsc::UnboundedSender;

/// The key of Tollgate's question among a result's `inputRequests` (and of the answer among
/// the retry's `inputResponses`).
pub const INPUT_KEY: &str = "dev.tollgate/approval";

/// The error code of the message that tells the session a question went unanswered until its
/// request expired (a client sending it only expires its own question).
const UNANSWERED: i64 = crate::jsonrpc::codes::QUESTION_UNANSWERED;

/// The id prefix of the message that ends a wait for an operator.
const WAIT_KEY: &str = "dev.tollgate/wait";

/// How Tollgate's request state starts; the approval request's id follows.
pub const STATE_PREFIX: &str = "dev.tollgate/approval:";

/// The `_meta` key in which 2026-07-28 requests declare the client's capabilities.
const CLIENT_CAPABILITIES_META: &str = "io.modelcontextprotocol/clientCapabilities";

/// What `params` (of a request that speaks the stateless revision when `stateless`) offers for
/// asking in band, and whether it carries Tollgate's own round-trip fields (to strip).
pub fn read(params: &CallParams<'_>, stateless: bool) -> (InBand, bool) {
    let can_ask = stateless
        && params
            .meta
            .as_ref()
            .and_then(|m| m.get(CLIENT_CAPABILITIES_META))
            .and_then(|c| c.get("elicitation"))
            .is_some_and(Value::is_object);
    let id = params
        .request_state
        .as_ref()
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix(STATE_PREFIX));
    let Some(id) = id else {
        return (
            InBand {
                can_ask,
                answer: None,
                can_wait: false,
            },
            false,
        );
    };
    let response = params
        .input_responses
        .as_ref()
        .and_then(|r| r.get(INPUT_KEY));
    let answer = match response {
        None => ClientAnswer::Unreadable("the retry carries no answer to it".into()),
        Some(r) => answer_of(r, id),
    };
    (
        InBand {
            can_ask,
            answer: Some(answer),
            can_wait: false,
        },
        true,
    )
}

/// An `ElicitResult` read as the answer to approval request `id`.
fn answer_of(result: &Value, id: &str) -> ClientAnswer {
    match result.get("action").and_then(Value::as_str) {
        Some("accept") => match result.pointer("/content/approve") {
            Some(Value::Bool(true)) => ClientAnswer::Approved(id.into()),
            Some(Value::Bool(false)) => ClientAnswer::Declined(id.into()),
            _ => ClientAnswer::Unreadable("an accepted answer without `approve`".into()),
        },
        Some("decline") => ClientAnswer::Declined(id.into()),
        Some("cancel") => ClientAnswer::Cancelled(id.into()),
        _ => ClientAnswer::Unreadable("an answer without a known `action`".into()),
    }
}

/// A call held for the answer to a question.
struct Held {
    /// Its id, as JSON text.
    call: String,
    /// The call, as the client sent it.
    line: Vec<u8>,
    /// The approval request the question is for.
    approval: String,
    /// Held while an operator decides (the "answer" is the end of the wait), not for the
    /// client's answer.
    waiting: bool,
}

/// The questions of one session put to its client as requests of Tollgate's own.
#[derive(Default)]
pub struct Questions {
    /// The transport carries Tollgate's requests to the client and its answers back.
    carried: AtomicBool,
    /// Question id (JSON text) -> the held `tools/call` (its id and line) and the approval
    /// request.
    open: Mutex<HashMap<String, Held>>,
    next: AtomicU64,
}

impl Questions {
    /// Say that the transport carries Tollgate's own requests to the client.
    pub fn carry(&self) {
        self.carried.store(true, Ordering::Relaxed);
    }

    /// Whether questions can be put to the client as requests.
    pub fn carried(&self) -> bool {
        self.carried.load(Ordering::Relaxed)
    }

    /// The `elicitation/create` request that asks `question` about the held call `line`;
    /// `with_mode`: the session speaks 2025-11-25 or later (which names the form mode).
    pub fn ask(
        &self,
        question: &ClientQuestion,
        call: &str,
        line: &[u8],
        with_mode: bool,
    ) -> Vec<u8> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = Value::String(format!("{INPUT_KEY}/{n}:{}", question.approval));
        let mut params = elicitation(question);
        if !with_mode {
            params.as_object_mut().map(|p| p.remove("mode"));
        }
        let held = Held {
            call: call.into(),
            line: line.to_vec(),
            approval: question.approval.clone(),
            waiting: false,
        };
        self.open().insert(id.to_string(), held);
        let request =
            json!({"jsonrpc": "2.0", "id": id, "method": "elicitation/create", "params": params});
        request.to_string().into_bytes()
    }

    /// Hold the call `line` (id `call`) while an operator decides `approval`; the message that
    /// ends the wait, to come back through the session when it is over.
    pub fn wait(&self, call: &str, line: &[u8], approval: &str) -> Vec<u8> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = Value::String(format!("{WAIT_KEY}/{n}:{approval}"));
        let held = Held {
            call: call.into(),
            line: line.to_vec(),
            approval: approval.into(),
            waiting: true,
        };
        self.open().insert(id.to_string(), held);
        json!({"jsonrpc": "2.0", "id": id, "result": {}})
            .to_string()
            .into_bytes()
    }

    /// The message that, passed through the session, ends the question `asked` (the request
    /// [`Questions::ask`] returned) unanswered.
    pub fn unanswered(asked: &[u8]) -> Vec<u8> {
        let id = serde_json::from_slice::<Value>(asked)
            .ok()
            .and_then(|m| m.get("id").cloned())
            .unwrap_or(Value::Null);
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": UNANSWERED, "message": "no answer before the approval request expired"}})
            .to_string()
            .into_bytes()
    }

    /// Whether `id` (JSON text) is one of the questions awaiting an answer.
    pub fn is_open(&self, id: &str) -> bool {
        self.open().contains_key(id)
    }

    /// Whether the call with id `call` (JSON text) is held for an answer.
    pub fn holds(&self, call: &str) -> bool {
        self.open().values().any(|h| h.call == call)
    }

    /// Drop the held call with id `call` (JSON text), if there is one.
    pub fn drop_call(&self, call: &str) -> bool {
        let mut open = self.open();
        let before = open.len();
        open.retain(|_, h| h.call != call);
        open.len() < before
    }

    /// The held call a response to one of the questions answers, and the answer.
    /// `None` for the answer: a wait for an operator ended (the call is decided again as it is).
    pub fn answered(&self, response: &Envelope<'_>) -> Option<(Vec<u8>, Option<ClientAnswer>)> {
        let Held {
            line,
            approval,
            waiting,
            ..
        } = self.open().remove(response.id_text())?;
        if waiting {
            return Some((line, None));
        }
        let answer = match (response.result, response.error) {
            (Some(result), _) => match serde_json::from_str::<Value>(result.get()) {
                Ok(result) => answer_of(&result, &approval),
                Err(e) => ClientAnswer::Unreadable(format!("an answer that is not JSON: {e}")),
            },
            (None, Some(error))
                if serde_json::from_str::<Value>(error.get())
                    .is_ok_and(|e| e["code"] == json!(UNANSWERED)) =>
            {
                ClientAnswer::TimedOut(approval)
            }
            (None, Some(error)) => {
                ClientAnswer::Unreadable(format!("the client could not ask: {}", error.get()))
            }
            (None, None) => ClientAnswer::Unreadable("an empty answer".into()),
        };
        Some((line, Some(answer)))
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `elicitation/create` parameters that ask `question`.
fn elicitation(question: &ClientQuestion) -> Value {
    json!({
        "mode": "form",
        "message": format!(
            "{} (An approval this agent's policy asks for: request {}, rule {}.)",
            question.message, question.approval, question.rule
        ),
        "requestedSchema": {
            "type": "object",
            "properties": {
                "approve": {
                    "type": "boolean",
                    "title": "Approve",
                    "description": "Let exactly this call through, once",
                }
            },
            "required": ["approve"],
        },
    })
}

/// `line` without Tollgate's request state and input response.
pub fn strip(line: &[u8]) -> Vec<u8> {
    let mut message: Value = serde_json::from_slice(line).expect("the line was parsed before");
    if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
        params.remove("requestState");
        let emptied = match params
            .get_mut("inputResponses")
            .and_then(Value::as_object_mut)
        {
            Some(responses) => {
                responses.remove(INPUT_KEY);
                responses.is_empty()
            }
            None => false,
        };
        if emptied {
            params.remove("inputResponses");
        }
    }
    serde_json::to_vec(&message).expect("a Value always serialises")
}

/// The `input_required` answer that asks the client's user `question`.
pub fn question(id: &str, question: &ClientQuestion) -> Vec<u8> {
    let ask = json!({"method": "elicitation/create", "params": elicitation(question)});
    let result = json!({
        "resultType": "input_required",
        "inputRequests": { INPUT_KEY: ask },
        "requestState": format!("{STATE_PREFIX}{}", question.approval),
    });
    jsonrpc::result_response(id, &result)
}

impl super::Session {
    /// What this request offers for asking in band, whether it carries Tollgate's own
    /// round-trip fields (to strip), and where a held call's release goes (when it may wait).
    pub(super) fn in_band(
        &self,
        params: &CallParams<'_>,
        stateless: bool,
        answer: Option<ClientAnswer>,
        may_wait: bool,
    ) -> (InBand, bool, Option<UnboundedSender<super::Release>>) {
        let (mut in_band, answered) = read(params, stateless);
        if !stateless {
            let elicits = self
                .client
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elicitation;
            in_band.can_ask = self.questions.carried() && elicits;
            in_band.answer = answer;
        }
        let releases = self
            .releases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|_| may_wait);
        in_band.can_wait = releases.is_some();
        (in_band, answered, releases)
    }

    /// What asks the client's user `question` about the call `line` (id `id`): an
    /// `input_required` answer (stateless revision), or a request of Tollgate's own that holds
    /// the call until the answer — or until the request expires, when `releases` can say so.
    pub(super) fn ask_client(
        &self,
        id: &str,
        line: &[u8],
        question: &ClientQuestion,
        stateless: bool,
        releases: Option<UnboundedSender<super::Release>>,
    ) -> Vec<u8> {
        if stateless {
            return self::question(id, question);
        }
        let with_mode = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .protocol_version
            .as_deref()
            .is_some_and(|v| v >= "2025-11-25");
        let asked = self.questions.ask(question, id, line, with_mode);
        if let Some(out) = releases {
            // A question nobody answers ends with its request.
            let unanswered = Questions::unanswered(&asked);
            let left = question.expires_ms.saturating_sub(crate::state::now_ms());
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(left)).await;
                let _ = out.send(super::Release::Again(unanswered));
            });
        }
        asked
    }

    /// A `notifications/cancelled` for a call held for the client's answer: the call is dropped
    /// (it never reached the server, which has nothing to cancel), and a late answer finds
    /// nothing to release.
    pub(super) fn cancels_a_held_call(&self, env: &Envelope<'_>) -> bool {
        if env.kind() != Kind::Notification
            || env.method.as_deref() != Some("notifications/cancelled")
        {
            return false;
        }
        let id = env
            .params
            .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
            .and_then(|p| p.get("requestId").map(Value::to_string));
        id.is_some_and(|id| self.questions.drop_call(&id))
    }

    /// The client answered one of Tollgate's questions: decide the call it held, which then
    /// goes to the server (`Ok`) or is answered (`Err`); the answer itself goes nowhere.
    pub(super) async fn answered(
        &self,
        response: &Envelope<'_>,
    ) -> Result<Option<Vec<u8>>, Vec<u8>> {
        let Some((line, answer)) = self.questions.answered(response) else {
            return Ok(None);
        };
        let env: Envelope = serde_json::from_slice(&line).expect("the held call was parsed before");
        match self.call(&env, &line, answer, false).await {
            Ok(None) => Ok(Some(line.clone())),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests;
