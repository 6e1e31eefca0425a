//! `cargo bench -p tollgate --bench stdio -- --startup`: how long an agent's client waits for
//! its first `tools/list` answer (spawn, `initialize`, `notifications/initialized`,
//! `tools/list`), straight from the rmcp upstream and through `tollgate run` with
//! `policies/catalog/twilio/policy.yaml` on the default sqlite counters — with an empty code cache and state
//! directory every round (a new machine's first start) and with warm ones — in alternating
//! rounds; then the resident memory of each kind of process idle after that answer.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Spawn `cmd`, do the handshake and a `tools/list`; the time to its answer, and the process's
/// resident memory after `idle` (when asked), in KiB.
fn first_list(mut cmd: Command, idle: Option<Duration>) -> (Duration, Option<u64>) {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"bench","version":"1"}}}}}}"#).unwrap();
    stdout.read_line(&mut line).unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .unwrap();
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list"}}"#).unwrap();
    loop {
        line.clear();
        stdout.read_line(&mut line).unwrap();
        if line.contains(r#""id":2"#) {
            break;
        }
        assert!(
            !line.is_empty(),
            "the process closed before answering tools/list"
        );
    }
    let elapsed = start.elapsed();
    let rss = idle.map(|d| {
        std::thread::sleep(d);
        rss_kib(child.id())
    });
    drop(stdin);
    let _ = child.wait();
    (elapsed, rss)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn run(me: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let policy = repo.join("policies/catalog/twilio/policy.yaml");
    let warm = tempfile::tempdir().unwrap();
    let through = |home: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        c.env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_STATE_HOME", home.join("state"))
            .args(["run", "--log", "warn", "--policy"])
            .arg(&policy)
            .arg("--")
            .arg(me)
            .arg("--serve-rmcp");
        c
    };
    let direct = || {
        let mut c = Command::new(me);
        c.arg("--serve-rmcp");
        c
    };
    first_list(through(warm.path()), None);
    let rounds = 15;
    let (mut d, mut cold, mut hot) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        d.push(first_list(direct(), None).0);
        let fresh = tempfile::tempdir().unwrap();
        cold.push(first_list(through(fresh.path()), None).0);
        hot.push(first_list(through(warm.path()), None).0);
    }
    let (d, cold, hot) = (median(d), median(cold), median(hot));
    let ms = |x: Duration| x.as_secs_f64() * 1e3;
    println!("time to the first tools/list answer, median of {rounds} alternating rounds (policies/catalog/twilio/policy.yaml, sqlite):");
    println!("  {:<44} {:>7.1} ms", "rmcp server alone", ms(d));
    println!(
        "  {:<44} {:>7.1} ms   adds {:>6.1} ms",
        "through tollgate, empty cache and state",
        ms(cold),
        ms(cold) - ms(d)
    );
    println!(
        "  {:<44} {:>7.1} ms   adds {:>6.1} ms",
        "through tollgate, warm",
        ms(hot),
        ms(hot) - ms(d)
    );
    let idle = Some(Duration::from_secs(3));
    let server = first_list(direct(), idle).1.unwrap();
    let proxy = first_list(through(warm.path()), idle).1.unwrap();
    println!(
        "resident memory 3 s after the answer: rmcp server {:.1} MiB, tollgate (without its server) {:.1} MiB",
        server as f64 / 1024.0,
        proxy as f64 / 1024.0
    );
}
