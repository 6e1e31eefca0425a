//! `tollgate run` and the MCP server it starts share one CPU (`--colocate`, default `auto`) until
//! together they keep it busy; then every thread gets the CPUs it was allowed before. The
//! server here is a small Python script that reports its pid and, on a `burn` notification,
//! starts two threads that spin.

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

/// The CPUs each thread of `pid` may run on, as `/proc` lists them (`0-1`, `1`).
fn allowed(pid: u32) -> Vec<String> {
    let mut lists = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .unwrap()
            .to_string();
        lists.push(line.split_whitespace().nth(1).unwrap().to_string());
    }
    lists
}

fn mine() -> String {
    allowed(std::process::id())[0].clone()
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

fn single_cpu_machine() -> bool {
    let cpus = mine();
    if !cpus.contains(['-', ',']) {
        eprintln!("only CPU {cpus} is allowed here: nothing to co-locate, nothing to check");
        return true;
    }
    false
}

#[test]
fn the_server_shares_tollgates_cpu_until_the_pair_keeps_it_busy() {
    if single_cpu_machine() {
        return;
    }
    let (mut tollgate, _err, server) = start("auto");
    let shared = allowed(tollgate.id());
    assert!(
        shared
            .iter()
            .all(|l| l == &shared[0] && !l.contains(['-', ','])),
        "tollgate's threads should share one CPU: {shared:?}"
    );
    assert!(
        allowed(server).iter().all(|l| l == &shared[0]),
        "the server should start on tollgate's CPU {}: {:?}",
        shared[0],
        allowed(server)
    );

    // An idle pair stays together past the three samples that decide.
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        allowed(server).iter().all(|l| l == &shared[0]),
        "an idle server was spread out: {:?}",
        allowed(server)
    );

    let stdin = tollgate.stdin.as_mut().unwrap();
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/burn\"}\n")
        .unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !allowed(server).iter().all(|l| *l == mine()) {
        assert!(
            Instant::now() < deadline,
            "a busy server was never given its CPUs back: {:?}",
            allowed(server)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(allowed(tollgate.id()).iter().all(|l| *l == mine()));
    drop(tollgate.stdin.take());
    tollgate.wait().unwrap();
}

#[test]
fn colocate_off_leaves_the_server_where_the_scheduler_puts_it() {
    if single_cpu_machine() {
        return;
    }
    let (mut tollgate, _err, server) = start("off");
    assert!(allowed(server).iter().all(|l| *l == mine()));
    assert!(allowed(tollgate.id()).iter().all(|l| *l == mine()));
    drop(tollgate.stdin.take());
    tollgate.wait().unwrap();
}
