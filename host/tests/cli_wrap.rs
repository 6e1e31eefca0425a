//! `tollgate wrap` and `unwrap` on a client's configuration in a home directory of their own:
//! every server put behind Tollgate with a policy, the wrapped entry working with a real SDK
//! client, idempotence, an exact restore, and bad input refused with the file untouched.

mod e2e;

use e2e::{drive_with_env, fastmcp1, setup, text, Client};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// `tollgate ARGS` with HOME and the XDG directories under `home`: (exit code, stdout, stderr).
fn tollgate(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A Cursor configuration written by hand: a stdio server with env, a remote one with a header
/// (nothing listens there), a legacy SSE one, and a field Tollgate has no business with.
fn cursor_config(home: &Path) -> (PathBuf, String) {
    let server = fastmcp1();
    let text = format!(
        r#"{{
    "mcpServers": {{
        "fastmcp": {{ "command": {}, "args": [{}], "env": {{ "GREETING": "hi" }} }},
        "remote": {{ "url": "http://127.0.0.1:9/mcp", "headers": {{ "Authorization": "Bearer s3cret" }} }},
        "legacy": {{ "type": "sse", "url": "http://127.0.0.1:9/sse" }}
    }},
    "editor.fontSize": 13
}}
"#,
        json!(server[0]),
        json!(server[1])
    );
    let path = home.join(".cursor/mcp.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &text).unwrap();
    (path, text)
}

#[test]
fn wrap_puts_tollgate_in_front_of_every_server_and_unwrap_restores_the_file_exactly() {
    setup(&[]);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let (path, original) = cursor_config(home);

    let (code, diff, stderr) = tollgate(home, &["wrap", "--client", "cursor", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        diff.starts_with(&format!("--- {}\n", path.display())),
        "{diff}"
    );
    assert!(
        diff.contains("\n-        \"fastmcp\": { \"command\""),
        "{diff}"
    );
    assert!(
        diff.contains("\n+                \"--upstream\",\n"),
        "{diff}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        original,
        "--dry-run writes nothing"
    );

    let (code, _, stderr) = tollgate(home, &["wrap", "--client", "cursor"]);
    assert_eq!(code, 0, "{stderr}");
    let policies = home.join(".config/tollgate/policies");
    assert!(
        stderr.contains(&format!(
            "`fastmcp` gets a starter policy naming its 4 tools: {}",
            policies.join("fastmcp.yaml").display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("`remote` gets a pass-through policy (its tools could not be listed)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`legacy` is left as it is: it uses the legacy HTTP+SSE transport"),
        "{stderr}"
    );
    let wrapped_text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        std::fs::read_to_string(home.join(".cursor/mcp.json.tollgate-backup")).unwrap(),
        original
    );
    let config: Value = serde_json::from_str(&wrapped_text).unwrap();
    assert_eq!(config["editor.fontSize"], 13);
    assert_eq!(
        config["mcpServers"]["legacy"],
        json!({"type": "sse", "url": "http://127.0.0.1:9/sse"})
    );
    let remote = &config["mcpServers"]["remote"];
    assert_eq!(
        remote["env"],
        json!({"TOLLGATE_UPSTREAM_HEADER_1": "Bearer s3cret"})
    );
    assert!(
        remote.get("url").is_none() && remote.get("headers").is_none(),
        "{remote}"
    );

    // The wrapped entry, started as Cursor would: the server's tools, through the policy.
    let entry = &config["mcpServers"]["fastmcp"];
    assert_eq!(entry["env"], json!({"GREETING": "hi"}));
    let mut command = vec![entry["command"].as_str().unwrap().to_string()];
    command.extend(
        entry["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string()),
    );
    assert_eq!(command[0], env!("CARGO_BIN_EXE_tollgate"));
    let run = drive_with_env(
        Client::Py1,
        &command,
        &json!({"timeout": 60, "steps": [{"op": "list_tools"}, {"op": "call_tool", "name": "add", "arguments": {"a": 2, "b": 3}}]}),
        &[("GREETING", "hi"), ("TOLLGATE_STATE", "memory")],
    );
    assert_eq!(
        run.step(0)["tools"],
        json!(["add", "send_message", "delete_record", "change_tools"]),
        "{run}"
    );
    assert_eq!(text(run.result(1)), "5", "{run}");

    // What status says of it.
    let (code, shown, stderr) = tollgate(home, &["status"]);
    assert_eq!(code, 0, "{stderr}");
    let fastmcp_policy = policies.join("fastmcp.yaml");
    let expected = format!(
        "{}\n  fastmcp: wrapped\n    policy {}: loads; default allow, 4 tool sections, no pins\n",
        path.display(),
        fastmcp_policy.display()
    );
    assert!(shown.starts_with(&expected), "{shown}");
    assert!(shown.contains("  remote: wrapped\n"), "{shown}");

    // Again: nothing is wrapped twice, and a policy an operator may have edited is kept.
    std::fs::write(policies.join("fastmcp.yaml"), "version: 1\n# edited\n").unwrap();
    let (code, _, stderr) = tollgate(home, &["wrap", "--client", "cursor"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("`fastmcp` is already wrapped"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), wrapped_text);
    assert_eq!(
        std::fs::read_to_string(policies.join("fastmcp.yaml")).unwrap(),
        "version: 1\n# edited\n"
    );

    let (code, _, stderr) = tollgate(home, &["unwrap", "--client", "cursor"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("restored fastmcp, remote"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        original,
        "byte for byte"
    );
    let (_, _, stderr) = tollgate(home, &["unwrap", "--client", "cursor"]);
    assert!(stderr.contains("is wrapped"), "{stderr}");
    let (_, shown, _) = tollgate(home, &["status"]);
    assert!(shown.starts_with("nothing is wrapped"), "{shown}");
}

#[test]
fn bad_input_is_named_and_leaves_the_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (&["wrap", "--client", "emacs"], None,
         "tollgate: unknown client `emacs` (known: claude-desktop, claude-code, cursor, vscode, windsurf, gemini-cli, codex)\n"),
        (&["wrap", "--client", "windsurf"], None,
         &format!("tollgate: windsurf: no configuration at {} (is windsurf installed for this user? name another file with --config)\n",
                  home.join(".codeium/windsurf/mcp_config.json").display())),
        (&["wrap", "--config", "CONFIG"], Some("{\"mcpServers\": {\"a\": {\"command\": \"x\"},}}"),
         "tollgate: CONFIG: not JSON (trailing comma at line 1 column 39); comments and trailing commas are not JSON, and a file that has them is left for you to edit\n"),
        (&["wrap", "--config", "CONFIG", "--no-scan"], Some("{\"mcpServers\": {\"a\": {\"command\": \"x\"}, \"b\": {\"name\": 1}}}"),
         "tollgate: CONFIG: server `b`: it has neither a `command` nor a URL (`url`, `httpUrl`, `serverUrl`); nothing was changed\n"),
        (&["wrap", "--config", "CONFIG"], Some("{\"mcpServers\": [1]}"),
         "tollgate: CONFIG: `mcpServers` is not an object\n"),
        (&["unwrap", "--config", "CONFIG"], Some("{\"mcpServers\": {\"a\": {\"command\": \"/usr/bin/tollgate\", \"args\": [\"run\"]}}}"),
         "tollgate: CONFIG: cannot restore `a` (not wrapped by this user's tollgate wrap); nothing was changed. Restore them by hand from CONFIG.tollgate-backup, or remove them from the file and run unwrap again\n"),
    ];
    for (args, text, expected) in cases {
        let config = home.join("mcp.json");
        let config_str = config.to_str().unwrap();
        if let Some(text) = text {
            std::fs::write(&config, text).unwrap();
        }
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "CONFIG" { config_str } else { a })
            .collect();
        let (code, _, stderr) = tollgate(home, &args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert_eq!(stderr, expected.replace("CONFIG", config_str), "{args:?}");
        if let Some(text) = text {
            assert_eq!(std::fs::read_to_string(&config).unwrap(), *text, "{args:?}");
        }
    }
}
