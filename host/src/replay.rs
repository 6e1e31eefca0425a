//! `tollgate test POLICY CASES`: replay recorded calls through a loaded [`Chain`] and compare each
//! decision with the expected one.
//!
//! ```yaml
//! cases:
//!   - name: a regular number is allowed
//!     tool: send_message
//!     arguments: { to: "+15551234567", body: hi }
//!     expect: allow
//!     upstream: success            # what the server answers: success | error | error_result
//!     result: { content: [{ type: text, text: "SSN 123-45-6789" }] }   # optional: its result,
//!     expect_result: { content: [{ type: text, text: "SSN [redacted]" }] }  # and what the agent
//!                                  # gets after redact / check-result rules
//!   - name: the fourth message a minute is refused
//!     tool: send_message
//!     arguments: { to: "+15551234567", body: hi }
//!     expect: deny
//!     code: rate_limited
//!     reason_contains: "rate limit"
//!   - name: a large transfer goes through once a person approves it
//!     tool: transfer
//!     arguments: { amount: 250, to: ACME }
//!     approve: yes                 # how a person answers the request: yes | no | timeout
//!     expect: allow                # what the call made again then gets
//! ```
//!
//! Cases run in order against one chain, so counters carry from case to case; an allowed call is
//! settled with its `upstream` answer (a success commits its reservations, an error refunds them).
//! Counters live in a [`ReplayStore`]: in memory, on a clock that stands still at midnight
//! (UTC, 2025-01-01) and moves only when a case says `wait: SECONDS`, so rate-limit windows never
//! roll over in the middle of a run and the results are the same on every run.

mod store;

use crate::chain::{Chain, Decision, ServerOutcome};
use crate::engine::CallInput;
use crate::state::CounterStore;
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write as _;
pub use store::ReplayStore;

/// A file of cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// The cases, run in order.
    pub cases: Vec<Case>,
}

/// One recorded call and what the policy should decide.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case checks, shown in the report.
    pub name: String,
    /// The tool called.
    pub tool: String,
    /// The call's arguments (default `{}`).
    #[serde(default)]
    pub arguments: Option<Value>,
    /// The caller identity plugins see (default `anonymous`, as in a session whose client gave
    /// no name).
    #[serde(default)]
    pub caller: Option<String>,
    /// The expected decision.
    pub expect: Expect,
    /// For `deny`: the expected denial code.
    #[serde(default)]
    pub code: Option<String>,
    /// For `deny`: text the reason must contain.
    #[serde(default)]
    pub reason_contains: Option<String>,
    /// For an allowed call: the server's answer, which settles the counters (default success).
    #[serde(default)]
    pub upstream: ServerOutcome,
    /// Seconds to move the replay clock forward before this call (e.g. past a rate-limit window).
    #[serde(default)]
    pub wait: Option<f64>,
    /// For an allowed call: the `CallToolResult` the server answers with, which rules that look
    /// at results (redact, plugins' check-result) then see.
    #[serde(default)]
    pub result: Option<Value>,
    /// The result the agent must get after those rules (e.g. redacted).
    #[serde(default)]
    pub expect_result: Option<Value>,
    /// How a person answers the approval request this call raises; the call is then made again
    /// and `expect` is what that retry gets. Without it, a call that asks is `deny` with code
    /// `approval_pending`.
    #[serde(default)]
    pub approve: Option<Approve>,
}

/// How a person answers an approval request in a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approve {
    /// Approves it: the retry goes through (once).
    #[serde(alias = "true")]
    Yes,
    /// Refuses it: the retry is denied with `approval_denied`.
    #[serde(alias = "false")]
    No,
    /// Never answers: the replay clock moves past its timeout, and the retry is denied with
    /// `approval_expired`.
    Timeout,
}

/// An expected decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Forwarded to the server.
    Allow,
    /// Answered with a denial.
    Deny,
    /// Answered as an unknown tool (hidden).
    Unknown,
}

impl Expect {
    fn word(self) -> &'static str {
        match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
            Expect::Unknown => "unknown",
        }
    }
}

/// What the chain decided, reduced to what a case can expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actual {
    /// allow, deny or unknown.
    pub decision: Expect,
    /// The denial's code.
    pub code: Option<String>,
    /// The denial's reason.
    pub reason: Option<String>,
    /// The rule that denied.
    pub rule: Option<String>,
    /// For a case with a `result`: what the agent gets after the result rules (or, if one
    /// failed, the failure).
    pub result: Option<Result<Value, String>>,
    /// Whether the call was held for approval (for cases that say how a person answers).
    pub asked: bool,
}

/// One case's outcome.
#[derive(Debug)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// What happened.
    pub actual: Actual,
}

impl Outcome {
    /// Whether the decision matched every expectation the case states.
    pub fn passed(&self) -> bool {
        self.decision_ok()
            && self.code_ok()
            && self.reason_ok()
            && self.result_ok()
            && self.asked_ok()
    }

    fn asked_ok(&self) -> bool {
        self.case.approve.is_none() || self.actual.asked
    }

    fn result_ok(&self) -> bool {
        match &self.case.expect_result {
            None => !matches!(self.actual.result, Some(Err(_))),
            Some(want) => matches!(&self.actual.result, Some(Ok(got)) if got == want),
        }
    }

    fn decision_ok(&self) -> bool {
        self.case.expect == self.actual.decision
    }

    fn code_ok(&self) -> bool {
        self.case.code.is_none() || self.case.code == self.actual.code
    }

    fn reason_ok(&self) -> bool {
        match &self.case.reason_contains {
            None => true,
            Some(want) => self
                .actual
                .reason
                .as_deref()
                .is_some_and(|r| r.contains(want)),
        }
    }

    /// The report line, and for a mismatch the expected-vs-actual diff under it.
    pub fn render(&self, index: usize) -> String {
        let mut out = String::new();
        if self.passed() {
            let _ = write!(out, "✓ {}. {}", index + 1, self.case.name);
            return out;
        }
        let _ = writeln!(
            out,
            "✗ {}. {}  ({} {})",
            index + 1,
            self.case.name,
            self.case.tool,
            self.case
                .arguments
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_else(|| "{}".into())
        );
        let none = || "(none)".to_string();
        let quote = |s: &str| format!("{s:?}");
        let mut line = |ok: bool, what: &str, expected: String, actual: String| {
            let mark = if ok { ' ' } else { '!' };
            let _ = writeln!(out, "    {mark} {what:<9} - expected: {expected}");
            let _ = writeln!(out, "    {mark} {:<9} + actual:   {actual}", "");
        };
        if self.case.approve.is_some() {
            line(
                self.asked_ok(),
                "approval",
                "asked for".into(),
                if self.actual.asked {
                    "asked for"
                } else {
                    "not asked for"
                }
                .into(),
            );
        }
        line(
            self.decision_ok(),
            "decision",
            self.case.expect.word().into(),
            self.actual.decision.word().into(),
        );
        if self.case.code.is_some() || self.actual.code.is_some() {
            line(
                self.code_ok(),
                "code",
                self.case.code.clone().unwrap_or_else(|| "(any)".into()),
                self.actual.code.clone().unwrap_or_else(none),
            );
        }
        if self.case.reason_contains.is_some() || self.actual.reason.is_some() {
            line(
                self.reason_ok(),
                "reason",
                self.case
                    .reason_contains
                    .as_deref()
                    .map(|r| format!("contains {}", quote(r)))
                    .unwrap_or_else(|| "(any)".into()),
                self.actual
                    .reason
                    .as_deref()
                    .map(quote)
                    .unwrap_or_else(none),
            );
        }
        if self.case.expect_result.is_some() || matches!(self.actual.result, Some(Err(_))) {
            line(
                self.result_ok(),
                "result",
                self.case
                    .expect_result
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_else(|| "(any)".into()),
                match &self.actual.result {
                    Some(Ok(v)) => v.to_string(),
                    Some(Err(e)) => format!("result check failed: {e}"),
                    None => none(),
                },
            );
        }
        if let Some(rule) = &self.actual.rule {
            let _ = writeln!(out, "      (denied by {rule})");
        }
        out.truncate(out.trim_end().len());
        out
    }
}

/// Parse a case file (YAML or JSON); errors carry the line where the parser knows it.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let file: CaseFile = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    for (i, case) in file.cases.iter().enumerate() {
        let at = |m: &str| format!("case {} ({}): {m}", i + 1, case.name);
        if let Some(args) = &case.arguments {
            if !args.is_object() {
                return Err(at("`arguments` must be an object"));
            }
        }
        if case.wait.is_some_and(|w| !(w.is_finite() && w >= 0.0)) {
            return Err(at("`wait` must be a number of seconds, 0 or more"));
        }
        if case.expect != Expect::Deny && (case.code.is_some() || case.reason_contains.is_some()) {
            return Err(at("`code` and `reason_contains` go with `expect: deny`"));
        }
        if case.expect != Expect::Allow && (case.result.is_some() || case.expect_result.is_some()) {
            return Err(at("`result` and `expect_result` go with `expect: allow`"));
        }
        if case.expect_result.is_some() && case.result.is_none() {
            return Err(at(
                "`expect_result` needs the server's `result` to start from",
            ));
        }
    }
    Ok(file.cases)
}

/// Run the cases in order through `chain`, settling allowed calls with their `upstream` answer.
/// `clock` is the store the chain was loaded with; `wait` moves it.
pub async fn run(chain: &Chain, clock: &ReplayStore, cases: &[Case]) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in cases {
        if let Some(secs) = case.wait {
            clock.advance((secs * 1000.0).round() as u64);
        }
        let call = CallInput {
            tool: case.tool.clone(),
            arguments: case
                .arguments
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_else(|| "{}".into()),
            server: chain.server().into(),
            caller: case.caller.clone().unwrap_or_else(|| "anonymous".into()),
            metadata: vec![],
        };
        let mut forwarded = call.clone();
        let mut decision = chain.decide(call.clone()).await;
        let mut asked = false;
        if let (Some(answer), Decision::Deny(d)) = (case.approve, &decision) {
            if let (crate::chain::APPROVAL_PENDING, Some(id)) = (d.code.as_str(), &d.approval) {
                asked = true;
                if let Err(e) = answer_request(clock, id, answer).await {
                    tracing::warn!(error = %e, "answering the approval request failed");
                }
                decision = chain.decide(call).await;
            }
        }
        let actual = match decision {
            Decision::Allow {
                ticket, arguments, ..
            } => {
                chain.settle(ticket, case.upstream).await;
                if let Some(a) = arguments {
                    forwarded.arguments = a;
                }
                let result = match &case.result {
                    None => None,
                    Some(r) => Some(match chain.check_result(&forwarded, &r.to_string()).await {
                        Ok(None) => Ok(r.clone()),
                        Ok(Some(replaced)) => {
                            serde_json::from_str(&replaced).map_err(|e| e.to_string())
                        }
                        Err(d) => Err(format!("{} ({})", d.reason, d.code)),
                    }),
                };
                Actual {
                    decision: Expect::Allow,
                    code: None,
                    reason: None,
                    rule: None,
                    result,
                    asked,
                }
            }
            Decision::Deny(d) => Actual {
                decision: Expect::Deny,
                code: Some(d.code),
                reason: Some(d.reason),
                rule: Some(d.rule),
                result: None,
                asked,
            },
            // Replayed calls are never held: `decide` never answers this.
            Decision::Wait(w) => Actual {
                decision: Expect::Deny,
                code: Some(crate::chain::APPROVAL_PENDING.into()),
                reason: Some(w.message),
                rule: None,
                result: None,
                asked,
            },
            // Replayed calls cannot ask in band: `decide` never answers this.
            Decision::AskClient(q) => Actual {
                decision: Expect::Deny,
                code: Some(crate::chain::APPROVAL_PENDING.into()),
                reason: Some(q.message),
                rule: Some(q.rule),
                result: None,
                asked,
            },
            Decision::Unknown => Actual {
                decision: Expect::Unknown,
                code: None,
                reason: None,
                rule: None,
                result: None,
                asked,
            },
        };
        outcomes.push(Outcome {
            case: case.clone(),
            actual,
        });
    }
    outcomes
}

/// Answer request `id` as a case says a person does.
async fn answer_request(
    clock: &ReplayStore,
    id: &str,
    answer: Approve,
) -> Result<(), crate::approval::DecideError> {
    let store = clock
        .inner
        .approvals()
        .expect("the memory store keeps approvals");
    let now = clock.now_ms();
    match answer {
        Approve::Yes | Approve::No => {
            let approve = answer == Approve::Yes;
            crate::approval::decide(store, id, approve, "tollgate test", "operator", now).await?;
        }
        Approve::Timeout => {
            if let Some(a) = crate::approval::get(store, id).await? {
                clock.advance(a.expires_ms.saturating_sub(now));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
