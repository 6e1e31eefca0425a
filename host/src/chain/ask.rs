//! A rule's `ask` verdict: the call goes on only with a person's approval of exactly this call,
//! kept in the state store ([`crate::approval`]). Whose answer counts is the rule's choice
//! (`channels`):
//! - `client`: where the request can ask its user in band (its client declared elicitation),
//!   the agent's client is asked — through an
//!   `input_required` result whose retry carries the answer, or a request of Tollgate's own
//!   while the call waits (see `proxy::session`);
//! - `operator`: the agent is answered at once that the call waits (with the request's id and
//!   when to try again); an operator decides with `tollgate approvals`, and the retry with the
//!   same arguments goes through once.
//!
//! An operator's decision is never waited for: the agent is answered at once. Every failure
//! denies, each with its own code: no
//! store, a store that cannot be reached, a refusal, a cancelled question, an expired request,
//! an answer for another call.

use super::{Chain, ChainRule, Denial};
use crate::approval::{self, Answer, Approval};
use crate::engine::CallInput;

pub use tollgate_sdk::codes::{
    APPROVAL_CANCELLED, APPROVAL_DENIED, APPROVAL_EXPIRED, APPROVAL_PENDING, APPROVAL_REQUIRED,
    APPROVAL_STATE_INVALID,
};

/// What a request offers for asking in band.
#[derive(Debug, Clone, Default)]
pub struct InBand {
    /// Its client can ask its user: it declared the `elicitation` capability (on the request in
    /// 2026-07-28, at `initialize` before), and the transport can carry the question.
    pub can_ask: bool,
    /// The client's answer to a question Tollgate asked, carried by this retry.
    pub answer: Option<ClientAnswer>,
    /// The transport can hold the call while an operator decides (and this is not the call
    /// decided again after such a wait).
    pub can_wait: bool,
}

/// The client's answer to an approval question, as its retry carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAnswer {
    /// The user approved request `0`.
    Approved(String),
    /// The user refused request `0`.
    Declined(String),
    /// The user dismissed the question for request `0`.
    Cancelled(String),
    /// Nobody answered the question for request `0` before the request expired.
    TimedOut(String),
    /// The state or the answer could not be read.
    Unreadable(String),
}

/// A question for the agent's client to put to its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientQuestion {
    /// The approval request the answer goes to.
    pub approval: String,
    /// What the user is asked.
    pub message: String,
    /// The asking rule.
    pub rule: String,
    /// When the request expires (ms since the epoch): a call held for the answer is answered
    /// then.
    pub expires_ms: u64,
}

/// A call to hold while an operator decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitFor {
    /// The approval request decided.
    pub approval: String,
    /// When to stop waiting (ms since the epoch) and decide the call again.
    pub until_ms: u64,
    /// What the person is asked.
    pub message: String,
}

/// Why an ask did not let the call through.
pub(super) enum Held {
    /// Answer the agent with this denial.
    Denied(Denial),
    /// Ask the client's user.
    AskClient(ClientQuestion),
    /// Wait for an operator.
    Wait(WaitFor),
}

impl Chain {
    /// Use an approval given for `call`, or say where its request stands.
    pub(super) async fn ask(
        &self,
        call: &CallInput,
        rule: &ChainRule,
        message: &str,
        timeout_ms: Option<u64>,
        in_band: &InBand,
    ) -> Result<Approval, Held> {
        let deny = |reason: String, code: &str, approval: Option<&str>| {
            Held::Denied(denial(rule, reason, code, approval))
        };
        let channels = rule.ask_channels;
        let Some(store) = self.counters.approvals() else {
            return Err(deny(
                format!(
                    "{message} (this call needs a person's approval, and the state store {} keeps no approval requests)",
                    self.counters.describe()
                ),
                APPROVAL_REQUIRED,
                None,
            ));
        };
        let in_band_now = channels.client && in_band.can_ask;
        if !in_band_now && !channels.operator {
            return Err(deny(
                format!("{message} (this call needs the approval of the client's user, and this request cannot ask its user: its client did not declare elicitation)"),
                APPROVAL_REQUIRED,
                None,
            ));
        }
        let ask = approval::Ask {
            server: &self.server,
            tool: &call.tool,
            caller: &call.caller,
            arguments: &call.arguments,
            rule: &rule.label,
            rule_version: &rule.version,
            message,
            timeout_ms: timeout_ms.map_or(rule.ask_timeout_ms, |t| t.min(rule.ask_timeout_ms)),
        };
        let now = self.counters.now_ms();
        let answer = match in_band.answer.as_ref().filter(|_| channels.client) {
            None => approval::ask(store, &ask, now).await,
            Some(ClientAnswer::Unreadable(why)) => {
                crate::metrics::approval("state_invalid", "client");
                return Err(deny(
                    format!("{message} The answer to the approval question could not be read ({why}); call again to be asked again."),
                    APPROVAL_STATE_INVALID,
                    None,
                ));
            }
            Some(ClientAnswer::TimedOut(id)) => {
                crate::metrics::approval("expired", "client");
                return Err(deny(
                    format!("{message} Nobody answered the question in time (request {id}); call again to be asked again."),
                    APPROVAL_EXPIRED,
                    Some(id),
                ));
            }
            Some(ClientAnswer::Cancelled(id)) => {
                crate::metrics::approval("cancelled", "client");
                return Err(deny(
                    format!("{message} The question was dismissed without an answer (request {id}); call again to be asked again."),
                    APPROVAL_CANCELLED,
                    Some(id),
                ));
            }
            Some(ClientAnswer::Approved(id) | ClientAnswer::Declined(id)) => {
                let approve = matches!(in_band.answer, Some(ClientAnswer::Approved(_)));
                match approval::answered(store, &ask, id, approve, "client elicitation", now).await
                {
                    Ok(answer) => Ok(answer),
                    Err(approval::InBandError::Mismatch) => {
                        crate::metrics::approval("state_invalid", "client");
                        return Err(deny(
                            format!("{message} The approval state sent back is not for this call (request {id}); call again to be asked again."),
                            APPROVAL_STATE_INVALID,
                            None,
                        ));
                    }
                    Err(approval::InBandError::Store(e)) => Err(e),
                }
            }
        };
        let outcome = match &answer {
            Ok(Answer::Granted(_)) => "granted",
            Ok(Answer::Pending { new: true, .. }) => "requested",
            Ok(Answer::Pending { new: false, .. }) => "waiting",
            Ok(Answer::Denied(_)) => "denied",
            Ok(Answer::Expired(_)) => "expired",
            Err(_) => "store_failed",
        };
        let channel = match &answer {
            Ok(Answer::Granted(a) | Answer::Denied(a)) => a.channel(),
            _ if in_band_now => "client",
            _ => "operator",
        };
        // A granted approval is counted when it is used (`use_approvals`).
        if outcome != "granted" {
            crate::metrics::approval(outcome, channel);
        }
        match answer {
            Ok(Answer::Granted(approval)) => {
                tracing::info!(id = %approval.id, tool = %call.tool, "approved call goes through");
                Ok(approval)
            }
            Ok(Answer::Pending { approval, .. }) if in_band_now => {
                Err(Held::AskClient(ClientQuestion {
                    approval: approval.id,
                    message: message.into(),
                    rule: rule.label.clone(),
                    expires_ms: approval.expires_ms,
                }))
            }
            Ok(Answer::Pending { approval, new }) => {
                if new {
                    tracing::warn!(id = %approval.id, tool = %call.tool, caller = %call.caller, %message, "approval requested: tollgate approvals approve {}", approval.id);
                    if let Some(webhook) = &self.webhook {
                        webhook.notify(&approval);
                    }
                }
                if rule.ask_wait_ms > 0 && in_band.can_wait {
                    return Err(Held::Wait(WaitFor {
                        until_ms: approval.expires_ms.min(now.saturating_add(rule.ask_wait_ms)),
                        approval: approval.id,
                        message: message.into(),
                    }));
                }
                let left = approval.expires_ms.saturating_sub(now).div_ceil(1000);
                Err(deny(
                    format!(
                        "{message} This call waits for a person's approval (request {}, open for {left} more seconds). Call again with the same arguments once it is approved; other arguments need an approval of their own.",
                        approval.id
                    ),
                    APPROVAL_PENDING,
                    Some(&approval.id),
                ))
            }
            Ok(Answer::Denied(approval)) => {
                let by = match &approval.state {
                    approval::State::Denied(d) => d.by.as_str(),
                    _ => "a person",
                };
                Err(deny(
                    format!(
                        "{message} Refused by {by} (request {}). Do not retry it unchanged; calling again asks again.",
                        approval.id
                    ),
                    APPROVAL_DENIED,
                    Some(&approval.id),
                ))
            }
            Ok(Answer::Expired(approval)) => Err(deny(
                format!(
                    "{message} Nobody approved this call in time (request {} expired after {} seconds). Calling again asks again.",
                    approval.id,
                    approval.timeout_ms / 1000
                ),
                APPROVAL_EXPIRED,
                Some(&approval.id),
            )),
            Err(e) => Err(deny(
                format!("{message} This call needs a person's approval, and the approval store failed: {e}"),
                tollgate_sdk::codes::STATE_UNAVAILABLE,
                None,
            )),
        }
    }

    /// Use up the approvals `granted` for a call every rule lets through. One that another call
    /// used first (two retries at once), or that changed meanwhile, stops this call.
    pub(super) async fn use_approvals(
        &self,
        granted: Vec<(Approval, &ChainRule)>,
    ) -> Result<Vec<Approval>, Denial> {
        let mut used = Vec::with_capacity(granted.len());
        for (approval, rule) in granted {
            let denial =
                |reason: String, code: &str| denial(rule, reason, code, Some(&approval.id));
            let Some(store) = self.counters.approvals() else {
                return Err(denial(
                    "the approval store is gone".into(),
                    tollgate_sdk::codes::STATE_UNAVAILABLE,
                ));
            };
            match approval::consume(store, &approval, self.counters.now_ms()).await {
                Ok(true) => {
                    crate::metrics::approval("used", approval.channel());
                    used.push(approval);
                }
                Ok(false) => {
                    return Err(denial(
                        format!("{} The approval (request {}) was used by another call with the same arguments; calling again asks again.", approval.message, approval.id),
                        APPROVAL_PENDING,
                    ))
                }
                Err(e) => {
                    return Err(denial(
                        format!("{} The approval store failed: {e}", approval.message),
                        tollgate_sdk::codes::STATE_UNAVAILABLE,
                    ))
                }
            }
        }
        Ok(used)
    }

    /// What a dry run reports for an `ask`: the call would have waited for a person.
    pub(super) fn would_ask(&self, rule: &ChainRule, message: &str) -> Denial {
        denial(
            rule,
            format!("would ask a person: {message}"),
            APPROVAL_REQUIRED,
            None,
        )
    }
}

/// `rule`'s denial of a call that needs approval: code `code`, about request `approval`; a
/// pending one says when to try again.
fn denial(rule: &ChainRule, reason: String, code: &str, approval: Option<&str>) -> Denial {
    let retry_after_ms = (code == APPROVAL_PENDING).then_some(approval::RETRY_AFTER_MS);
    Denial {
        approval: approval.map(str::to_string),
        ..rule.denial(reason, code.into(), retry_after_ms)
    }
}
