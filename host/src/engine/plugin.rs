//! A loaded plugin and the rules bound to it. A `tollgate:policy@0.2.0` plugin has one pool of
//! instances for every rule of the policy that uses it, each rule a resource built from its
//! configuration inside the instance that runs it; a 0.1 plugin is configured for a single rule,
//! so each of its rules has a plugin (and a pool) of its own.
//!
//! How rules survive a failure: an instance that traps, runs past its deadline or exceeds its
//! memory is dropped with every rule built in it. Nothing is rebuilt eagerly: an instance taken
//! from the pool (or a fresh one) builds a rule from the rule's configuration the first time a
//! call for that rule runs in it. So a rule that traps on purpose costs one fresh instance and
//! its own rebuild per call, never a rebuild of the policy's other rules. Rules keep no state
//! that matters across calls in guest memory (the contract says so): counters live in the host.

use super::bindings::{v0_1, v0_2, HostState};
use super::limits::{self, describe_bytes, Limits, MemoryLimiter};
use super::pool::{Pool, Strategy};
use super::rule::BoundRule;
use crate::state::{CounterStore, Reservation};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceAny;
use wasmtime::{Engine, Store, StoreContextMut, Trap, UpdateDeadline};
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
    /// Its `configure` (0.1) or `rule.create` (0.2) refused the configuration.
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

/// Which version of the contract a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `tollgate:policy@0.1.0`: `configure` plus three functions; one instance per rule.
    V0_1,
    /// `tollgate:policy@0.2.0`: the `rule` resource; one instance serves every rule.
    V0_2,
}

impl Contract {
    /// The version, as WIT and pack manifests spell it.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
        }
    }
}

/// A component linked against the host's imports, ready to instantiate.
pub(super) enum Pre {
    V0_1(v0_1::PluginPre<HostState>),
    V0_2(v0_2::PluginPre<HostState>),
}

/// An instance's exports.
pub(super) enum Exports {
    /// Configured, at instantiation, for the plugin's one rule.
    V0_1(v0_1::Plugin),
    /// The rules built in this instance so far, by slot.
    V0_2 {
        bindings: v0_2::Plugin,
        rules: Vec<Option<ResourceAny>>,
    },
}

pub(super) struct Instance {
    pub(super) store: Store<HostState>,
    pub(super) exports: Exports,
}

/// A plugin: a compiled component, its host-side settings and its idle instances.
pub struct Plugin {
    pub(super) name: Arc<str>,
    engine: Engine,
    pre: Pre,
    memory_bytes: usize,
    counters: Arc<dyn CounterStore>,
    key_prefix: Arc<str>,
    pub(super) pool: Pool<Instance>,
    fuel_enabled: bool,
    pub(super) may_block: bool,
    pub(super) ticker: super::ticker::Ticker,
    /// Slots handed out to rules (0.2).
    bound: AtomicUsize,
    /// A 0.1 plugin's one rule, which `configure` applies to every instance.
    configured: OnceLock<(Arc<str>, Limits)>,
}

/// Everything [`Plugin::new`] needs besides the pre-linked component.
pub(super) struct PluginSetup {
    /// The plugin's name.
    pub name: String,
    /// The memory ceiling of each of its instances.
    pub memory_bytes: usize,
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
    pub(super) fn new(engine: Engine, pre: Pre, setup: PluginSetup) -> Self {
        Self {
            name: setup.name.into(),
            engine,
            pre,
            memory_bytes: setup.memory_bytes,
            counters: setup.counters,
            key_prefix: setup.key_prefix.into(),
            pool: Pool::new(setup.strategy, setup.max_idle),
            fuel_enabled: setup.fuel_enabled,
            may_block: setup.may_block,
            ticker: setup.ticker,
            bound: AtomicUsize::new(0),
            configured: OnceLock::new(),
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The contract version its component implements.
    pub fn contract(&self) -> Contract {
        match self.pre {
            Pre::V0_1(_) => Contract::V0_1,
            Pre::V0_2(_) => Contract::V0_2,
        }
    }

    /// Bind a rule with this configuration, building it once now so that a configuration the
    /// plugin refuses fails the load, not a call. The instance that built it stays in the pool
    /// for the calls that follow. A 0.1 plugin takes exactly one rule.
    pub(super) async fn bind(
        self: &Arc<Self>,
        config_json: &str,
        limits: Limits,
    ) -> Result<BoundRule, PluginError> {
        let config: Arc<str> = config_json.into();
        let slot = self.bound.fetch_add(1, Ordering::Relaxed);
        if self.contract() == Contract::V0_1 {
            self.configured
                .set((config.clone(), limits))
                .expect("a 0.1 plugin is loaded once per rule");
        }
        let rule = BoundRule {
            plugin: self.clone(),
            slot,
            config,
            limits,
        };
        let (instance, _) = self.acquire(&rule).await?;
        self.pool.give_back(instance);
        Ok(rule)
    }

    pub(super) fn error(&self, failure: Failure) -> PluginError {
        PluginError {
            plugin: self.name.to_string(),
            failure,
        }
    }

    /// Arm the store for one call into the guest under `limits` (`building`: instantiation,
    /// `configure` or `rule.create`, which get the longer configure deadline).
    fn prepare(&self, store: &mut Store<HostState>, limits: &Limits, building: bool) {
        let deadline = if building {
            limits.configure_deadline()
        } else {
            limits.deadline
        };
        store.set_epoch_deadline(limits::ticks(deadline));
        if self.fuel_enabled {
            let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
        }
        let state = store.data_mut();
        state.reservations.clear();
        state.limiter.reset();
        state.deadline = deadline;
        state.call_started = Instant::now();
        state.host_time = Duration::ZERO;
    }

    /// Turn a wasmtime error from inside a call into the failure the user should read.
    pub(super) fn classify(
        &self,
        store: &Store<HostState>,
        limits: &Limits,
        error: wasmtime::Error,
        building: bool,
    ) -> Failure {
        if store.data().limiter.exceeded() {
            return Failure::Memory(describe_bytes(self.memory_bytes));
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) if building => {
                Failure::Deadline(limits.configure_deadline().as_millis())
            }
            Some(Trap::Interrupt) => Failure::Deadline(limits.deadline.as_millis()),
            Some(Trap::OutOfFuel) => Failure::Fuel(limits.fuel.unwrap_or(0)),
            Some(trap) => Failure::Trap(trap.to_string()),
            None => Failure::Trap(format!("{error:#}")),
        }
    }

    /// A fresh instance (0.1: configured for the plugin's rule; 0.2: holding no rule yet).
    async fn instantiate(&self, limits: &Limits) -> Result<Instance, PluginError> {
        let state = HostState {
            plugin: self.name.clone(),
            key_prefix: self.key_prefix.clone(),
            counters: self.counters.clone(),
            reservations: Vec::new(),
            limiter: MemoryLimiter::new(self.memory_bytes),
            deadline: limits.configure_deadline(),
            call_started: Instant::now(),
            host_time: Duration::ZERO,
            wasi: super::wasi::context(&self.name),
            table: wasmtime::component::ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(credit_host_time);
        self.prepare(&mut store, limits, true);
        let exports = match &self.pre {
            Pre::V0_1(pre) => pre.instantiate_async(&mut store).await.map(Exports::V0_1),
            Pre::V0_2(pre) => {
                pre.instantiate_async(&mut store)
                    .await
                    .map(|bindings| Exports::V0_2 {
                        bindings,
                        rules: Vec::new(),
                    })
            }
        };
        let exports = match exports {
            Ok(e) => e,
            Err(e) => return Err(self.error(self.classify(&store, limits, e, true))),
        };
        if let Exports::V0_1(bindings) = &exports {
            let (config, limits) = self
                .configured
                .get()
                .expect("a 0.1 plugin is bound before it is instantiated");
            let configure = bindings.call_configure(&mut store, config);
            match bounded(self.may_block, limits.configure_deadline(), configure).await {
                Ok(Ok(())) => {}
                Ok(Err(message)) => return Err(self.error(Failure::Rejected(message))),
                Err(e) => return Err(self.error(self.classify(&store, limits, e, true))),
            }
        }
        Ok(Instance { store, exports })
    }

    /// An instance in which `rule` is built, armed for one call under the rule's limits, and
    /// the rule's resource in it (0.2).
    pub(super) async fn acquire(
        &self,
        rule: &BoundRule,
    ) -> Result<(Instance, Option<ResourceAny>), PluginError> {
        let _ticking = self.ticker.enter();
        let mut instance = match self.pool.take() {
            Some(instance) => instance,
            None => self.instantiate(&rule.limits).await?,
        };
        let resource = match &instance.exports {
            Exports::V0_1(_) => None,
            Exports::V0_2 { rules, .. } => rules.get(rule.slot).copied().flatten(),
        };
        let resource = match (&instance.exports, resource) {
            (Exports::V0_2 { bindings, .. }, None) => {
                self.prepare(&mut instance.store, &rule.limits, true);
                let rules = bindings.tollgate_policy_rules();
                let api = rules.rule();
                let create = api.call_create(&mut instance.store, &rule.config);
                let built =
                    match bounded(self.may_block, rule.limits.configure_deadline(), create).await {
                        Ok(Ok(resource)) => resource,
                        Ok(Err(message)) => {
                            // The guest answered normally: the instance is sound and can serve others.
                            self.pool.give_back(instance);
                            return Err(self.error(Failure::Rejected(message)));
                        }
                        Err(e) => {
                            let failure = self.classify(&instance.store, &rule.limits, e, true);
                            return Err(self.error(failure));
                        }
                    };
                if let Exports::V0_2 { rules, .. } = &mut instance.exports {
                    if rules.len() <= rule.slot {
                        rules.resize(rule.slot + 1, None);
                    }
                    rules[rule.slot] = Some(built);
                }
                Some(built)
            }
            (_, resource) => resource,
        };
        self.prepare(&mut instance.store, &rule.limits, false);
        Ok((instance, resource))
    }

    /// Refund what a failed call had reserved, so a trap never eats quota.
    pub(super) async fn refund_all(&self, reservations: Vec<Reservation>) {
        for r in reservations {
            if let Err(e) = self.counters.refund(&r).await {
                tracing::warn!(plugin = %self.name, error = %e, "could not refund a reservation");
            }
        }
    }
}

/// Run a guest call; for a plugin that may block in a host call, give up (as a deadline
/// interrupt) once `deadline` plus [`BLOCKING_GRACE`] has passed. The instance is then dropped
/// by the caller like any failed one.
pub(super) async fn bounded<T>(
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
