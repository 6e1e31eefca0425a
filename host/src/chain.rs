//! `tools/call` -> decision: the policy's rules for the tool in order, then the `"*"` rules; the
//! first denial wins; rewrites feed the next rule; counter reservations are committed when the
//! server answers successfully and refunded otherwise.

use crate::config::{DefaultAction, DenyAs, Policy};
use crate::engine::{BoundRule, CallInput, PluginSet, PolicyEngine, Verdict};
use crate::state::CounterStore;
use std::sync::Arc;

mod answers;
mod ask;
mod load;
mod select;

use load::{load_rule, Loaded};
use select::Sections;

pub use answers::{ServerOutcome, Ticket};
pub use ask::{
    ClientAnswer, ClientQuestion, InBand, WaitFor, APPROVAL_CANCELLED, APPROVAL_DENIED,
    APPROVAL_EXPIRED, APPROVAL_PENDING, APPROVAL_REQUIRED, APPROVAL_STATE_INVALID,
};

/// A rule ready to run.
struct ChainRule {
    label: String,
    bound: BoundRule,
    deny_as: DenyAs,
    refund_on_error_result: bool,
    /// Built-in plugins hide nothing, so their `visible` export need not be asked.
    answers_visibility: bool,
    /// Its denials are reported, not enforced.
    dry_run: bool,
    /// Its plugin may replace results (`redact`, and plugins from files).
    checks_results: bool,
    latency: crate::metrics::PluginLatency,
    /// The longest its approval requests stay open (ms).
    ask_timeout_ms: u64,
    /// Whose answers approve its requests.
    ask_channels: crate::config::Channels,
    /// How long its calls wait for an operator (ms; 0: not at all).
    ask_wait_ms: u64,
    /// A digest of its plugin and configuration: approvals are bound to it.
    version: String,
}

impl ChainRule {
    /// This rule's denial of a call, for `reason` with `code`.
    fn denial(&self, reason: String, code: String, retry_after_ms: Option<u64>) -> Denial {
        Denial {
            reason,
            code,
            rule: self.label.clone(),
            plugin: self.bound.name().to_string(),
            retry_after_ms,
            deny_as: self.deny_as,
            approval: None,
        }
    }

    /// This rule's plugin failed: the call is denied (fail closed) with `policy_error`.
    fn failed(&self, error: impl std::fmt::Display) -> Denial {
        let code = tollgate_sdk::codes::POLICY_ERROR.into();
        self.denial(error.to_string(), code, None)
    }
}

struct ToolEntry {
    pattern: String,
    rules: Vec<ChainRule>,
}

/// A denial as the agent will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Why.
    pub reason: String,
    /// Machine-readable code (`denied`, `rate_limited`, `policy_error`, …).
    pub code: String,
    /// The rule that denied (its label), or `default` / `hide`.
    pub rule: String,
    /// The plugin that denied (empty for `default`).
    pub plugin: String,
    /// For rate limits: when a retry can succeed.
    pub retry_after_ms: Option<u64>,
    /// Result with `isError`, or JSON-RPC error.
    pub deny_as: DenyAs,
    /// The approval request the call waits on, or was refused or expired under.
    pub approval: Option<String>,
}

/// The chain's decision on a call.
#[derive(Debug)]
pub enum Decision {
    /// Forward; with new arguments (JSON object text) when a rule rewrote them.
    Allow {
        /// Rewritten arguments, if any rule rewrote.
        arguments: Option<String>,
        /// What to settle when the server answers.
        ticket: Ticket,
        /// Denials of dry-run rules (or of every rule, in dry-run mode) that were not enforced.
        would_deny: Vec<Denial>,
        /// The approvals this call used up.
        approvals: Vec<crate::approval::Approval>,
    },
    /// Answer the agent with this denial.
    Deny(Denial),
    /// Ask the agent's client to ask its user (a 2026-07-28 `input_required` result); the
    /// client's retry carries the answer.
    AskClient(ClientQuestion),
    /// Hold the call while an operator decides (the rule's `wait`), then decide it again.
    Wait(WaitFor),
    /// The tool is hidden: answer as if it did not exist.
    Unknown,
}

/// Building the chain failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A plugin's file or pack could not be read or failed verification.
    #[error("rule {rule}: plugin `{plugin}`: {cause}")]
    Pack {
        /// The rule.
        rule: String,
        /// The plugin.
        plugin: String,
        /// What failed.
        cause: crate::pack::PackError,
    },
    /// The pin lock file could not be used.
    #[error(transparent)]
    Pins(#[from] crate::pins::LockError),
    /// `pins: tofu` with a state store that keeps no pins.
    #[error("pins: tofu keeps first-seen tool definitions in the state store, and {0} keeps none; use --state sqlite, memory or redis://…")]
    NoPinStore(String),
    /// Loading or configuring a plugin failed.
    #[error("rule {rule}: {cause}")]
    Load {
        /// The rule.
        rule: String,
        /// Why.
        cause: crate::engine::LoadError,
    },
}

/// The policy in force, swapped whole when the file changes: each call is decided by the chain
/// current when it arrives, and calls already decided settle on the shared counter store.
pub struct ChainCell {
    current: std::sync::RwLock<Arc<Chain>>,
}

impl ChainCell {
    /// A cell holding `chain`.
    pub fn new(chain: Arc<Chain>) -> Self {
        Self {
            current: std::sync::RwLock::new(chain),
        }
    }

    /// The chain in force.
    pub fn get(&self) -> Arc<Chain> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Put `chain` in force.
    pub fn replace(&self, chain: Arc<Chain>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = chain;
    }
}

/// A policy, loaded: what every `tools/call` is decided by.
pub struct Chain {
    denial_prefix: &'static str,
    default: DefaultAction,
    tools: Vec<ToolEntry>,
    /// Which entries of `tools` apply to a tool, and which tools `hide:` hides.
    sections: Sections,
    all_tools: Vec<ChainRule>,
    counters: Arc<dyn CounterStore>,
    server: String,
    /// Report every denial instead of enforcing it (`--dry-run`).
    dry_run: bool,
    /// The plugins the rules run in.
    plugins: PluginSet,
    /// The reviewed tool definitions the server is held to (`pins:`).
    pins: Option<crate::pins::Pins>,
    /// Told of each new approval request an operator can decide.
    webhook: Option<Arc<crate::approval::webhook::Webhook>>,
}

impl Chain {
    /// Load every plugin the policy names (built-ins from the binary, others from disk), configure
    /// them, and build the chain. `server` namespaces counter keys.
    pub async fn load(
        policy: &Policy,
        engine: &PolicyEngine,
        counters: Arc<dyn CounterStore>,
        server: &str,
    ) -> Result<Self, ChainError> {
        // Rules of one plugin share its instances: a policy's cost follows the plugins it uses
        // and its traffic, not its number of rules.
        // A lock file that cannot be read stops the load: pinning never fails open.
        let pins = policy
            .pins
            .as_ref()
            .map(crate::pins::Pins::load)
            .transpose()?;
        if pins.as_ref().is_some_and(|p| p.lock().is_none()) && counters.pins().is_none() {
            return Err(ChainError::NoPinStore(counters.describe()));
        }
        let mut loaded = Loaded::default();
        let mut tools = Vec::new();
        for t in &policy.tools {
            let mut rules = Vec::new();
            for r in &t.rules {
                rules.push(load_rule(r, engine, &mut loaded, &counters, server).await?);
            }
            tools.push(ToolEntry {
                pattern: t.pattern.clone(),
                rules,
            });
        }
        let mut all_tools = Vec::new();
        for r in &policy.all_tools {
            all_tools.push(load_rule(r, engine, &mut loaded, &counters, server).await?);
        }
        let sections = Sections::index(
            tools.iter().map(|t: &ToolEntry| t.pattern.as_str()),
            &policy.hide,
            pins.as_ref().and_then(|p| p.lock()),
        );
        Ok(Self {
            denial_prefix: policy.format.denial_prefix(),
            default: policy.default,
            tools,
            sections,
            all_tools,
            counters,
            server: server.into(),
            dry_run: false,
            plugins: loaded.plugins,
            pins,
            webhook: None,
        })
    }

    /// Report denials instead of enforcing them (every rule, and `default: deny`).
    pub fn set_dry_run(&mut self, on: bool) {
        self.dry_run = on;
    }

    /// Tell `webhook` of each new approval request an operator can decide.
    pub fn set_approval_webhook(
        &mut self,
        webhook: Option<Arc<crate::approval::webhook::Webhook>>,
    ) {
        self.webhook = webhook;
    }

    /// Whether denials are reported instead of enforced (`--dry-run`): pins too hide and refuse
    /// nothing then.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// What the agent reads before a denial's reason (`Denied by policy: `, or Intercept's
    /// prefix for Intercept files).
    pub fn denial_prefix(&self) -> &'static str {
        self.denial_prefix
    }

    /// The reviewed tool definitions the server is held to, if the policy pins it.
    pub fn pins(&self) -> Option<&crate::pins::Pins> {
        self.pins.as_ref()
    }

    /// Where `pins: tofu` keeps each tool's first-seen definition (the state store).
    pub fn pin_store(&self) -> Option<&dyn crate::state::PinStore> {
        self.counters.pins()
    }

    /// Where approval requests are kept (the state store).
    pub fn approval_store(&self) -> Option<&dyn crate::state::ApprovalStore> {
        self.counters.approvals()
    }

    /// How many plugins (each with its pool of instances) the policy's rules run in.
    pub fn plugins(&self) -> usize {
        self.plugins.len()
    }

    /// The server name counters are namespaced by.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Whether any section of the policy names the tool (by name, glob or annotation).
    fn has_section(&self, tool: &str) -> bool {
        self.sections.own(tool).is_some() || !self.sections.annotated(tool).is_empty()
    }

    /// The tool's rules: its own section's, then each annotation section's that selects it (in
    /// file order), then the `"*"` rules.
    fn rules_for<'a>(&'a self, tool: &str) -> impl Iterator<Item = &'a ChainRule> + 'a {
        let sections = self.sections.own(tool).into_iter();
        let sections = sections.chain(self.sections.annotated(tool).iter().copied());
        sections
            .flat_map(|i| self.tools[i].rules.iter())
            .chain(self.all_tools.iter())
    }

    /// Whether `tool` is shown to `caller` in `tools/list` (and callable at all).
    pub async fn visible(&self, tool: &str, caller: &str) -> bool {
        if self.sections.hidden(tool) {
            return false;
        }
        for rule in self.rules_for(tool).filter(|r| r.answers_visibility) {
            match rule.bound.visible(tool, caller).await {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    tracing::warn!(error = %e, tool, "visibility check failed; hiding the tool");
                    return false;
                }
            }
        }
        true
    }

    /// Whether the policy hides tools at all (if not, `tools/list` passes through untouched).
    pub fn may_hide(&self) -> bool {
        self.sections.hides_any()
            || self
                .tools
                .iter()
                .flat_map(|t| &t.rules)
                .chain(&self.all_tools)
                .any(|r| r.answers_visibility)
    }

    /// Decide a call that cannot be asked about in band.
    pub async fn decide(&self, call: CallInput) -> Decision {
        self.decide_in(call, &InBand::default()).await
    }

    /// Decide a call; `in_band` says whether its client can ask its user, and carries the
    /// answer when this is the retry of a call that asked.
    pub async fn decide_in(&self, mut call: CallInput, in_band: &InBand) -> Decision {
        if !self.visible(&call.tool, &call.caller).await {
            return Decision::Unknown;
        }
        let mut would_deny = Vec::new();
        if self.default == DefaultAction::Deny && !self.has_section(&call.tool) {
            let denial = Denial {
                reason: format!(
                    "the tool `{}` is not allowed by this policy (default: deny)",
                    call.tool
                ),
                code: tollgate_sdk::codes::DENIED.into(),
                rule: "default".into(),
                plugin: String::new(),
                retry_after_ms: None,
                deny_as: DenyAs::Result,
                approval: None,
            };
            if !self.dry_run {
                return Decision::Deny(denial);
            }
            would_deny.push(denial);
        }
        let mut ticket = Ticket::default();
        let mut rewritten = false;
        let mut approvals = Vec::new();
        for rule in self.rules_for(&call.tool) {
            let started = std::time::Instant::now();
            let checked = rule.bound.check_call(&call).await;
            rule.latency.observe(started.elapsed());
            let denial = match checked {
                Ok((verdict, reservations)) => {
                    ticket.reservations.extend(
                        reservations
                            .into_iter()
                            .map(|r| (r, rule.refund_on_error_result)),
                    );
                    match verdict {
                        Verdict::Allow => continue,
                        Verdict::Rewrite(arguments) => {
                            call.arguments = arguments;
                            rewritten = true;
                            continue;
                        }
                        Verdict::Deny {
                            reason,
                            code,
                            retry_after_ms,
                        } => rule.denial(reason, code, retry_after_ms),
                        Verdict::Ask { message, .. } if rule.dry_run || self.dry_run => {
                            self.would_ask(rule, &message)
                        }
                        Verdict::Ask {
                            message,
                            timeout_ms,
                        } => match self.ask(&call, rule, &message, timeout_ms, in_band).await {
                            Ok(approval) => {
                                approvals.push((approval, rule));
                                continue;
                            }
                            Err(ask::Held::Denied(denial)) => denial,
                            Err(ask::Held::AskClient(question)) => {
                                self.refund(ticket.reservations.into_iter().map(|(r, _)| r))
                                    .await;
                                return Decision::AskClient(question);
                            }
                            Err(ask::Held::Wait(wait)) => {
                                self.refund(ticket.reservations.into_iter().map(|(r, _)| r))
                                    .await;
                                return Decision::Wait(wait);
                            }
                        },
                    }
                }
                Err(e) => rule.failed(e),
            };
            if rule.dry_run || self.dry_run {
                crate::metrics::dry_run_denial(&call.tool, &denial.rule, &denial.code);
                tracing::info!(tool = %call.tool, rule = %denial.rule, code = %denial.code, reason = %denial.reason, "dry run: would deny");
                would_deny.push(denial);
                continue;
            }
            self.refund(ticket.reservations.into_iter().map(|(r, _)| r))
                .await;
            return Decision::Deny(denial);
        }
        // Approvals are used up only now that every rule lets the call through.
        let approvals = match self.use_approvals(approvals).await {
            Ok(used) => used,
            Err(denial) => {
                self.refund(ticket.reservations.into_iter().map(|(r, _)| r))
                    .await;
                return Decision::Deny(denial);
            }
        };
        Decision::Allow {
            arguments: rewritten.then_some(call.arguments),
            ticket,
            would_deny,
            approvals,
        }
    }
}
