//! One `tools/call` decision through a chain of deny + validate + rate-limit, with instances
//! reused from the pool (the default) and with a fresh instance per call, reporting p50 / p99.
//! A third line reuses instances but evicts 4 MiB of cache (this VM's L2) between calls: in a
//! proxy each call starts cold, after the CPU ran the agent and the server, and that costs the
//! chain several times its hot-loop figure. Then each rule alone (and no rule), hot and cold:
//! what one sandboxed plugin call costs when its code and memory start out of the caches.
//!
//! Last, what a `tools/list` answer of 200 tools costs a session without pins (passed through
//! untouched) and with every tool checked against its pin — the check runs on lists, never on
//! calls — and with `pins: tofu`, each tool's first-seen definition kept in the memory or sqlite
//! store.
//!
//! Run: `cargo bench -p tollgate --bench decision` (figures go to BENCHMARKS.md); `-- --lists`
//! runs only the last section.

use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate::chain::{Chain, Decision, ServerOutcome};
use tollgate::config::parse_native;
use tollgate::engine::{CallInput, EngineConfig, PolicyEngine, Strategy};
use tollgate::state::memory::MemoryStore;

const POLICY: &str = r#"
version: 1
tools:
  send_message:
    rules:
      - action: deny
        reason: premium numbers are blocked
        when: [{ path: args.to, op: regex, value: "^\\+1900" }]
      - validate:
          schema:
            type: object
            required: [to, body]
            properties: { to: { type: string }, body: { type: string, maxLength: 1600 } }
      - rate_limit: { max: 1000000000, window: 60, scope: args.to }
"#;

/// The chain's rules one at a time (a name, and the rule as policy YAML).
const SINGLE_RULES: [(&str, &str); 5] = [
    ("no rule", "[]"),
    (
        "deny, regex",
        r#"[{ action: deny, reason: x, when: [{ path: args.to, op: regex, value: "^\\+1900" }] }]"#,
    ),
    (
        "deny, eq",
        r#"[{ action: deny, reason: x, when: [{ path: args.to, op: eq, value: "+1900" }] }]"#,
    ),
    (
        "validate",
        "[{ validate: { schema: { type: object, required: [to, body], properties: { to: { type: string }, body: { type: string, maxLength: 1600 } } } } }]",
    ),
    (
        "rate-limit, scoped",
        "[{ rate_limit: { max: 1000000000, window: 60, scope: args.to } }]",
    ),
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Bytes written between calls on the cold line: this VM's L2 (4 MiB).
const EVICT_BYTES: usize = 4 << 20;

/// Touch every cache line of `buf`, pushing the chain's code and data out of the caches.
fn evict(buf: &mut [u8]) {
    for b in buf.iter_mut().step_by(64) {
        *b = b.wrapping_add(1);
    }
    std::hint::black_box(buf);
}

async fn measure(
    policy: &str,
    strategy: Strategy,
    iterations: usize,
    cold: bool,
) -> (Duration, Duration, Duration) {
    let policy = parse_native(policy, std::path::Path::new(".")).expect("bench policy parses");
    let engine = PolicyEngine::new(EngineConfig {
        strategy,
        ..EngineConfig::default()
    })
    .expect("engine");
    let chain = Chain::load(&policy, &engine, Arc::new(MemoryStore::new()), "bench")
        .await
        .expect("chain loads");
    let call = CallInput {
        tool: "send_message".into(),
        arguments: r#"{"to":"+15550100","body":"hello from the benchmark"}"#.into(),
        server: "bench".into(),
        caller: "anonymous".into(),
        metadata: vec![],
    };
    let mut samples = Vec::with_capacity(iterations);
    let mut cache_sized = vec![0u8; if cold { EVICT_BYTES } else { 0 }];
    for i in 0..iterations + iterations / 10 {
        evict(&mut cache_sized);
        let start = Instant::now();
        let decision = chain.decide(call.clone()).await;
        let elapsed = start.elapsed();
        let Decision::Allow { ticket, .. } = decision else {
            panic!("the benchmark call must be allowed: {decision:?}")
        };
        chain.settle(ticket, ServerOutcome::Success).await;
        if i >= iterations / 10 {
            samples.push(elapsed); // the first 10% warm up
        }
    }
    samples.sort();
    (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.iter().sum::<Duration>() / samples.len() as u32,
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    if std::env::args().any(|a| a == "--lists") {
        lists(&rt, 500);
        return;
    }
    println!("one tools/call decision: deny(regex) + validate(JSON Schema) + rate-limit(memory), {iterations} calls");
    for (name, strategy, n, cold) in [
        ("pooled instances", Strategy::Reuse, iterations, false),
        (
            "fresh instance per call",
            Strategy::Fresh,
            iterations / 4,
            false,
        ),
        (
            "pooled, caches evicted",
            Strategy::Reuse,
            iterations / 4,
            true,
        ),
    ] {
        let measured = rt.block_on(measure(POLICY, strategy, n, cold));
        report(name, measured);
    }
    println!("each rule alone, pooled instances: hot, then caches evicted");
    for (name, rules) in SINGLE_RULES {
        let policy = format!("version: 1\ntools:\n  send_message:\n    rules: {rules}\n");
        for (temperature, cold) in [("hot", false), ("cold", true)] {
            let measured = rt.block_on(measure(&policy, Strategy::Reuse, iterations / 4, cold));
            report(&format!("{name}, {temperature}"), measured);
        }
    }
    lists(&rt, 500);
}

/// One `tools/list` answer of 200 realistic tools through a session, `n` times: (p50, p99, mean)
/// of the session's handling of the answer, with `policy` (whose `pins:` file is in `dir`).
async fn list_cost(
    policy: &str,
    dir: &std::path::Path,
    store: Arc<dyn tollgate::state::CounterStore>,
    n: usize,
) -> (Duration, Duration, Duration) {
    use tollgate::proxy::session::Session;
    let tools = list_of_200();
    let policy = parse_native(policy, dir).expect("bench policy parses");
    let engine = PolicyEngine::new(EngineConfig::default()).expect("engine");
    let chain = Chain::load(&policy, &engine, store, "bench")
        .await
        .expect("chain loads");
    let session = Session::new(Arc::new(chain));
    let answer =
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}).to_string();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        session
            .from_client(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .await;
        let start = Instant::now();
        let forwarded = session.from_server(answer.as_bytes()).await;
        samples.push(start.elapsed());
        assert!(forwarded.is_some_and(|f| f.len() == answer.len()));
    }
    samples.sort();
    (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.iter().sum::<Duration>() / samples.len() as u32,
    )
}

/// 200 tools the size of a real server's: a paragraph of description and a schema of a few
/// properties with annotations.
fn list_of_200() -> Vec<serde_json::Value> {
    (0..200)
        .map(|i| {
            serde_json::json!({
                "name": format!("tool_{i}"),
                "description": format!("Tool number {i}: reads or changes one kind of record in the service, with paging and filters; returns the records as JSON. Use it when the user asks about kind {i}."),
                "inputSchema": {"type": "object", "required": ["id"], "properties": {
                    "id": {"type": "string", "description": "The record's id"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    "filter": {"type": "string", "description": "A filter expression"}}},
                "annotations": {"readOnlyHint": i % 2 == 0, "destructiveHint": i % 7 == 0}
            })
        })
        .collect()
}

fn lists(rt: &tokio::runtime::Runtime, n: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    tollgate::pins::Lock::of(None, &list_of_200())
        .write(&dir.path().join("bench.pins.yaml"))
        .expect("lock written");
    println!("one tools/list answer of 200 tools through a session, {n} times");
    let memory = || -> Arc<dyn tollgate::state::CounterStore> { Arc::new(MemoryStore::new()) };
    let sqlite = tollgate::state::sqlite::SqliteStore::open(&dir.path().join("state.sqlite"))
        .expect("sqlite store");
    for (name, policy, store) in [
        ("no pins (passed through)", "version: 1\n", memory()),
        (
            "pins, all match",
            "version: 1\npins: bench.pins.yaml\n",
            memory(),
        ),
        ("tofu, memory store", "version: 1\npins: tofu\n", memory()),
        (
            "tofu, sqlite store",
            "version: 1\npins: tofu\n",
            Arc::new(sqlite),
        ),
    ] {
        report(name, rt.block_on(list_cost(policy, dir.path(), store, n)));
    }
}

fn report(name: &str, (p50, p99, mean): (Duration, Duration, Duration)) {
    println!(
        "  {name:<24} p50 {:>8.1} µs   p99 {:>8.1} µs   mean {:>8.1} µs",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
}
