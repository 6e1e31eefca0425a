//! Holding a call while an operator decides (an ask rule's `wait`). The transport that can hold
//! calls takes the session's [`Release`] channel; a held call's waiter polls the approval store,
//! sends progress notifications meanwhile when the call asked for progress, and when the request
//! is decided (or the wait is over) hands the transport a message that, passed back through the
//! session, decides the call again: it then goes to the server, or is answered.

use crate::chain::{Chain, WaitFor};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// How often a waiter looks at the approval store.
const POLL: Duration = Duration::from_millis(250);

/// How often a waiter tells a client that asked for progress that the call still waits.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What a held call's waiter gives the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// Pass this through `Session::from_client`, as if the agent had sent it: it decides the
    /// held call again.
    Again(Vec<u8>),
    /// Send this to the agent (a progress notification).
    ToClient(Vec<u8>),
}

impl super::Session {
    /// Hold the call `line` (id `id`) while an operator decides `wait`'s request; its waiter
    /// sends progress (when `progress` names a token) and the release to `releases`.
    pub(super) fn hold(
        &self,
        id: &str,
        line: &[u8],
        chain: &Arc<Chain>,
        wait: WaitFor,
        progress: Option<Value>,
        releases: Option<UnboundedSender<Release>>,
    ) {
        let again = self.questions.wait(id, line, &wait.approval);
        if let Some(out) = releases {
            spawn(chain.clone(), wait, again, progress, out);
        }
    }
}

/// Wait for `wait`'s request to be decided (or its time to run out), then send `again`.
fn spawn(
    chain: Arc<Chain>,
    wait: WaitFor,
    again: Vec<u8>,
    progress: Option<Value>,
    out: UnboundedSender<Release>,
) {
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut told = started;
        let mut notes = 0u64;
        loop {
            tokio::time::sleep(POLL).await;
            let now = crate::state::now_ms();
            let decided = match chain.approval_store() {
                Some(store) => match crate::approval::get(store, &wait.approval).await {
                    Ok(Some(a)) => a.state != crate::approval::State::Pending,
                    Ok(None) | Err(_) => true,
                },
                None => true,
            };
            if decided || now >= wait.until_ms || out.is_closed() {
                break;
            }
            if let Some(token) = &progress {
                if told.elapsed() >= PROGRESS_EVERY {
                    told = tokio::time::Instant::now();
                    notes += 1;
                    let note = json!({
                        "jsonrpc": "2.0",
                        "method": "notifications/progress",
                        "params": {
                            "progressToken": token,
                            "progress": notes,
                            "message": format!(
                                "waiting for a person's approval (request {}, {} s so far)",
                                wait.approval,
                                started.elapsed().as_secs()
                            ),
                        },
                    });
                    let _ = out.send(Release::ToClient(note.to_string().into_bytes()));
                }
            }
        }
        let _ = out.send(Release::Again(again));
    });
}
