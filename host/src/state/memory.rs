//! The in-memory counter store: fast and ephemeral (limits reset when the process exits).

use super::algorithm::{self, CounterState};
use super::{now_ms, CounterStore, Reservation, StoreError, TakeRequest, Taken};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

/// Counters in a hash map behind one lock (a take is a few hundred nanoseconds).
#[derive(Default)]
pub struct MemoryStore {
    counters: Mutex<HashMap<String, CounterState>>,
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
}
