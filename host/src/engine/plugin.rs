//! A loaded plugin: its pre-linked component, its configuration and its instance pool. Every
//! failure inside the sandbox becomes a [`PluginError`] that names the plugin; the instance that
//! failed is dropped and the plugin keeps serving with fresh ones.

use super::bindings::{
    HostState, Plugin as Bindings, PluginPre, WitCall, WitResultVerdict, WitVerdict,
};
use super::limits::{self, describe_bytes, Limits, MemoryLimiter};
use super::pool::{Pool, Strategy};
use crate::state::{CounterStore, Reservation};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Engine, Store, StoreContextMut, Trap, UpdateDeadline};

/// The call a plugin decides, in the host's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInput {
    /// Tool name.
    pub tool: String,
    /// Arguments as JSON object text.
    pub arguments: String,
    /// Upstream server name.
    pub server: String,
    /// Caller identity.
    pub caller: String,
    /// Extra key/value facts.
    pub metadata: Vec<(String, String)>,
}

impl CallInput {
    fn to_wit(&self) -> WitCall {
        WitCall {
            tool: self.tool.clone(),
            arguments: self.arguments.clone(),
            server: self.server.clone(),
            caller: self.caller.clone(),
            metadata: self.metadata.clone(),
        }
    }
}

/// A plugin's verdict, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let the call through.
    Allow,
    /// Refuse it.
    Deny {
        /// Told to the agent.
        reason: String,
        /// Machine-readable code.
        code: String,
        /// Retry delay for rate limits.
        retry_after_ms: Option<u64>,
    },
    /// Forward with these arguments (a JSON object, already checked).
    Rewrite(String),
}

/// What went wrong inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Ran past the wall-clock deadline.
    #[error("ran past its deadline of {0} ms")]
    Deadline(u128),
    /// Tried to grow memory past the limit.
    #[error("exceeded its memory limit of {0}")]
    Memory(String),
    /// Used up its fuel.
    #[error("ran out of fuel ({0} units)")]
    Fuel(u64),
    /// Trapped (panic, unreachable, out-of-bounds access, …).
    #[error("trapped: {0}")]
    Trap(String),
    /// Answered something that is not a valid verdict.
    #[error("returned an invalid verdict: {0}")]
    Malformed(String),
    /// Its `configure` refused the configuration.
    #[error("rejected its configuration: {0}")]
    Rejected(String),
}

/// A failure, with the plugin's name: `plugin `rate-limit` ran past its deadline of 50 ms`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin `{plugin}` {failure}")]
pub struct PluginError {
    /// The plugin's name.
    pub plugin: String,
    /// What happened.
    pub failure: Failure,
}

struct Instance {
    store: Store<HostState>,
    bindings: Bindings,
}

/// A plugin ready to decide calls.
pub struct Plugin {
    name: Arc<str>,
    engine: Engine,
    pre: PluginPre<HostState>,
    limits: Limits,
    config_json: String,
    counters: Arc<dyn CounterStore>,
    key_prefix: Arc<str>,
    pool: Pool<Instance>,
    fuel_enabled: bool,
    may_block: bool,
    ticker: super::ticker::Ticker,
}

/// Everything [`Plugin::new`] needs besides the pre-linked component.
pub struct PluginSetup {
    /// The plugin's name.
    pub name: String,
    /// Its limits.
    pub limits: Limits,
    /// Its configuration (JSON text).
    pub config_json: String,
    /// Where its counters live.
    pub counters: Arc<dyn CounterStore>,
    /// Prefix of its counter keys.
    pub key_prefix: String,
    /// Instance reuse.
    pub strategy: Strategy,
    /// Most idle instances kept.
    pub max_idle: usize,
    /// Whether the engine meters fuel (then every store needs some).
    pub fuel_enabled: bool,
    /// Whether the plugin may wait inside host calls (it was granted clocks, whose pollables
    /// can sleep): its calls then also run under a wall-clock timeout, since the epoch deadline
    /// only interrupts guest code.
    pub may_block: bool,
    /// The engine's epoch ticker, kept awake while this plugin runs.
    pub ticker: super::ticker::Ticker,
}

/// How far past its deadline a call that may block is cut off (the deadline itself only fires
/// when guest code runs again).
const BLOCKING_GRACE: Duration = Duration::from_secs(1);

impl Plugin {
    pub(super) async fn new(
        engine: Engine,
        pre: PluginPre<HostState>,
        setup: PluginSetup,
    ) -> Result<Self, PluginError> {
        let plugin = Self {
            name: setup.name.into(),
            engine,
            pre,
            limits: setup.limits,
            config_json: setup.config_json,
            counters: setup.counters,
            key_prefix: setup.key_prefix.into(),
            pool: Pool::new(setup.strategy, setup.max_idle),
            fuel_enabled: setup.fuel_enabled,
            may_block: setup.may_block,
            ticker: setup.ticker,
        };
        // Configure one instance now, so a bad configuration fails the load, not a call.
        let first = plugin.instantiate().await?;
        plugin.pool.give_back(first);
        Ok(plugin)
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn error(&self, failure: Failure) -> PluginError {
        PluginError {
            plugin: self.name.to_string(),
            failure,
        }
    }

    fn prepare(&self, store: &mut Store<HostState>) {
        store.set_epoch_deadline(self.limits.deadline_ticks());
        if self.fuel_enabled {
            let _ = store.set_fuel(self.limits.fuel.unwrap_or(u64::MAX));
        }
        let state = store.data_mut();
        state.reservations.clear();
        state.limiter.reset();
        state.deadline = self.limits.deadline;
        state.call_started = Instant::now();
        state.host_time = Duration::ZERO;
    }

    /// Turn a wasmtime error from inside a call into the failure the user should read.
    fn classify(
        &self,
        store: &Store<HostState>,
        error: wasmtime::Error,
        configuring: bool,
    ) -> Failure {
        if store.data().limiter.exceeded() {
            return Failure::Memory(describe_bytes(self.limits.memory_bytes));
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) if configuring => {
                Failure::Deadline(self.limits.configure_deadline().as_millis())
            }
            Some(Trap::Interrupt) => Failure::Deadline(self.limits.deadline.as_millis()),
            Some(Trap::OutOfFuel) => Failure::Fuel(self.limits.fuel.unwrap_or(0)),
            Some(trap) => Failure::Trap(trap.to_string()),
            None => Failure::Trap(format!("{error:#}")),
        }
    }

    async fn instantiate(&self) -> Result<Instance, PluginError> {
        let _ticking = self.ticker.enter();
        let state = HostState {
            plugin: self.name.clone(),
            key_prefix: self.key_prefix.clone(),
            counters: self.counters.clone(),
            reservations: Vec::new(),
            limiter: MemoryLimiter::new(self.limits.memory_bytes),
            deadline: self.limits.deadline,
            call_started: Instant::now(),
            host_time: Duration::ZERO,
            wasi: super::wasi::context(&self.name),
            table: wasmtime::component::ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(credit_host_time);
        self.prepare(&mut store);
        store.set_epoch_deadline(self.limits.configure_ticks());
        store.data_mut().deadline = self.limits.configure_deadline();
        let bindings = match self.pre.instantiate_async(&mut store).await {
            Ok(b) => b,
            Err(e) => return Err(self.error(self.classify(&store, e, true))),
        };
        let configure = bindings.call_configure(&mut store, &self.config_json);
        let outcome = bounded(self.may_block, self.limits.configure_deadline(), configure).await;
        match outcome {
            Ok(Ok(())) => Ok(Instance { store, bindings }),
            Ok(Err(message)) => Err(self.error(Failure::Rejected(message))),
            Err(e) => Err(self.error(self.classify(&store, e, true))),
        }
    }

    async fn acquire(&self) -> Result<Instance, PluginError> {
        match self.pool.take() {
            Some(instance) => Ok(instance),
            None => self.instantiate().await,
        }
    }

    /// Refund what a failed call had reserved, so a trap never eats quota.
    async fn refund_all(&self, reservations: Vec<Reservation>) {
        for r in reservations {
            if let Err(e) = self.counters.refund(&r).await {
                tracing::warn!(plugin = %self.name, error = %e, "could not refund a reservation");
            }
        }
    }

    /// Decide a call. On success returns the verdict and the counter reservations the plugin
    /// made (the caller commits or refunds them); on failure the reservations are already
    /// refunded and the failing instance is dropped.
    pub async fn check_call(
        &self,
        call: &CallInput,
    ) -> Result<(Verdict, Vec<Reservation>), PluginError> {
        let mut instance = self.acquire().await?;
        let _ticking = self.ticker.enter();
        self.prepare(&mut instance.store);
        let wit = call.to_wit();
        let check = instance.bindings.call_check_call(&mut instance.store, &wit);
        let outcome = bounded(self.may_block, self.limits.deadline, check).await;
        let reservations = std::mem::take(&mut instance.store.data_mut().reservations);
        let verdict = match outcome {
            Ok(v) => validate(v),
            Err(e) => Err(self.classify(&instance.store, e, false)),
        };
        match verdict {
            Ok(verdict) => {
                self.pool.give_back(instance);
                Ok((verdict, reservations))
            }
            Err(failure) => {
                self.refund_all(reservations).await;
                Err(self.error(failure))
            }
        }
    }

    /// Ask whether `tool` is visible to `caller`. A failing plugin hides the tool (fail closed).
    pub async fn visible(&self, tool: &str, caller: &str) -> Result<bool, PluginError> {
        let mut instance = self.acquire().await?;
        let _ticking = self.ticker.enter();
        self.prepare(&mut instance.store);
        let visible = instance
            .bindings
            .call_visible(&mut instance.store, tool, caller);
        match bounded(self.may_block, self.limits.deadline, visible).await {
            Ok(v) => {
                self.pool.give_back(instance);
                Ok(v)
            }
            Err(e) => Err(self.error(self.classify(&instance.store, e, false))),
        }
    }

    /// Let the plugin inspect (and maybe replace) a successful tool result.
    pub async fn check_result(
        &self,
        call: &CallInput,
        result_json: &str,
    ) -> Result<Option<String>, PluginError> {
        let mut instance = self.acquire().await?;
        let _ticking = self.ticker.enter();
        self.prepare(&mut instance.store);
        let wit = call.to_wit();
        let check = instance
            .bindings
            .call_check_result(&mut instance.store, &wit, result_json);
        match bounded(self.may_block, self.limits.deadline, check).await {
            Ok(WitResultVerdict::Pass) => {
                self.pool.give_back(instance);
                Ok(None)
            }
            Ok(WitResultVerdict::Replace(json)) => {
                match serde_json::from_str::<serde_json::Value>(&json) {
                    Ok(serde_json::Value::Object(_)) => {
                        self.pool.give_back(instance);
                        Ok(Some(json))
                    }
                    _ => Err(self.error(Failure::Malformed(
                        "a replacement result that is not a JSON object".into(),
                    ))),
                }
            }
            Err(e) => Err(self.error(self.classify(&instance.store, e, false))),
        }
    }
}

/// Run a guest call; for a plugin that may block in a host call, give up (as a deadline
/// interrupt) once `deadline` plus [`BLOCKING_GRACE`] has passed. The instance is then dropped
/// by the caller like any failed one.
async fn bounded<T>(
    may_block: bool,
    deadline: Duration,
    call: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    if !may_block {
        return call.await;
    }
    match tokio::time::timeout(deadline + BLOCKING_GRACE, call).await {
        Ok(outcome) => outcome,
        Err(_) => Err(wasmtime::Error::from(Trap::Interrupt)),
    }
}

/// Reached the epoch deadline: time the plugin spent waiting on host calls (a counter store up
/// to its own timeout) does not count, so the deadline measures the plugin's own work and a slow
/// store surfaces as the store's error (`state_unavailable`, or allowed under `fail_mode: open`)
/// rather than as a plugin that ran too long. Interrupts once the plugin's own time is used up.
fn credit_host_time(store: StoreContextMut<'_, HostState>) -> wasmtime::Result<UpdateDeadline> {
    let state = store.data();
    let own = state.call_started.elapsed().saturating_sub(state.host_time);
    Ok(match state.deadline.checked_sub(own) {
        Some(left) if !left.is_zero() => UpdateDeadline::Continue(limits::ticks(left)),
        _ => UpdateDeadline::Interrupt,
    })
}

/// Check what the guest answered: a rewrite must be a JSON object, a denial must say why.
fn validate(verdict: WitVerdict) -> Result<Verdict, Failure> {
    match verdict {
        WitVerdict::Allow => Ok(Verdict::Allow),
        WitVerdict::Deny(d) => {
            if d.reason.trim().is_empty() || d.code.trim().is_empty() {
                return Err(Failure::Malformed(
                    "a denial without a reason or code".into(),
                ));
            }
            Ok(Verdict::Deny {
                reason: d.reason,
                code: d.code,
                retry_after_ms: d.retry_after_ms,
            })
        }
        WitVerdict::Rewrite(args) => match serde_json::from_str::<serde_json::Value>(&args) {
            Ok(serde_json::Value::Object(_)) => Ok(Verdict::Rewrite(args)),
            Ok(_) => Err(Failure::Malformed(
                "rewritten arguments that are not a JSON object".into(),
            )),
            Err(e) => Err(Failure::Malformed(format!(
                "rewritten arguments that are not JSON ({e})"
            ))),
        },
    }
}
