//! The arithmetic of the counting algorithms, shared by every store so they all decide alike.
//!
//! A counter's state is three integers ([`CounterState`]), which suits an SQL row or a Redis
//! hash as well as memory.

/// How a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// At most `limit` per window; windows aligned to the Unix epoch (a minute resets at :00 UTC).
    FixedWindow,
    /// At most `limit` in any window ending now, estimated from the current and previous fixed
    /// windows weighted by overlap.
    SlidingWindow,
    /// A bucket of `limit` tokens, refilled evenly over the window.
    TokenBucket,
}

impl Algorithm {
    /// The word stores keep (`fixed`, `sliding`, `bucket`).
    pub fn word(self) -> &'static str {
        match self {
            Algorithm::FixedWindow => "fixed",
            Algorithm::SlidingWindow => "sliding",
            Algorithm::TokenBucket => "bucket",
        }
    }

    /// The algorithm a stored word names.
    pub fn from_word(word: &str) -> Option<Self> {
        [
            Algorithm::FixedWindow,
            Algorithm::SlidingWindow,
            Algorithm::TokenBucket,
        ]
        .into_iter()
        .find(|a| a.word() == word)
    }
}

/// A counter as `tollgate status` and the console show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CounterView {
    /// The counter's key (the rule's namespace, then the caller or the key it counts by).
    pub key: String,
    /// Units in use now.
    pub used: u64,
    /// The limit of its last take.
    pub limit: u64,
    /// Its window (a token bucket: the time it takes to refill).
    pub window_ms: u64,
    /// `fixed`, `sliding` or `bucket`.
    pub algorithm: &'static str,
    /// Milliseconds until the window ends (a token bucket: until it is full again).
    pub resets_in_ms: u64,
}

/// What a counter holds at `now`, counted by the same arithmetic as a take of nothing; `None`
/// for a counter with nothing in use.
pub fn view(
    key: &str,
    state: &CounterState,
    now: u64,
    limit: u64,
    window_ms: u64,
    algorithm: Algorithm,
) -> Option<CounterView> {
    let window = window_ms.max(1);
    let mut copy = *state;
    let used = take(&mut copy, now, 0, limit, window, algorithm).used;
    let resets_in_ms = match algorithm {
        Algorithm::FixedWindow | Algorithm::SlidingWindow => window - now % window,
        Algorithm::TokenBucket => {
            (copy.used as u128 * window as u128).div_ceil((limit * MILLI).max(1) as u128) as u64
        }
    };
    (used > 0).then(|| CounterView {
        key: key.to_string(),
        used,
        limit,
        window_ms,
        algorithm: algorithm.word(),
        resets_in_ms,
    })
}

/// The `limit` counters with the most in use, most first (then by key).
pub fn busiest(mut views: Vec<CounterView>, limit: usize) -> Vec<CounterView> {
    views.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.key.cmp(&b.key)));
    views.truncate(limit);
    views
}

/// Token-bucket arithmetic works in thousandths of a token.
const MILLI: u64 = 1000;

/// The persistent state of one counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterState {
    /// Windows: start of the current window (ms). Token bucket: time of the last refill (ms).
    pub start_ms: u64,
    /// Windows: units used in the current window. Token bucket: thousandths of a token used.
    pub used: u64,
    /// Windows: units used in the previous window (sliding window only).
    pub prev_used: u64,
}

/// Result of [`take`]: whether it was granted, the usage to report and the retry delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the cost was reserved.
    pub granted: bool,
    /// Units in use (after the take when granted).
    pub used: u64,
    /// Milliseconds until the take could succeed (0 when granted).
    pub resets_in_ms: u64,
    /// The window the units went into (for refunds).
    pub window_start_ms: u64,
}

/// Move a windowed state forward to the window containing `now`.
fn roll(state: &mut CounterState, now: u64, window: u64) {
    let start = now - now % window;
    if state.start_ms != start {
        state.prev_used = if state.start_ms + window == start {
            state.used
        } else {
            0
        };
        state.used = 0;
        state.start_ms = start;
    }
}

/// Try to take `cost` units at time `now` (ms). Leaves `state` unchanged when refused.
pub fn take(
    state: &mut CounterState,
    now: u64,
    cost: u64,
    limit: u64,
    window_ms: u64,
    algorithm: Algorithm,
) -> Outcome {
    let window = window_ms.max(1);
    match algorithm {
        Algorithm::FixedWindow => {
            let mut next = *state;
            roll(&mut next, now, window);
            if next.used.saturating_add(cost) > limit {
                return Outcome {
                    granted: false,
                    used: next.used,
                    resets_in_ms: next.start_ms + window - now,
                    window_start_ms: next.start_ms,
                };
            }
            next.used += cost;
            *state = next;
            Outcome {
                granted: true,
                used: next.used,
                resets_in_ms: 0,
                window_start_ms: next.start_ms,
            }
        }
        Algorithm::SlidingWindow => {
            let mut next = *state;
            roll(&mut next, now, window);
            let elapsed = now - next.start_ms;
            // Weighted share of the previous window still inside the sliding window, rounded up.
            let carried = (next.prev_used * (window - elapsed)).div_ceil(window);
            let estimate = carried + next.used;
            if estimate.saturating_add(cost) > limit {
                let resets_in_ms = if next.used.saturating_add(cost) > limit || next.prev_used == 0
                {
                    next.start_ms + window - now
                } else {
                    // Wait until prev_used * (window - t) / window <= limit - used - cost.
                    let room = limit - next.used - cost;
                    let t = window - (room * window) / next.prev_used;
                    t.saturating_sub(elapsed).max(1)
                };
                return Outcome {
                    granted: false,
                    used: estimate,
                    resets_in_ms,
                    window_start_ms: next.start_ms,
                };
            }
            next.used += cost;
            *state = next;
            Outcome {
                granted: true,
                used: estimate + cost,
                resets_in_ms: 0,
                window_start_ms: next.start_ms,
            }
        }
        Algorithm::TokenBucket => {
            let mut next = *state;
            let elapsed = now.saturating_sub(next.start_ms);
            let refill = (elapsed as u128 * (limit * MILLI) as u128 / window as u128) as u64;
            next.used = next.used.saturating_sub(refill);
            next.start_ms = now;
            let want = cost.saturating_mul(MILLI);
            if next.used.saturating_add(want) > limit * MILLI {
                let missing = next.used + want - limit * MILLI;
                let resets_in_ms = (missing as u128 * window as u128)
                    .div_ceil((limit * MILLI).max(1) as u128)
                    as u64;
                return Outcome {
                    granted: false,
                    used: next.used.div_ceil(MILLI),
                    resets_in_ms,
                    window_start_ms: now,
                };
            }
            next.used += want;
            *state = next;
            Outcome {
                granted: true,
                used: next.used.div_ceil(MILLI),
                resets_in_ms: 0,
                window_start_ms: now,
            }
        }
    }
}

/// Give back `cost` units taken in the window starting at `window_start_ms`.
pub fn refund(
    state: &mut CounterState,
    cost: u64,
    window_ms: u64,
    window_start_ms: u64,
    algorithm: Algorithm,
) {
    let window = window_ms.max(1);
    match algorithm {
        Algorithm::TokenBucket => {
            state.used = state.used.saturating_sub(cost.saturating_mul(MILLI))
        }
        Algorithm::FixedWindow | Algorithm::SlidingWindow => {
            if state.start_ms == window_start_ms {
                state.used = state.used.saturating_sub(cost);
            } else if state.start_ms == window_start_ms + window {
                state.prev_used = state.prev_used.saturating_sub(cost);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    #[test]
    fn a_view_counts_what_is_in_use_now_and_when_it_resets() {
        let mut s = CounterState::default();
        let t0 = 10 * MIN + 15_000;
        take(&mut s, t0, 2, 5, MIN, Algorithm::FixedWindow);
        let v = view("k", &s, t0 + 5_000, 5, MIN, Algorithm::FixedWindow).unwrap();
        assert_eq!(
            (v.used, v.limit, v.resets_in_ms, v.algorithm),
            (2, 5, 40_000, "fixed")
        );
        assert_eq!(
            view("k", &s, 11 * MIN, 5, MIN, Algorithm::FixedWindow),
            None
        );
        let mut b = CounterState::default();
        take(&mut b, t0, 3, 6, MIN, Algorithm::TokenBucket);
        let v = view("b", &b, t0, 6, MIN, Algorithm::TokenBucket).unwrap();
        assert_eq!((v.used, v.resets_in_ms), (3, 30_000));
        assert_eq!(
            Algorithm::from_word("sliding"),
            Some(Algorithm::SlidingWindow)
        );
    }

    #[test]
    fn fixed_window_allows_limit_then_refuses_until_the_aligned_reset() {
        let mut s = CounterState::default();
        let t0 = 10 * MIN + 15_000; // 15 s into a minute
        for i in 1..=3 {
            let o = take(&mut s, t0, 1, 3, MIN, Algorithm::FixedWindow);
            assert!(o.granted && o.used == i);
        }
        let refused = take(&mut s, t0 + 1_000, 1, 3, MIN, Algorithm::FixedWindow);
        assert!(!refused.granted);
        assert_eq!(refused.resets_in_ms, 44_000, "resets at the next :00");
        assert_eq!(s.used, 3, "a refused take changes nothing");
        assert!(take(&mut s, 11 * MIN, 1, 3, MIN, Algorithm::FixedWindow).granted);
    }

    #[test]
    fn sliding_window_counts_the_previous_window_by_overlap() {
        let mut s = CounterState::default();
        for _ in 0..10 {
            assert!(
                take(
                    &mut s,
                    10 * MIN + 50_000,
                    1,
                    10,
                    MIN,
                    Algorithm::SlidingWindow
                )
                .granted
            );
        }
        // 15 s into the next window 45/60 of the previous 10 still count: 8 (rounded up).
        let o = take(
            &mut s,
            11 * MIN + 15_000,
            1,
            10,
            MIN,
            Algorithm::SlidingWindow,
        );
        assert!(o.granted, "{o:?}");
        assert_eq!(o.used, 9);
        assert!(
            take(
                &mut s,
                11 * MIN + 15_000,
                1,
                10,
                MIN,
                Algorithm::SlidingWindow
            )
            .granted
        );
        let refused = take(
            &mut s,
            11 * MIN + 15_000,
            1,
            10,
            MIN,
            Algorithm::SlidingWindow,
        );
        assert!(!refused.granted);
        assert!(
            refused.resets_in_ms > 0 && refused.resets_in_ms <= 45_000,
            "{refused:?}"
        );
    }

    #[test]
    fn token_bucket_refills_evenly() {
        let mut s = CounterState::default();
        let t0 = 1_000_000;
        assert!(take(&mut s, t0, 4, 4, 4_000, Algorithm::TokenBucket).granted);
        let refused = take(&mut s, t0, 1, 4, 4_000, Algorithm::TokenBucket);
        assert!(!refused.granted);
        assert_eq!(refused.resets_in_ms, 1_000, "one token per second");
        assert!(take(&mut s, t0 + 1_000, 1, 4, 4_000, Algorithm::TokenBucket).granted);
        assert!(!take(&mut s, t0 + 1_500, 1, 4, 4_000, Algorithm::TokenBucket).granted);
    }

    #[test]
    fn refunds_return_units_to_the_right_window() {
        let mut s = CounterState::default();
        let o = take(&mut s, 5 * MIN, 2, 2, MIN, Algorithm::FixedWindow);
        refund(&mut s, 2, MIN, o.window_start_ms, Algorithm::FixedWindow);
        assert!(take(&mut s, 5 * MIN, 2, 2, MIN, Algorithm::FixedWindow).granted);
        // A refund for a window that has already rolled away is a no-op on the current one.
        let mut later = s;
        take(&mut later, 7 * MIN, 1, 2, MIN, Algorithm::FixedWindow);
        refund(&mut later, 2, MIN, 5 * MIN, Algorithm::FixedWindow);
        assert_eq!(later.used, 1);
    }
}
