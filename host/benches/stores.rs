//! Rate-limit decisions per second through a [`Chain`] whose only rule is a rate limit on one
//! global counter, for each counter store (memory, SQLite in a temporary file, Redis on
//! loopback), with 1 and 8 concurrent callers (Tokio tasks on a multi-thread runtime). Every
//! decision is a granted take; nothing is refunded.
//!
//! Run: `cargo bench -p tollgate --bench stores`. The Redis rows need `redis-server` on PATH
//! (`scripts/redis-server.sh install`); the benchmark starts its own on a free port.
//! `BENCH_SECONDS` sets the measuring time of each row (default 3).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate::chain::{Chain, Decision, ServerOutcome};
use tollgate::config::parse_native;
use tollgate::engine::{CallInput, EngineConfig, PolicyEngine};
use tollgate::state::memory::MemoryStore;
use tollgate::state::redis::RedisStore;
use tollgate::state::sqlite::SqliteStore;
use tollgate::state::CounterStore;

const POLICY: &str = r#"
version: 1
tools:
  send_message:
    rules:
      - rate_limit: { max: 1000000000, window: 3600 }
"#;

/// A `redis-server` on a free loopback port without persistence; killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let dir = tempfile::tempdir().ok()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn chain(store: Arc<dyn CounterStore>) -> Arc<Chain> {
    let policy = parse_native(POLICY, std::path::Path::new(".")).expect("bench policy parses");
    let engine = PolicyEngine::new(EngineConfig::default()).expect("engine");
    Arc::new(
        Chain::load(&policy, &engine, store, "bench")
            .await
            .expect("chain loads"),
    )
}

/// Decisions per second with `callers` tasks deciding in a loop for `seconds`.
async fn rate(chain: &Arc<Chain>, callers: usize, seconds: f64) -> f64 {
    let call = CallInput {
        tool: "send_message".into(),
        arguments: r#"{"to":"+15550100","body":"hello from the benchmark"}"#.into(),
        server: "bench".into(),
        caller: "anonymous".into(),
        metadata: vec![],
    };
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (chain, call) = (chain.clone(), call.clone());
            let (stop, counting, done) = (stop.clone(), counting.clone(), done.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let decision = chain.decide(call.clone()).await;
                    let Decision::Allow { ticket, .. } = decision else {
                        panic!("the benchmark call must be allowed: {decision:?}")
                    };
                    chain.settle(ticket, ServerOutcome::Success).await;
                    if counting.load(Ordering::Relaxed) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    // With the memory store a decision may never wait; let the runtime run its
                    // timers (and the other callers) between decisions.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await; // warm up (instances, connections)
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let counted = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("caller task");
    }
    counted as f64 / elapsed.as_secs_f64()
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = RedisServer::start();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "rate-limit decisions per second through the chain (one counter, {seconds} s per row, \
         {threads} runtime threads)"
    );
    rt.block_on(async {
        let mut stores: Vec<(String, Arc<dyn CounterStore>)> = vec![
            ("memory".into(), Arc::new(MemoryStore::new())),
            (
                "sqlite (temp file)".into(),
                Arc::new(SqliteStore::open(&dir.path().join("counters.sqlite")).expect("sqlite")),
            ),
        ];
        match &redis {
            Some(server) => stores.push((
                "redis (loopback)".into(),
                Arc::new(
                    RedisStore::connect(&format!("redis://127.0.0.1:{}", server.port))
                        .expect("redis"),
                ),
            )),
            None => println!("  redis: skipped (no redis-server; scripts/redis-server.sh install)"),
        }
        for (name, store) in stores {
            let chain = chain(store).await;
            for callers in [1, 8] {
                let per_second = rate(&chain, callers, seconds).await;
                println!("  {name:<20} {callers} caller(s)  {per_second:>10.0} decisions/s");
            }
        }
    });
}
