//! Shared helpers for end-to-end tests against real MCP peers (tests/peers/, installed by
//! scripts/test-peers.sh): start a client driver whose server COMMAND is Tollgate in front of a
//! real server (or the server directly), feed it a scenario, return its JSON report.
#![allow(dead_code)] // not every test file uses every helper

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest a single driver run may take before the test fails.
const DRIVER_DEADLINE: Duration = Duration::from_secs(120);

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// tests/peers/.
pub fn peers() -> PathBuf {
    repo().join("tests/peers")
}

fn path_str(p: PathBuf) -> String {
    p.to_str().expect("non-UTF-8 path").to_string()
}

/// Install the peers (once per test binary) and check every policy in `policies` (paths under
/// tests/policies/) with `tollgate check`, which also fills the compiled-plugin cache so parallel
/// tests do not all compile the plugins at once. Panics with the output when either fails.
pub fn setup(policies: &[&str]) {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let out = Command::new(repo().join("scripts/test-peers.sh"))
            .current_dir(repo())
            .output()
            .map_err(|e| format!("cannot run scripts/test-peers.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "scripts/test-peers.sh failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        for policy in policies {
            let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
                .arg("check")
                .arg(policy_path(policy))
                .output()
                .map_err(|e| format!("cannot run tollgate check: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "tollgate check {policy} failed ({}):\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(())
    });
    if let Err(e) = ready {
        panic!("{e}");
    }
}

/// Absolute path of tests/policies/NAME.
pub fn policy_path(name: &str) -> String {
    path_str(repo().join("tests/policies").join(name))
}

/// The client drivers in tests/peers/clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// Python SDK 1.x (`py_client.py`).
    Py1,
    /// Python SDK 2.x (`py2_client.py`), 2026-07-28 capable.
    Py2,
    /// TypeScript SDK (`ts_client.mjs`).
    Ts,
}

impl Client {
    fn command(self) -> Vec<String> {
        let p = peers();
        let (interpreter, script) = match self {
            Client::Py1 => (".env/py1/bin/python", "clients/py_client.py"),
            Client::Py2 => (".env/py2/bin/python", "clients/py2_client.py"),
            Client::Ts => (".env/bin/node", "clients/ts_client.mjs"),
        };
        vec![path_str(p.join(interpreter)), path_str(p.join(script))]
    }
}

/// server-everything over stdio.
pub fn server_everything() -> Vec<String> {
    let p = peers();
    vec![
        path_str(p.join(".env/bin/node")),
        path_str(p.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")),
        "stdio".into(),
    ]
}

/// The FastMCP (mcp 1.x) test server over stdio.
pub fn fastmcp1() -> Vec<String> {
    let p = peers();
    vec![
        path_str(p.join(".env/py1/bin/python")),
        path_str(p.join("servers/fastmcp_server.py")),
    ]
}

/// The MCPServer (mcp 2.x, 2026-07-28) test server over stdio.
pub fn fastmcp2() -> Vec<String> {
    let p = peers();
    vec![
        path_str(p.join(".env/py2/bin/python")),
        path_str(p.join("servers/fastmcp2_server.py")),
    ]
}

/// `tollgate run --state memory --policy tests/policies/POLICY -- SERVER...` (each run starts
/// with fresh counters, so tests running in parallel cannot share them).
pub fn tollgate(policy: &str, server: Vec<String>) -> Vec<String> {
    let mut cmd = vec![
        env!("CARGO_BIN_EXE_tollgate").to_string(),
        "run".into(),
        "--state".into(),
        "memory".into(),
        "--policy".into(),
        policy_path(policy),
        "--".into(),
    ];
    cmd.extend(server);
    cmd
}

/// What a driver run produced.
pub struct Run {
    /// The driver's JSON report.
    pub out: Value,
    /// The driver's stderr (which includes Tollgate's and the server's stderr).
    pub stderr: String,
}

impl Run {
    /// `results[i]` of the report.
    pub fn step(&self, i: usize) -> &Value {
        let step = &self.out["results"][i];
        assert!(!step.is_null(), "no result for step {i}\n{self}");
        step
    }

    /// `results[i].result`, the CallToolResult of a call_tool step; panics on error/exception.
    pub fn result(&self, i: usize) -> &Value {
        let result = &self.step(i)["result"];
        assert!(result.is_object(), "step {i} has no result\n{self}");
        result
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let out = serde_json::to_string_pretty(&self.out).unwrap_or_default();
        write!(f, "driver output:\n{out}\ndriver stderr:\n{}", self.stderr)
    }
}

/// Run `client` against `command` with `scenario`; panics unless it connects and reports.
pub fn drive(client: Client, command: &[String], scenario: &Value) -> Run {
    let argv = client.command();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .arg("--")
        .args(command)
        .current_dir(peers())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {client:?} driver: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(scenario.to_string().as_bytes()).unwrap();
    drop(stdin);
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).map(|_| s)
    });
    let deadline = Instant::now() + DRIVER_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap().unwrap_or_default();
            panic!(
                "the {client:?} driver did not finish within {DRIVER_DEADLINE:?}\n\
                 command: {command:?}\nscenario: {scenario}\ndriver stderr:\n{stderr}"
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap().unwrap_or_default();
    let stderr = err_reader.join().unwrap().unwrap_or_default();
    let out: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the {client:?} driver printed no JSON ({e}; {status})\ncommand: {command:?}\n\
             stdout:\n{stdout}\nstderr:\n{stderr}"
        )
    });
    let run = Run { out, stderr };
    assert!(
        status.success() && run.out.get("connect_error").is_none(),
        "the {client:?} driver failed ({status})\ncommand: {command:?}\n{run}"
    );
    run
}

/// Minutes since the Unix epoch: the fixed rate-limit window a call falls in.
fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

/// [`drive`], repeated when the run straddled a minute boundary. The rate-limit plugin's
/// default algorithm is a fixed window aligned to the epoch, so "the 3rd call in a minute is
/// refused" holds only when all calls fall within one UTC minute.
pub fn drive_in_one_minute(client: Client, command: &[String], scenario: &Value) -> Run {
    for _ in 0..3 {
        let before = minute();
        let run = drive(client, command, scenario);
        if minute() == before {
            return run;
        }
        eprintln!("the run straddled a minute boundary (fixed rate-limit windows); running again");
    }
    panic!("three runs in a row straddled a minute boundary");
}

/// The `rate_limit` plugin's delay notation: `1500` -> `1.5 s`, `800` -> `800 ms`.
pub fn describe_delay(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// The single text block of a CallToolResult.
pub fn text(result: &Value) -> &str {
    let content = result["content"].as_array().expect("content array");
    assert_eq!(content.len(), 1, "expected one content block: {result}");
    assert_eq!(content[0]["type"], "text", "{result}");
    content[0]["text"].as_str().expect("text")
}

/// Assert `result` is Tollgate's denial result with exactly this code, rule and text.
pub fn assert_denial(result: &Value, code: &str, rule: &str, text_: &str) {
    assert_eq!(
        result["isError"],
        json!(true),
        "not an error result: {result}"
    );
    assert_eq!(text(result), text_, "{result}");
    let denial = &result["_meta"]["dev.tollgate/denial"];
    assert_eq!(denial["code"], code, "{result}");
    assert_eq!(denial["rule"], rule, "{result}");
}

/// Assert `result` is a rate-limit denial by `rule` with a plausible retry delay that the text
/// states; returns the delay in milliseconds.
pub fn assert_rate_limited(result: &Value, rule: &str, limit: &str) -> u64 {
    let ms = result["_meta"]["dev.tollgate/denial"]["retryAfterMs"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retryAfterMs: {result}"));
    assert!(
        (1..=60_000).contains(&ms),
        "retryAfterMs out of range: {result}"
    );
    let expected = format!(
        "Denied by policy: rate limit of {limit} reached; try again in {}",
        describe_delay(ms)
    );
    assert_denial(result, "rate_limited", rule, &expected);
    ms
}
