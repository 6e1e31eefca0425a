//! The operator's view of a machine's (or a fleet's) proxies, as the console page and
//! `tollgate status` show it: the last decisions with their reasons and rules (from the decision
//! log), the counters in use and pending approval requests (from the state store), tools that no
//! longer match their pins with the field-by-field change, and the policy in force per server.
//!
//! [`Console`] gathers a [`Snapshot`] and decides approval requests through the same
//! [`crate::approval::decide`] as the CLI and `/approvals`; `proxy::http::console` serves it,
//! with the page in `page.html`, embedded in the binary (no framework, no build step).

use crate::approval::{self, Approval, DecideError, State};
use crate::audit::decisions::{self, Decided};
use crate::state::{CounterStore, CounterView};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The page, served at `/console`.
pub const PAGE: &str = include_str!("page.html");

/// How many recent decisions a snapshot shows.
pub const SHOWN_DECISIONS: usize = 100;
/// How far back in the decision log pin mismatches are looked for.
const SEARCHED_DECISIONS: usize = 5_000;
/// How many counters a snapshot shows.
const SHOWN_COUNTERS: usize = 100;

/// A server's policy, as the console shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInForce {
    /// The server's name.
    pub server: String,
    /// The policy file.
    pub path: PathBuf,
    /// Whether it loads; its default, sections and pins ([`summary`]).
    pub summary: String,
    /// The file's text (empty when it cannot be read).
    pub text: String,
}

/// Everything the console page shows at once.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// The state store the counters and approvals come from.
    pub store: String,
    /// The last decisions, oldest first.
    pub decisions: Vec<Decided>,
    /// The last mismatch of each tool that did not match its pin, oldest first.
    pub pins: Vec<Decided>,
    /// Counters with units in use, busiest first.
    pub counters: Vec<CounterView>,
    /// Requests waiting for a person, oldest first.
    pub approvals: Vec<Approval>,
    /// The policy in force per server.
    pub policies: Vec<PolicyInForce>,
    /// What could not be read (a store that is down, …), each a sentence.
    pub problems: Vec<String>,
}

/// The servers and their policy files a console shows.
pub type Policies = Arc<dyn Fn() -> Vec<(String, PathBuf)> + Send + Sync>;

/// What the console reads from and decides through.
#[derive(Clone)]
pub struct Console {
    store: Arc<dyn CounterStore>,
    decisions: Option<PathBuf>,
    policies: Policies,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Console({})", self.store.describe())
    }
}

impl Console {
    /// A console over `store`, the decision log in `decisions`, and the servers `policies`
    /// names.
    pub fn new(
        store: Arc<dyn CounterStore>,
        decisions: Option<PathBuf>,
        policies: Policies,
    ) -> Self {
        Self {
            store,
            decisions,
            policies,
        }
    }

    /// The servers behind `tollgate wrap` on this machine, each with the policy wrap gave it.
    pub fn wrapped_servers(state_home: PathBuf) -> Policies {
        Arc::new(move || {
            crate::wrap::Record::all(&state_home)
                .into_iter()
                .filter_map(|(_, r)| r.ok())
                .flat_map(|r| r.servers.into_iter().map(|(name, w)| (name, w.policy)))
                .collect()
        })
    }

    /// Gather what the page shows now.
    pub async fn snapshot(&self) -> Snapshot {
        let mut problems = Vec::new();
        let (decisions, pins) = match self.decisions.clone() {
            Some(dir) => {
                // Files are read off the runtime: the listener's calls go on meanwhile.
                let all = tokio::task::spawn_blocking(move || {
                    decisions::recent(&dir, SEARCHED_DECISIONS)
                })
                .await
                .unwrap_or_default();
                let pins = last_mismatches(&all);
                let skip = all.len().saturating_sub(SHOWN_DECISIONS);
                (all[skip..].to_vec(), pins)
            }
            None => {
                problems.push("no decision log is kept on this machine".into());
                (Vec::new(), Vec::new())
            }
        };
        let counters = self
            .store
            .counters(SHOWN_COUNTERS)
            .await
            .unwrap_or_else(|e| {
                problems.push(format!("counters cannot be read: {e}"));
                Vec::new()
            });
        let now = self.store.now_ms();
        let approvals = match self.store.approvals() {
            None => Vec::new(),
            Some(store) => match approval::list(store, 200).await {
                Ok(all) => {
                    let mut open: Vec<_> = all
                        .into_iter()
                        .filter(|a| a.state == State::Pending && now < a.expires_ms)
                        .collect();
                    open.reverse();
                    open
                }
                Err(e) => {
                    problems.push(format!("approval requests cannot be read: {e}"));
                    Vec::new()
                }
            },
        };
        let named = (self.policies)();
        let policies = tokio::task::spawn_blocking(move || {
            named
                .into_iter()
                .map(|(server, path)| PolicyInForce {
                    summary: summary(&path),
                    text: std::fs::read_to_string(&path).unwrap_or_default(),
                    server,
                    path,
                })
                .collect()
        })
        .await
        .unwrap_or_default();
        Snapshot {
            store: self.store.describe(),
            decisions,
            pins,
            counters,
            approvals,
            policies,
            problems,
        }
    }

    /// Approve or deny a pending request as `by` (channel `console`).
    pub async fn decide(&self, id: &str, approve: bool, by: &str) -> Result<Approval, DecideError> {
        let store = self
            .store
            .approvals()
            .ok_or_else(|| DecideError::NotFound(id.to_string()))?;
        let decided =
            approval::decide(store, id, approve, by, "console", self.store.now_ms()).await?;
        tracing::info!(id, by, approve, "approval request decided in the console");
        Ok(decided)
    }
}

/// A fresh secret for a console's address (32 hex digits from the system's random source).
pub fn new_token() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The last pin mismatch of each server's tool, oldest first.
fn last_mismatches(all: &[Decided]) -> Vec<Decided> {
    let mut last: Vec<Decided> = Vec::new();
    for d in all.iter().filter(|d| d.verdict == "pin_mismatch") {
        last.retain(|seen| (&seen.server, &seen.tool) != (&d.server, &d.tool));
        last.push(d.clone());
    }
    last
}

/// A policy file as it stands: whether it loads, its default and sections, and its pins.
pub fn summary(path: &Path) -> String {
    use crate::pins::{Baseline, Lock};
    let policy = match crate::config::load(path) {
        Ok(p) => p,
        Err(e) => return format!("does not load: {e}"),
    };
    let default = match policy.default {
        crate::config::DefaultAction::Allow => "allow",
        crate::config::DefaultAction::Deny => "deny",
    };
    let pins = match policy.pins.as_ref().map(|p| &p.baseline) {
        None => "no pins".to_string(),
        Some(Baseline::FirstUse) => "pins: tofu (first-seen definitions in the state store)".into(),
        Some(Baseline::File(lock)) => match Lock::read(lock) {
            Ok(l) => format!("pins: {} tools in {}", l.tools.len(), lock.display()),
            Err(e) => format!("pins: {e}"),
        },
    };
    format!(
        "loads; default {default}, {} tool section{}, {pins}",
        policy.tools.len(),
        if policy.tools.len() == 1 { "" } else { "s" }
    )
}
