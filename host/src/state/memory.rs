//! The in-memory state store: fast and ephemeral (limits and first-use pins reset when the
//! process exits).

use super::algorithm::{self, CounterState};
use super::approvals::{ApprovalStore, KEEP_MS};
use super::{
    now_ms, CounterStore, FirstSeen, PinStore, Reservation, StoreError, TakeRequest, Taken,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

/// Counters in a hash map behind one lock (a take is a few hundred nanoseconds).
#[derive(Default)]
pub struct MemoryStore {
    /// Each counter's state and its last take's limit, window and algorithm.
    counters: Mutex<HashMap<String, (CounterState, Limits)>>,
    /// First-seen tool definitions by server, then tool.
    pins: Mutex<HashMap<String, HashMap<String, FirstSeen>>>,
    approvals: Mutex<Approvals>,
}

/// What a counter's last take counted against: limit, window (ms), algorithm.
type Limits = (u64, u64, algorithm::Algorithm);

/// Approval records and the one open per binding.
#[derive(Default)]
struct Approvals {
    /// By id: binding, record, when it was made.
    records: HashMap<String, (String, String, u64)>,
    /// Binding -> the id of its open record.
    open: HashMap<String, String>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take at an explicit time (ms), for tests of window behaviour.
    pub fn take_at(&self, request: &TakeRequest, now: u64) -> (Taken, Option<Reservation>) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let window_ms = request.window.as_millis() as u64;
        let limits = (request.limit, window_ms, request.algorithm);
        let (state, kept) = counters
            .entry(request.key.clone())
            .or_insert_with(|| (CounterState::default(), limits));
        *kept = limits;
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
        if let Some((state, _)) = counters.get_mut(&r.request.key) {
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

    fn approvals(&self) -> Option<&dyn ApprovalStore> {
        Some(self)
    }

    async fn counters(&self, limit: usize) -> Result<Vec<super::CounterView>, StoreError> {
        Ok(self.counters_at(limit, now_ms()))
    }
}

impl MemoryStore {
    /// The counters in use at an explicit time (ms), busiest first.
    pub fn counters_at(&self, limit: usize, now: u64) -> Vec<super::CounterView> {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let views = counters
            .iter()
            .filter_map(|(key, (state, (l, w, a)))| algorithm::view(key, state, now, *l, *w, *a))
            .collect();
        algorithm::busiest(views, limit)
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

#[async_trait]
impl ApprovalStore for MemoryStore {
    async fn open_approval(
        &self,
        binding: &str,
        id: &str,
        fresh: &str,
        now_ms: u64,
    ) -> Result<String, StoreError> {
        let mut a = self.approvals.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(record) = a.open.get(binding).and_then(|id| a.records.get(id)) {
            return Ok(record.1.clone());
        }
        let Approvals { records, open } = &mut *a;
        records.retain(|_, (_, _, made)| now_ms.saturating_sub(*made) < KEEP_MS);
        open.retain(|_, id| records.contains_key(id));
        if records.contains_key(id) {
            return Err(StoreError(format!("approval id {id} is taken")));
        }
        records.insert(id.into(), (binding.into(), fresh.into(), now_ms));
        open.insert(binding.into(), id.into());
        Ok(fresh.into())
    }

    async fn swap_approval(
        &self,
        id: &str,
        old: &str,
        new: &str,
        close: bool,
    ) -> Result<bool, StoreError> {
        let mut a = self.approvals.lock().unwrap_or_else(|p| p.into_inner());
        let Approvals { records, open } = &mut *a;
        match records.get_mut(id) {
            Some((binding, record, _)) if record == old => {
                *record = new.into();
                if close && open.get(binding.as_str()).map(String::as_str) == Some(id) {
                    open.remove(binding.as_str());
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn approval(&self, id: &str) -> Result<Option<String>, StoreError> {
        let a = self.approvals.lock().unwrap_or_else(|p| p.into_inner());
        Ok(a.records.get(id).map(|r| r.1.clone()))
    }

    async fn approvals(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let a = self.approvals.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = a.records.values().collect();
        all.sort_by_key(|r| std::cmp::Reverse(r.2));
        Ok(all.into_iter().take(limit).map(|r| r.1.clone()).collect())
    }
}
