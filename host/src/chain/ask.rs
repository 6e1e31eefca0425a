//! A rule's `ask` verdict: the call goes on only with a person's approval of exactly this call,
//! kept in the state store ([`crate::approval`]). Until one is given the agent is answered at
//! once — the request is pending (with its id and when to try again), refused, or expired — so
//! no call hangs past a client's timeout; its retry with the same arguments goes through once
//! approved. Every failure denies: no store, a store that cannot be reached, a record that
//! cannot be read.

use super::{Chain, ChainRule, Denial};
use crate::approval::{self, Answer, Approval};
use crate::engine::CallInput;

/// A call that needs approval where no approval can be kept (the state store keeps none).
pub const APPROVAL_REQUIRED: &str = "approval_required";
/// A call waiting for a person's decision.
pub const APPROVAL_PENDING: &str = "approval_pending";
/// A call a person refused.
pub const APPROVAL_DENIED: &str = "approval_denied";
/// A call nobody decided in time, or whose approval was not used in time.
pub const APPROVAL_EXPIRED: &str = "approval_expired";

impl Chain {
    /// Use an approval given for `call`, or deny it saying where its request stands.
    pub(super) async fn ask(
        &self,
        call: &CallInput,
        rule: &ChainRule,
        message: &str,
        timeout_ms: Option<u64>,
    ) -> Result<Approval, Denial> {
        let deny = |reason: String, code: &str, approval: Option<&Approval>| Denial {
            reason,
            code: code.into(),
            rule: rule.label.clone(),
            plugin: rule.bound.name().to_string(),
            retry_after_ms: (code == APPROVAL_PENDING).then_some(approval::RETRY_AFTER_MS),
            deny_as: rule.deny_as,
            approval: approval.map(|a| a.id.clone()),
        };
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
        let answer = approval::ask(store, &ask, now).await;
        let outcome = match &answer {
            Ok(Answer::Granted(_)) => "used",
            Ok(Answer::Pending { new: true, .. }) => "requested",
            Ok(Answer::Pending { new: false, .. }) => "waiting",
            Ok(Answer::Denied(_)) => "denied",
            Ok(Answer::Expired(_)) => "expired",
            Err(_) => "store_failed",
        };
        let channel = match &answer {
            Ok(Answer::Granted(a) | Answer::Denied(a)) => a.channel(),
            _ => "operator",
        };
        crate::metrics::approval(outcome, channel);
        match answer {
            Ok(Answer::Granted(approval)) => {
                tracing::info!(id = %approval.id, tool = %call.tool, "approved call goes through");
                Ok(approval)
            }
            Ok(Answer::Pending { approval, new }) => {
                if new {
                    tracing::warn!(id = %approval.id, tool = %call.tool, caller = %call.caller, %message, "approval requested: tollgate approvals approve {}", approval.id);
                }
                let left = approval.expires_ms.saturating_sub(now).div_ceil(1000);
                Err(deny(
                    format!(
                        "{message} This call waits for a person's approval (request {}, open for {left} more seconds). Call again with the same arguments once it is approved; other arguments need an approval of their own.",
                        approval.id
                    ),
                    APPROVAL_PENDING,
                    Some(&approval),
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
                    Some(&approval),
                ))
            }
            Ok(Answer::Expired(approval)) => Err(deny(
                format!(
                    "{message} Nobody approved this call in time (request {} expired after {} seconds). Calling again asks again.",
                    approval.id,
                    approval.timeout_ms / 1000
                ),
                APPROVAL_EXPIRED,
                Some(&approval),
            )),
            Err(e) => Err(deny(
                format!("{message} This call needs a person's approval, and the approval store failed: {e}"),
                "state_unavailable",
                None,
            )),
        }
    }

    /// What a dry run reports for an `ask`: the call would have waited for a person.
    pub(super) fn would_ask(&self, rule: &ChainRule, message: &str) -> Denial {
        Denial {
            reason: format!("would ask a person: {message}"),
            code: APPROVAL_REQUIRED.into(),
            rule: rule.label.clone(),
            plugin: rule.bound.name().to_string(),
            retry_after_ms: None,
            deny_as: rule.deny_as,
            approval: None,
        }
    }
}
