//! A session under pins: each listed tool judged against its pin and remembered for the
//! session's calls, calls refused as the pins say, and the listing voided when the server says
//! its tools changed.

use super::{AuditRecord, Session};
use crate::chain::{Chain, Decision, Denial};
use crate::config::DenyAs;
use crate::jsonrpc;
use crate::metrics;
use crate::pins::{self, OnMismatch, Pins};
use serde_json::Value;

impl Session {
    /// Compare a listed tool with its pin, remember the outcome for the session's calls, and
    /// report a mismatch (log, audit, metrics). Whether the tool stays in the list.
    pub(super) async fn judge_pin(
        &self,
        chain: &Chain,
        pins: &Pins,
        name: &str,
        tool: &Value,
        caller: &str,
    ) -> bool {
        let status = pins.status(tool, chain.server(), chain.pin_store()).await;
        let action = pins.action(&status);
        if let (Some(change), Some(action)) = (status.change(), action) {
            metrics::pin_mismatch(chain.server(), name, change);
            let what = status.describe();
            tracing::warn!(server = %chain.server(), tool = name, action = action.word(), "tool {what}");
            if self.recorder.is_on() {
                let reason = format!("{what} (pins: {})", action.word());
                let changes = match &status {
                    pins::Status::Changed(fields) => serde_json::to_value(fields).ok(),
                    _ => None,
                };
                self.recorder.record(&AuditRecord {
                    time: crate::audit::now_rfc3339(),
                    caller,
                    server: chain.server(),
                    tool: name,
                    verdict: "pin_mismatch",
                    code: Some(change),
                    rule: Some("pins"),
                    plugin: None,
                    reason: Some(&reason),
                    latency_us: 0,
                    arguments_sha256: None,
                    arguments: None,
                    dry_run: chain.is_dry_run(),
                    approval: None,
                    changes,
                });
            }
        }
        self.listed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), status);
        action != Some(OnMismatch::Hide) || chain.is_dry_run()
    }

    /// A call refused because of the server's pins, if it is: a tool the server has not listed
    /// in this session (unless the policy allows that) or one hidden for its mismatch is
    /// answered as unknown; one whose mismatch the policy denies is refused naming the change.
    pub(super) fn pin_decision(&self, pins: &Pins, tool: &str) -> Option<Decision> {
        let listed = self.listed.lock().unwrap_or_else(|p| p.into_inner());
        let status = match listed.get(tool) {
            None if pins.policy().refuse_unlisted => return Some(Decision::Unknown),
            None => return None,
            Some(status) => status,
        };
        match pins.action(status)? {
            OnMismatch::Hide => Some(Decision::Unknown),
            OnMismatch::Deny => Some(Decision::Deny(Denial {
                reason: pins::refusal(tool, status),
                code: pins::PIN_MISMATCH.into(),
                rule: "pins".into(),
                plugin: String::new(),
                retry_after_ms: None,
                deny_as: DenyAs::Result,
                approval: None,
            })),
            OnMismatch::Warn => None,
        }
    }

    /// The server says its tools changed: under pins, what it listed before no longer counts,
    /// so calls wait for the client to list them again (and the new list to be checked).
    pub(super) fn note_list_changed(&self, line: &[u8]) {
        const METHOD: &[u8] = b"notifications/tools/list_changed";
        if self.chain().pins().is_none() || !line.windows(METHOD.len()).any(|w| w == METHOD) {
            return;
        }
        let changed = jsonrpc::parse(line).is_ok_and(|parsed| {
            parsed
                .envelopes()
                .any(|env| env.method.as_deref() == Some("notifications/tools/list_changed"))
        });
        if changed {
            self.listed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
    }
}
