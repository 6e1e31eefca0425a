//! Verdicts and the helpers that build them.

use serde_json::Value;

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Shown to the agent as `Denied by policy: <reason>`.
    pub reason: String,
    /// Machine-readable code, e.g. `denied`, `rate_limited`, `invalid_arguments`.
    pub code: String,
    /// For rate limits: when a retry can succeed, in milliseconds.
    pub retry_after_ms: Option<u64>,
}

/// A request for a person's approval of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    /// What the person is asked, e.g. `Transfer 250 EUR to ACME Ltd?`.
    pub message: String,
    /// How long the request may stay open, in milliseconds (the policy decides when `None`).
    pub timeout_ms: Option<u64>,
}

/// A plugin's decision on a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Let the call through.
    Allow,
    /// Refuse it.
    Deny(Denial),
    /// Let it through with these arguments instead (a JSON object).
    Rewrite(Value),
    /// Let it through only once a person approves it.
    Ask(ApprovalRequest),
}

impl Verdict {
    /// True for [`Verdict::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow)
    }

    /// True for [`Verdict::Deny`].
    pub fn is_deny(&self) -> bool {
        matches!(self, Verdict::Deny(_))
    }

    /// True for [`Verdict::Ask`].
    pub fn is_ask(&self) -> bool {
        matches!(self, Verdict::Ask(_))
    }

    /// The denial, if this is one.
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            Verdict::Deny(d) => Some(d),
            _ => None,
        }
    }
}

/// A plugin's decision on a tool result.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultVerdict {
    /// Leave the result as it is.
    Pass,
    /// Replace it with this `CallToolResult` object.
    Replace(Value),
    /// Withhold it: the agent gets this denial instead.
    Deny(Denial),
}

/// Allow the call.
pub fn allow() -> Verdict {
    Verdict::Allow
}

/// Deny the call with code [`codes::DENIED`](crate::codes::DENIED) and this reason.
pub fn deny(reason: impl Into<String>) -> Verdict {
    deny_with(crate::codes::DENIED, reason, None)
}

/// Deny the call with a code, a reason and optionally a retry delay in milliseconds.
pub fn deny_with(
    code: impl Into<String>,
    reason: impl Into<String>,
    retry_after_ms: Option<u64>,
) -> Verdict {
    Verdict::Deny(Denial {
        reason: reason.into(),
        code: code.into(),
        retry_after_ms,
    })
}

/// Forward the call with these arguments instead of the agent's.
pub fn rewrite(arguments: Value) -> Verdict {
    Verdict::Rewrite(arguments)
}

/// Forward the call only once a person approves it; `message` is what they are asked.
pub fn ask(message: impl Into<String>) -> Verdict {
    Verdict::Ask(ApprovalRequest {
        message: message.into(),
        timeout_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_build_the_expected_verdicts() {
        assert!(allow().is_allow());
        let d = deny("no");
        assert_eq!(d.denial().map(|d| d.code.as_str()), Some("denied"));
        let r = deny_with("rate_limited", "slow down", Some(1500));
        assert_eq!(r.denial().and_then(|d| d.retry_after_ms), Some(1500));
        assert!(!rewrite(serde_json::json!({})).is_deny());
        let a = ask("Send 500 EUR?");
        assert!(a.is_ask() && !a.is_allow() && !a.is_deny());
    }
}
