//! Host side of the `tollgate:policy` WIT contract: the generated bindings and the host imports
//! (`counters`, `log`) that plugins call.

use super::limits::MemoryLimiter;
use crate::state::{self, CounterStore, Reservation, TakeRequest};
use std::sync::Arc;
use std::time::Duration;

wasmtime::component::bindgen!({
    path: "../wit/v0.1",
    world: "plugin",
    imports: {
        "tollgate:policy/counters.take": async,
        default: trappable,
    },
    exports: { default: async },
});

pub use self::tollgate::policy::types::{
    Call as WitCall, Denial as WitDenial, ResultVerdict as WitResultVerdict, Verdict as WitVerdict,
};
use self::tollgate::policy::{counters, log, types};

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

impl types::Host for HostState {}

impl counters::Host for HostState {
    async fn take(
        &mut self,
        key: String,
        cost: u64,
        limit: u64,
        window_ms: u64,
        algorithm: counters::Algorithm,
    ) -> Result<counters::Taken, String> {
        let request = TakeRequest {
            key: format!("{}{key}", self.key_prefix),
            cost,
            limit,
            window: Duration::from_millis(window_ms.max(1)),
            algorithm: match algorithm {
                counters::Algorithm::FixedWindow => state::Algorithm::FixedWindow,
                counters::Algorithm::SlidingWindow => state::Algorithm::SlidingWindow,
                counters::Algorithm::TokenBucket => state::Algorithm::TokenBucket,
            },
        };
        let started = std::time::Instant::now();
        let outcome = self.counters.take(&request).await;
        self.host_time += started.elapsed();
        match outcome {
            Ok((taken, reservation)) => {
                self.reservations.extend(reservation);
                Ok(counters::Taken {
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
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let plugin = &*self.plugin;
        match level {
            log::Level::Trace => tracing::trace!(target: "tollgate::plugin", plugin, "{message}"),
            log::Level::Debug => tracing::debug!(target: "tollgate::plugin", plugin, "{message}"),
            log::Level::Info => tracing::info!(target: "tollgate::plugin", plugin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "tollgate::plugin", plugin, "{message}"),
            log::Level::Error => tracing::error!(target: "tollgate::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}
