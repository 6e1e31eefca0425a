//! Host side of the `tollgate:policy` WIT contract, every version this host links side by side:
//! the generated bindings of each and the host imports (`counters`, `log`) that plugins call.
//! Both versions' imports do the same thing; each is a thin adapter onto [`HostState`].

use super::limits::MemoryLimiter;
use crate::state::{self, CounterStore, Reservation, TakeRequest};
use std::sync::Arc;
use std::time::Duration;

/// `tollgate:policy@0.1.0`: one instance per rule, configured by `configure` (frozen).
pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "plugin",
        imports: {
            "tollgate:policy/counters.take": async,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// `tollgate:policy@0.2.0`: rules are resources; one instance serves every rule of a plugin.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.2",
        world: "plugin",
        imports: {
            "tollgate:policy/counters.take": async,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// The data of one plugin instance's store.
pub struct HostState {
    /// The plugin's name, for logs and key namespacing.
    pub plugin: Arc<str>,
    /// Prefix of every counter key this plugin takes (`<namespace>/<plugin>/`).
    pub key_prefix: Arc<str>,
    /// Where counters live.
    pub counters: Arc<dyn CounterStore>,
    /// Reservations made during the current call, handed to the chain afterwards.
    pub reservations: Vec<Reservation>,
    /// Enforces the memory limit and remembers whether it was hit.
    pub limiter: MemoryLimiter,
    /// The deadline of the current call, counting only the plugin's own time.
    pub deadline: Duration,
    /// When the current call started.
    pub call_started: std::time::Instant,
    /// Wall time the current call spent waiting in host calls (the counter store): it does not
    /// count against the deadline, since a slow store is the store's failure, not the plugin's.
    pub host_time: Duration,
    /// The WASI context behind the capabilities the plugin was granted (empty otherwise).
    pub wasi: wasmtime_wasi::WasiCtx,
    /// Resources handed out through WASI (streams, pollables).
    pub table: wasmtime::component::ResourceTable,
}

impl wasmtime_wasi::WasiView for HostState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What a `take` answered, in the terms both contract versions share.
struct Taken {
    granted: bool,
    used: u64,
    limit: u64,
    resets_in_ms: u64,
}

/// Severity of a plugin's log message, in the terms both contract versions share.
enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl HostState {
    async fn take(&mut self, mut request: TakeRequest) -> Result<Taken, String> {
        request.key = format!("{}{}", self.key_prefix, request.key);
        let started = std::time::Instant::now();
        let outcome = self.counters.take(&request).await;
        self.host_time += started.elapsed();
        match outcome {
            Ok((taken, reservation)) => {
                self.reservations.extend(reservation);
                Ok(Taken {
                    granted: taken.granted,
                    used: taken.used,
                    limit: taken.limit,
                    resets_in_ms: taken.resets_in_ms,
                })
            }
            Err(e) => {
                crate::metrics::store_error();
                tracing::warn!(plugin = %self.plugin, error = %e, "counter store unavailable");
                Err(e.to_string())
            }
        }
    }

    fn log(&self, level: Level, message: &str) {
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "tollgate::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "tollgate::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "tollgate::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "tollgate::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "tollgate::plugin", plugin, "{message}"),
        }
    }
}

/// Implements one contract version's `counters` and `log` imports on [`HostState`]; the
/// versions' generated types have the same shape, so one body serves each.
macro_rules! host_imports {
    ($v:ident) => {
        impl $v::tollgate::policy::types::Host for HostState {}

        impl $v::tollgate::policy::counters::Host for HostState {
            async fn take(
                &mut self,
                key: String,
                cost: u64,
                limit: u64,
                window_ms: u64,
                algorithm: $v::tollgate::policy::counters::Algorithm,
            ) -> Result<$v::tollgate::policy::counters::Taken, String> {
                use $v::tollgate::policy::counters::Algorithm as A;
                let request = TakeRequest {
                    key,
                    cost,
                    limit,
                    window: Duration::from_millis(window_ms.max(1)),
                    algorithm: match algorithm {
                        A::FixedWindow => state::Algorithm::FixedWindow,
                        A::SlidingWindow => state::Algorithm::SlidingWindow,
                        A::TokenBucket => state::Algorithm::TokenBucket,
                    },
                };
                let t = HostState::take(self, request).await?;
                Ok($v::tollgate::policy::counters::Taken {
                    granted: t.granted,
                    used: t.used,
                    limit: t.limit,
                    resets_in_ms: t.resets_in_ms,
                })
            }
        }

        impl $v::tollgate::policy::log::Host for HostState {
            fn log(
                &mut self,
                level: $v::tollgate::policy::log::Level,
                message: String,
            ) -> wasmtime::Result<()> {
                use $v::tollgate::policy::log::Level as L;
                let level = match level {
                    L::Trace => Level::Trace,
                    L::Debug => Level::Debug,
                    L::Info => Level::Info,
                    L::Warn => Level::Warn,
                    L::Error => Level::Error,
                };
                HostState::log(self, level, &message);
                Ok(())
            }
        }
    };
}

host_imports!(v0_1);
host_imports!(v0_2);
