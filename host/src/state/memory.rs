//! The in-memory state store: fast and ephemeral (limits and first-use pins reset when the
//! process exits).

use super::algorithm::{self, CounterState};
use super::{
    now_ms, CounterStore, FirstSeen, PinStore, Reservation, StoreError, TakeRequest, Taken,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

/// Counters in a hash map behind one lock (a take is a few hundred nanoseconds).
#[derive(Default)]
pub struct MemoryStore {
    counters: Mutex<HashMap<String, CounterState>>,
    /// First-seen tool definitions by server, then tool.
    pins: Mutex<HashMap<String, HashMap<String, FirstSeen>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take at an explicit time (ms), for tests of window behaviour.
    pub fn take_at(&self, request: &TakeRequest, now: u64) -> (Taken, Option<Reservation>) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let state = counters.entry(request.key.clone()).or_default();
        let window_ms = request.window.as_millis() as u64;
        let o = algorithm::take(
            state,
            now,
            request.cost,
            request.limit,
            window_ms,
            request.algorithm,
        );
        let taken = Taken {
            granted: o.granted,
            used: o.used,
            limit: request.limit,
            resets_in_ms: o.resets_in_ms,
        };
        let reservation = o.granted.then(|| Reservation {
            request: request.clone(),
            window_start_ms: o.window_start_ms,
        });
        (taken, reservation)
    }
}

#[async_trait]
impl CounterStore for MemoryStore {
    async fn take(
        &self,
        request: &TakeRequest,
    ) -> Result<(Taken, Option<Reservation>), StoreError> {
        Ok(self.take_at(request, now_ms()))
    }

    async fn refund(&self, r: &Reservation) -> Result<(), StoreError> {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(state) = counters.get_mut(&r.request.key) {
            let window_ms = r.request.window.as_millis() as u64;
            algorithm::refund(
                state,
                r.request.cost,
                window_ms,
                r.window_start_ms,
                r.request.algorithm,
            );
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }

    fn pins(&self) -> Option<&dyn PinStore> {
        Some(self)
    }
}

#[async_trait]
impl PinStore for MemoryStore {
    async fn pin_first(
        &self,
        server: &str,
        tool: &str,
        seen: &FirstSeen,
    ) -> Result<FirstSeen, StoreError> {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        Ok(pins
            .entry(server.to_string())
            .or_default()
            .entry(tool.to_string())
            .or_insert_with(|| seen.clone())
            .clone())
    }

    async fn forget_pins(&self, server: &str, tools: &[String]) -> Result<u64, StoreError> {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        let Some(kept) = pins.get_mut(server) else {
            return Ok(0);
        };
        let before = kept.len();
        if tools.is_empty() {
            kept.clear();
        } else {
            kept.retain(|tool, _| !tools.contains(tool));
        }
        Ok((before - kept.len()) as u64)
    }
}
