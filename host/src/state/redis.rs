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

/// The deadline of one take or refund, connecting included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(500);

/// Every key Tollgate writes starts with this.
pub const KEY_PREFIX: &str = "tollgate:";

/// Shared Lua helpers: exact integer arithmetic on doubles and writing the state back.
const LUA_PRELUDE: &str = r#"
local MILLI = 1000  -- token buckets count thousandths of a token (algorithm.rs: MILLI)

-- q, r with x = q * c + r, 0 <= r < c, exactly for integers x, c below 2^52.
local function divmod(x, c)
  local q = math.floor(x / c)
  local r = x - q * c
  if r < 0 then q, r = q - 1, r + c elseif r >= c then q, r = q + 1, r - c end
  return q, r
end

-- floor(a * b / c) and its remainder, exactly: a double holds integers only up to 2^53, and
-- a * b (say 1.7e12 ms elapsed times 1e5 thousandths) can pass that, where Rust uses u128.
local function muldiv(a, b, c)
  if a * b < 2^52 then return divmod(a * b, c) end
  -- Long multiplication over the bits of a, keeping (a' * b) / c as q + r / c with r < c.
  local bq, br = divmod(b, c)
  local bits = {}
  while a > 0 do
    local bit = a % 2
    bits[#bits + 1] = bit
    a = (a - bit) / 2
  end
  local q, r = 0, 0
  for i = #bits, 1, -1 do
    q, r = 2 * q, 2 * r
    if bits[i] == 1 then q, r = q + bq, r + br end
    while r >= c do q, r = q + 1, r - c end
  end
  return q, r
end

-- ceil(a * b / c): Rust's div_ceil.
local function muldiv_ceil(a, b, c)
  local q, r = muldiv(a, b, c)
  if r > 0 then return q + 1 end
  return q
end

-- Integers as plain digits ("1e+15" is how Lua would print some of them).
local function int(x) return string.format('%.0f', x) end

local key = KEYS[1]
local h = redis.call('HMGET', key, 'start_ms', 'used', 'prev_used')
-- CounterState; a missing key is CounterState::default().
local state = { start_ms = tonumber(h[1]) or 0, used = tonumber(h[2]) or 0, prev_used = tonumber(h[3]) or 0 }

local function save(s)
  redis.call('HSET', key, 'start_ms', int(s.start_ms), 'used', int(s.used), 'prev_used', int(s.prev_used))
end
"#;

/// `algorithm::take`. KEYS[1] = counter; ARGV = now_ms, cost, limit, window_ms, algorithm
/// (`fixed` | `sliding` | `bucket`), ttl_ms. Returns {granted 0|1, used, resets_in_ms,
/// window_start_ms}.
const LUA_TAKE: &str = r#"
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local window = math.max(tonumber(ARGV[4]), 1)  -- window_ms.max(1)
local algorithm = ARGV[5]
local ttl = tonumber(ARGV[6])

-- Replicas read their own clocks: never let a counter's time run backwards.
now = math.max(now, state.start_ms)

-- A granted take writes the state back and keeps the key for two more windows.
local function commit(next)
  save(next)
  redis.call('HSET', key, 'limit', int(limit), 'window_ms', int(window), 'algorithm', algorithm)
  redis.call('PEXPIRE', key, int(ttl))
end

-- roll(): move a windowed state forward to the window containing `now`.
local function roll(s)
  local start = now - now % window
  if s.start_ms ~= start then
    if s.start_ms + window == start then s.prev_used = s.used else s.prev_used = 0 end
    s.used = 0
    s.start_ms = start
  end
end

-- `next` is a copy of the state; a refused take leaves the stored state unchanged.
local next = { start_ms = state.start_ms, used = state.used, prev_used = state.prev_used }

if algorithm == 'fixed' then
  roll(next)
  if next.used + cost > limit then
    return { 0, next.used, next.start_ms + window - now, next.start_ms }
  end
  next.used = next.used + cost
  commit(next)
  return { 1, next.used, 0, next.start_ms }

elseif algorithm == 'sliding' then
  roll(next)
  local elapsed = now - next.start_ms
  -- Weighted share of the previous window still inside the sliding window, rounded up.
  local carried = muldiv_ceil(next.prev_used, window - elapsed, window)
  local estimate = carried + next.used
  if estimate + cost > limit then
    local resets_in_ms
    if next.used + cost > limit or next.prev_used == 0 then
      resets_in_ms = next.start_ms + window - now
    else
      -- Wait until prev_used * (window - t) / window <= limit - used - cost.
      local room = limit - next.used - cost
      local t = window - muldiv(room, window, next.prev_used)
      resets_in_ms = math.max(t - elapsed, 1)  -- t.saturating_sub(elapsed).max(1)
    end
    return { 0, estimate, resets_in_ms, next.start_ms }
  end
  next.used = next.used + cost
  commit(next)
  return { 1, estimate + cost, 0, next.start_ms }

elseif algorithm == 'bucket' then
  local capacity = limit * MILLI
  local elapsed = now - next.start_ms
  local refill = muldiv(elapsed, capacity, window)
  next.used = math.max(next.used - refill, 0)  -- saturating_sub
  next.start_ms = now
  local want = cost * MILLI
  if next.used + want > capacity then
    local missing = next.used + want - capacity
    local resets_in_ms = muldiv_ceil(missing, window, math.max(capacity, 1))
    return { 0, muldiv_ceil(next.used, 1, MILLI), resets_in_ms, now }
  end
  next.used = next.used + want
  commit(next)
  return { 1, muldiv_ceil(next.used, 1, MILLI), 0, now }
end
return redis.error_reply('tollgate: unknown algorithm ' .. tostring(algorithm))
"#;

/// `algorithm::refund`. KEYS[1] = counter; ARGV = cost, window_ms, window_start_ms, algorithm.
/// A counter that has expired has nothing to give back. The key's expiry is left as it is.
const LUA_REFUND: &str = r#"
if redis.call('EXISTS', key) == 0 then return 0 end
local cost = tonumber(ARGV[1])
local window = math.max(tonumber(ARGV[2]), 1)
local window_start_ms = tonumber(ARGV[3])
local algorithm = ARGV[4]

if algorithm == 'bucket' then
  state.used = math.max(state.used - cost * MILLI, 0)
elseif state.start_ms == window_start_ms then
  -- Still the window the units went into.
  state.used = math.max(state.used - cost, 0)
elseif state.start_ms == window_start_ms + window then
  -- That window is now the previous one (it still counts for a sliding window).
  state.prev_used = math.max(state.prev_used - cost, 0)
else
  return 0
end
save(state)
return 1
"#;

/// Keep a tool's first-seen definition unless one is kept; answer the one kept.
const LUA_PIN_FIRST: &str = r#"
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HGET', KEYS[1], ARGV[1])
"#;

/// Forget the named tools' first-seen definitions, or all of a server's; answer how many.
const LUA_FORGET_PINS: &str = r#"
if #ARGV == 0 then
  local n = redis.call('HLEN', KEYS[1])
  redis.call('DEL', KEYS[1])
  return n
end
return redis.call('HDEL', KEYS[1], unpack(ARGV))
"#;

/// Pages of 1,000 keys a listing of counters scans at most (bounded work for Redis; its time was not measured).
const SCANNED_PAGES: u32 = 20;

/// Every counter (a hash with a known algorithm) under ARGV[1] (`tollgate:*`), until ARGV[2]
/// are found or ARGV[3] pages of 1,000 keys were scanned: {key, start_ms, used, prev_used,
/// limit, window_ms, algorithm} each.
const LUA_COUNTERS: &str = r#"
local out = {}
local cursor = '0'
local pages = 0
repeat
  pages = pages + 1
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  for _, k in ipairs(page[2]) do
    if redis.call('TYPE', k).ok == 'hash' then
      local h = redis.call('HMGET', k, 'start_ms', 'used', 'prev_used', 'limit', 'window_ms', 'algorithm')
      local a = h[6]
      if h[1] and h[4] and (a == 'fixed' or a == 'sliding' or a == 'bucket') then
        table.insert(out, { k, h[1], h[2], h[3], h[4], h[5], a })
      end
    end
  end
-- At most ARGV[3] pages: a script blocks the server, and a shared database may hold many keys.
until cursor == '0' or #out >= tonumber(ARGV[2]) or pages >= tonumber(ARGV[3])
return out
"#;

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
