//! The epoch ticker: a thread that advances the engine's epoch every [`EPOCH_TICK`] so that
//! plugin deadlines fire — but only while plugins are being called.
//!
//! A ticker that never stops would wake its CPU a thousand times a second for as long as
//! Tollgate runs, and a stdio proxy runs for as long as the agent's client does (one per MCP
//! server in the client's configuration): measurable battery drain for nothing. So the ticker
//! parks once no plugin has been called for [`QUIET_BEFORE_PARKING`], and the next call wakes it
//! ([`Ticker::enter`]). During a burst of calls it is awake and nothing on the call path touches
//! it but three atomic operations; only the first call after a quiet spell pays for waking a thread.

use super::limits::EPOCH_TICK;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wasmtime::Engine;

/// How long the ticker keeps ticking after the last call before it parks.
pub const QUIET_BEFORE_PARKING: Duration = Duration::from_secs(2);

/// While parked, how often the ticker checks whether its engine still exists.
const PARKED_CHECK: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    /// Calls in progress.
    running: AtomicU64,
    /// Calls started since the ticker began.
    started: AtomicU64,
    /// The ticker is parked (or about to): a call must wake it.
    parked: AtomicBool,
    thread: OnceLock<std::thread::Thread>,
}

/// A handle on the engine's ticker; cheap to clone.
#[derive(Clone)]
pub struct Ticker {
    state: Arc<State>,
}

/// Held for the length of one plugin call; keeps the ticker ticking.
pub struct Running<'a> {
    state: &'a State,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.state.running.fetch_sub(1, SeqCst);
    }
}

impl Ticker {
    /// Start the ticker of `engine`; the thread ends some time after the engine is dropped.
    pub fn start(engine: &Engine) -> Ticker {
        let state = Arc::new(State::default());
        let ticker = Ticker {
            state: state.clone(),
        };
        let weak = engine.weak();
        let spawned = std::thread::Builder::new()
            .name("tollgate-epoch".into())
            .spawn(move || run(&state, &weak));
        match spawned {
            Ok(handle) => {
                let _ = ticker.state.thread.set(handle.thread().clone());
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the epoch ticker; deadlines will not fire")
            }
        }
        ticker
    }

    /// A plugin call begins: the ticker ticks until it ends (and for a while after).
    pub fn enter(&self) -> Running<'_> {
        let s = &self.state;
        s.running.fetch_add(1, SeqCst);
        s.started.fetch_add(1, SeqCst);
        // Paired with the ticker's store of `parked` and its re-read of the counters: either
        // it sees this call, or this call sees it parked and wakes it.
        if s.parked.load(SeqCst) {
            if let Some(t) = s.thread.get() {
                t.unpark();
            }
        }
        Running { state: s }
    }

    #[cfg(test)]
    fn is_parked(&self) -> bool {
        self.state.parked.load(SeqCst)
    }
}

/// The ticker's loop, until the engine is gone.
fn run(s: &State, engine: &wasmtime::EngineWeak) {
    let mut seen = s.started.load(SeqCst);
    let mut last_activity = Instant::now();
    let active = |seen: &mut u64| {
        let started = s.started.load(SeqCst);
        let busy = started != *seen || s.running.load(SeqCst) > 0;
        *seen = started;
        busy
    };
    loop {
        if active(&mut seen) {
            last_activity = Instant::now();
        }
        if last_activity.elapsed() >= QUIET_BEFORE_PARKING {
            s.parked.store(true, SeqCst);
            // Re-read after announcing the park, so a call that started meanwhile is seen.
            while !active(&mut seen) {
                std::thread::park_timeout(PARKED_CHECK);
                if engine.upgrade().is_none() {
                    return;
                }
            }
            s.parked.store(false, SeqCst);
            last_activity = Instant::now();
            // Woken by a call: tick at once.
        } else {
            std::thread::sleep(EPOCH_TICK);
        }
        match engine.upgrade() {
            Some(e) => e.increment_epoch(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_parks_when_quiet_and_a_call_wakes_it() {
        let engine = Engine::default();
        let ticker = Ticker::start(&engine);
        let before = Instant::now();
        while !ticker.is_parked() {
            assert!(
                before.elapsed() < QUIET_BEFORE_PARKING * 3,
                "the ticker never parked"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let running = ticker.enter();
        let woken = Instant::now();
        while ticker.is_parked() {
            assert!(
                woken.elapsed() < Duration::from_secs(5),
                "a call did not wake the ticker"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // While a call runs, it keeps ticking well past the quiet period.
        std::thread::sleep(QUIET_BEFORE_PARKING + Duration::from_millis(500));
        assert!(!ticker.is_parked(), "parked during a call");
        drop(running);
    }
}
