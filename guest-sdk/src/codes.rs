//! Denial codes: the words a denial carries (`Denial::code`), which agents read in the result's
//! `_meta` and which the host maps to JSON-RPC error codes for rules with `deny_as: error`
//! (`-32001` … `-32011`, in this order). The host takes these constants from here, so the
//! plugins' words and the host's mapping cannot drift apart. A plugin may use a code of its own
//! (`path_not_allowed`); it reaches the agent as written, and as JSON-RPC code `-32000`.

/// A rule refused the call.
pub const DENIED: &str = "denied";
/// A limit is reached; the denial says when to retry.
pub const RATE_LIMITED: &str = "rate_limited";
/// The arguments do not have the shape the policy requires.
pub const INVALID_ARGUMENTS: &str = "invalid_arguments";
/// A plugin failed (trapped, ran out of time, fuel or memory, or answered nonsense): the call is
/// refused, as every policy failure is.
pub const POLICY_ERROR: &str = "policy_error";
/// The state store (counters, approvals) could not be reached: refused rather than unchecked.
pub const STATE_UNAVAILABLE: &str = "state_unavailable";
/// The call needs a person's approval and none can be asked for here.
pub const APPROVAL_REQUIRED: &str = "approval_required";
/// The call waits for a person's decision.
pub const APPROVAL_PENDING: &str = "approval_pending";
/// A person refused the call.
pub const APPROVAL_DENIED: &str = "approval_denied";
/// Nobody decided in time, or the approval was not used in time.
pub const APPROVAL_EXPIRED: &str = "approval_expired";
/// The client's user dismissed the question without answering.
pub const APPROVAL_CANCELLED: &str = "approval_cancelled";
/// A retry whose approval state names no request for this call.
pub const APPROVAL_STATE_INVALID: &str = "approval_state_invalid";

/// Every code above, in the order of their JSON-RPC codes (`-32001` first).
pub const ALL: [&str; 11] = [
    DENIED,
    RATE_LIMITED,
    INVALID_ARGUMENTS,
    POLICY_ERROR,
    STATE_UNAVAILABLE,
    APPROVAL_REQUIRED,
    APPROVAL_PENDING,
    APPROVAL_DENIED,
    APPROVAL_EXPIRED,
    APPROVAL_CANCELLED,
    APPROVAL_STATE_INVALID,
];
