//! One request for approval as the store keeps it: its fields and where it stands. Only this
//! module's parent moves records from state to state.

use crate::state::StoreError;
use serde::{Deserialize, Serialize};

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
    /// The arguments, for the person deciding (cut after [`super::SHOWN_ARGUMENTS`] bytes).
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

/// A record as the store keeps it, read.
pub(super) fn read(json: &str) -> Result<Approval, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError(format!("an approval record this Tollgate cannot read: {e}")))
}

/// A record as the store keeps it.
pub(super) fn write(approval: &Approval) -> String {
    serde_json::to_string(approval).expect("an approval serialises")
}
