//! The Lua scripts the Redis store runs (each one atomic on the server): taking from and
//! refunding a counter under every algorithm, first-use pins, and listing counters.

/// Shared Lua helpers: exact integer arithmetic on doubles and writing the state back.
pub(super) const LUA_PRELUDE: &str = r#"
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
pub(super) const LUA_TAKE: &str = r#"
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
pub(super) const LUA_REFUND: &str = r#"
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
pub(super) const LUA_PIN_FIRST: &str = r#"
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HGET', KEYS[1], ARGV[1])
"#;

/// Forget the named tools' first-seen definitions, or all of a server's; answer how many.
pub(super) const LUA_FORGET_PINS: &str = r#"
if #ARGV == 0 then
  local n = redis.call('HLEN', KEYS[1])
  redis.call('DEL', KEYS[1])
  return n
end
return redis.call('HDEL', KEYS[1], unpack(ARGV))
"#;

/// Pages of 1,000 keys a listing of counters scans at most (bounded work for Redis; its time was not measured).
pub(super) const SCANNED_PAGES: u32 = 20;

/// Every counter (a hash with a known algorithm) under ARGV[1] (`tollgate:*`), until ARGV[2]
/// are found or ARGV[3] pages of 1,000 keys were scanned: {key, start_ms, used, prev_used,
/// limit, window_ms, algorithm} each.
pub(super) const LUA_COUNTERS: &str = r#"
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
