//! The WebAssembly side of Tollgate: one wasmtime [`Engine`] (pooling allocator, epoch
//! interruption), one linker with the host imports, and one pre-linked component per plugin,
//! instantiated into a small pool of configured instances that run under per-plugin limits.

pub mod bindings;
pub mod cache;
pub mod capabilities;
pub mod limits;
pub mod plugin;
pub mod pool;
pub mod ticker;
pub mod version;
mod wasi;

pub use cache::CodeCache;
pub use capabilities::Capability;
pub use limits::{Limits, LimitsSpecExt};
pub use plugin::{CallInput, Failure, Plugin, PluginError, Verdict};
pub use pool::Strategy;

use crate::state::CounterStore;
use bindings::{HostState, PluginPre};
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
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(config.fuel)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&wasm).map_err(|e| EngineError(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        bindings::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
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

    /// Check, compile (or load from cache), link and configure a plugin that may use the
    /// capabilities in `grants`.
    #[allow(clippy::too_many_arguments)]
    pub async fn load(
        &self,
        name: &str,
        wasm: &[u8],
        limits: Limits,
        config_json: &str,
        counters: Arc<dyn CounterStore>,
        key_prefix: &str,
        grants: &[Capability],
    ) -> Result<Plugin, LoadError> {
        version::check(wasm).map_err(|cause| LoadError::Version {
            plugin: name.into(),
            cause,
        })?;
        if limits.memory_bytes > self.config.max_memory_bytes {
            return Err(LoadError::Limit {
                plugin: name.into(),
                asked: limits::describe_bytes(limits.memory_bytes),
                max: limits::describe_bytes(self.config.max_memory_bytes),
            });
        }
        let compile_error = |e: wasmtime::Error| LoadError::Compile {
            plugin: name.into(),
            message: format!("{e:#}"),
        };
        let component = self.compile(wasm).map_err(compile_error)?;
        self.check_shape(&component, grants)
            .map_err(|message| LoadError::Shape {
                plugin: name.into(),
                message,
            })?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(compile_error)?;
        let pre = PluginPre::new(instance_pre).map_err(compile_error)?;
        let setup = plugin::PluginSetup {
            name: name.into(),
            limits,
            config_json: config_json.into(),
            counters,
            key_prefix: key_prefix.into(),
            strategy: self.config.strategy,
            max_idle: self.config.max_idle,
            fuel_enabled: self.config.fuel,
            may_block: grants.contains(&Capability::Clocks),
            ticker: self.ticker.clone(),
        };
        Ok(Plugin::new(self.engine.clone(), pre, setup).await?)
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
        let component = self.compile(wasm).map_err(|e| LoadError::Compile {
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

    fn compile(&self, wasm: &[u8]) -> wasmtime::Result<wasmtime::component::Component> {
        let digest = cache::digest(wasm);
        let mut components = self.components.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(component) = components.get(&digest) {
            return Ok(component.clone());
        }
        let component = match &self.config.cache {
            Some(cache) => cache.load_or_compile(&self.engine, wasm, &digest)?.0,
            None => wasmtime::component::Component::new(&self.engine, wasm)?,
        };
        components.insert(digest, component.clone());
        Ok(component)
    }

    /// Refuse a component whose imports go beyond the contract and its grants, that was built
    /// against another `tollgate:policy` version, or that lacks one of the world's exports.
    fn check_shape(
        &self,
        component: &wasmtime::component::Component,
        grants: &[Capability],
    ) -> Result<(), String> {
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
        let missing: Vec<&str> = ["configure", "check-call", "check-result", "visible"]
            .into_iter()
            .filter(|e| !exports.iter().any(|x| x == e))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "it does not export {} (every plugin implements the `plugin` world of tollgate:policy@{}: configure, check-call, check-result, visible)",
                missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
                version::SUPPORTED.join(", ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_compile_once_per_engine() {
        let engine = PolicyEngine::new(EngineConfig {
            cache: None,
            ..EngineConfig::default()
        })
        .unwrap();
        let first = engine.compile(crate::builtin::DENY).unwrap();
        let again = engine.compile(crate::builtin::DENY).unwrap();
        let other = engine.compile(crate::builtin::RATE_LIMIT).unwrap();
        assert_eq!(first.image_range(), again.image_range());
        assert_ne!(first.image_range(), other.image_range());
    }
}
