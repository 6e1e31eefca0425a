//! Approval records in Redis: a hash per record (`binding`, `record`), a key per binding naming
//! its open record, and a sorted set of ids by the time they were made, for listing. Each
//! operation is one script, so it is atomic across every proxy of the fleet. Records expire a
//! week after they were made ([`KEEP_MS`]).

use super::{RedisStore, KEY_PREFIX};
use crate::state::approvals::{ApprovalStore, KEEP_MS};
use crate::state::StoreError;
use ::redis::Script;
use async_trait::async_trait;
use std::sync::LazyLock;

/// KEYS: the binding's open key, the id set. ARGV: id, fresh record, now_ms, keep_ms, the record
/// key prefix, binding. Answers the open record.
static OPEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local id = redis.call('GET', KEYS[1])
if id then
  local open = redis.call('HGET', ARGV[5] .. id, 'record')
  if open then return open end
end
local key = ARGV[5] .. ARGV[1]
if redis.call('EXISTS', key) == 1 then
  return redis.error_reply('tollgate: approval id ' .. ARGV[1] .. ' is taken')
end
redis.call('HSET', key, 'binding', ARGV[6], 'record', ARGV[2])
redis.call('PEXPIRE', key, ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[4]))
return ARGV[2]
"#,
    )
});

/// KEYS: the record. ARGV: old, new, close (0|1), the open key prefix, id. Answers 1 if swapped.
static SWAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], 'record') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[2])
if ARGV[3] == '1' then
  local open = ARGV[4] .. redis.call('HGET', KEYS[1], 'binding')
  if redis.call('GET', open) == ARGV[5] then redis.call('DEL', open) end
end
return 1
"#,
    )
});

/// KEYS: the record. Answers it, or nil.
static GET: LazyLock<Script> =
    LazyLock::new(|| Script::new("return redis.call('HGET', KEYS[1], 'record')"));

/// KEYS: the id set. ARGV: limit, the record key prefix. Answers the newest records.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)) do
  local record = redis.call('HGET', ARGV[2] .. id, 'record')
  if record then out[#out + 1] = record end
end
return out
"#,
    )
});

fn record_prefix() -> String {
    format!("{KEY_PREFIX}approvals:record:")
}

fn open_prefix() -> String {
    format!("{KEY_PREFIX}approvals:open:")
}

fn ids() -> String {
    format!("{KEY_PREFIX}approvals:made")
}

#[async_trait]
impl ApprovalStore for RedisStore {
    async fn open_approval(
        &self,
        binding: &str,
        id: &str,
        fresh: &str,
        now_ms: u64,
    ) -> Result<String, StoreError> {
        let mut invocation = OPEN.prepare_invoke();
        invocation
            .key(format!("{}{binding}", open_prefix()))
            .key(ids())
            .arg(id)
            .arg(fresh)
            .arg(now_ms)
            .arg(KEEP_MS)
            .arg(record_prefix())
            .arg(binding);
        self.run("opening an approval request failed", invocation)
            .await
    }

    async fn swap_approval(
        &self,
        id: &str,
        old: &str,
        new: &str,
        close: bool,
    ) -> Result<bool, StoreError> {
        let mut invocation = SWAP.prepare_invoke();
        invocation
            .key(format!("{}{id}", record_prefix()))
            .arg(old)
            .arg(new)
            .arg(u8::from(close))
            .arg(open_prefix())
            .arg(id);
        let swapped: u8 = self
            .run("updating an approval request failed", invocation)
            .await?;
        Ok(swapped == 1)
    }

    async fn approval(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut invocation = GET.prepare_invoke();
        invocation.key(format!("{}{id}", record_prefix()));
        self.run("reading an approval request failed", invocation)
            .await
    }

    async fn approvals(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut invocation = LIST.prepare_invoke();
        invocation.key(ids()).arg(limit).arg(record_prefix());
        self.run("listing approval requests failed", invocation)
            .await
    }
}
