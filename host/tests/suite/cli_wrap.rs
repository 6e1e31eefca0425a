//! `tollgate wrap` and `unwrap` on a client's configuration in a home directory of their own:
//! every server put behind Tollgate with a policy, the wrapped entry working with a real SDK
//! client, idempotence, an exact restore, and bad input refused with the file untouched.

use crate::e2e::{drive_with_env, fastmcp1, setup, text, Client};
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

/// TOML as JSON (what the assertions compare).
fn toml_json(item: &toml_edit::Item) -> Value {
    use toml_edit::{Item, Value as T};
    fn value(v: &T) -> Value {
        match v {
            T::String(s) => json!(s.value()),
            T::Integer(i) => json!(i.value()),
            T::Float(f) => json!(f.value()),
            T::Boolean(b) => json!(b.value()),
            T::Datetime(d) => json!(d.value().to_string()),
            T::Array(a) => Value::Array(a.iter().map(value).collect()),
            T::InlineTable(t) => {
                Value::Object(t.iter().map(|(k, v)| (k.to_string(), value(v))).collect())
            }
        }
    }
    fn table<'a>(items: impl Iterator<Item = (&'a str, &'a Item)>) -> Value {
        Value::Object(items.map(|(k, v)| (k.to_string(), toml_json(v))).collect())
    }
    match item {
        Item::None => Value::Null,
        Item::Value(v) => value(v),
        Item::Table(t) => table(t.iter()),
        Item::ArrayOfTables(a) => Value::Array(a.iter().map(|t| table(t.iter())).collect()),
    }
}

/// The servers of a configuration file as a JSON object, whichever syntax it is written in.
fn servers_of(path: &Path, text: &str) -> (Value, Value) {
    let whole: Value = if path.extension().is_some_and(|e| e == "toml") {
        let doc: toml_edit::DocumentMut = text.parse().expect("TOML");
        toml_json(doc.as_item())
    } else {
        serde_json::from_str(text).expect("JSON")
    };
    let key = ["mcpServers", "servers", "mcp_servers"]
        .into_iter()
        .find(|k| whole.get(k).is_some())
        .expect("a servers table");
    let mut rest = whole.clone();
    rest.as_object_mut().unwrap().remove(key);
    (whole[key].clone(), rest)
}

/// Every client's configuration as its documentation writes it (`fixtures/clients/`, each with
/// its source in the README there), at the path the client reads: wrapped, every server starts
/// `tollgate run` (remote ones with `--upstream`) and everything else in the file is kept;
/// wrapping again changes nothing; unwrap restores the file byte for byte.
#[test]
fn every_clients_documented_configuration_round_trips_through_wrap_and_unwrap() {
    let fixtures = crate::e2e::repo().join("host/tests/fixtures/clients");
    for (client, fixture, at) in [
        (
            "claude-desktop",
            "claude-desktop.json",
            ".config/Claude/claude_desktop_config.json",
        ),
        ("claude-code", "claude-code.json", ".claude.json"),
        ("cursor", "cursor.json", ".cursor/mcp.json"),
        ("vscode", "vscode.json", ".config/Code/User/mcp.json"),
        (
            "windsurf",
            "windsurf.json",
            ".codeium/windsurf/mcp_config.json",
        ),
        ("gemini-cli", "gemini-cli.json", ".gemini/settings.json"),
        ("codex", "codex.toml", ".codex/config.toml"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let path = home.join(at);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let original = std::fs::read_to_string(fixtures.join(fixture)).unwrap();
        std::fs::write(&path, &original).unwrap();

        let (code, _, stderr) = tollgate(home, &["wrap", "--client", client, "--no-scan"]);
        assert_eq!(code, 0, "{client}: {stderr}");
        let wrapped = std::fs::read_to_string(&path).unwrap();
        let (before, kept_before) = servers_of(&path, &original);
        let (after, kept_after) = servers_of(&path, &wrapped);
        assert_eq!(
            kept_after, kept_before,
            "{client}: the rest of the file is kept"
        );
        let names = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&after), names(&before), "{client}");
        for (name, entry) in after.as_object().unwrap() {
            let args: Vec<&str> = entry["args"]
                .as_array()
                .unwrap_or_else(|| panic!("{client}/{name} is not wrapped: {entry}"))
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert!(
                entry["command"].as_str().unwrap().ends_with("tollgate") && args[0] == "run",
                "{client}/{name}: {entry}"
            );
            let remote = ["url", "httpUrl", "serverUrl"]
                .iter()
                .find_map(|k| before[name][k].as_str());
            match remote {
                Some(url) => {
                    assert!(
                        args.windows(2).any(|w| w == ["--upstream", url]),
                        "{client}/{name}: {entry}"
                    );
                    let headers = ["headers", "http_headers"]
                        .iter()
                        .filter_map(|k| before[name][k].as_object())
                        .map(|h| h.len())
                        .sum::<usize>();
                    let passed = args.iter().filter(|a| **a == "--upstream-header").count();
                    assert_eq!(passed, headers, "{client}/{name}: its headers go upstream");
                }
                None => assert!(
                    args.ends_with(&[before[name]["command"].as_str().unwrap()])
                        || args.contains(&before[name]["command"].as_str().unwrap()),
                    "{client}/{name}: {entry}"
                ),
            }
            if let Some(env) = before[name].get("env") {
                for (k, v) in env.as_object().unwrap() {
                    assert_eq!(&entry["env"][k], v, "{client}/{name}: its env is kept");
                }
            }
        }

        let (code, _, stderr) = tollgate(home, &["wrap", "--client", client, "--no-scan"]);
        assert_eq!(code, 0, "{client}: {stderr}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            wrapped,
            "{client}: idempotent"
        );
        let (code, _, stderr) = tollgate(home, &["unwrap", "--client", client]);
        assert_eq!(code, 0, "{client}: {stderr}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            original,
            "{client}: restored byte for byte"
        );
    }
}
