//! A `tools/call` from the agent, decided: the chain's verdict becomes the bytes forwarded (the
//! original, or with the arguments a rule rewrote), a denial the agent can act on, or a call
//! held for an operator's approval or for the agent's answer to a question.

use super::{denial_response, in_band, is_stateless, Pending, PendingCall, Session};
use crate::audit::AuditRecord;
use crate::chain::{Decision, Denial};
use crate::engine::CallInput;
use crate::jsonrpc::{self, codes, Envelope};
use crate::metrics;
use serde_json::value::RawValue;
use serde_json::Value;
use std::time::Instant;

impl Session {
    /// Decide a `tools/call`; `answer`: the client's answer to the question this call raised;
    /// `may_wait`: it may be held while an operator decides (not when it is decided again).
    pub(super) async fn call(
        &self,
        env: &Envelope<'_>,
        line: &[u8],
        answer: Option<crate::chain::ClientAnswer>,
        may_wait: bool,
    ) -> Result<Option<Vec<u8>>, Vec<u8>> {
        let id = env.id_text();
        // One policy for the whole call, even if a reload swaps it meanwhile.
        let chain = self.chain();
        let params = jsonrpc::call_params(env.params)
            .map_err(|m| jsonrpc::error_response(id, codes::INVALID_PARAMS, &m, None))?;
        let stateless = is_stateless(params.meta.as_ref());
        let (in_band, answered, releases) = self.in_band(&params, stateless, answer, may_wait);
        // Tollgate's own round-trip fields never reach the server, which asked nothing.
        let stripped = answered.then(|| in_band::strip(line));
        let line = stripped.as_deref().unwrap_or(line);
        let arguments = match params.arguments.map(RawValue::get) {
            None | Some("null") => "{}".to_string(),
            Some(a) => a.to_string(),
        };
        let metadata = self.metadata(params.meta.as_ref());
        let audited_arguments = self.recorder.audit().map(|a| {
            if a.raw_arguments() {
                (None, RawValue::from_string(arguments.clone()).ok())
            } else {
                (Some(crate::audit::sha256_hex(&arguments)), None)
            }
        });
        let caller = self.caller();
        let call = CallInput {
            tool: params.name.clone(),
            arguments,
            server: chain.server().into(),
            caller: caller.clone(),
            metadata,
        };
        let mut review = chain
            .checks_results(&call.tool)
            .then(|| (call.clone(), stateless));
        metrics::call();
        let started = Instant::now();
        let pinned = match chain
            .pins()
            .and_then(|pins| self.pin_decision(pins, &params.name))
        {
            Some(refusal) if chain.is_dry_run() => {
                tracing::info!(tool = %params.name, ?refusal, "dry run: the pins would refuse this call");
                None
            }
            pinned => pinned,
        };
        let decision = match pinned {
            Some(decision) => decision,
            None => chain.decide_in(call, &in_band).await,
        };
        let latency = started.elapsed();
        let tool = params.name.as_str();
        let record = |verdict: &str,
                      denial: Option<&Denial>,
                      dry_run: bool,
                      approval: Option<crate::audit::ApprovalFacts<'_>>| {
            if !dry_run {
                metrics::decision(
                    tool,
                    verdict,
                    denial.map_or("", |d| d.rule.as_str()),
                    denial.map_or("", |d| d.code.as_str()),
                );
            }
            if !self.recorder.is_on() {
                return;
            }
            let (sha, raw) = match &audited_arguments {
                Some((sha, raw)) => (sha.clone(), raw.as_deref()),
                None => (None, None),
            };
            self.recorder.record(&AuditRecord {
                time: crate::audit::now_rfc3339(),
                caller: &caller,
                server: chain.server(),
                tool,
                verdict,
                code: denial.map(|d| d.code.as_str()),
                rule: denial.map(|d| d.rule.as_str()),
                plugin: denial.map(|d| d.plugin.as_str()).filter(|p| !p.is_empty()),
                reason: denial.map(|d| d.reason.as_str()),
                latency_us: latency.as_micros() as u64,
                arguments_sha256: sha,
                arguments: raw,
                dry_run,
                approval,
                changes: None,
            });
        };
        match decision {
            Decision::Allow {
                arguments,
                ticket,
                would_deny,
                approvals,
            } => {
                for d in &would_deny {
                    record("deny", Some(d), true, None);
                }
                record(
                    if arguments.is_some() {
                        "rewrite"
                    } else {
                        "allow"
                    },
                    None,
                    false,
                    approvals.last().map(crate::audit::ApprovalFacts::used),
                );
                if let (Some((call, _)), Some(new_args)) = (&mut review, &arguments) {
                    call.arguments = new_args.clone();
                }
                self.pending().insert(
                    id.to_string(),
                    Pending::Call(PendingCall {
                        ticket,
                        sent: Instant::now(),
                        review,
                    }),
                );
                match (arguments, stripped.is_some()) {
                    (None, false) => Ok(None),
                    (None, true) => Ok(Some(line.to_vec())),
                    (Some(new_args), _) => Ok(Some(rewrite_arguments(line, &new_args))),
                }
            }
            Decision::Deny(d) => {
                let approval = d.approval.as_deref().map(|id| crate::audit::ApprovalFacts {
                    id,
                    by: None,
                    channel: None,
                    waited_ms: None,
                });
                record("deny", Some(&d), false, approval);
                tracing::info!(tool = %params.name, code = %d.code, rule = %d.rule, reason = %d.reason, "denied");
                Err(denial_response(id, &d, chain.denial_prefix(), stateless))
            }
            Decision::AskClient(question) => {
                let approval = crate::audit::ApprovalFacts {
                    id: &question.approval,
                    by: None,
                    channel: Some("client"),
                    waited_ms: None,
                };
                record("ask", None, false, Some(approval));
                tracing::info!(tool = %params.name, rule = %question.rule, approval = %question.approval, "asking the client's user");
                Err(self.ask_client(id, line, &question, stateless, releases))
            }
            Decision::Wait(wait) => {
                let approval = crate::audit::ApprovalFacts {
                    id: &wait.approval,
                    by: None,
                    channel: Some("operator"),
                    waited_ms: None,
                };
                record("wait", None, false, Some(approval));
                tracing::info!(tool = %params.name, approval = %wait.approval, "holding the call while an operator decides");
                let progress = params.meta.as_ref().and_then(|m| m.get("progressToken"));
                self.hold(id, line, &chain, wait, progress.cloned(), releases);
                // Nothing to answer now: the call's answer comes when the wait is over.
                Err(Vec::new())
            }
            Decision::Unknown => {
                record("unknown", None, false, None);
                let unknown = format!("Unknown tool: {}", params.name);
                // As servers answer a tool they do not have: on the stateless revision the
                // reference server (mcp 2.x) says so in a failed tool result, earlier ones
                // with -32602.
                Err(if stateless {
                    let result = serde_json::json!({
                        "content": [{"type": "text", "text": unknown}],
                        "isError": true,
                        "resultType": "complete",
                    });
                    jsonrpc::result_response(id, &result)
                } else {
                    jsonrpc::error_response(id, codes::INVALID_PARAMS, &unknown, None)
                })
            }
        }
    }
}

/// The request with `params.arguments` replaced (everything else kept, in order).
fn rewrite_arguments(line: &[u8], new_args: &str) -> Vec<u8> {
    let mut message: Value = serde_json::from_slice(line).expect("the line was parsed before");
    let args: Value =
        serde_json::from_str(new_args).expect("the engine checked the rewrite is a JSON object");
    message["params"]["arguments"] = args;
    serde_json::to_vec(&message).expect("a Value always serialises")
}
