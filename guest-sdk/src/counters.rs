//! Shared counters kept by the host, for rate limits and quotas.
//!
//! In a plugin, [`take`] calls the host's `tollgate:policy/counters` import. In native unit tests
//! it uses an in-process stub (fixed windows over a manual clock) that [`testing`] controls.

/// How a counter counts; see the WIT documentation of `counters.algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// At most `limit` per window, windows aligned to the epoch.
    FixedWindow,
    /// At most `limit` in any window ending now (weighted estimate).
    SlidingWindow,
    /// A bucket of `limit` tokens refilled over the window.
    TokenBucket,
}

/// The outcome of [`take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Whether the units were reserved.
    pub granted: bool,
    /// Units in use after this take (before it, when not granted).
    pub used: u64,
    /// The limit checked against.
    pub limit: u64,
    /// Milliseconds until this take could succeed (0 when granted).
    pub resets_in_ms: u64,
}

/// Reserve `cost` units of counter `key` unless that passes `limit` within `window_ms`.
/// `Err` means the host's state store could not be reached.
pub fn take(
    key: &str,
    cost: u64,
    limit: u64,
    window_ms: u64,
    algorithm: Algorithm,
) -> Result<Taken, String> {
    imp::take(key, cost, limit, window_ms, algorithm)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{Algorithm, Taken};
    use crate::__export::bindings::tollgate::policy::counters as wit;

    pub fn take(
        key: &str,
        cost: u64,
        limit: u64,
        window_ms: u64,
        algorithm: Algorithm,
    ) -> Result<Taken, String> {
        let algorithm = match algorithm {
            Algorithm::FixedWindow => wit::Algorithm::FixedWindow,
            Algorithm::SlidingWindow => wit::Algorithm::SlidingWindow,
            Algorithm::TokenBucket => wit::Algorithm::TokenBucket,
        };
        wit::take(key, cost, limit, window_ms, algorithm).map(|t| Taken {
            granted: t.granted,
            used: t.used,
            limit: t.limit,
            resets_in_ms: t.resets_in_ms,
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{Algorithm, Taken};
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct Stub {
        pub now_ms: u64,
        pub unavailable: bool,
        /// key -> (window start, used)
        pub windows: HashMap<String, (u64, u64)>,
    }

    thread_local! {
        pub static STUB: RefCell<Stub> = RefCell::new(Stub::default());
    }

    pub fn take(
        key: &str,
        cost: u64,
        limit: u64,
        window_ms: u64,
        _algorithm: Algorithm,
    ) -> Result<Taken, String> {
        STUB.with(|stub| {
            let mut stub = stub.borrow_mut();
            if stub.unavailable {
                return Err("counter store unavailable (test stub)".to_string());
            }
            let window_ms = window_ms.max(1);
            let now = stub.now_ms;
            let start = now - now % window_ms;
            let entry = stub.windows.entry(key.to_string()).or_insert((start, 0));
            if entry.0 != start {
                *entry = (start, 0);
            }
            if entry.1 + cost > limit {
                return Ok(Taken {
                    granted: false,
                    used: entry.1,
                    limit,
                    resets_in_ms: start + window_ms - now,
                });
            }
            entry.1 += cost;
            Ok(Taken {
                granted: true,
                used: entry.1,
                limit,
                resets_in_ms: 0,
            })
        })
    }
}

/// Control of the native counter stub, for unit tests (not available in WebAssembly builds).
#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    use super::imp::STUB;

    /// Forget all counters and reset the clock to 0.
    pub fn reset() {
        STUB.with(|s| *s.borrow_mut() = Default::default());
    }

    /// Move the stub's clock forward.
    pub fn advance_ms(ms: u64) {
        STUB.with(|s| s.borrow_mut().now_ms += ms);
    }

    /// Make every `take` fail as if the state store were unreachable.
    pub fn set_unavailable(unavailable: bool) {
        STUB.with(|s| s.borrow_mut().unavailable = unavailable);
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn stub_enforces_limits_per_window_and_key() {
        testing::reset();
        let t = |k| take(k, 1, 2, 1000, Algorithm::FixedWindow).unwrap();
        assert!(t("a").granted);
        assert!(t("a").granted);
        let denied = t("a");
        assert!(!denied.granted);
        assert_eq!(denied.resets_in_ms, 1000);
        assert!(t("b").granted, "keys are independent");
        testing::advance_ms(1000);
        assert!(t("a").granted, "a new window starts empty");
        testing::set_unavailable(true);
        assert!(take("a", 1, 2, 1000, Algorithm::FixedWindow).is_err());
        testing::set_unavailable(false);
    }
}
