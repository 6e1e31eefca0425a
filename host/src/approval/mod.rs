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

mod record;
pub mod webhook;

use record::{read, write};
pub use record::{Approval, Decided, State};
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
mod tests;
