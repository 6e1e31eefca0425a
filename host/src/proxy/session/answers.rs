//! The server's messages on their way back to the agent: an answer to an allowed call settles
//! its counters and, when rules look at results, is reviewed (forwarded as the original bytes
//! unless a rule replaced it); a `tools/list` answer loses the tools the policy hides. Everything
//! else passes as it came.

use super::{denial_response, Pending, Session};
use crate::chain::ServerOutcome;
use crate::engine::CallInput;
use crate::jsonrpc::{self, Envelope, Kind, Parsed, Recipient};
use crate::metrics;
use serde_json::value::RawValue;
use serde_json::{json, Value};

impl Session {
    /// Route one message (line) from the server: `None` drops it (never, today), `Some` forwards
    /// these bytes (the original unless the rules replaced a result or hid tools from a
    /// `tools/list`).
    pub async fn from_server(&self, line: &[u8]) -> Option<Vec<u8>> {
        self.relay_from_server(line, false)
            .await
            .map(|(bytes, _)| bytes)
    }

    /// As [`Session::from_server`], with who the message is for: for transports that route the
    /// server's messages (HTTP), which then need not parse them again.
    pub async fn from_server_for(&self, line: &[u8]) -> Option<(Vec<u8>, Recipient)> {
        self.relay_from_server(line, true).await
    }

    async fn relay_from_server(
        &self,
        line: &[u8],
        recipient_wanted: bool,
    ) -> Option<(Vec<u8>, Recipient)> {
        self.note_list_changed(line);
        if self.pending().is_empty() && !recipient_wanted {
            return Some((line.to_vec(), Recipient::default()));
        }
        match jsonrpc::parse(line) {
            Ok(Parsed::Single(env)) => {
                let recipient = Recipient::of(&env);
                if env.kind() != Kind::Response {
                    return Some((line.to_vec(), recipient));
                }
                let pending = self.pending().remove(env.id_text());
                let out = match pending {
                    Some(Pending::Call(p)) => {
                        metrics::upstream_latency(p.sent.elapsed());
                        self.chain().settle(p.ticket, outcome_of(&env)).await;
                        match (&p.review, env.result) {
                            (Some((call, stateless)), Some(result)) => {
                                self.review_result(&env, line, call, result, *stateless)
                                    .await
                            }
                            _ => line.to_vec(),
                        }
                    }
                    Some(Pending::List) => self
                        .filter_list(&env)
                        .await
                        .unwrap_or_else(|| line.to_vec()),
                    None => line.to_vec(),
                };
                Some((out, recipient))
            }
            Ok(batch @ Parsed::Batch(_)) => {
                for env in batch.envelopes() {
                    let pending = self.pending().remove(env.id_text());
                    if let Some(Pending::Call(p)) = pending {
                        self.chain().settle(p.ticket, outcome_of(&env)).await;
                    }
                }
                Some((line.to_vec(), Recipient::default()))
            }
            _ => Some((line.to_vec(), Recipient::default())),
        }
    }

    /// The server's answer to a call whose result the rules look at: its original bytes when no
    /// rule changed it, replaced (redacted), or — if a rule failed — a `policy_error` denial.
    async fn review_result(
        &self,
        env: &Envelope<'_>,
        original: &[u8],
        call: &CallInput,
        result: &RawValue,
        stateless: bool,
    ) -> Vec<u8> {
        let chain = self.chain();
        match chain.check_result(call, result.get()).await {
            // No rule changed it: the server's own bytes, as everything else.
            Ok(None) => original.to_vec(),
            Ok(Some(replaced)) => {
                tracing::info!(tool = %call.tool, "result replaced by policy");
                let value: Value = serde_json::from_str(&replaced).unwrap_or(Value::Null);
                jsonrpc::result_response(env.id_text(), &value)
            }
            Err(d) => {
                tracing::warn!(tool = %call.tool, rule = %d.rule, reason = %d.reason, "result check failed; answering with a denial");
                denial_response(env.id_text(), &d, chain.denial_prefix(), stateless)
            }
        }
    }

    /// Remove hidden tools from a `tools/list` result; `None` when nothing was removed.
    async fn filter_list(&self, env: &Envelope<'_>) -> Option<Vec<u8>> {
        let mut result: Value = serde_json::from_str(env.result?.get()).ok()?;
        let tools = result.get_mut("tools")?.as_array_mut()?;
        let caller = self.caller();
        let chain = self.chain();
        let mut keep = Vec::with_capacity(tools.len());
        for tool in tools.iter() {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
            let pinned = match chain.pins() {
                Some(pins) => self.judge_pin(&chain, pins, name, tool, &caller).await,
                None => true,
            };
            keep.push(pinned && chain.visible(name, &caller).await);
        }
        if keep.iter().all(|k| *k) {
            return None;
        }
        let mut flags = keep.into_iter();
        tools.retain(|_| flags.next().unwrap_or(false));
        // The list now depends on who asked: where the revision has a cache scope, keep shared
        // caches from serving it to anyone else.
        if let Some(scope) = result.get_mut("cacheScope") {
            *scope = json!("private");
        }
        Some(jsonrpc::result_response(env.id_text(), &result))
    }

    /// The server is gone: refund every call still waiting for an answer.
    pub async fn server_lost(&self) {
        let pending: Vec<Pending> = self.pending().drain().map(|(_, p)| p).collect();
        for p in pending {
            if let Pending::Call(p) = p {
                self.chain().settle(p.ticket, ServerOutcome::Failed).await;
            }
        }
    }
}

fn outcome_of(env: &Envelope<'_>) -> ServerOutcome {
    if env.error.is_some() {
        return ServerOutcome::Failed;
    }
    #[derive(serde::Deserialize)]
    struct IsError {
        #[serde(default, rename = "isError")]
        is_error: bool,
    }
    match env
        .result
        .and_then(|r| serde_json::from_str::<IsError>(r.get()).ok())
    {
        Some(IsError { is_error: true }) => ServerOutcome::ErrorResult,
        _ => ServerOutcome::Success,
    }
}
