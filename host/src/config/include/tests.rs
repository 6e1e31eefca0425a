//! Includes: what each kind of file may add, how sections merge, and the mistakes named.

use crate::config::{parse_native, DefaultAction, Policy};
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn labels(p: &Policy, pattern: &str) -> Vec<String> {
    let rules = match pattern {
        "*" => &p.all_tools,
        _ => &p.tools.iter().find(|t| t.pattern == pattern).unwrap().rules,
    };
    rules.iter().map(|r| r.label.clone()).collect()
}

#[test]
fn included_rules_run_first_and_the_operators_default_hide_and_replace_win() {
    let dir = tempfile::tempdir().unwrap();
    write(
            dir.path(),
            "base.yaml",
            "default: deny\nhide: [debug_*]\ntools:\n  send:\n    rules: [{ action: deny, when: [{ path: args.to, op: eq, value: x }] }]\n  drop:\n    rules: [{ action: deny }]\n  \"*\":\n    rules: [{ rate_limit: 10/minute }]\n",
        );
    let own = "include: [base.yaml]\nhide: [admin_*]\ntools:\n  send:\n    rules: [{ rate_limit: 5/minute }]\n  drop:\n    replace: true\n    rules: []\n";
    let p = parse_native(own, dir.path()).unwrap();
    assert_eq!(
        labels(&p, "send"),
        ["base:tools.send.rules[0]", "tools.send.rules[0]"]
    );
    assert!(
        labels(&p, "drop").is_empty(),
        "replace: true drops the included rule"
    );
    assert_eq!(labels(&p, "*"), ["base:tools.*.rules[0]"]);
    assert_eq!(
        p.default,
        DefaultAction::Deny,
        "an include's deny holds when the file says none"
    );
    assert_eq!(p.hide, ["debug_*", "admin_*"]);
    assert_eq!(
        p.included,
        [dir.path().join("base.yaml")],
        "hot reload watches it"
    );
    let send = &p.tools[0].rules;
    assert_eq!(
        send[0].origin.as_deref(),
        Some(format!("file {}", dir.path().join("base.yaml").display()).as_str())
    );
    assert_eq!(send[1].origin, None);
    // Counters of included rules never meet the operator's.
    assert_eq!(p.all_tools[0].config["counter"], "base:*#0");
    let open = parse_native("include: [base.yaml]\ndefault: allow\n", dir.path()).unwrap();
    assert_eq!(
        open.default,
        DefaultAction::Allow,
        "the operator's default wins"
    );
}

#[test]
fn cycles_pins_formats_and_grants_are_refused_naming_the_include() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", "include: [b.yaml]\n");
    write(dir.path(), "b.yaml", "include: [a.yaml]\n");
    let e = parse_native("include: [a.yaml]\n", dir.path()).unwrap_err();
    assert!(e.starts_with("include a.yaml: "), "{e}");
    assert!(e.contains("an include cycle: "), "{e}");
    write(dir.path(), "p1.yaml", "pins: tofu\n");
    write(dir.path(), "p2.yaml", "pins: tofu\n");
    let e = parse_native("include: [p1.yaml, p2.yaml]\n", dir.path()).unwrap_err();
    assert!(e.contains("two included fragments set `pins:`"), "{e}");
    assert!(parse_native("include: [p1.yaml, p2.yaml]\npins: tofu\n", dir.path()).is_err());
    let intercept = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies/compat/intercept-example.yaml"
    );
    std::fs::copy(intercept, dir.path().join("intercept.yaml")).unwrap();
    let e = parse_native("include: [intercept.yaml]\n", dir.path()).unwrap_err();
    assert!(
        e.contains("an included fragment is written in Tollgate's own format"),
        "{e}"
    );
    write(
        dir.path(),
        "g.yaml",
        "plugins:\n  clock: { source: ./c.wasm, grant: [clocks] }\n",
    );
    let e = parse_native("include: [g.yaml]\n", dir.path()).unwrap_err();
    assert!(
        e.contains("plugin `clock`: grants [clocks], which the include does not"),
        "{e}"
    );
    assert!(parse_native(
        "include: [{ source: g.yaml, grant: [clocks] }]\n",
        dir.path()
    )
    .is_ok());
    let e = parse_native(
        "include: [{ source: g.yaml, sha256: \"00\" }]\n",
        dir.path(),
    )
    .unwrap_err();
    assert!(e.contains("the file has sha256 "), "{e}");
    let e = parse_native(
        "include: [{ source: g.yaml, trusted_key: [x] }]\n",
        dir.path(),
    )
    .unwrap_err();
    assert!(e.contains("unknown field `trusted_key`, expected one of `source`, `sha256`, `trusted_keys`, `grant`"), "{e}");
    let e = parse_native("include: [7]\n", dir.path()).unwrap_err();
    assert!(e.contains("an include is a path or reference"), "{e}");
    let e = parse_native("include: [missing.yaml]\n", dir.path()).unwrap_err();
    assert!(e.starts_with("include missing.yaml: cannot read "), "{e}");
}
