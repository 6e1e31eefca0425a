//! After the server answers an allowed call: rules that look at results pass, replace or deny
//! the result, and the call's counter reservations are committed or refunded.

use super::{Chain, Denial};
use crate::engine::{CallInput, Reviewed};
use crate::state::Reservation;

/// What the server's answer to an allowed call was (in a test case's `upstream:`, `success`,
/// `error_result` or `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerOutcome {
    /// A result without `isError`: the call's reservations are committed.
    #[default]
    Success,
    /// A result with `isError: true`: refunded unless the rule says
    /// `refund_on_error_result: false`.
    ErrorResult,
    /// A JSON-RPC error, or no answer at all: reservations are refunded.
    #[serde(rename = "error")]
    Failed,
}

/// Reservations of an allowed call, to settle when the server answers.
#[derive(Debug, Default)]
pub struct Ticket {
    pub(super) reservations: Vec<(Reservation, bool)>,
}

impl Ticket {
    /// Whether there is nothing to settle.
    pub fn is_empty(&self) -> bool {
        self.reservations.is_empty()
    }
}

impl Chain {
    /// Whether any rule for `tool` looks at results (then the session keeps the call to pass
    /// its result through [`Chain::check_result`]).
    pub fn checks_results(&self, tool: &str) -> bool {
        self.rules_for(tool).any(|r| r.checks_results)
    }

    /// Let the rules that look at results pass or replace a tool result (JSON text), in rule
    /// order, each seeing the previous one's replacement. `Ok(None)`: unchanged. A plugin that
    /// fails here fails closed: the agent gets a `policy_error` denial instead of a result that
    /// was not checked.
    pub async fn check_result(
        &self,
        call: &CallInput,
        result_json: &str,
    ) -> Result<Option<String>, Denial> {
        let mut current: Option<String> = None;
        for rule in self.rules_for(&call.tool).filter(|r| r.checks_results) {
            let seen = current.as_deref().unwrap_or(result_json);
            let started = std::time::Instant::now();
            let checked = rule.bound.check_result(call, seen).await;
            rule.latency.observe(started.elapsed());
            match checked {
                Ok(Reviewed::Replace(replaced)) => current = Some(replaced),
                Ok(Reviewed::Pass) => {}
                Ok(Reviewed::Deny { reason, code }) => return Err(rule.denial(reason, code, None)),
                Err(e) => return Err(rule.failed(e)),
            }
        }
        Ok(current)
    }

    /// Commit or refund an allowed call's reservations once the server has answered.
    pub async fn settle(&self, ticket: Ticket, outcome: ServerOutcome) {
        let refunded =
            ticket
                .reservations
                .into_iter()
                .filter(|(_, on_error_result)| match outcome {
                    ServerOutcome::Success => false,
                    ServerOutcome::ErrorResult => *on_error_result,
                    ServerOutcome::Failed => true,
                });
        self.refund(refunded.map(|(r, _)| r)).await;
    }

    pub(super) async fn refund(&self, reservations: impl Iterator<Item = Reservation>) {
        for r in reservations {
            if let Err(e) = self.counters.refund(&r).await {
                tracing::warn!(error = %e, key = %r.request.key, "could not refund a counter reservation");
            }
        }
    }
}
