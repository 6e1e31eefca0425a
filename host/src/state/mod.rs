//! The state store: counters for rate limits and quotas, the first-seen tool definitions of
//! `pins: tofu`, and approval requests and their outcomes. [`sqlite`] (the default: durable and
//! shared by the processes of one machine), [`memory`] (ephemeral) and [`redis`] (shared by
//! replicas). Every store implements the same [`CounterStore`] trait with the same arithmetic
//! from [`algorithm`], the same [`PinStore`] and the same [`ApprovalStore`].

pub mod algorithm;
pub mod approvals;
pub mod memory;
pub mod redis;
pub mod sqlite;

pub use algorithm::{Algorithm, CounterView};
pub use approvals::ApprovalStore;
use async_trait::async_trait;
use std::time::Duration;

/// A counter store could not do what was asked (unreachable, corrupt, …).
#[derive(Debug, thiserror::Error)]
#[error("counter store error: {0}")]
pub struct StoreError(pub String);

/// One `take` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeRequest {
    /// Full counter key, already namespaced by the caller.
    pub key: String,
    /// Units to reserve.
    pub cost: u64,
    /// Units allowed per window.
    pub limit: u64,
    /// Window length.
    pub window: Duration,
    /// How to count.
    pub algorithm: Algorithm,
}

/// The outcome of a take, as plugins see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Whether the units were reserved.
    pub granted: bool,
    /// Units in use after the take (before it, when refused).
    pub used: u64,
    /// The limit checked against.
    pub limit: u64,
    /// Milliseconds until the same take could succeed (0 when granted).
    pub resets_in_ms: u64,
}

/// What a granted take reserved, so it can be refunded if the call does not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The request that was granted.
    pub request: TakeRequest,
    /// Which window (its start, ms since the epoch) the units went into.
    pub window_start_ms: u64,
}

/// Shared counters. Implementations must make `take` atomic: two concurrent takes can never
/// both be granted past the limit.
#[async_trait]
pub trait CounterStore: Send + Sync + 'static {
    /// Reserve `request.cost` units unless that would pass the limit within the window.
    async fn take(&self, request: &TakeRequest)
        -> Result<(Taken, Option<Reservation>), StoreError>;

    /// Give back what a reservation took (the call was denied later, or the server failed).
    async fn refund(&self, reservation: &Reservation) -> Result<(), StoreError>;

    /// A short name for logs and `tollgate check` (`memory`, `sqlite:/path`, …).
    fn describe(&self) -> String;

    /// The same store's tool baselines for `pins: tofu`; `None` where it keeps none.
    fn pins(&self) -> Option<&dyn PinStore> {
        None
    }

    /// The time the store's records are kept by (ms since the epoch): the system clock, except
    /// for `tollgate test`'s replay clock.
    fn now_ms(&self) -> u64 {
        now_ms()
    }

    /// The same store's approval requests and outcomes; `None` where it keeps none.
    fn approvals(&self) -> Option<&dyn ApprovalStore> {
        None
    }

    /// The counters with units in use now (at most `limit`, the most used first), each with
    /// the limit and window of its last take, for `tollgate status` and the console.
    async fn counters(&self, limit: usize) -> Result<Vec<CounterView>, StoreError>;
}

/// The definition of a tool that a server listed first, as `pins: tofu` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstSeen {
    /// `sha256:…` of the definition's pinned fields (see [`crate::pins::digest`]).
    pub digest: String,
    /// The pinned fields as canonical JSON, to name what changed later.
    pub definition: String,
}

/// Tool baselines for trust on first use, shared by every proxy of the store.
#[async_trait]
pub trait PinStore: Send + Sync {
    /// Keep `seen` as the baseline of `server`'s `tool` unless one is kept already, and return
    /// the baseline kept. Atomic: two proxies that see different definitions first agree on one.
    async fn pin_first(
        &self,
        server: &str,
        tool: &str,
        seen: &FirstSeen,
    ) -> Result<FirstSeen, StoreError>;

    /// Forget `server`'s baselines (of the tools named, or all when none are), so the next
    /// listing is trusted again; how many were forgotten.
    async fn forget_pins(&self, server: &str, tools: &[String]) -> Result<u64, StoreError>;
}

/// Tollgate's directory in the user's state home (`$XDG_STATE_HOME/tollgate` or the platform's
/// equivalent): the default sqlite store, the decision log, the record of wrapped entries.
pub fn home() -> Option<std::path::PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("tollgate"))
}

/// Milliseconds since the Unix epoch, the time base of every store.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
