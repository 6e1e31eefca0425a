//! Where approval requests and their outcomes are kept, so a request raised by one proxy can be
//! decided through another, or from the CLI. A store keeps records (JSON text written by
//! [`crate::approval`], which alone knows their fields) and, per binding (one caller, server,
//! tool, arguments and rule), the record that is open for it. Two atomic operations suffice:
//! open a record for a binding unless one is open, and replace a record only if it is still
//! what the caller read (compare and swap), optionally closing its binding.

use super::StoreError;
use async_trait::async_trait;

/// How long records are kept after they were made, whatever became of them (a week).
pub const KEEP_MS: u64 = 7 * 24 * 3600 * 1000;

/// Approval records, shared by every proxy of the store.
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// The record open for `binding`, or `fresh` (whose id is `id`) kept and opened for it.
    /// Atomic: two proxies asking for one binding at once get the same record.
    async fn open_approval(
        &self,
        binding: &str,
        id: &str,
        fresh: &str,
        now_ms: u64,
    ) -> Result<String, StoreError>;

    /// Replace record `id` with `new` if it is still `old`; `close` also frees its binding, so
    /// the next request for it opens a new record. `false`: it changed meanwhile (or is gone).
    async fn swap_approval(
        &self,
        id: &str,
        old: &str,
        new: &str,
        close: bool,
    ) -> Result<bool, StoreError>;

    /// Record `id`, if kept.
    async fn approval(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// The records made most recently, newest first, at most `limit`.
    async fn approvals(&self, limit: usize) -> Result<Vec<String>, StoreError>;
}
