//! The Redis counter store: one limit enforced exactly across several Tollgate replicas (on one
//! machine or many) that point at the same Redis.
//!
//! Each counter is a hash `tollgate:<key>` = `{start_ms, used, prev_used}`, the same three
//! integers as [`CounterState`](super::algorithm::CounterState). A take and a refund are each one
//! Lua script (sent with `EVALSHA`, loaded on first use) that reimplements the shared
//! [`algorithm`](super::algorithm) line by line; Redis runs a script atomically, so two replicas
//! can never both be granted past a limit. The caller passes the time in (ms since the epoch),
//! as the other stores do, so the arithmetic stays testable with explicit times.
//!
//! Differences from `algorithm.rs`, both invisible while time moves forward:
//! - The time is clamped to never run behind the counter's `start_ms`: replicas read their own
//!   clocks, and a replica a little behind another must not roll a window back (which would
//!   reset it) or make a token bucket refill twice.
//! - Lua numbers are doubles, so every product goes through an exact `muldiv`; values are exact
//!   up to 2^52 (a limit of 4.5 · 10^12 per window for token buckets, which count thousandths).
//!
//! First-use pins (`pins: tofu`) are a hash per server, `tollgate:pins:<server>`, whose fields
//! are tool names and whose values are the digest, a newline and the canonical definition; the
//! first writer wins (`HSETNX` in a script that reads back what is kept). They never expire.
//!
//! Counter keys expire two windows (plus a second) after their last write, when their state can no
//! longer matter. Every operation has a deadline of [`OPERATION_TIMEOUT`]: an unreachable Redis
//! makes takes fail with a [`StoreError`] (the rate-limit plugin then denies with
//! `state_unavailable`, or allows with `fail_mode: open`) instead of hanging calls. The connection
//! is made on first use and re-made after a failure, so Tollgate starts, and recovers, while
//! Redis is down.

use super::{
    now_ms, Algorithm, CounterStore, FirstSeen, PinStore, Reservation, StoreError, TakeRequest,
    Taken,
};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Script};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

mod approvals;
mod scripts;

use scripts::{
    LUA_COUNTERS, LUA_FORGET_PINS, LUA_PIN_FIRST, LUA_PRELUDE, LUA_REFUND, LUA_TAKE, SCANNED_PAGES,
};

/// The deadline of one take or refund, connecting included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(500);

/// Every key Tollgate writes starts with this.
pub const KEY_PREFIX: &str = "tollgate:";

/// Counters in Redis, shared by every Tollgate that uses the same server and database.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// Made on first use; the manager then reconnects by itself after a failure.
    connection: OnceCell<ConnectionManager>,
    /// The URL without its password, for logs and errors.
    display: String,
    take: Script,
    refund: Script,
    pin_first: Script,
    forget_pins: Script,
    counters: Script,
}

/// `redis://user:secret@host:6379/0` → `redis://user:***@host:6379/0`.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
                let masked = if userinfo.contains(':') {
                    format!("{user}:***")
                } else {
                    "***".to_string()
                };
                format!("{scheme}://{masked}@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl RedisStore {
    /// A store for `url` (`redis://HOST:PORT[/DB]`, optionally `redis://[USER]:PASSWORD@…`).
    ///
    /// Only the URL is checked here; the connection is made on first use (within
    /// [`OPERATION_TIMEOUT`]), so a Redis that is down does not stop Tollgate from starting.
    /// Called inside a Tokio runtime, a first connection is attempted in the background at once,
    /// and a warning is logged if it fails.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let display = redact(url);
        if !url.starts_with("redis://") {
            return Err(StoreError(format!(
                "redis: unsupported URL `{display}`: expected redis://HOST:PORT[/DB]"
            )));
        }
        let client = Client::open(url)
            .map_err(|e| StoreError(format!("redis: invalid URL `{display}`: {e}")))?;
        let store = Self {
            inner: Arc::new(Inner {
                client,
                connection: OnceCell::new(),
                display,
                take: Script::new(&format!("{LUA_PRELUDE}\n{LUA_TAKE}")),
                refund: Script::new(&format!("{LUA_PRELUDE}\n{LUA_REFUND}")),
                pin_first: Script::new(LUA_PIN_FIRST),
                forget_pins: Script::new(LUA_FORGET_PINS),
                counters: Script::new(LUA_COUNTERS),
            }),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let warm = store.clone();
            runtime.spawn(async move {
                if let Err(e) = warm.connection().await {
                    tracing::warn!(error = %e, "counter store not reachable yet; will retry on use");
                }
            });
        }
        Ok(store)
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError(format!("redis {}: {what}: {e}", self.inner.display))
    }

    /// The shared connection, made now if there is none yet.
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let inner = &self.inner;
        let make = || async {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(OPERATION_TIMEOUT)
                .set_response_timeout(OPERATION_TIMEOUT)
                // No backoff: a failed attempt is reported at once (a refused connection
                // within the plugin's deadline), and the next operation tries again.
                .set_number_of_retries(0);
            ConnectionManager::new_with_config(inner.client.clone(), config).await
        };
        let connect = inner.connection.get_or_try_init(make);
        match tokio::time::timeout(OPERATION_TIMEOUT, connect).await {
            Ok(Ok(connection)) => Ok(connection.clone()),
            Ok(Err(e)) => Err(self.error("cannot connect", e)),
            Err(_) => Err(self.error(
                "cannot connect",
                format!("no connection within {} ms", OPERATION_TIMEOUT.as_millis()),
            )),
        }
    }

    /// Run one script invocation under the operation deadline.
    async fn run<T: ::redis::FromRedisValue>(
        &self,
        what: &str,
        invocation: ::redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let started = tokio::time::Instant::now();
        let mut connection = self.connection().await?;
        let left = OPERATION_TIMEOUT.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, invocation.invoke_async(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.error(what, e)),
            Err(_) => Err(self.error(
                what,
                format!("no answer within {} ms", OPERATION_TIMEOUT.as_millis()),
            )),
        }
    }

    /// Take at an explicit time (ms), for tests of window behaviour.
    pub async fn take_at(
        &self,
        request: &TakeRequest,
        now: u64,
    ) -> Result<(Taken, Option<Reservation>), StoreError> {
        let window_ms = (request.window.as_millis() as u64).max(1);
        let ttl_ms = window_ms.saturating_mul(2).saturating_add(1_000);
        let mut invocation = self.inner.take.prepare_invoke();
        invocation
            .key(format!("{KEY_PREFIX}{}", request.key))
            .arg(now)
            .arg(request.cost)
            .arg(request.limit)
            .arg(window_ms)
            .arg(request.algorithm.word())
            .arg(ttl_ms);
        let (granted, used, resets_in_ms, window_start_ms): (u8, u64, u64, u64) =
            self.run("take failed", invocation).await?;
        let taken = Taken {
            granted: granted == 1,
            used,
            limit: request.limit,
            resets_in_ms,
        };
        let reservation = taken.granted.then(|| Reservation {
            request: request.clone(),
            window_start_ms,
        });
        Ok((taken, reservation))
    }
}

#[async_trait]
impl CounterStore for RedisStore {
    async fn take(
        &self,
        request: &TakeRequest,
    ) -> Result<(Taken, Option<Reservation>), StoreError> {
        self.take_at(request, now_ms()).await
    }

    async fn refund(&self, r: &Reservation) -> Result<(), StoreError> {
        let mut invocation = self.inner.refund.prepare_invoke();
        invocation
            .key(format!("{KEY_PREFIX}{}", r.request.key))
            .arg(r.request.cost)
            .arg(r.request.window.as_millis() as u64)
            .arg(r.window_start_ms)
            .arg(r.request.algorithm.word());
        let _: u8 = self.run("refund failed", invocation).await?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.inner.display.clone()
    }

    fn pins(&self) -> Option<&dyn PinStore> {
        Some(self)
    }

    fn approvals(&self) -> Option<&dyn crate::state::ApprovalStore> {
        Some(self)
    }

    async fn counters(&self, limit: usize) -> Result<Vec<super::CounterView>, StoreError> {
        let mut invocation = self.inner.counters.prepare_invoke();
        // Scanning stops after a page holding `limit` counters; with more, the busiest of
        // those found are shown.
        invocation
            .arg(format!("{KEY_PREFIX}*"))
            .arg(limit.max(1) * 4)
            .arg(SCANNED_PAGES);
        type Row = (String, u64, u64, u64, u64, u64, String);
        let rows: Vec<Row> = self.run("listing counters failed", invocation).await?;
        let now = now_ms();
        let views = rows
            .into_iter()
            .filter_map(|(key, start_ms, used, prev_used, l, w, a)| {
                let state = super::algorithm::CounterState {
                    start_ms,
                    used,
                    prev_used,
                };
                let key = key.strip_prefix(KEY_PREFIX).unwrap_or(&key);
                super::algorithm::view(key, &state, now, l, w, Algorithm::from_word(&a)?)
            })
            .collect();
        Ok(super::algorithm::busiest(views, limit))
    }
}

#[async_trait]
impl PinStore for RedisStore {
    async fn pin_first(
        &self,
        server: &str,
        tool: &str,
        seen: &FirstSeen,
    ) -> Result<FirstSeen, StoreError> {
        let mut invocation = self.inner.pin_first.prepare_invoke();
        invocation
            .key(format!("{KEY_PREFIX}pins:{server}"))
            .arg(tool)
            .arg(format!("{}\n{}", seen.digest, seen.definition));
        let kept: String = self.run("pin failed", invocation).await?;
        match kept.split_once('\n') {
            Some((digest, definition)) => Ok(FirstSeen {
                digest: digest.into(),
                definition: definition.into(),
            }),
            None => Err(self.error(
                "pin failed",
                format!("the pin kept for `{tool}` is not a digest and a definition"),
            )),
        }
    }

    async fn forget_pins(&self, server: &str, tools: &[String]) -> Result<u64, StoreError> {
        let mut invocation = self.inner.forget_pins.prepare_invoke();
        invocation.key(format!("{KEY_PREFIX}pins:{server}"));
        for tool in tools {
            invocation.arg(tool);
        }
        self.run("forgetting pins failed", invocation).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs_or_errors() {
        assert_eq!(
            redact("redis://127.0.0.1:6379/2"),
            "redis://127.0.0.1:6379/2"
        );
        assert_eq!(
            redact("redis://user:hunter2@host:6379"),
            "redis://user:***@host:6379"
        );
        assert_eq!(redact("redis://hunter2@host"), "redis://***@host");
        let err = RedisStore::connect("redis://:hunter2@[::1")
            .err()
            .expect("a malformed URL is refused");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn only_redis_urls_are_accepted() {
        let err = RedisStore::connect("rediss://127.0.0.1:6379")
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("expected redis://HOST:PORT[/DB]"),
            "{err}"
        );
        let store = RedisStore::connect("redis://127.0.0.1:1/3").unwrap();
        assert_eq!(store.describe(), "redis://127.0.0.1:1/3");
    }
}
