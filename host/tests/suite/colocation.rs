//! `tollgate run` and the MCP server it starts share one CPU (`--colocate`, default `auto`) until
//! together they keep it busy; then every thread gets the CPUs it was allowed before. The
//! server here is a small Python script that reports its pid and, on a `burn` notification,
//! starts two threads that spin.

use crate::e2e::{allowed_cpus, one_cpu_allowed};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = r#"
import os, sys, threading
print(f"pid={os.getpid()}", file=sys.stderr, flush=True)
def spin():
    while True:
        pass
for line in sys.stdin:
    if "burn" in line:
        for _ in range(2):
            threading.Thread(target=spin, daemon=True).start()
"#;

/// What this test process may run on: every allowed CPU.
fn mine() -> String {
    allowed_cpus(std::process::id())[0].clone()
}

fn start(colocate: &str) -> (Child, BufReader<ChildStderr>, u32) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "version: 1\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "run",
            "--state",
            "memory",
            "--colocate",
            colocate,
            "--policy",
        ])
        .arg(&policy)
        .args(["--", "python3", "-c", SERVER])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let pid = loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "no pid from the server"
        );
        if let Some(pid) = line.trim().strip_prefix("pid=") {
            break pid.parse().unwrap();
        }
    };
    (child, err, pid)
}

#[test]
fn the_server_shares_tollgates_cpu_until_the_pair_keeps_it_busy() {
    if one_cpu_allowed() {
        return;
    }
    let (mut tollgate, _err, server) = start("auto");
    let shared = allowed_cpus(tollgate.id());
    assert!(
        shared
            .iter()
            .all(|l| l == &shared[0] && !l.contains(['-', ','])),
        "tollgate's threads should share one CPU: {shared:?}"
    );
    assert!(
        allowed_cpus(server).iter().all(|l| l == &shared[0]),
        "the server should start on tollgate's CPU {}: {:?}",
        shared[0],
        allowed_cpus(server)
    );

    // An idle pair stays together past the three samples that decide.
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        allowed_cpus(server).iter().all(|l| l == &shared[0]),
        "an idle server was spread out: {:?}",
        allowed_cpus(server)
    );

    let stdin = tollgate.stdin.as_mut().unwrap();
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/burn\"}\n")
        .unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !allowed_cpus(server).iter().all(|l| *l == mine()) {
        assert!(
            Instant::now() < deadline,
            "a busy server was never given its CPUs back: {:?}",
            allowed_cpus(server)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(allowed_cpus(tollgate.id()).iter().all(|l| *l == mine()));
    drop(tollgate.stdin.take());
    tollgate.wait().unwrap();
}

#[test]
fn colocate_off_leaves_the_server_where_the_scheduler_puts_it() {
    if one_cpu_allowed() {
        return;
    }
    let (mut tollgate, _err, server) = start("off");
    assert!(allowed_cpus(server).iter().all(|l| *l == mine()));
    assert!(allowed_cpus(tollgate.id()).iter().all(|l| *l == mine()));
    drop(tollgate.stdin.take());
    tollgate.wait().unwrap();
}
