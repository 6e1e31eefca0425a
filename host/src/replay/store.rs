//! The counters a replay runs against: in memory, on a clock that stands still until a case
//! says `wait`.

use crate::state::memory::MemoryStore;
use crate::state::{CounterStore, Reservation, StoreError, TakeRequest, Taken};
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where the replay clock starts: 2025-01-01T00:00:00Z, aligned to every window up to a day.
const REPLAY_EPOCH_MS: u64 = 1_735_689_600_000;

/// In-memory counters on a clock that moves only when told to.
pub struct ReplayStore {
    pub(super) inner: MemoryStore,
    now_ms: AtomicU64,
}

impl Default for ReplayStore {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayStore {
    /// Empty counters, the clock at 2025-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self {
            inner: MemoryStore::new(),
            now_ms: AtomicU64::new(REPLAY_EPOCH_MS),
        }
    }

    /// Move the clock forward.
    pub fn advance(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

#[async_trait]
impl CounterStore for ReplayStore {
    async fn take(
        &self,
        request: &TakeRequest,
    ) -> Result<(Taken, Option<Reservation>), StoreError> {
        Ok(self
            .inner
            .take_at(request, self.now_ms.load(Ordering::SeqCst)))
    }

    async fn refund(&self, reservation: &Reservation) -> Result<(), StoreError> {
        self.inner.refund(reservation).await
    }

    fn describe(&self) -> String {
        "memory (replay clock)".into()
    }

    fn pins(&self) -> Option<&dyn crate::state::PinStore> {
        self.inner.pins()
    }

    fn approvals(&self) -> Option<&dyn crate::state::ApprovalStore> {
        self.inner.approvals()
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    async fn counters(&self, limit: usize) -> Result<Vec<crate::state::CounterView>, StoreError> {
        Ok(self
            .inner
            .counters_at(limit, self.now_ms.load(Ordering::SeqCst)))
    }
}
