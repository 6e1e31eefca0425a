//! The call a rule decides and the verdicts it gives, in the host's terms, converted from each
//! contract version's types and checked before the chain acts on them.

use super::bindings::{v0_1, v0_2};
use super::plugin::Failure;

/// The call a plugin decides, in the host's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInput {
    /// Tool name.
    pub tool: String,
    /// Arguments as JSON object text.
    pub arguments: String,
    /// Upstream server name.
    pub server: String,
    /// Caller identity.
    pub caller: String,
    /// Extra key/value facts (`protocol-version`, `client-name`, the request's `_meta` strings).
    pub metadata: Vec<(String, String)>,
}

/// Converts a [`CallInput`] to one contract version's `call` record (the same fields in each).
macro_rules! to_wit_call {
    ($v:ident, $call:expr) => {
        $v::tollgate::policy::types::Call {
            tool: $call.tool.clone(),
            arguments: $call.arguments.clone(),
            server: $call.server.clone(),
            caller: $call.caller.clone(),
            metadata: $call.metadata.clone(),
        }
    };
}
pub(super) use to_wit_call;

/// A rule's verdict on a call, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let the call through.
    Allow,
    /// Refuse it.
    Deny {
        /// Told to the agent.
        reason: String,
        /// Machine-readable code.
        code: String,
        /// Retry delay for rate limits.
        retry_after_ms: Option<u64>,
    },
    /// Forward with these arguments (a JSON object, already checked).
    Rewrite(String),
    /// Forward only once a person approves (contract 0.2).
    Ask {
        /// What the person is asked.
        message: String,
        /// How long the request may stay open, if the plugin says.
        timeout_ms: Option<u64>,
    },
}

/// A rule's verdict on a tool result, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reviewed {
    /// Leave the result as it is.
    Pass,
    /// Replace it with this `CallToolResult` (a JSON object, already checked).
    Replace(String),
    /// Withhold it: the agent gets this denial instead (contract 0.2).
    Deny {
        /// Told to the agent.
        reason: String,
        /// Machine-readable code.
        code: String,
    },
}

pub(super) fn from_v0_1(v: v0_1::tollgate::policy::types::Verdict) -> Verdict {
    use v0_1::tollgate::policy::types::Verdict as V;
    match v {
        V::Allow => Verdict::Allow,
        V::Deny(d) => Verdict::Deny {
            reason: d.reason,
            code: d.code,
            retry_after_ms: d.retry_after_ms,
        },
        V::Rewrite(args) => Verdict::Rewrite(args),
    }
}

pub(super) fn from_v0_2(v: v0_2::tollgate::policy::types::Verdict) -> Verdict {
    use v0_2::tollgate::policy::types::Verdict as V;
    match v {
        V::Allow => Verdict::Allow,
        V::Deny(d) => Verdict::Deny {
            reason: d.reason,
            code: d.code,
            retry_after_ms: d.retry_after_ms,
        },
        V::Rewrite(args) => Verdict::Rewrite(args),
        V::Ask(a) => Verdict::Ask {
            message: a.message,
            timeout_ms: a.timeout_ms,
        },
    }
}

/// Check what the guest answered: a rewrite must be a JSON object, a denial must say why, an
/// approval request must say what it asks.
pub(super) fn validate(verdict: Verdict) -> Result<Verdict, Failure> {
    match verdict {
        Verdict::Deny { reason, code, .. }
            if reason.trim().is_empty() || code.trim().is_empty() =>
        {
            Err(Failure::Malformed(
                "a denial without a reason or code".into(),
            ))
        }
        Verdict::Ask { message, .. } if message.trim().is_empty() => Err(Failure::Malformed(
            "an approval request without a message".into(),
        )),
        Verdict::Rewrite(args) => match serde_json::from_str::<serde_json::Value>(&args) {
            Ok(serde_json::Value::Object(_)) => Ok(Verdict::Rewrite(args)),
            Ok(_) => Err(Failure::Malformed(
                "rewritten arguments that are not a JSON object".into(),
            )),
            Err(e) => Err(Failure::Malformed(format!(
                "rewritten arguments that are not JSON ({e})"
            ))),
        },
        other => Ok(other),
    }
}

/// Check a result verdict: a replacement must be a JSON object, a denial must say why.
pub(super) fn validate_review(reviewed: Reviewed) -> Result<Reviewed, Failure> {
    match reviewed {
        Reviewed::Replace(json) => match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(serde_json::Value::Object(_)) => Ok(Reviewed::Replace(json)),
            _ => Err(Failure::Malformed(
                "a replacement result that is not a JSON object".into(),
            )),
        },
        Reviewed::Deny { reason, code } if reason.trim().is_empty() || code.trim().is_empty() => {
            Err(Failure::Malformed(
                "a result denial without a reason or code".into(),
            ))
        }
        other => Ok(other),
    }
}
