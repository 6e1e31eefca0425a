//! Human approval of calls. A rule's `ask` verdict becomes a request kept in the state store,
//! bound to exactly one call: the caller, the server, the tool, the sha256 of its arguments as
//! canonical JSON, and the version of the rule that asked (its label, plugin and configuration:
//! editing that rule voids what was asked under it; editing another rule does not). An operator
//! approves or refuses it (`tollgate approvals`, from any process that reaches the same store),
//! and the agent's retry of that very call goes through once. Changed arguments are another
//! call and another request; every request expires.
//!
//! Records are JSON text in the store ([`crate::state::ApprovalStore`]); this module alone
//! knows their fields and moves them from state to state, each move a compare-and-swap, so two
//! proxies (or a proxy and the CLI) never both use or decide one request.

use crate::state::{ApprovalStore, StoreError};

pub mod webhook;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a request stays open when neither the policy nor the plugin says (15 minutes: a
/// person has to notice it).
pub const DEFAULT_TIMEOUT_MS: u64 = 15 * 60 * 1000;

/// When an agent told that a call waits for approval should try again.
pub const RETRY_AFTER_MS: u64 = 10_000;

/// How long a call waits for an operator with `wait: true`.
pub const DEFAULT_WAIT_MS: u64 = 25_000;

/// The longest a call may wait for an operator: clients give up on a call after about 60 s.
pub const MAX_WAIT_SECS: u64 = 50;

/// How much of a call's arguments a request keeps to show the person deciding.
pub const SHOWN_ARGUMENTS: usize = 4096;

/// One request for approval, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Its id, what an operator names to decide it.
    pub id: String,
    /// The server the call is for.
    pub server: String,
    /// The tool called.
    pub tool: String,
    /// Who called.
    pub caller: String,
    /// sha256 of the call's arguments as canonical JSON.
    pub arguments_sha256: String,
    /// The arguments, for the person deciding (cut after [`SHOWN_ARGUMENTS`] bytes).
    pub arguments: String,
    /// The rule that asked (its label).
    pub rule: String,
    /// What the person is asked.
    pub message: String,
    /// When it was asked (ms since the epoch).
    pub made_ms: u64,
    /// How long it stays open, and how long an approval stays usable once given.
    pub timeout_ms: u64,
    /// When it stops being open, or its approval usable.
    pub expires_ms: u64,
    /// Where it stands.
    #[serde(flatten)]
    pub state: State,
    /// What it is bound to (the digest of caller, server, tool, arguments and rule version).
    pub binding: String,
}

impl Approval {
    /// The channel that decided it (`operator` while undecided).
    pub fn channel(&self) -> &'static str {
        match &self.state {
            State::Approved(d) | State::Denied(d) | State::Used { decided: d, .. } => {
                channel(&d.channel)
            }
            _ => "operator",
        }
    }
}

/// The channels approvals are decided through, as metric labels.
fn channel(name: &str) -> &'static str {
    match name {
        "http" => "http",
        "client" => "client",
        _ => "operator",
    }
}

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for a person.
    Pending,
    /// Approved, not used yet.
    Approved(Decided),
    /// Refused.
    Denied(Decided),
    /// Approved, and the call went through (once).
    Used {
        /// Who approved it, and how.
        #[serde(flatten)]
        decided: Decided,
        /// When the call went through.
        used_ms: u64,
    },
    /// Nobody decided in time, or the approval was not used in time.
    Expired {
        /// When this was noticed.
        at_ms: u64,
    },
}

/// Who decided a request, through which channel, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    /// The operator's name.
    pub by: String,
    /// `operator` (the CLI), `http` (the listener's endpoint).
    pub channel: String,
    /// When (ms since the epoch).
    pub decided_ms: u64,
}

impl State {
    /// Its name, as records and `tollgate approvals list` show it.
    pub fn name(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved(_) => "approved",
            State::Denied(_) => "denied",
            State::Used { .. } => "used",
            State::Expired { .. } => "expired",
        }
    }
}

/// A call a rule asks a person about.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    /// The server it is for.
    pub server: &'a str,
    /// The tool.
    pub tool: &'a str,
    /// Who called.
    pub caller: &'a str,
    /// Its arguments (JSON object text), as they would be forwarded.
    pub arguments: &'a str,
    /// The asking rule's label.
    pub rule: &'a str,
    /// The asking rule's version (a digest of its plugin and configuration).
    pub rule_version: &'a str,
    /// What the person is asked.
    pub message: &'a str,
    /// How long the request stays open.
    pub timeout_ms: u64,
}

/// Where a call that needs approval stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Approved: the call may go through once the rest of the chain allows it, and then the
    /// approval is used up ([`consume`]).
    Granted(Approval),
    /// Waiting for a person; `new` when this call raised the request.
    Pending {
        /// The request.
        approval: Approval,
        /// Whether it was made just now.
        new: bool,
    },
    /// Refused by a person. The request is closed: calling again asks again.
    Denied(Approval),
    /// Not decided (or not used) in time. The request is closed: calling again asks again.
    Expired(Approval),
}

/// Deciding a request failed.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No such request.
    #[error("no approval request `{0}` (see `tollgate approvals list`)")]
    NotFound(String),
    /// It was decided already, used or expired.
    #[error(
        "approval request `{id}` is {state}, not pending: only a pending request can be decided"
    )]
    NotPending {
        /// The request.
        id: String,
        /// Where it stands.
        state: &'static str,
    },
    /// Nobody decides a request for a call of their own.
    #[error(
        "approval request `{id}` is for a call of {caller}'s own; another approver decides it"
    )]
    OwnCall {
        /// The request.
        id: String,
        /// Its caller, who tried to decide it.
        caller: String,
    },
    /// The store failed, or keeps a record this Tollgate cannot read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many times a move is retried when another process changed the record meanwhile.
const ATTEMPTS: usize = 8;

/// The digest an approval is bound to.
fn binding(ask: &Ask<'_>, arguments_sha256: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        ask.caller,
        ask.server,
        ask.tool,
        arguments_sha256,
        ask.rule,
        ask.rule_version,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex(&h.finalize()[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of `arguments` (JSON text) as canonical JSON: key order and spacing do not matter.
pub fn arguments_sha256(arguments: &str) -> String {
    let canonical = match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(value) => {
            let mut out = String::new();
            crate::pins::canonical(&value, &mut out);
            out
        }
        Err(_) => arguments.to_string(),
    };
    hex(&Sha256::digest(canonical.as_bytes()))
}

/// A new request's id: short enough to type, unique across the processes of a store.
fn new_id(binding: &str, now_ms: u64) -> String {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut h = Sha256::new();
    h.update(binding.as_bytes());
    h.update(now_ms.to_be_bytes());
    h.update(std::process::id().to_be_bytes());
    h.update(n.to_be_bytes());
    format!("ap-{}", &hex(&h.finalize())[..16])
}

/// `arguments`, cut at a character boundary after [`SHOWN_ARGUMENTS`] bytes.
fn shown(arguments: &str) -> String {
    if arguments.len() <= SHOWN_ARGUMENTS {
        return arguments.into();
    }
    let mut cut = SHOWN_ARGUMENTS;
    while !arguments.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes in all)", &arguments[..cut], arguments.len())
}

fn read(json: &str) -> Result<Approval, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError(format!("an approval record this Tollgate cannot read: {e}")))
}

fn write(approval: &Approval) -> String {
    serde_json::to_string(approval).expect("an approval serialises")
}

/// Where `ask` stands at `now_ms`: open a request if none is open for exactly this call, use an
/// approval given for it, or report a refusal or expiry (closing the request).
pub async fn ask(
    store: &dyn ApprovalStore,
    ask: &Ask<'_>,
    now_ms: u64,
) -> Result<Answer, StoreError> {
    let arguments_sha256 = arguments_sha256(ask.arguments);
    let binding = binding(ask, &arguments_sha256);
    let id = new_id(&binding, now_ms);
    let fresh = Approval {
        id: id.clone(),
        server: ask.server.into(),
        tool: ask.tool.into(),
        caller: ask.caller.into(),
        arguments_sha256,
        arguments: shown(ask.arguments),
        rule: ask.rule.into(),
        message: ask.message.into(),
        made_ms: now_ms,
        timeout_ms: ask.timeout_ms,
        expires_ms: now_ms.saturating_add(ask.timeout_ms),
        state: State::Pending,
        binding: binding.clone(),
    };
    let fresh_json = write(&fresh);
    for _ in 0..ATTEMPTS {
        let json = store
            .open_approval(&binding, &id, &fresh_json, now_ms)
            .await?;
        let open = read(&json)?;
        if open.binding != binding {
            // Another call's record under this call's binding (an id collision): never use it.
            return Err(StoreError(format!(
                "approval record `{}` is not for this call",
                open.id
            )));
        }
        let expired = now_ms >= open.expires_ms;
        let (next, answer) = match &open.state {
            State::Pending if !expired => {
                let new = open.id == id;
                return Ok(Answer::Pending {
                    approval: open,
                    new,
                });
            }
            State::Pending | State::Approved(_) if expired => {
                let mut next = open.clone();
                next.state = State::Expired { at_ms: now_ms };
                (next.clone(), Answer::Expired(next))
            }
            // Used only once the whole chain lets the call through (`consume`).
            State::Approved(_) => return Ok(Answer::Granted(open)),
            State::Denied(_) => (open.clone(), Answer::Denied(open.clone())),
            // Closed states are never left open; close it if one was.
            State::Used { .. } | State::Expired { .. } | State::Pending => {
                store.swap_approval(&open.id, &json, &json, true).await?;
                continue;
            }
        };
        if store
            .swap_approval(&open.id, &json, &write(&next), true)
            .await?
        {
            return Ok(answer);
        }
    }
    Err(StoreError(format!(
        "approval request for `{}` kept changing under {ATTEMPTS} attempts",
        ask.tool
    )))
}

/// Use up `approval` (granted by [`ask`]) for the call that goes through now. `false`: another
/// call used it first, or it was decided otherwise meanwhile; this call must not go through.
pub async fn consume(
    store: &dyn ApprovalStore,
    approval: &Approval,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let State::Approved(decided) = &approval.state else {
        return Ok(false);
    };
    let mut used = approval.clone();
    used.state = State::Used {
        decided: decided.clone(),
        used_ms: now_ms,
    };
    store
        .swap_approval(&approval.id, &write(approval), &write(&used), true)
        .await
}

/// Approve (`approve`) or refuse request `id` as `by` through `channel`. An approval stays
/// usable for the request's timeout from now.
pub async fn decide(
    store: &dyn ApprovalStore,
    id: &str,
    approve: bool,
    by: &str,
    channel: &str,
    now_ms: u64,
) -> Result<Approval, DecideError> {
    for _ in 0..ATTEMPTS {
        let json = store
            .approval(id)
            .await?
            .ok_or_else(|| DecideError::NotFound(id.into()))?;
        let mut next = read(&json)?;
        // An operator never decides a call of their own; the client channel, by design, asks
        // the caller's own user.
        if channel != "client" && next.caller == by {
            return Err(DecideError::OwnCall {
                id: id.into(),
                caller: by.into(),
            });
        }
        match next.state {
            State::Pending if now_ms < next.expires_ms => {}
            State::Pending => {
                return Err(DecideError::NotPending {
                    id: id.into(),
                    state: "expired",
                })
            }
            ref other => {
                return Err(DecideError::NotPending {
                    id: id.into(),
                    state: other.name(),
                })
            }
        }
        let decided = Decided {
            by: by.into(),
            channel: channel.into(),
            decided_ms: now_ms,
        };
        // A refusal stays open until the agent has been told of it.
        next.state = if approve {
            next.expires_ms = now_ms.saturating_add(next.timeout_ms);
            State::Approved(decided)
        } else {
            State::Denied(decided)
        };
        if store.swap_approval(id, &json, &write(&next), false).await? {
            return Ok(next);
        }
    }
    Err(DecideError::Store(StoreError(format!(
        "approval request `{id}` kept changing under {ATTEMPTS} attempts"
    ))))
}

/// Why an answer given in band cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InBandError {
    /// The request state names no request, or one for another call (tampered with, or for
    /// other arguments).
    #[error("the approval state sent back names no request for this call")]
    Mismatch,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The client's answer to request `id` (which Tollgate asked it in band), for the call `ask`:
/// record it, then see where the call stands. The request must be for exactly this call.
pub async fn answered(
    store: &dyn ApprovalStore,
    ask_: &Ask<'_>,
    id: &str,
    approve: bool,
    by: &str,
    now_ms: u64,
) -> Result<Answer, InBandError> {
    let arguments_sha256 = arguments_sha256(ask_.arguments);
    let expected = binding(ask_, &arguments_sha256);
    match get(store, id).await? {
        Some(a) if a.binding == expected => {}
        // The same call, asked about by another rule: this rule asks on its own.
        Some(a)
            if (a.server.as_str(), a.tool.as_str(), a.caller.as_str())
                == (ask_.server, ask_.tool, ask_.caller)
                && a.arguments_sha256 == arguments_sha256 =>
        {
            return Ok(ask(store, ask_, now_ms).await?)
        }
        _ => return Err(InBandError::Mismatch),
    }
    match decide(store, id, approve, by, "client", now_ms).await {
        Ok(_) | Err(DecideError::NotPending { .. }) => {}
        Err(DecideError::NotFound(_) | DecideError::OwnCall { .. }) => {
            return Err(InBandError::Mismatch)
        }
        Err(DecideError::Store(e)) => return Err(e.into()),
    }
    if !approve {
        // The user said no: this call does not go through, whatever else was decided.
        let json = store.approval(id).await?.ok_or(InBandError::Mismatch)?;
        let refused = read(&json)?;
        if matches!(refused.state, State::Denied(_)) {
            // Told now: calling again asks again.
            store.swap_approval(id, &json, &json, true).await?;
        }
        return Ok(Answer::Denied(refused));
    }
    Ok(ask(store, ask_, now_ms).await?)
}

/// Request `id`, if the store keeps it.
pub async fn get(store: &dyn ApprovalStore, id: &str) -> Result<Option<Approval>, StoreError> {
    store.approval(id).await?.as_deref().map(read).transpose()
}

/// The most recent requests, newest first.
pub async fn list(store: &dyn ApprovalStore, limit: usize) -> Result<Vec<Approval>, StoreError> {
    store
        .approvals(limit)
        .await?
        .iter()
        .map(|json| read(json))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryStore;

    fn transfer(amount: u64) -> String {
        format!(r#"{{"to": "ACME", "amount": {amount}}}"#)
    }

    fn asking(arguments: &str) -> Ask<'_> {
        Ask {
            server: "bank",
            tool: "transfer",
            caller: "agent",
            arguments,
            rule: "tools.transfer.rules[0]",
            rule_version: "v1",
            message: "Transfer?",
            timeout_ms: 60_000,
        }
    }

    #[tokio::test]
    async fn an_approval_lets_exactly_that_call_through_once() {
        let store = MemoryStore::new();
        let args = transfer(250);
        let Answer::Pending { approval, new } = ask(&store, &asking(&args), 1_000).await.unwrap()
        else {
            panic!("a first ask is pending")
        };
        assert!(new);
        let again = ask(&store, &asking(&args), 2_000).await.unwrap();
        assert_eq!(
            again,
            Answer::Pending {
                approval: approval.clone(),
                new: false
            },
            "asking again waits on the same request"
        );
        let reordered = r#"{"amount":250,"to":"ACME"}"#;
        let other = transfer(251);
        decide(&store, &approval.id, true, "ops", "operator", 3_000)
            .await
            .unwrap();
        assert!(
            matches!(
                ask(&store, &asking(&other), 4_000).await.unwrap(),
                Answer::Pending { new: true, .. }
            ),
            "other arguments are another request"
        );
        let Answer::Granted(granted) = ask(&store, &asking(reordered), 4_000).await.unwrap() else {
            panic!("the same arguments in another key order are the same call")
        };
        assert_eq!(granted.id, approval.id);
        assert!(
            matches!(
                ask(&store, &asking(&args), 4_000).await.unwrap(),
                Answer::Granted(_)
            ),
            "granted until it is used"
        );
        assert!(consume(&store, &granted, 4_500).await.unwrap());
        assert!(
            !consume(&store, &granted, 4_600).await.unwrap(),
            "used once"
        );
        assert!(
            matches!(
                ask(&store, &asking(&args), 5_000).await.unwrap(),
                Answer::Pending { new: true, .. }
            ),
            "an approval is used once"
        );
        let err = decide(&store, &approval.id, true, "ops", "operator", 6_000)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "approval request `{}` is used, not pending: only a pending request can be decided",
                approval.id
            )
        );
    }

    #[tokio::test]
    async fn refusals_and_timeouts_are_told_once_and_then_asked_again() {
        let store = MemoryStore::new();
        let args = transfer(500);
        let Answer::Pending { approval, .. } = ask(&store, &asking(&args), 0).await.unwrap() else {
            panic!()
        };
        decide(&store, &approval.id, false, "ops", "operator", 1)
            .await
            .unwrap();
        assert!(matches!(
            ask(&store, &asking(&args), 2).await.unwrap(),
            Answer::Denied(_)
        ));
        let Answer::Pending {
            approval,
            new: true,
        } = ask(&store, &asking(&args), 3).await.unwrap()
        else {
            panic!("after a refusal, a new request")
        };
        assert!(matches!(
            ask(&store, &asking(&args), 3 + 60_000).await.unwrap(),
            Answer::Expired(a) if a.id == approval.id
        ));
        assert!(matches!(
            decide(&store, &approval.id, true, "ops", "operator", 3 + 60_001).await,
            Err(DecideError::NotPending {
                state: "expired",
                ..
            })
        ));
        assert!(matches!(
            decide(&store, "ap-nope", true, "ops", "operator", 0).await,
            Err(DecideError::NotFound(_))
        ));
        let listed = list(&store, 10).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].id, approval.id, "newest first");
    }

    #[tokio::test]
    async fn an_approval_not_used_in_time_expires() {
        let store = MemoryStore::new();
        let args = transfer(101);
        let Answer::Pending { approval, .. } = ask(&store, &asking(&args), 0).await.unwrap() else {
            panic!()
        };
        decide(&store, &approval.id, true, "ops", "operator", 50_000)
            .await
            .unwrap();
        let Answer::Granted(granted) = ask(&store, &asking(&args), 50_000 + 59_999).await.unwrap()
        else {
            panic!("usable for the timeout from the decision")
        };
        assert!(consume(&store, &granted, 50_000 + 59_999).await.unwrap());
        let Answer::Pending { approval, .. } = ask(&store, &asking(&args), 200_000).await.unwrap()
        else {
            panic!()
        };
        decide(&store, &approval.id, true, "ops", "operator", 200_001)
            .await
            .unwrap();
        assert!(matches!(
            ask(&store, &asking(&args), 200_001 + 60_000).await.unwrap(),
            Answer::Expired(_)
        ));
    }
}
