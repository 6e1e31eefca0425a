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
    drive_with_env(client, command, scenario, &[])
}

/// [`drive`] with extra environment variables for the driver (e.g. `MCP_HEADERS`).
pub fn drive_with_env(
    client: Client,
    command: &[String],
    scenario: &Value,
    env: &[(&str, &str)],
) -> Run {
    let argv = client.command();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .arg("--")
        .args(command)
        .envs(env.iter().copied())
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

/// The fixed rate-limit window of `secs` seconds (aligned to the Unix epoch) that now falls in.
pub fn window(secs: u64) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / secs
}

/// Runs `attempt` until one run falls within a single fixed window of `secs` seconds, at most
/// three times. The rate-limit plugin's default algorithm is a fixed window aligned to the
/// epoch, so "the 3rd call in a minute is refused" holds only when all calls fall within one
/// window. Each attempt must start from fresh counters (a new `tollgate` process or
/// [`Listening`]): the calls of a run that straddled the boundary count in the next window too.
pub fn in_one_window<T>(secs: u64, mut attempt: impl FnMut() -> T) -> T {
    for _ in 0..3 {
        let before = window(secs);
        let result = attempt();
        if window(secs) == before {
            return result;
        }
        eprintln!("the run straddled a {secs} s rate-limit window's boundary; running again");
    }
    panic!("three runs in a row straddled a {secs} s window's boundary");
}

/// [`in_one_window`] for the policies' per-minute limits.
pub fn in_one_minute<T>(attempt: impl FnMut() -> T) -> T {
    in_one_window(60, attempt)
}

/// [`drive`] within one minute ([`in_one_minute`]); `command` must start a fresh Tollgate
/// each time (as [`tollgate`] does), not reach a listener that keeps its counters.
pub fn drive_in_one_minute(client: Client, command: &[String], scenario: &Value) -> Run {
    in_one_minute(|| drive(client, command, scenario))
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

/// `tollgate run --listen 127.0.0.1:0 …` in the background, serving Streamable HTTP; stopped
/// with SIGTERM when dropped.
pub struct Listening {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    /// Everything Tollgate (and the servers it started) wrote to stderr so far.
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Listening {
    /// Start Tollgate on a free loopback port with `policy` (under tests/policies/) in front of
    /// `server`, with `extra` arguments and environment (memory counters unless `extra` says
    /// `--state`); waits until it listens.
    pub fn start(
        policy: &str,
        server: Vec<String>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Listening {
        use std::io::BufRead;
        // Memory counters unless `extra` names a store.
        let state = if extra.contains(&"--state") {
            &[][..]
        } else {
            &["--state", "memory"][..]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["run", "--listen", "127.0.0.1:0"])
            .args(state)
            .arg("--policy")
            .arg(policy_path(policy))
            .args(extra)
            .arg("--")
            .args(&server)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start tollgate");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("tollgate: listening on ") {
                    let _ = tx.send(url.to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("tollgate did not start listening:\n{}", log.lock().unwrap())
            });
        Listening {
            child,
            url,
            stderr: log,
        }
    }

    /// Tollgate's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port` of the listener.
    pub fn authority(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .to_string()
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One raw HTTP/1.1 exchange (Connection: close) with /mcp: status, headers (lower-case names),
/// body.
pub fn http_request(
    authority: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    http_request_to(authority, method, "/mcp", headers, body)
}

/// [`http_request`] to another path.
pub fn http_request_to(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut stream = std::net::TcpStream::connect(authority).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("host: {authority}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, headers, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The contents of `/proc/PID/task/*/FILE`: one per thread of `pid` still alive to be read.
fn per_thread(pid: u32, file: &str) -> impl Iterator<Item = String> + '_ {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(move |t| std::fs::read_to_string(t.path().join(file)).ok())
}

/// The CPUs each thread of `pid` may run on, as `/proc` lists them (`0-1`, `1`).
pub fn allowed_cpus(pid: u32) -> Vec<String> {
    per_thread(pid, "status")
        .filter_map(|s| {
            let line = s.lines().find(|l| l.starts_with("Cpus_allowed_list:"))?;
            Some(line.split_whitespace().nth(1)?.to_string())
        })
        .collect()
}

/// Whether this test process may run on one CPU only (then there is nothing to co-locate, and
/// the co-location tests say so and check nothing).
pub fn one_cpu_allowed() -> bool {
    let cpus = allowed_cpus(std::process::id())[0].clone();
    if cpus.contains(['-', ',']) {
        return false;
    }
    eprintln!("only CPU {cpus} is allowed here: nothing to co-locate, nothing to check");
    true
}

/// Child processes of `pid` (spawned by any of its threads).
pub fn child_pids(pid: u32) -> Vec<u32> {
    per_thread(pid, "children")
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A certificate authority, and a certificate for `localhost` (and 127.0.0.1) it signed with its key, made with
/// `openssl`: (the CA's certificate, the leaf's certificate, the leaf's key).
pub fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=tollgate test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p("key.pem"),
            "-out",
            &p("leaf.csr"),
        ],
        &[
            "x509",
            "-req",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &p("leaf.ext"),
            "-out",
            &p("cert.pem"),
        ],
    ];
    for step in steps {
        let made = std::process::Command::new("openssl")
            .args(step)
            .output()
            .expect("openssl");
        assert!(
            made.status.success(),
            "openssl {step:?}: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}
