//! The Redis counter store against a real `redis-server` (installed by
//! `scripts/redis-server.sh install`, which `scripts/test.sh` runs): the same decisions as the
//! in-memory store, one exact limit across replicas, refunds, a bounded failure when Redis is
//! unreachable, and two `tollgate run` processes sharing one limit.

use crate::e2e::repo;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use tollgate::state::memory::MemoryStore;
use tollgate::state::redis::RedisStore;
use tollgate::state::{Algorithm, CounterStore, Reservation, TakeRequest, Taken};

const MIN: u64 = 60_000;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of its own on a free loopback port, without persistence; killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> RedisServer {
        (0..5)
            .find_map(|_| RedisServer::start_on(free_port()))
            .expect("redis-server did not start on a free port")
    }

    /// Start on `port`; None if it did not come up (the port was taken in between).
    fn start_on(port: u16) -> Option<RedisServer> {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); install it with scripts/redis-server.sh install")
            });
        let mut server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if server.pings() {
                return Some(server);
            }
            if server.child.try_wait().unwrap().is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None // dropped: killed
    }

    fn pings(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn store(&self) -> RedisStore {
        RedisStore::connect(&self.url()).unwrap()
    }

    /// A plain connection for looking at what the store wrote.
    async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(key: &str, cost: u64, limit: u64, window_ms: u64, algorithm: Algorithm) -> TakeRequest {
    TakeRequest {
        key: key.into(),
        cost,
        limit,
        window: Duration::from_millis(window_ms),
        algorithm,
    }
}

/// One step of a scenario, run through both stores.
enum Step {
    Take(u64, TakeRequest),
    /// Refund the reservation of the n-th take (counting from 0).
    Refund(usize),
}

/// Run `steps` through a memory store and a Redis store; every take must come out the same.
/// Returns the takes' outcomes.
async fn same_as_memory(redis: &RedisStore, steps: &[Step]) -> Vec<Taken> {
    let memory = MemoryStore::new();
    let mut outcomes = Vec::new();
    let mut reservations: Vec<Option<Reservation>> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Take(now, r) => {
                let expected = memory.take_at(r, *now);
                let got = redis.take_at(r, *now).await.unwrap();
                assert_eq!(got, expected, "step {i}: take at {now} of {r:?}");
                outcomes.push(got.0);
                reservations.push(got.1);
            }
            Step::Refund(n) => {
                if let Some(r) = &reservations[*n] {
                    memory.refund(r).await.unwrap();
                    redis.refund(r).await.unwrap();
                }
            }
        }
    }
    outcomes
}

#[tokio::test]
async fn fixed_window_decides_like_the_memory_store() {
    let server = RedisServer::start();
    let t0 = 10 * MIN + 15_000;
    let r = request("fixed", 1, 3, MIN, Algorithm::FixedWindow);
    let o = same_as_memory(
        &server.store(),
        &[
            Step::Take(t0, r.clone()),
            Step::Take(t0, r.clone()),
            Step::Take(t0, r.clone()),
            Step::Take(t0 + 1_000, r.clone()),
            Step::Take(11 * MIN, r.clone()),
        ],
    )
    .await;
    assert!(o[..3]
        .iter()
        .enumerate()
        .all(|(i, t)| t.granted && t.used == i as u64 + 1));
    assert!(!o[3].granted);
    assert_eq!(o[3].resets_in_ms, 44_000, "resets at the next :00");
    assert!(o[4].granted);
}

#[tokio::test]
async fn sliding_window_decides_like_the_memory_store() {
    let server = RedisServer::start();
    let r = request("sliding", 1, 10, MIN, Algorithm::SlidingWindow);
    let mut steps: Vec<Step> = (0..10)
        .map(|_| Step::Take(10 * MIN + 50_000, r.clone()))
        .collect();
    steps.extend((0..3).map(|_| Step::Take(11 * MIN + 15_000, r.clone())));
    let o = same_as_memory(&server.store(), &steps).await;
    assert!(o[..10].iter().all(|t| t.granted));
    assert!(o[10].granted && o[10].used == 9, "{:?}", o[10]);
    assert!(o[11].granted);
    assert!(!o[12].granted && o[12].resets_in_ms > 0 && o[12].resets_in_ms <= 45_000);
}

#[tokio::test]
async fn token_bucket_decides_like_the_memory_store() {
    let server = RedisServer::start();
    let t0 = 1_000_000;
    let four = request("bucket", 4, 4, 4_000, Algorithm::TokenBucket);
    let one = request("bucket", 1, 4, 4_000, Algorithm::TokenBucket);
    let o = same_as_memory(
        &server.store(),
        &[
            Step::Take(t0, four),
            Step::Take(t0, one.clone()),
            Step::Take(t0 + 1_000, one.clone()),
            Step::Take(t0 + 1_500, one),
        ],
    )
    .await;
    assert!(o[0].granted);
    assert_eq!(
        (o[1].granted, o[1].resets_in_ms),
        (false, 1_000),
        "one token per second"
    );
    assert!(o[2].granted);
    assert!(!o[3].granted);
}

#[tokio::test]
async fn refunds_return_units_to_the_right_window_like_the_memory_store() {
    let server = RedisServer::start();
    let two = request("refund", 2, 2, MIN, Algorithm::FixedWindow);
    let one = request("refund", 1, 2, MIN, Algorithm::FixedWindow);
    let o = same_as_memory(
        &server.store(),
        &[
            Step::Take(5 * MIN, two.clone()),
            Step::Refund(0),
            Step::Take(5 * MIN, two),
            Step::Take(7 * MIN, one.clone()),
            // A refund for a window that has rolled away leaves the current one alone.
            Step::Refund(1),
            Step::Take(7 * MIN, one.clone()),
            Step::Take(7 * MIN, one),
        ],
    )
    .await;
    assert!(o[1].granted, "the refunded units could be taken again");
    assert_eq!((o[3].granted, o[3].used), (true, 2));
    assert!(!o[4].granted, "the stale refund gave nothing back");
}

/// A deterministic mix of takes and refunds on real timestamps, with values large enough that
/// the products pass 2^53 (where Lua's doubles would round without the exact muldiv).
#[tokio::test]
async fn long_mixed_sequences_decide_exactly_like_the_memory_store() {
    let server = RedisServer::start();
    let store = server.store();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let shapes = [
        (Algorithm::FixedWindow, 10, 1_000),
        (Algorithm::SlidingWindow, 10, 1_000),
        (Algorithm::SlidingWindow, 1_000_000_000, 86_400_000),
        (Algorithm::TokenBucket, 7, 3_000),
        (Algorithm::TokenBucket, 5_000_000, 86_400_000),
        (Algorithm::FixedWindow, 1_000_000_000, 86_400_000),
    ];
    for (i, (algorithm, limit, window_ms)) in shapes.into_iter().enumerate() {
        let mut now = 1_767_225_600_000 + next(10 * window_ms); // around 2026
        let mut steps = Vec::new();
        let mut takes = 0;
        for _ in 0..300 {
            now += next(window_ms / 3);
            if takes > 0 && next(5) == 0 {
                steps.push(Step::Refund(next(takes as u64) as usize));
                continue;
            }
            let cost = if limit > 100 {
                next(limit / 3)
            } else {
                1 + next(3)
            };
            let key = format!("mixed{i}");
            steps.push(Step::Take(
                now,
                request(&key, cost, limit, window_ms, algorithm),
            ));
            takes += 1;
        }
        let outcomes = same_as_memory(&store, &steps).await;
        let granted = outcomes.iter().filter(|t| t.granted).count();
        assert!(
            granted > 0 && granted < outcomes.len(),
            "{algorithm:?}: a useful mix grants some and refuses some ({granted})"
        );
    }
}

/// Lua numbers are doubles. The previous day's 999_999_001 units times the 74_601_001 ms of it
/// still inside the sliding window is 863_436_649 × 86_400_000 + 1, which a double rounds to
/// the multiple, so a naive `math.ceil(a * b / c)` would carry one unit less than Rust's
/// `div_ceil` and grant one too many.
#[tokio::test]
async fn products_past_2_pow_53_stay_exact() {
    let server = RedisServer::start();
    const DAY: u64 = 86_400_000;
    let (limit, prev, elapsed, carried) = (1_000_000_000, 999_999_001, 11_798_999, 863_436_650);
    let at = |cost| request("exact", cost, limit, DAY, Algorithm::SlidingWindow);
    let day = 20_454 * DAY;
    let o = same_as_memory(
        &server.store(),
        &[
            Step::Take(day + 1_000, at(prev)),
            Step::Take(day + DAY + elapsed, at(limit - carried)),
            Step::Take(day + DAY + elapsed, at(1)),
        ],
    )
    .await;
    assert_eq!((o[1].granted, o[1].used), (true, limit));
    assert!(!o[2].granted, "{:?}", o[2]);
}

#[test]
fn two_replicas_with_eight_callers_each_grant_exactly_the_limit() {
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let replicas = [server.store(), server.store()];
        let now = tollgate::state::now_ms();
        for algorithm in [
            Algorithm::FixedWindow,
            Algorithm::SlidingWindow,
            Algorithm::TokenBucket,
        ] {
            let r = request(&format!("{algorithm:?}"), 1, 100, 3_600_000, algorithm);
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let store = replicas[i % 2].clone();
                    let r = r.clone();
                    tokio::spawn(async move {
                        let mut granted = 0;
                        for _ in 0..25 {
                            if store.take_at(&r, now).await.unwrap().0.granted {
                                granted += 1;
                            }
                        }
                        granted
                    })
                })
                .collect();
            let mut granted = 0;
            for t in tasks {
                granted += t.await.unwrap();
            }
            assert_eq!(
                granted, 100,
                "{algorithm:?}: 400 attempts from 2 replicas x 8 callers, exactly the limit granted"
            );
        }
    });
}

#[tokio::test]
async fn refunds_through_another_replica_give_units_back() {
    let server = RedisServer::start();
    let (a, b) = (server.store(), server.store());
    for algorithm in [
        Algorithm::FixedWindow,
        Algorithm::SlidingWindow,
        Algorithm::TokenBucket,
    ] {
        let r = request(&format!("refund-{algorithm:?}"), 1, 1, MIN, algorithm);
        let (taken, reservation) = a.take(&r).await.unwrap();
        assert!(taken.granted);
        assert!(!b.take(&r).await.unwrap().0.granted, "{algorithm:?}");
        b.refund(&reservation.unwrap()).await.unwrap();
        assert!(a.take(&r).await.unwrap().0.granted, "{algorithm:?}");
    }
    // A sliding window's units taken in the previous window are refunded from prev_used.
    let r = request("refund-prev", 4, 4, MIN, Algorithm::SlidingWindow);
    let (_, reservation) = a.take_at(&r, 100 * MIN + 59_000).await.unwrap();
    let one = request("refund-prev", 1, 4, MIN, Algorithm::SlidingWindow);
    assert!(!a.take_at(&one, 101 * MIN + 1_000).await.unwrap().0.granted);
    b.refund(&reservation.unwrap()).await.unwrap();
    assert!(a.take_at(&one, 101 * MIN + 1_000).await.unwrap().0.granted);
    // Refunding a counter that has expired is a no-op and creates nothing.
    let gone = Reservation {
        request: request("never-taken", 1, 1, MIN, Algorithm::FixedWindow),
        window_start_ms: 0,
    };
    a.refund(&gone).await.unwrap();
    let mut raw = server.raw().await;
    let exists: bool = redis::cmd("EXISTS")
        .arg("tollgate:never-taken")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(!exists);
}

#[tokio::test]
async fn keys_are_prefixed_and_expire_after_two_windows() {
    let server = RedisServer::start();
    let store = server.store();
    let r = request("ttl", 1, 5, MIN, Algorithm::SlidingWindow);
    store.take(&r).await.unwrap();
    let mut raw = server.raw().await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg("tollgate:ttl")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        pttl > 2 * MIN as i64 && pttl <= 2 * MIN as i64 + 1_000,
        "{pttl}"
    );
    let used: u64 = redis::cmd("HGET")
        .arg("tollgate:ttl")
        .arg("used")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(used, 1);
}

#[tokio::test]
async fn a_replica_whose_clock_is_behind_does_not_reset_a_window() {
    let server = RedisServer::start();
    let (ahead, behind) = (server.store(), server.store());
    let r = request("skew", 1, 2, MIN, Algorithm::FixedWindow);
    // `ahead` is already in the next minute; `behind` still thinks it is the last second of
    // the previous one. Rolling back would start an empty window and grant a third unit.
    assert!(ahead.take_at(&r, 20 * MIN + 500).await.unwrap().0.granted);
    assert!(behind.take_at(&r, 20 * MIN - 500).await.unwrap().0.granted);
    assert!(!ahead.take_at(&r, 20 * MIN + 600).await.unwrap().0.granted);
    assert!(!behind.take_at(&r, 20 * MIN - 400).await.unwrap().0.granted);
}

#[tokio::test]
async fn an_unreachable_redis_fails_fast_with_a_store_error() {
    // A closed port: the connection is refused.
    let closed = free_port();
    let store = RedisStore::connect(&format!("redis://127.0.0.1:{closed}")).unwrap();
    let r = request("k", 1, 1, MIN, Algorithm::FixedWindow);
    let started = Instant::now();
    let err = store.take(&r).await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.starts_with(&format!(
            "counter store error: redis redis://127.0.0.1:{closed}: cannot connect"
        )),
        "{err}"
    );
    // A port that accepts connections but never answers: the operation deadline applies.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let store = RedisStore::connect(&format!("redis://127.0.0.1:{port}")).unwrap();
    let started = Instant::now();
    let err = store.take(&r).await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains("redis redis://127.0.0.1:"), "{err}");
    let reservation = Reservation {
        request: r,
        window_start_ms: 0,
    };
    let started = Instant::now();
    assert!(store.refund(&reservation).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_store_recovers_when_redis_comes_back() {
    let port = free_port();
    let store = RedisStore::connect(&format!("redis://127.0.0.1:{port}")).unwrap();
    let r = request("back", 1, 5, MIN, Algorithm::FixedWindow);
    assert!(store.take(&r).await.is_err(), "nothing listens yet");
    let _server = RedisServer::start_on(port).expect("redis-server starts");
    assert!(store.take(&r).await.unwrap().0.granted);
}

#[tokio::test]
async fn the_store_reconnects_after_redis_restarts() {
    let server = RedisServer::start();
    let port = server.port;
    let store = server.store();
    let r = request("restart", 1, 5, MIN, Algorithm::FixedWindow);
    assert!(store.take(&r).await.unwrap().0.granted);
    drop(server);
    let started = Instant::now();
    assert!(store.take(&r).await.is_err(), "redis is gone");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let _server = RedisServer::start_on(port).expect("redis-server starts again");
    // The manager reconnects in the background after a failure; give it a few tries.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match store.take(&r).await {
            Ok((taken, _)) => break assert!(taken.granted),
            Err(e) => assert!(Instant::now() < deadline, "no reconnection: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `tollgate run` as a process, driven over stdio with JSON lines.
struct Proxy {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Proxy {
    fn start(policy: &Path, state: &str) -> Proxy {
        let server = repo().join("scripts/demo/server.py");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg("run")
            .arg("--policy")
            .arg(policy)
            .args(["--state", state, "--server-name", "demo", "--"])
            .arg("python3")
            .arg(server)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Proxy {
            child,
            stdin,
            stdout,
        }
    }

    fn call(&mut self, id: u64, tool: &str, arguments: Value) -> Value {
        let message = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                             "params": {"name": tool, "arguments": arguments}});
        writeln!(self.stdin, "{message}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_tollgate_processes_share_one_limit_through_redis() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "version: 1\ntools:\n  send_message:\n    rules:\n      - action: allow\n        rate_limit: { max: 3, window: day }\n",
    )
    .unwrap();
    let mut first = Proxy::start(&policy, &server.url());
    let mut second = Proxy::start(&policy, &server.url());
    let message = |n: u64| json!({"to": "+15550100", "body": format!("message {n}")});
    let mut answers = Vec::new();
    for id in 1..=2 {
        answers.push(first.call(id, "send_message", message(id)));
    }
    for id in 3..=4 {
        answers.push(second.call(id, "send_message", message(id)));
    }
    for a in &answers[..3] {
        assert_ne!(a["result"]["isError"], true, "allowed: {a}");
        assert!(a["result"]["_meta"]["dev.tollgate/denial"].is_null(), "{a}");
    }
    let denied = &answers[3];
    assert_eq!(denied["result"]["isError"], true, "{denied}");
    assert_eq!(
        denied["result"]["_meta"]["dev.tollgate/denial"]["code"], "rate_limited",
        "{denied}"
    );
    // And the first process sees the same counter.
    let again = first.call(5, "send_message", message(5));
    assert_eq!(
        again["result"]["_meta"]["dev.tollgate/denial"]["code"], "rate_limited",
        "{again}"
    );
}

#[test]
fn tollgate_denies_with_state_unavailable_when_redis_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "version: 1\ntools:\n  send_message:\n    rules:\n      - rate_limit: { max: 3, window: day }\n",
    )
    .unwrap();
    let url = format!("redis://127.0.0.1:{}", free_port());
    let mut proxy = Proxy::start(&policy, &url);
    let started = Instant::now();
    let a = proxy.call(1, "send_message", json!({"to": "+15550100", "body": "hi"}));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        a["result"]["_meta"]["dev.tollgate/denial"]["code"], "state_unavailable",
        "{a}"
    );
    // Tools without a rate limit are not affected.
    let listed = proxy.call(2, "list_messages", json!({}));
    assert_eq!(listed["result"]["content"][0]["text"], "[]", "{listed}");
}

/// Stops (SIGSTOP) a redis-server for as long as it lives, then lets it go on (SIGCONT): a
/// server that accepts connections and answers nothing, the way a hung one does.
struct Frozen(u32);

impl Frozen {
    fn freeze(server: &RedisServer) -> Frozen {
        let pid = server.child.id();
        // SAFETY: plain kill(2) on a child we started.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGSTOP) }, 0);
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

#[test]
fn a_hung_redis_is_the_stores_failure_not_the_plugins() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    // The store's operation timeout (500 ms) is far past the plugin deadline (50 ms): waiting
    // on the store must not count as the plugin's own time.
    std::fs::write(
        &policy,
        "version: 1\ntools:\n  send_message:\n    rules:\n      - rate_limit: { max: 5, window: day }\n  list_messages:\n    rules:\n      - rate_limit: { max: 5, window: day, fail_mode: open }\n",
    )
    .unwrap();
    let mut proxy = Proxy::start(&policy, &server.url());
    let hi = json!({"to": "+15550100", "body": "hi"});
    let first = proxy.call(1, "send_message", hi.clone());
    assert_ne!(first["result"]["isError"], true, "{first}");

    let frozen = Frozen::freeze(&server);
    let closed = proxy.call(2, "send_message", hi.clone());
    assert_eq!(
        closed["result"]["_meta"]["dev.tollgate/denial"]["code"], "state_unavailable",
        "a hung store under fail_mode closed: {closed}"
    );
    let open = proxy.call(3, "list_messages", json!({}));
    assert_ne!(
        open["result"]["isError"], true,
        "fail_mode open lets it through: {open}"
    );
    assert!(
        open["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("+15550100")),
        "the server answered: {open}"
    );
    drop(frozen);

    let again = proxy.call(4, "send_message", hi);
    assert_ne!(again["result"]["isError"], true, "recovered: {again}");
}

/// Two handles on each kind of store, as two proxies have: one memory store twice, two
/// connections to one sqlite `file`, two to `server`.
fn store_pairs(server: &RedisServer, file: &Path) -> Vec<[std::sync::Arc<dyn CounterStore>; 2]> {
    use tollgate::state::sqlite::SqliteStore;
    let memory = std::sync::Arc::new(MemoryStore::new());
    vec![
        [memory.clone(), memory],
        [
            std::sync::Arc::new(SqliteStore::open(file).unwrap()),
            std::sync::Arc::new(SqliteStore::open(file).unwrap()),
        ],
        [
            std::sync::Arc::new(server.store()),
            std::sync::Arc::new(server.store()),
        ],
    ]
}

/// `pins: tofu` keeps the first definition seen in the state store: two handles on one store
/// (two proxies) agree on it whichever saw which definition first, and `tollgate unpin`'s
/// forgetting lets the next definition in. The same for every store.
#[test]
fn every_store_keeps_the_first_definition_seen_for_every_proxy_until_it_is_forgotten() {
    use tollgate::state::FirstSeen;
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let pairs = store_pairs(&server, &dir.path().join("state.sqlite"));
    let seen = |digest: &str| FirstSeen {
        digest: digest.into(),
        definition: format!("{{\"description\":\"{digest}\"}}"),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for [one, other] in pairs {
            let (a, b) = (one.pins().unwrap(), other.pins().unwrap());
            let store = one.describe();
            assert_eq!(
                a.pin_first("srv", "echo", &seen("v1")).await.unwrap(),
                seen("v1"),
                "{store}"
            );
            assert_eq!(
                b.pin_first("srv", "echo", &seen("v2")).await.unwrap(),
                seen("v1"),
                "{store}: the first definition stays"
            );
            assert_eq!(
                b.pin_first("other", "echo", &seen("v2")).await.unwrap(),
                seen("v2"),
                "{store}: servers have baselines of their own"
            );
            a.pin_first("srv", "add", &seen("a1")).await.unwrap();
            assert_eq!(
                b.forget_pins("srv", &["echo".into()]).await.unwrap(),
                1,
                "{store}"
            );
            assert_eq!(
                a.pin_first("srv", "echo", &seen("v2")).await.unwrap(),
                seen("v2"),
                "{store}: forgotten, the next is trusted"
            );
            assert_eq!(
                a.pin_first("srv", "add", &seen("a2")).await.unwrap(),
                seen("a1"),
                "{store}: only the named tool was forgotten"
            );
            assert_eq!(
                b.forget_pins("srv", &[]).await.unwrap(),
                2,
                "{store}: all of the server's"
            );
            assert_eq!(b.forget_pins("srv", &[]).await.unwrap(), 0, "{store}");
            assert_eq!(
                b.pin_first("other", "echo", &seen("v3")).await.unwrap(),
                seen("v2"),
                "{store}: other servers keep theirs"
            );
        }
    });
}

/// Under `pins: tofu`, a state store that cannot be reached hides each tool (its pin cannot be
/// checked) instead of trusting it.
#[test]
fn first_use_pins_fail_closed_when_redis_is_down() {
    use tollgate::pins::{Baseline, OnMismatch, PinPolicy, Pins, Status};
    let store = RedisStore::connect(&format!("redis://127.0.0.1:{}", free_port())).unwrap();
    let pins = Pins::load(&PinPolicy {
        baseline: Baseline::FirstUse,
        on_change: OnMismatch::Warn,
        on_new: OnMismatch::Warn,
        refuse_unlisted: true,
    })
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(pins.status(&json!({"name": "echo"}), "srv", store.pins()));
    match &status {
        Status::Unverified(why) => assert!(why.contains("cannot connect"), "{why}"),
        other => panic!("expected an unverified pin, got {other:?}"),
    }
    assert_eq!(pins.action(&status), Some(OnMismatch::Hide));
}

/// Approval requests are shared like pins: raised through one proxy, decided through another,
/// used once however many proxies retry the approved call at the same moment (each sees it
/// granted, and only one uses it).
#[test]
fn every_store_shares_approval_requests_and_uses_an_approval_exactly_once() {
    use tollgate::approval::{self, Answer, Ask};
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let pairs = store_pairs(&server, &dir.path().join("state.sqlite"));
    let ask = Ask {
        server: "bank",
        tool: "transfer",
        caller: "agent",
        arguments: r#"{"amount": 250, "to": "ACME"}"#,
        rule: "tools.transfer.rules[0]",
        rule_version: "v1",
        message: "Transfer 250 to ACME?",
        timeout_ms: 60_000,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for [one, other] in pairs {
            let store = one.describe();
            let (a, b) = (one.approvals().unwrap(), other.approvals().unwrap());
            let now = tollgate::state::now_ms();
            let Answer::Pending {
                approval: asked,
                new: true,
            } = approval::ask(a, &ask, now).await.unwrap()
            else {
                panic!("{store}: a new request")
            };
            match approval::ask(b, &ask, now + 1).await.unwrap() {
                Answer::Pending { approval, new } => {
                    assert_eq!((approval.id, new), (asked.id.clone(), false), "{store}")
                }
                other => panic!("{store}: {other:?}"),
            }
            approval::decide(b, &asked.id, true, "ops", "operator", now + 2)
                .await
                .unwrap();
            let retries: Vec<_> = (0..8)
                .map(|i| {
                    let store = if i % 2 == 0 {
                        one.clone()
                    } else {
                        other.clone()
                    };
                    let ask = ask.clone();
                    tokio::spawn(async move {
                        let approvals = store.approvals().unwrap();
                        let answer = approval::ask(approvals, &ask, now + 3).await.unwrap();
                        let went_through = match &answer {
                            Answer::Granted(a) => {
                                approval::consume(approvals, a, now + 3).await.unwrap()
                            }
                            _ => false,
                        };
                        (answer, went_through)
                    })
                })
                .collect();
            let mut answers = Vec::new();
            for retry in retries {
                answers.push(retry.await.unwrap());
            }
            let through = answers.iter().filter(|(_, went)| *went).count();
            assert_eq!(through, 1, "{store}: used exactly once: {answers:?}");
            assert!(
                answers
                    .iter()
                    .all(|(a, _)| matches!(a, Answer::Granted(_) | Answer::Pending { .. })),
                "{store}: the others see it granted (and lose the race) or ask again: {answers:?}"
            );
            let listed = approval::list(b, 10).await.unwrap();
            assert!(
                listed
                    .iter()
                    .any(|a| a.id == asked.id && a.state.name() == "used"),
                "{store}: {listed:?}"
            );
        }
    });
}

/// An approval store that cannot be reached is an error, never an approval.
#[test]
fn approvals_fail_closed_when_redis_is_down() {
    let store = RedisStore::connect(&format!("redis://127.0.0.1:{}", free_port())).unwrap();
    let ask = tollgate::approval::Ask {
        server: "bank",
        tool: "transfer",
        caller: "agent",
        arguments: "{}",
        rule: "r",
        rule_version: "v",
        message: "m",
        timeout_ms: 1_000,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(tollgate::approval::ask(&store, &ask, 0))
        .unwrap_err();
    assert!(err.to_string().contains("cannot connect"), "{err}");
}

/// `tollgate status` and the console list the counters in use: every store, through another
/// handle (another proxy), shows each counter's use with the limit, window and algorithm of its
/// last take, the busiest first, and leaves out counters whose window has passed.
#[test]
fn every_store_lists_the_counters_in_use_with_their_limits() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let pairs = store_pairs(&server, &dir.path().join("state.sqlite"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for [one, other] in pairs {
            let store = one.describe();
            let hour = request("srv/busy/alice", 1, 10, 3_600_000, Algorithm::FixedWindow);
            for _ in 0..3 {
                assert!(one.take(&hour).await.unwrap().0.granted, "{store}");
            }
            let bucket = request("srv/bucket/bob", 2, 5, 3_600_000, Algorithm::TokenBucket);
            one.take(&bucket).await.unwrap();
            let gone = request("srv/gone/carol", 1, 9, 1, Algorithm::FixedWindow);
            one.take(&gone).await.unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
            let listed = other.counters(10).await.unwrap();
            let seen: Vec<_> = listed
                .iter()
                .map(|c| (c.key.as_str(), c.used, c.limit, c.window_ms, c.algorithm))
                .collect();
            assert_eq!(
                seen,
                [
                    ("srv/busy/alice", 3, 10, 3_600_000, "fixed"),
                    ("srv/bucket/bob", 2, 5, 3_600_000, "bucket"),
                ],
                "{store}"
            );
            assert!(listed[0].resets_in_ms <= 3_600_000, "{store}");
            assert_eq!(other.counters(1).await.unwrap().len(), 1, "{store}");
        }
    });
}
