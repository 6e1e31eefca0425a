//! 1,000 sequential `tools/call` round trips straight to a Rust stdio MCP upstream, and the same
//! through `tollgate run` with no rules, with a 3-rule chain (deny + validate + rate-limit) on the
//! default sqlite counters, and with that chain on memory counters — each chain both with the
//! default `--colocate auto` (Tollgate and its server share a CPU) and with `--colocate off` —
//! in alternating rounds so all see the same machine conditions. Prints p50/p99 of each and the
//! ratio to direct.
//!
//! Run: `cargo bench -p tollgate --bench stdio` (figures go to BENCHMARKS.md); with
//! `-- --startup`, start-up time and idle memory instead ([`startup`]). Two upstreams,
//! both this same executable: `--serve-rmcp`, an `echo` server on the official Rust SDK (rmcp)
//! — the realistic one — and `--serve-upstream`, a bare line loop that answers `initialize`,
//! `tools/list` and `echo` with nothing else in the way. Next to Tollgate runs a bare relay
//! (`--relay`: this executable copying lines both ways on two blocking threads), the floor of
//! what any proxy process costs on the machine: two more pipe hops, each waking a process.
//!
//! `TOLLGATE_BASELINE=PATH` adds another `tollgate` binary (an earlier build) to the same
//! alternation — no rules, and the chain on sqlite and on memory counters — so a change is
//! measured before and after in one run.

#[path = "stdio/startup.rs"]
mod startup;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
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

fn serve_upstream() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { return };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let Some(id) = msg.get("id") else { continue };
        let result = match msg["method"].as_str() {
            Some("initialize") => {
                json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "bench", "version": "1"}})
            }
            Some("tools/list") => {
                json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]})
            }
            Some("tools/call") => {
                json!({"content": [{"type": "text", "text": msg["params"]["arguments"]["message"]}]})
            }
            _ => json!({}),
        };
        let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
        let _ = writeln!(out, "{reply}");
        let _ = out.flush();
    }
}

/// The realistic upstream: an MCP server on the official Rust SDK with one `echo` tool.
mod rmcp_echo {
    use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
    use rmcp::{schemars, tool, tool_handler, tool_router, ServerHandler, ServiceExt};

    #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
    struct EchoRequest {
        message: String,
    }

    #[derive(Debug, Clone)]
    struct Echo {
        tool_router: ToolRouter<Self>,
    }

    #[tool_router]
    impl Echo {
        #[tool(description = "Echo the message back")]
        fn echo(&self, Parameters(EchoRequest { message }): Parameters<EchoRequest>) -> String {
            message
        }
    }

    #[tool_handler(router = self.tool_router)]
    impl ServerHandler for Echo {}

    pub fn serve() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = Echo {
                tool_router: Echo::tool_router(),
            };
            let running = server.serve(rmcp::transport::stdio()).await.unwrap();
            let _ = running.waiting().await;
        });
    }
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Peer {
    fn start(mut cmd: Command) -> Peer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut peer = Peer {
            child,
            stdin,
            stdout,
            next_id: 0,
        };
        peer.call("initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}));
        writeln!(
            peer.stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )
        .unwrap();
        peer
    }

    fn call(&mut self, method: &str, params: Value) -> Duration {
        self.next_id += 1;
        let line = format!(
            "{}\n",
            json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        );
        let start = Instant::now();
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).unwrap();
        let elapsed = start.elapsed();
        assert!(
            reply.contains(r#""result""#) && !reply.contains(r#""isError":true"#),
            "unexpected reply: {reply}"
        );
        elapsed
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e6
}

/// Copy lines from `from` to `to` until either side closes.
fn copy_lines(from: impl BufRead, mut to: impl Write) {
    for line in from.lines() {
        let Ok(line) = line else { return };
        if writeln!(to, "{line}").and_then(|_| to.flush()).is_err() {
            return;
        }
    }
}

/// The floor of any proxy process: a relay that copies lines both ways on two blocking threads
/// and looks at nothing (`--relay UPSTREAM-FLAG`).
fn relay(flag: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg(flag)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the upstream");
    let mut to_child = child.stdin.take().unwrap();
    let from_child = BufReader::new(child.stdout.take().unwrap());
    let back = std::thread::spawn(move || copy_lines(from_child, std::io::stdout().lock()));
    copy_lines(std::io::stdin().lock(), &mut to_child);
    drop(to_child);
    let _ = back.join();
    let _ = child.wait();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--relay") {
        return relay(&args[i + 1]);
    }
    if args.iter().any(|a| a == "--serve-upstream") {
        return serve_upstream();
    }
    if args.iter().any(|a| a == "--serve-rmcp") {
        return rmcp_echo::serve();
    }
    if args.iter().any(|a| a == "--startup") {
        return startup::run(&std::env::current_exe().unwrap());
    }
    for (upstream, flag) in [
        ("rmcp echo server", "--serve-rmcp"),
        ("bare line loop", "--serve-upstream"),
    ] {
        compare(upstream, flag);
    }
}

/// Direct vs through Tollgate against one upstream, in alternating rounds.
fn compare(upstream_name: &str, flag: &str) {
    let me = std::env::current_exe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bench.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "version: 1\n").unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("counters.sqlite").display());
    let sqlite_off = format!(
        "sqlite:{}",
        dir.path().join("counters-off.sqlite").display()
    );
    let upstream = || {
        let mut c = Command::new(&me);
        c.arg(flag);
        c
    };
    // `colocate` may carry more flags after the mode, separated by spaces.
    let current = std::path::PathBuf::from(env!("CARGO_BIN_EXE_tollgate"));
    let baseline = std::env::var_os("TOLLGATE_BASELINE").map(std::path::PathBuf::from);
    let through_with =
        |exe: &std::path::Path, policy: &std::path::Path, state: &str, colocate: &str| {
            let mut c = Command::new(exe);
            c.args(["run", "--log", "warn", "--state", state, "--colocate"])
                .args(colocate.split(' '))
                .arg("--policy")
                .arg(policy)
                .arg("--")
                .arg(&me)
                .arg(flag);
            c
        };
    let through = |policy: &std::path::Path, state: &str, colocate: &str| {
        through_with(&current, policy, state, colocate)
    };
    let mut peers = vec![
        ("direct", Peer::start(upstream()), Vec::new()),
        (
            "bare relay (the floor)",
            Peer::start({
                let mut c = Command::new(&me);
                c.args(["--relay", flag]);
                c
            }),
            Vec::new(),
        ),
        (
            "tollgate, no rules",
            Peer::start(through(&empty, "memory", "auto")),
            Vec::new(),
        ),
        (
            "3 rules, sqlite (default)",
            Peer::start(through(&policy, &sqlite, "auto")),
            Vec::new(),
        ),
        (
            "3 rules, memory counters",
            Peer::start(through(&policy, "memory", "auto")),
            Vec::new(),
        ),
        (
            "3 rules, memory, no decision log",
            Peer::start(through(&policy, "memory", "auto --no-decision-log")),
            Vec::new(),
        ),
        (
            "3 rules, sqlite, colocate off",
            Peer::start(through(&policy, &sqlite_off, "off")),
            Vec::new(),
        ),
        (
            "3 rules, memory, colocate off",
            Peer::start(through(&policy, "memory", "off")),
            Vec::new(),
        ),
    ];
    if let Some(base) = &baseline {
        let sqlite_base = format!(
            "sqlite:{}",
            dir.path().join("counters-baseline.sqlite").display()
        );
        // Each right after its counterpart, so the two see the same moments of the machine.
        for (after, name, policy, state) in [
            ("tollgate, no rules", "baseline, no rules", &empty, "memory"),
            (
                "3 rules, sqlite (default)",
                "baseline, 3 rules, sqlite",
                &policy,
                sqlite_base.as_str(),
            ),
            (
                "3 rules, memory counters",
                "baseline, 3 rules, memory",
                &policy,
                "memory",
            ),
        ] {
            let peer = Peer::start(through_with(base, policy, state, "auto"));
            let at = peers.iter().position(|(n, _, _)| *n == after).unwrap() + 1;
            peers.insert(at, (name, peer, Vec::new()));
        }
    }
    let args = json!({"name": "echo", "arguments": {"message": "hello from the benchmark"}});
    for (_, peer, _) in peers.iter_mut() {
        for _ in 0..200 {
            peer.call("tools/call", args.clone());
        }
    }
    let (rounds, per_round) = (10, 100);
    for _ in 0..rounds {
        for (_, peer, samples) in peers.iter_mut() {
            samples.extend((0..per_round).map(|_| peer.call("tools/call", args.clone())));
        }
    }
    println!(
        "{upstream_name}: {} sequential tools/call over stdio per peer, {rounds} alternating rounds of {per_round}",
        rounds * per_round
    );
    let mut direct = (0.0, 0.0);
    for (name, _, samples) in peers.iter_mut() {
        samples.sort();
        let (p50, p99) = (percentile(samples, 0.5), percentile(samples, 0.99));
        if *name == "direct" {
            direct = (p50, p99);
            println!("  {name:<30} p50 {p50:>7.1} µs   p99 {p99:>7.1} µs");
        } else {
            println!(
                "  {name:<30} p50 {p50:>7.1} µs   p99 {p99:>7.1} µs   adds {:>6.1} µs at p50, p99 {:.2}x direct",
                p50 - direct.0,
                p99 / direct.1
            );
        }
    }
}
