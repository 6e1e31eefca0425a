//! Per-plugin sandbox limits: a wall-clock deadline (epoch interruption), a memory ceiling and
//! optional fuel.

use std::time::Duration;

/// Default wall-clock deadline of one plugin call.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(50);
/// Default memory ceiling of one plugin instance.
pub const DEFAULT_MEMORY_BYTES: usize = 32 << 20;
/// The epoch ticker's period: deadlines are rounded up to whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The limits one plugin runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time one call (configure, check-call, …) may take.
    pub deadline: Duration,
    /// Bytes of linear memory an instance may grow to (all memories together).
    pub memory_bytes: usize,
    /// Wasm instructions (roughly) one call may execute, when set.
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: DEFAULT_DEADLINE,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            fuel: None,
        }
    }
}

impl Limits {
    /// The deadline in epoch ticks (at least one).
    pub fn deadline_ticks(&self) -> u64 {
        ticks(self.deadline)
    }

    /// The deadline of instantiation plus `configure`, which runs once per instance and may
    /// compile schemas or patterns: twenty call deadlines, and at least one second.
    pub fn configure_deadline(&self) -> Duration {
        (self.deadline * 20).max(Duration::from_secs(1))
    }
}

/// A duration in epoch ticks, rounded up (at least one).
pub fn ticks(d: Duration) -> u64 {
    (d.as_micros().div_ceil(EPOCH_TICK.as_micros()) as u64).max(1)
}

impl Limits {
    /// [`Limits::configure_deadline`] in epoch ticks.
    pub fn configure_ticks(&self) -> u64 {
        ticks(self.configure_deadline())
    }
}

/// Enforces [`Limits::memory_bytes`] and records whether a plugin tried to pass it, so the
/// resulting trap can be reported as a memory-limit violation.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_bytes: usize,
    exceeded: bool,
}

impl MemoryLimiter {
    /// A limiter with this ceiling.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            exceeded: false,
        }
    }

    /// Whether a growth past the limit was refused since the last [`MemoryLimiter::reset`].
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// Forget a previous violation.
    pub fn reset(&mut self) {
        self.exceeded = false;
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Human form of a byte count: `32 MiB`.
pub fn describe_bytes(bytes: usize) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks() {
        let l = |ms| Limits {
            deadline: Duration::from_micros(ms),
            ..Limits::default()
        };
        assert_eq!(l(50_000).deadline_ticks(), 50);
        assert_eq!(l(1).deadline_ticks(), 1);
        assert_eq!(l(1_500).deadline_ticks(), 2);
    }

    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(describe_bytes(32 << 20), "32 MiB");
        assert_eq!(describe_bytes(64 << 10), "64 KiB");
        assert_eq!(describe_bytes(1000), "1000 bytes");
    }
}
