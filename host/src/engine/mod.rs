//! The WebAssembly side of Tollgate: one wasmtime [`Engine`] (pooling allocator, epoch
//! interruption), one linker with the host imports of every contract version it hosts, and one
//! pre-linked component per plugin, instantiated into a small pool of instances that every rule
//! using the plugin shares (contract 0.2; a 0.1 plugin is configured per rule), running under
//! each rule's limits.

pub mod bindings;
pub mod cache;
mod call;
pub mod capabilities;
pub mod limits;
pub mod plugin;
pub mod pool;
mod rule;
pub mod settings;
pub mod ticker;
pub mod version;
mod wasi;

pub use cache::CodeCache;
pub use call::{CallInput, Reviewed, Verdict};
pub use capabilities::Capability;
pub use limits::Limits;
pub use plugin::{Contract, Failure, Plugin, PluginError};
pub use pool::Strategy;
pub use rule::BoundRule;

use crate::state::CounterStore;
use bindings::HostState;
use std::collections::HashMap;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How the engine is built.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where compiled code is cached; `None` compiles every time.
    pub cache: Option<CodeCache>,
    /// Instance reuse strategy for every plugin.
    pub strategy: Strategy,
    /// Idle instances kept per plugin.
    pub max_idle: usize,
    /// The largest memory limit any plugin will have (sizes the pooling allocator's slots).
    pub max_memory_bytes: usize,
    /// Whether any plugin may set a fuel limit.
    pub fuel: bool,
    /// Instances the pooling allocator can hold at once across all plugins.
    pub max_instances: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            cache: CodeCache::default_dir().map(CodeCache::new),
            strategy: Strategy::Reuse,
            max_idle: 8,
            max_memory_bytes: limits::DEFAULT_MEMORY_BYTES,
            fuel: false,
            max_instances: 256,
        }
    }
}

/// Loading a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The WIT-version stamp does not match.
    #[error("plugin `{plugin}` cannot be loaded: {cause}")]
    Version {
        /// The plugin's name.
        plugin: String,
        /// The mismatch.
        cause: version::VersionError,
    },
    /// Compiling or linking failed (not a component, missing exports, unknown imports, …).
    #[error("plugin `{plugin}` cannot be loaded: {message}")]
    Compile {
        /// The plugin's name.
        plugin: String,
        /// wasmtime's explanation.
        message: String,
    },
    /// The component imports something it was not granted, or lacks an export.
    #[error("plugin `{plugin}` cannot be loaded: {message}")]
    Shape {
        /// The plugin's name.
        plugin: String,
        /// Which import or export, and what to do.
        message: String,
    },
    /// Instantiating or configuring the first instance failed.
    #[error(transparent)]
    Configure(#[from] PluginError),
    /// A limit asks for more than the engine was built for.
    #[error("plugin `{plugin}`: memory limit {asked} is above the engine's maximum {max}")]
    Limit {
        /// The plugin's name.
        plugin: String,
        /// What it asked for.
        asked: String,
        /// What the engine allows.
        max: String,
    },
}

/// Building the engine failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the WebAssembly engine: {0}")]
pub struct EngineError(String);

/// The engine shared by every plugin of a policy.
pub struct PolicyEngine {
    engine: Engine,
    linker: Linker<HostState>,
    config: EngineConfig,
    ticker: ticker::Ticker,
    /// Components already compiled or loaded, by the sha256 of their bytes: every rule of one
    /// kind runs the same code, instead of each rule mapping the compiled file again with its
    /// own copy of the metadata (120 rules of three kinds: 560 → 302 MB resident).
    components: std::sync::Mutex<HashMap<[u8; 32], wasmtime::component::Component>>,
}

/// Average guest-side allowance per component: wit-bindgen components hold a few core
/// instances; the pool's totals are sized by this.
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
/// The most core instances one component may hold: componentize-py's Python components hold 38.
const MAX_CORE_INSTANCES_IN_ONE_COMPONENT: u32 = 64;

impl PolicyEngine {
    /// Build the engine and start its epoch ticker (a thread that ticks while plugins run and
    /// ends with the engine).
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let mut pooling = PoolingAllocationConfig::default();
        let n = config.max_instances;
        pooling
            .total_component_instances(n)
            .total_core_instances(n * CORE_INSTANCES_PER_COMPONENT)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_IN_ONE_COMPONENT)
            .total_memories(n * 2)
            .max_memories_per_component(8)
            .total_tables(n * 4)
            .max_tables_per_component(MAX_CORE_INSTANCES_IN_ONE_COMPONENT)
            .total_stacks(n)
            .max_memory_size(config.max_memory_bytes);
        let mut wasm = Config::new();
        settings::apply(&mut wasm, config.fuel);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&wasm).map_err(|e| EngineError(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        // Every contract version this host implements, side by side: a 0.1 and a 0.2 plugin
        // run in one policy.
        bindings::v0_1::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| EngineError(format!("{e:#}")))?;
        bindings::v0_2::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| EngineError(format!("{e:#}")))?;
        // WASI is linked for every plugin, but a component may only import the interfaces its
        // grants allow (checked in `load`, before anything runs).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| EngineError(format!("{e:#}")))?;
        let ticker = ticker::Ticker::start(&engine);
        Ok(Self {
            engine,
            linker,
            config,
            ticker,
            components: Default::default(),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Bind one rule to its plugin, loading the plugin first unless `set` already holds it:
    /// check, compile (or load from cache) and link the component, then build the rule from
    /// `config_json` once, so a configuration the plugin refuses fails here.
    ///
    /// Rules of one 0.2 plugin (same name, same memory ceiling) share its instances; each rule
    /// of a 0.1 plugin gets a plugin of its own, since 0.1 configures a whole instance.
    pub async fn load_rule(
        &self,
        set: &mut PluginSet,
        spec: &PluginSpec<'_>,
        config_json: &str,
        limits: Limits,
    ) -> Result<BoundRule, LoadError> {
        let key = (spec.name.to_string(), limits.memory_bytes);
        let plugin = match set.plugins.get(&key) {
            Some(plugin) => plugin.clone(),
            None => {
                let plugin = Arc::new(self.plugin(spec, limits.memory_bytes)?);
                match plugin.contract() {
                    Contract::V0_2 => set.plugins.insert(key, plugin.clone()),
                    Contract::V0_1 => {
                        set.unshared += 1;
                        None
                    }
                };
                plugin
            }
        };
        Ok(plugin.bind(config_json, limits).await?)
    }

    /// Load a plugin for a single rule (tests, benchmarks, `pack` checks).
    pub async fn load(
        &self,
        spec: &PluginSpec<'_>,
        config_json: &str,
        limits: Limits,
    ) -> Result<BoundRule, LoadError> {
        self.load_rule(&mut PluginSet::default(), spec, config_json, limits)
            .await
    }

    /// Check, compile (or load from cache) and link a plugin whose instances may grow to
    /// `memory_bytes`.
    fn plugin(&self, spec: &PluginSpec<'_>, memory_bytes: usize) -> Result<Plugin, LoadError> {
        let name = spec.name;
        // A built-in plugin is built with this host's SDK: its stamp needs no reading.
        if spec.builtin.is_none() {
            version::check(spec.wasm).map_err(|cause| LoadError::Version {
                plugin: name.into(),
                cause,
            })?;
        }
        if memory_bytes > self.config.max_memory_bytes {
            return Err(LoadError::Limit {
                plugin: name.into(),
                asked: limits::describe_bytes(memory_bytes),
                max: limits::describe_bytes(self.config.max_memory_bytes),
            });
        }
        let compile_error = |e: wasmtime::Error| LoadError::Compile {
            plugin: name.into(),
            message: format!("{e:#}"),
        };
        let component = self
            .compile(spec.wasm, spec.builtin)
            .map_err(compile_error)?;
        let contract = self
            .check_shape(&component, spec.grants)
            .map_err(|message| LoadError::Shape {
                plugin: name.into(),
                message,
            })?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(compile_error)?;
        let pre = match contract {
            Contract::V0_1 => plugin::Pre::V0_1(
                bindings::v0_1::PluginPre::new(instance_pre).map_err(compile_error)?,
            ),
            Contract::V0_2 => plugin::Pre::V0_2(
                bindings::v0_2::PluginPre::new(instance_pre).map_err(compile_error)?,
            ),
        };
        let setup = plugin::PluginSetup {
            name: name.into(),
            memory_bytes,
            counters: spec.counters.clone(),
            key_prefix: spec.key_prefix.into(),
            strategy: self.config.strategy,
            max_idle: self.config.max_idle,
            fuel_enabled: self.config.fuel,
            may_block: spec.grants.contains(&Capability::Clocks),
            ticker: self.ticker.clone(),
        };
        Ok(Plugin::new(self.engine.clone(), pre, setup))
    }
}

/// What a plugin is, for [`PolicyEngine::load_rule`].
pub struct PluginSpec<'a> {
    /// The plugin's name (built-in, or from the policy's `plugins:`).
    pub name: &'a str,
    /// Its component (empty for a built-in plugin, which [`PluginSpec::builtin`] gives).
    pub wasm: &'a [u8],
    /// Where its counters live.
    pub counters: Arc<dyn CounterStore>,
    /// Prefix of its counter keys (`<server>/<plugin>/`).
    pub key_prefix: &'a str,
    /// The capabilities the operator granted it.
    pub grants: &'a [Capability],
    /// The built-in plugin this is, if it is one: its digest and the code compiled for it when
    /// Tollgate was built (used when it fits this engine) come with it.
    pub builtin: Option<&'static crate::builtin::Builtin>,
}

/// The plugins one policy has loaded so far, so its rules share them. A reloaded policy starts
/// a new set: rules of the old one are not carried into the new one's instances.
#[derive(Default)]
pub struct PluginSet {
    plugins: HashMap<(String, usize), Arc<Plugin>>,
    /// 0.1 plugins loaded, one per rule.
    unshared: usize,
}

impl PluginSet {
    /// How many plugins (each with its pool of instances) the policy's rules run in.
    pub fn len(&self) -> usize {
        self.plugins.len() + self.unshared
    }

    /// Whether no plugin is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PolicyEngine {
    /// Compile (or load from cache) a component and check its imports against `grants`, its
    /// contract version and its exports, without running it. Returns its imports.
    pub fn inspect(
        &self,
        name: &str,
        wasm: &[u8],
        grants: &[Capability],
    ) -> Result<Vec<String>, LoadError> {
        version::check(wasm).map_err(|cause| LoadError::Version {
            plugin: name.into(),
            cause,
        })?;
        let component = self.compile(wasm, None).map_err(|e| LoadError::Compile {
            plugin: name.into(),
            message: format!("{e:#}"),
        })?;
        self.check_shape(&component, grants)
            .map_err(|message| LoadError::Shape {
                plugin: name.into(),
                message,
            })?;
        Ok(component
            .component_type()
            .imports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect())
    }

    /// The compiled form of `wasm`: already in this engine, else — for a built-in plugin — the
    /// code compiled when Tollgate was built (mapped through the code cache when there is one)
    /// when it fits this engine, else the code cache, else compiled now.
    fn compile(
        &self,
        wasm: &[u8],
        builtin: Option<&crate::builtin::Builtin>,
    ) -> wasmtime::Result<wasmtime::component::Component> {
        let digest = builtin.map_or_else(|| cache::digest(wasm), |b| *b.sha256);
        let mut components = self.components.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(component) = components.get(&digest) {
            return Ok(component.clone());
        }
        let embedded = builtin.and_then(|b| match &self.config.cache {
            Some(cache) => cache.load_precompiled(&self.engine, &digest, || b.precompiled()),
            // SAFETY: the code is what this Tollgate's build script compiled from this built-in's
            // component (`builtin.rs` embeds both); `deserialize` checks that it was compiled by
            // this wasmtime version with settings that fit this engine, and refuses it otherwise.
            None => unsafe {
                wasmtime::component::Component::deserialize(&self.engine, b.precompiled())
            }
            .map_err(|e| tracing::debug!(error = %e, "precompiled built-in code does not fit this engine; compiling"))
            .ok(),
        });
        // A built-in's component is inflated only when its compiled code did not fit.
        let source = match builtin {
            Some(b) if embedded.is_none() => std::borrow::Cow::Owned(b.wasm()),
            _ => std::borrow::Cow::Borrowed(wasm),
        };
        let component = match (embedded, &self.config.cache) {
            (Some(component), _) => component,
            (None, Some(cache)) => cache.load_or_compile(&self.engine, &source, &digest)?.0,
            (None, None) => wasmtime::component::Component::new(&self.engine, &source)?,
        };
        components.insert(digest, component.clone());
        Ok(component)
    }

    /// Refuse a component whose imports go beyond the contract and its grants, that was built
    /// against a `tollgate:policy` version this host does not implement, or that exports neither
    /// version's world. Returns the version it implements.
    fn check_shape(
        &self,
        component: &wasmtime::component::Component,
        grants: &[Capability],
    ) -> Result<Contract, String> {
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        for import in &imports {
            if let Some(v) = import
                .strip_prefix("tollgate:policy/")
                .and_then(|r| r.split_once('@'))
            {
                if !version::SUPPORTED.contains(&v.1) {
                    return Err(version::VersionError::Mismatch {
                        found: v.1.to_string(),
                        supported: version::SUPPORTED.join(", "),
                    }
                    .to_string());
                }
            }
        }
        capabilities::check_imports(imports.iter().map(String::as_str), grants)
            .map_err(|e| e.to_string())?;
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        if exports.iter().any(|e| e == version::RULES_EXPORT_0_2) {
            return Ok(Contract::V0_2);
        }
        let v0_1 = ["configure", "check-call", "check-result", "visible"];
        let missing: Vec<&str> = v0_1
            .into_iter()
            .filter(|e| !exports.iter().any(|x| x == e))
            .collect();
        if missing.is_empty() {
            return Ok(Contract::V0_1);
        }
        Err(format!(
            "it implements no version of the tollgate:policy contract this Tollgate hosts: a 0.2.0 plugin exports the interface `{}`, a 0.1.0 plugin the functions {} (it exports {})",
            version::RULES_EXPORT_0_2,
            v0_1.map(|m| format!("`{m}`")).join(", "),
            if exports.is_empty() { "nothing".to_string() } else { exports.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ") }
        ))
    }
}

#[cfg(test)]
mod tests;
