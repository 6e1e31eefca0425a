//! Streamable HTTP round trips, direct vs through Tollgate: 1,000 sequential `tools/call` in
//! alternating rounds (p50/p99 of each and the difference), then 32 concurrent clients for a
//! fixed number of calls each (calls per second).
//!
//! Run: `cargo bench -p tollgate --bench http` (figures go to BENCHMARKS.md). The upstream is
//! this executable with `--serve PORT`: a minimal Streamable HTTP MCP server on hyper (JSON
//! answers, a session id), so what is measured is Tollgate, not the server. Tollgate runs as
//! `tollgate run --listen 127.0.0.1:0 --upstream URL` with a 3-rule chain (deny + validate +
//! rate-limit) on memory counters, and again with no rules (its HTTP plumbing alone); the
//! clients send keep-alive requests accepting JSON or SSE. Next to them runs a bare relay
//! (`--relay`: hyper server and client on one thread, forwarding each body and looking at
//! nothing), the floor of what any HTTP proxy process costs here.
//!
//! `TOLLGATE_BASELINE=PATH` adds another `tollgate` binary (an earlier build) with the same two
//! policies to the same alternation, so a change is measured before and after in one run.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = r#"
version: 1
tools:
  echo:
    rules:
      - action: deny
        reason: no secrets
        when: [{ path: args.message, op: regex, value: "(?i)password" }]
      - validate: { schema: { type: object, required: [message], properties: { message: { type: string } } } }
      - rate_limit: { max: 1000000000, window: 60 }
"#;

/// The same proxy with nothing to decide: what Tollgate's HTTP plumbing costs on its own.
const NO_RULES: &str = "version: 1\n";

async fn serve(port: u16) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                |req: Request<hyper::body::Incoming>| async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let Some(id) = msg.get("id") else {
                        let mut r = Response::new(Full::new(Bytes::new()));
                        *r.status_mut() = hyper::StatusCode::ACCEPTED;
                        return Ok::<_, hyper::Error>(r);
                    };
                    let result = match msg["method"].as_str() {
                        Some("initialize") => {
                            json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "bench", "version": "1"}})
                        }
                        Some("tools/call") => {
                            json!({"content": [{"type": "text", "text": msg["params"]["arguments"]["message"]}]})
                        }
                        _ => json!({}),
                    };
                    let reply = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
                    let mut r = Response::new(Full::new(Bytes::from(reply)));
                    r.headers_mut()
                        .insert("content-type", "application/json".parse().unwrap());
                    r.headers_mut()
                        .insert("mcp-session-id", "bench-session".parse().unwrap());
                    Ok(r)
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The floor of any HTTP proxy process here: a relay on the same stack as Tollgate (hyper server
/// and client on one thread) that forwards each POST body and returns the answer, looking at
/// nothing (`--relay PORT UPSTREAM-URL`).
async fn relay(port: u16, upstream: String) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let client = client();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (client, upstream) = (client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (client, upstream) = (client.clone(), upstream.clone());
                async move {
                    let mut forward = Request::post(upstream);
                    for (name, value) in req.headers() {
                        if name != hyper::header::HOST {
                            forward = forward.header(name, value);
                        }
                    }
                    let body = req.into_body().collect().await?.to_bytes();
                    let answer = client
                        .request(forward.body(Full::new(body)).unwrap())
                        .await
                        .expect("upstream");
                    let (parts, body) = answer.into_parts();
                    let body = body.collect().await?.to_bytes();
                    Ok::<_, hyper::Error>(Response::from_parts(parts, Full::new(body)))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    Client::builder(hyper_util::rt::TokioExecutor::new()).build(c)
}

struct Peer {
    client: HttpClient,
    url: String,
    session: Option<String>,
    next_id: u64,
}

impl Peer {
    async fn new(url: &str) -> Peer {
        let mut p = Peer {
            client: client(),
            url: url.into(),
            session: None,
            next_id: 0,
        };
        p.post("initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}})).await;
        p
    }

    async fn post(&mut self, method: &str, params: Value) -> Duration {
        self.next_id += 1;
        let body =
            json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
                .to_string();
        let mut req = Request::post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let start = Instant::now();
        let response = self.client.request(req).await.expect("request");
        if let Some(s) = response.headers().get("mcp-session-id") {
            self.session = Some(s.to_str().unwrap().to_string());
        }
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let elapsed = start.elapsed();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains(r#""result""#) && !text.contains(r#""isError":true"#),
            "unexpected reply: {text}"
        );
        elapsed
    }

    async fn call(&mut self) -> Duration {
        self.post(
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "hello from the benchmark"}}),
        )
        .await
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e6
}

async fn throughput(url: &str, clients: usize, per_client: usize) -> f64 {
    let mut peers = Vec::new();
    for _ in 0..clients {
        peers.push(Peer::new(url).await);
    }
    let start = Instant::now();
    let tasks: Vec<_> = peers
        .into_iter()
        .map(|mut p| {
            tokio::spawn(async move {
                for _ in 0..per_client {
                    p.call().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (clients * per_client) as f64 / start.elapsed().as_secs_f64()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16) {
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start `tollgate run --listen` with `policy` in front of `upstream`: the child and its URL.
fn start_tollgate(
    exe: &std::path::Path,
    dir: &tempfile::TempDir,
    file: &str,
    policy: &str,
    upstream: &str,
) -> (std::process::Child, String) {
    let path = dir.path().join(file);
    std::fs::write(&path, policy).unwrap();
    let mut tollgate = Command::new(exe)
        .args([
            "run",
            "--log",
            "warn",
            "--state",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--policy",
        ])
        .arg(&path)
        .args(["--upstream", upstream])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(tollgate.stderr.take().unwrap()).lines();
    while let Some(Ok(line)) = stderr.next() {
        if let Some(url) = line.strip_prefix("tollgate: listening on ") {
            // Keep reading (and showing) what Tollgate says: a closed pipe would hide it.
            std::thread::spawn(move || {
                for line in stderr.map_while(Result::ok) {
                    eprintln!("tollgate: {line}");
                }
            });
            return (tollgate, url.to_string());
        }
    }
    let status = tollgate.wait();
    panic!("tollgate exited before listening: {status:?}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port_after = |i: usize| -> u16 { args[i + 1].parse().unwrap() };
    if let Some(i) = args.iter().position(|a| a == "--relay") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        return rt.block_on(relay(port_after(i), args[i + 2].clone()));
    }
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        return rt.block_on(serve(port_after(i)));
    }
    let port = free_port();
    let me = std::env::current_exe().unwrap();
    let upstream = Command::new(&me)
        .args(["--serve", &port.to_string()])
        .spawn()
        .unwrap();
    let direct = format!("http://127.0.0.1:{port}/mcp");
    wait_for(port);
    let relay_port = free_port();
    let bare_relay = Command::new(&me)
        .args(["--relay", &relay_port.to_string(), &direct])
        .spawn()
        .unwrap();
    let relayed = format!("http://127.0.0.1:{relay_port}/mcp");
    wait_for(relay_port);
    let dir = tempfile::tempdir().unwrap();
    let current = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tollgate"));
    let baseline = std::env::var_os("TOLLGATE_BASELINE").map(std::path::PathBuf::from);
    let mut children = vec![upstream, bare_relay];
    // (name, URL) of every peer, in the order they alternate.
    let mut urls = vec![
        ("direct".to_string(), direct.clone()),
        ("bare relay (floor)".to_string(), relayed),
    ];
    let builds = std::iter::once(("tollgate", current)).chain(baseline.map(|b| ("baseline", b)));
    for (label, exe) in builds {
        for (rules, file, policy) in [("no rules", "none", NO_RULES), ("3 rules", "chain", POLICY)]
        {
            let file = format!("{label}-{file}.yaml");
            let (child, url) = start_tollgate(&exe, &dir, &file, policy, &direct);
            children.push(child);
            urls.push((format!("{label}, {rules}"), url));
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut peers = Vec::new();
        for (name, url) in &urls {
            peers.push((name.as_str(), Peer::new(url).await, Vec::new()));
        }
        for (_, p, _) in peers.iter_mut() {
            for _ in 0..200 {
                p.call().await;
            }
        }
        let (rounds, per_round) = (10, 100);
        for _ in 0..rounds {
            for (_, p, samples) in peers.iter_mut() {
                for _ in 0..per_round {
                    samples.push(p.call().await);
                }
            }
        }
        println!("{} sequential tools/call over Streamable HTTP per peer, {rounds} alternating rounds of {per_round}", rounds * per_round);
        let mut base = (0.0, 0.0);
        let mut added = std::collections::BTreeMap::new();
        for (name, _, samples) in peers.iter_mut() {
            samples.sort();
            let (p50, p99) = (percentile(samples, 0.5), percentile(samples, 0.99));
            if *name == "direct" {
                base = (p50, p99);
                println!("  {name:<18} p50 {p50:>7.1} µs   p99 {p99:>7.1} µs");
            } else {
                added.insert(name.to_string(), p50 - base.0);
                println!("  {name:<18} p50 {p50:>7.1} µs   p99 {p99:>7.1} µs   adds {:>6.1} µs at p50, p99 {:.2}x direct", p50 - base.0, p99 / base.1);
            }
        }
        let relay = added["bare relay (floor)"];
        for label in ["tollgate", "baseline"] {
            if let Some(chain) = added.get(&format!("{label}, 3 rules")) {
                println!(
                    "  {label}, 3 rules adds {:.1}x what the bare relay adds (issue 15's target: at most 1.5x)",
                    chain / relay
                );
            }
        }
        let (clients, per_client) = (32, 200);
        println!("{clients} concurrent clients, {per_client} calls each");
        for (name, url) in &urls {
            let rate = throughput(url, clients, per_client).await;
            println!("  {name:<18} {rate:>9.0} calls/s");
        }
    });
    for child in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
