//! `policies/tollgate-policy.schema.json` stays in sync with the native policy parser:
//! - every field the parser's structs accept (read from their source, so a field added to the
//!   parser without the schema fails here) is a property of the schema, and nothing else is;
//! - enums match the parser's and the built-in plugins' variants;
//! - every policy in `policies/` validates, and so does a document using every field;
//! - deliberately bad documents are rejected both by the schema and by Tollgate (the parser, or
//!   for plugin configuration, loading the chain).

use crate::e2e::repo;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tollgate::chain::Chain;
use tollgate::config::parse_native;
use tollgate::engine::{CodeCache, EngineConfig, PolicyEngine};
use tollgate::pack::sha256_hex;
use tollgate::state::memory::MemoryStore;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn schema() -> Value {
    serde_json::from_str(&read("policies/tollgate-policy.schema.json")).expect("the schema is JSON")
}

fn validator() -> jsonschema::Validator {
    let schema = schema();
    jsonschema::meta::validate(&schema).expect("the schema is a valid JSON Schema");
    jsonschema::draft202012::new(&schema).expect("the schema compiles")
}

/// A YAML document as the JSON value the schema sees.
fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("test document is YAML: {e}\n{text}"))
}

fn schema_errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

/// The schema node at a JSON pointer.
fn node<'a>(schema: &'a Value, pointer: &str) -> &'a Value {
    schema
        .pointer(pointer)
        .unwrap_or_else(|| panic!("the schema has no {pointer}"))
}

fn property_names(schema: &Value, pointer: &str) -> BTreeSet<String> {
    node(schema, pointer)["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{pointer} has no properties"))
        .keys()
        .cloned()
        .collect()
}

fn enum_values(schema: &Value, pointer: &str) -> BTreeSet<String> {
    node(schema, pointer)["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{pointer} has no enum"))
        .iter()
        .map(|v| v.as_str().expect("string enum").to_string())
        .collect()
}

// --- reading the parser's source -------------------------------------------------------------

/// The body of `struct NAME {…}` / `enum NAME {…}`: the lines up to the closing brace at column 0,
/// with the item's own attribute lines above it.
fn item<'a>(src: &'a str, kind: &str, name: &str) -> (Vec<&'a str>, Vec<&'a str>) {
    let lines: Vec<&str> = src.lines().collect();
    let start = lines
        .iter()
        .position(|l| {
            let l = l
                .trim_start_matches("pub(super) ")
                .trim_start_matches("pub ");
            l.starts_with(&format!("{kind} {name} {{"))
        })
        .unwrap_or_else(|| panic!("no `{kind} {name}` in the source"));
    let attrs = lines[..start]
        .iter()
        .rev()
        .take_while(|l| l.starts_with("#[") || l.starts_with("///"))
        .copied()
        .collect();
    let end = start
        + lines[start..]
            .iter()
            .position(|l| *l == "}")
            .expect("item closes at column 0");
    (attrs, lines[start + 1..end].to_vec())
}

/// Names of every `struct`/`enum` KIND item in the source.
fn items(src: &str, kind: &str) -> BTreeSet<String> {
    src.lines()
        .filter_map(|l| {
            l.trim_start_matches("pub(super) ")
                .trim_start_matches("pub ")
                .strip_prefix(&format!("{kind} "))
        })
        .map(|rest| rest.split([' ', '{', '<', '(']).next().unwrap().to_string())
        .collect()
}

/// The first `"…"` string after `key = ` in an attribute line.
fn attr_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(&format!("{key} = \""))? + key.len() + 4..];
    Some(&rest[..rest.find('"')?])
}

/// The field names (and aliases) a serde struct accepts.
fn struct_fields(src: &str, name: &str) -> BTreeSet<String> {
    let (attrs, body) = item(src, "struct", name);
    assert!(
        !attrs
            .iter()
            .any(|a| a.contains("rename_all") || a.contains("flatten")),
        "struct {name} renames or flattens fields; teach tests/schema.rs how"
    );
    let mut fields = BTreeSet::new();
    let mut rename = None;
    for line in body.iter().map(|l| l.trim()) {
        if line.starts_with("#[serde(") {
            if let Some(alias) = attr_value(line, "alias") {
                fields.insert(alias.to_string());
            }
            rename = attr_value(line, "rename").or(rename);
            assert!(!line.contains("flatten"), "struct {name} flattens a field");
            continue;
        }
        let decl = line
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ");
        if let Some((ident, _)) = decl.split_once(':') {
            if !ident.is_empty()
                && ident
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                fields.insert(rename.take().unwrap_or(ident).to_string());
            }
        }
    }
    assert!(!fields.is_empty(), "found no fields in struct {name}");
    fields
}

/// The variant names a serde enum accepts, after its `rename_all`.
fn enum_variants(src: &str, name: &str) -> BTreeSet<String> {
    let (attrs, body) = item(src, "enum", name);
    let rule = attrs
        .iter()
        .find_map(|a| attr_value(a, "rename_all"))
        .unwrap_or_else(|| panic!("enum {name} has no rename_all; teach tests/schema.rs how"));
    let variants: BTreeSet<String> = body
        .iter()
        .map(|l| l.trim().trim_end_matches(','))
        .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric()))
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|v| {
            let words: Vec<String> = v.chars().fold(Vec::<String>::new(), |mut words, c| {
                if c.is_ascii_uppercase() || words.is_empty() {
                    words.push(String::new());
                }
                words.last_mut().unwrap().push(c.to_ascii_lowercase());
                words
            });
            match rule {
                "lowercase" => words.concat(),
                "kebab-case" => words.join("-"),
                "snake_case" => words.join("_"),
                other => panic!("enum {name}: rename_all = {other:?}; teach tests/schema.rs"),
            }
        })
        .collect();
    assert!(!variants.is_empty(), "found no variants in enum {name}");
    variants
}

/// The quoted keys on the left of the match arms in `fn NAME` (the rate-limit object's keys).
fn match_keys(src: &str, function: &str) -> BTreeSet<String> {
    let start = src
        .find(&format!("fn {function}("))
        .unwrap_or_else(|| panic!("no fn {function}"));
    let body = &src[start..start + src[start..].find("\n}\n").expect("fn ends")];
    body.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('"'))
        .filter_map(|l| l.split_once("=>"))
        .flat_map(|(keys, _)| keys.split('|'))
        .map(|k| k.trim().trim_matches('"').to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Field names by parser struct: what this test knows, what the source says and what the schema
/// says must all agree. A new struct, field or variant in the parser fails here until the schema
/// (and this list) have it.
#[test]
fn every_parser_field_and_enum_is_in_the_schema_and_nothing_else() {
    let schema = schema();
    // The native parser: the file's shape (native.rs) and a rule's (native/rule.rs), read as one
    // source below (the messages say native.rs for both).
    let native = read("host/src/config/native.rs") + &read("host/src/config/native/rule.rs");
    // (struct in native.rs, where its object is in the schema, the fields it has)
    let structs: &[(&str, &str, &[&str])] = &[
        (
            "File",
            "",
            &[
                "version",
                "description",
                "include",
                "default",
                "hide",
                "limits",
                "plugins",
                "tools",
                "pins",
            ],
        ),
        (
            "PinsFile",
            "/$defs/pins",
            &["file", "on_change", "on_new", "unlisted_calls"],
        ),
        (
            "LimitsFile",
            "/$defs/limits",
            &["deadline_ms", "memory_mib", "fuel"],
        ),
        (
            "PluginFile",
            "/$defs/plugin",
            &[
                "source",
                "sha256",
                "component",
                "trusted_keys",
                "grant",
                "config",
                "limits",
            ],
        ),
        ("ToolFile", "/$defs/tool", &["replace", "rules"]),
        (
            "RuleFile",
            "/$defs/rule",
            &[
                "name",
                "action",
                "reason",
                "message",
                "timeout",
                "channels",
                "wait",
                "code",
                "when",
                "conditions",
                "rate_limit",
                "validate",
                "redact",
                "plugin",
                "config",
                "deny_as",
                "refund_on_error_result",
                "limits",
                "dry_run",
            ],
        ),
    ];
    let known: BTreeSet<String> = structs.iter().map(|(s, _, _)| s.to_string()).collect();
    assert_eq!(
        items(&native, "struct"),
        known,
        "native.rs has a struct this test does not map to the schema"
    );
    for (name, pointer, fields) in structs {
        let expected = set(fields);
        assert_eq!(
            struct_fields(&native, name),
            expected,
            "native.rs `struct {name}` fields changed: update the schema at `{pointer}` and this list"
        );
        assert_eq!(
            property_names(&schema, pointer),
            expected,
            "schema `{pointer}` properties differ from native.rs `struct {name}`"
        );
    }
    // The long form of an include is parsed in include.rs.
    let include = read("host/src/config/include.rs");
    let fields = set(&["source", "sha256", "trusted_keys", "grant"]);
    assert_eq!(struct_fields(&include, "IncludeEntry"), fields);
    assert_eq!(
        property_names(&schema, "/properties/include/items/oneOf/1"),
        fields
    );

    let enums: &[(&str, &str, &[&str])] = &[
        ("DefaultWord", "/properties/default", &["allow", "deny"]),
        (
            "ActionWord",
            "/$defs/rule/properties/action",
            &["allow", "deny", "ask"],
        ),
        (
            "DenyAsWord",
            "/$defs/rule/properties/deny_as",
            &["result", "error"],
        ),
        (
            "MismatchWord",
            "/$defs/pins/properties/on_change",
            &["hide", "deny", "warn"],
        ),
        (
            "UnlistedWord",
            "/$defs/pins/properties/unlisted_calls",
            &["deny", "allow"],
        ),
    ];
    let known: BTreeSet<String> = enums.iter().map(|(e, _, _)| e.to_string()).collect();
    assert_eq!(
        items(&native, "enum"),
        known,
        "native.rs has an enum this test does not map"
    );
    for (name, pointer, variants) in enums {
        assert_eq!(
            enum_variants(&native, name),
            set(variants),
            "native.rs `enum {name}`"
        );
        assert_eq!(
            enum_values(&schema, pointer),
            set(variants),
            "schema `{pointer}`"
        );
    }

    // The rate-limit object's keys are matched by hand in native.rs.
    let rate = set(&[
        "max",
        "window",
        "scope",
        "algorithm",
        "counter",
        "cost",
        "cost_from",
        "fail_mode",
    ]);
    assert_eq!(
        match_keys(&native, "rate_limit_config"),
        rate,
        "native.rs rate_limit keys"
    );
    assert_eq!(property_names(&schema, "/$defs/rate_limit"), rate);

    // What native.rs passes through to the built-in plugins, as the plugins parse it.
    let validate = read("plugins/validate/src/lib.rs");
    let expected = set(&["schema", "require", "message"]);
    assert_eq!(
        struct_fields(&validate, "Config"),
        expected,
        "validate plugin Config"
    );
    assert_eq!(property_names(&schema, "/$defs/validate"), expected);

    let conditions = read("guest-sdk/src/conditions.rs");
    let expected = set(&["path", "op", "value"]);
    assert_eq!(
        struct_fields(&conditions, "ConditionSpec"),
        expected,
        "ConditionSpec"
    );
    assert_eq!(property_names(&schema, "/$defs/condition"), expected);
    let ops_line = conditions
        .lines()
        .find(|l| l.contains("unknown operator"))
        .and_then(|l| l.split_once("expected one of ").map(|(_, rest)| rest))
        .expect("the unknown-operator message lists the operators");
    let ops: BTreeSet<String> = ops_line
        .trim_end_matches('"')
        .split(", ")
        .map(str::to_string)
        .collect();
    assert_eq!(ops.len(), 11, "{ops:?}");
    assert_eq!(enum_values(&schema, "/$defs/condition/properties/op"), ops);

    let counters = read("guest-sdk/src/counters.rs");
    assert_eq!(
        enum_values(&schema, "/$defs/rate_limit/properties/algorithm"),
        enum_variants(&counters, "Algorithm")
    );
    let rate_limit = read("plugins/rate-limit/src/lib.rs");
    assert_eq!(
        enum_values(&schema, "/$defs/rate_limit/properties/fail_mode"),
        enum_variants(&rate_limit, "FailMode")
    );
}

/// Editors show descriptions: every property and every definition has one.
#[test]
fn every_property_has_a_description() {
    fn walk(v: &Value, at: &str, missing: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for key in ["properties", "$defs"] {
                    if let Some(Value::Object(children)) = map.get(key) {
                        for (name, child) in children {
                            if child["description"].as_str().is_none_or(|d| d.len() <= 3) {
                                missing.push(format!("{at}/{key}/{name}"));
                            }
                        }
                    }
                }
                for (k, child) in map {
                    walk(child, &format!("{at}/{k}"), missing);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{at}/{i}"), missing);
                }
            }
            _ => {}
        }
    }
    let mut missing = Vec::new();
    walk(&schema(), "", &mut missing);
    // Inside `if`/`then`/`not` clauses `properties` are constraints, not documentation.
    missing.retain(|m| {
        !m.contains("/if/")
            && !m.contains("/then/")
            && !m.contains("/not/")
            && !m.contains("/anyOf/")
            && !m.contains("/dependentSchemas/")
    });
    assert!(
        missing.is_empty(),
        "properties without a description: {missing:#?}"
    );
}

#[test]
fn every_shipped_policy_validates() {
    let v = validator();
    let mut seen = 0;
    let catalog = std::fs::read_dir(repo().join("policies/catalog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.join("policy.yaml"));
    let top = std::fs::read_dir(repo().join("policies"))
        .unwrap()
        .map(|e| e.unwrap().path());
    for path in top.chain(catalog) {
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        parse_native(&text, path.parent().unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let errors = schema_errors(&v, &yaml(&text));
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        seen += 1;
    }
    assert!(seen >= 13, "found only {seen} policies");
    let text = read("policies/demo.yaml");
    assert!(
        text.starts_with("# yaml-language-server: $schema=./tollgate-policy.schema.json\n"),
        "policies/demo.yaml points editors at the schema on its first line"
    );
    let text = read("policies/catalog/twilio/policy.yaml");
    assert!(
        text.starts_with("# yaml-language-server: $schema=../../tollgate-policy.schema.json\n"),
        "a catalog pack's policy points editors at the schema on its first line"
    );
}

/// Every field in use at once: the schema must not be stricter than the parser.
#[test]
fn a_document_using_every_field_is_accepted_by_both() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("common.yaml"),
        "version: 1\nhide: [debug_*]\n",
    )
    .unwrap();
    let doc = r#"
version: "1"
description: every field
include:
  - ./common.yaml
  - { source: ./common.yaml, sha256: "0e3f6c3bfa1ac5a1e3e32f6d4f0e8ee1a8e0e2cbbb1d7d0bd0d6ad9fc6b5b1f2" }
default: deny
hide: ["secret_*"]
limits: { deadline_ms: 50, memory_mib: 32, fuel: 1000000 }
plugins:
  mine:
    source: ./mine.wasm
    sha256: "0000000000000000000000000000000000000000000000000000000000000000"
    config: { anything: [1, 2] }
    limits: { deadline_ms: 20 }
tools:
  send:
    rules:
      - name: valid-send
        validate:
          schema: { type: object, required: [to] }
          require: [{ path: args.amount, op: lte, value: 100 }, { path: to, op: exists }]
          message: bad arguments
        reason: "check the arguments"
      - action: deny
        reason: no premium
        code: premium
        conditions: [{ path: args.to, op: regex, value: "^\\+1900" }]
        deny_as: error
      - action: deny
        when: [{ path: args.tags, op: contains, value: spam }, { path: args.kind, op: in, value: [a, b] }]
      - action: allow
        rate_limit: { max: 3, window: minute, scope: args.to, algorithm: token-bucket, counter: sms, cost: 2, cost_from: args.n, fail_mode: open }
        refund_on_error_result: false
        reason: slow down
      - rate_limit: "30 / minutes"
        limits: { fuel: 10 }
      - plugin: mine
        config: { other: true }
        code: mine
      - action: allow
  send_later:
    replace: true
    rules: []
  "*":
    rules: []
"#;
    let sha = sha256_hex(b"version: 1\nhide: [debug_*]\n");
    let doc = doc.replace(
        "0e3f6c3bfa1ac5a1e3e32f6d4f0e8ee1a8e0e2cbbb1d7d0bd0d6ad9fc6b5b1f2",
        &sha,
    );
    let doc = doc.as_str();
    parse_native(doc, dir.path()).expect("the parser accepts every field");
    let errors = schema_errors(&validator(), &yaml(doc));
    assert!(errors.is_empty(), "{errors:#?}");
}

/// Where Tollgate rejects a bad document.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    /// `parse_native` refuses it.
    Parse,
    /// It parses, but loading the chain (configuring the built-in plugins) fails.
    Load,
}

const BAD: &[(&str, Stage, &str)] = &[
    ("unknown top-level key", Stage::Parse, "version: 1\nrulez: []\n"),
    ("unknown key in limits", Stage::Parse, "version: 1\nlimits: { deadline: 50 }\n"),
    (
        "unknown key in a plugin",
        Stage::Parse,
        "version: 1\nplugins:\n  x: { source: x.wasm, sha: abc }\n",
    ),
    ("plugin without source", Stage::Parse, "version: 1\nplugins:\n  x: { config: {} }\n"),
    ("unknown key in a tool", Stage::Parse, "version: 1\ntools:\n  x: { rulez: [] }\n"),
    (
        "unknown key in a rule",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ action: deny, reasons: no }]\n",
    ),
    (
        "unknown key in a rule's limits",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ action: deny, limits: { memory: 4 } }]\n",
    ),
    (
        "unknown key in a rate limit",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ rate_limit: { max: 3, window: 60, burst: 5 } }]\n",
    ),
    (
        "rate limit without window",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ rate_limit: { max: 3 } }]\n",
    ),
    (
        "rate with an unknown unit",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ rate_limit: 3/fortnight }]\n",
    ),
    (
        "window of zero seconds",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ rate_limit: { max: 3, window: 0 } }]\n",
    ),
    ("bad default", Stage::Parse, "version: 1\ndefault: block\n"),
    (
        "bad action",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ action: refuse }]\n",
    ),
    (
        "bad deny_as",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ action: deny, deny_as: exception }]\n",
    ),
    ("version 2", Stage::Parse, "version: 2\n"),
    ("version as a list", Stage::Parse, "version: [1]\n"),
    (
        "two things in one rule",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ action: deny, rate_limit: 1/minute }]\n",
    ),
    (
        "conditions on a rule that does not deny",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ action: allow, when: [{ path: a, op: exists }] }]\n",
    ),
    (
        "config without plugin",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ validate: { schema: {} }, config: {} }]\n",
    ),
    (
        "a reason on a rule that cannot deny",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ action: allow, reason: why }]\n",
    ),
    (
        "both when and conditions",
        Stage::Parse,
        "version: 1\ntools:\n  x:\n    rules: [{ action: deny, when: [], conditions: [] }]\n",
    ),
    (
        "hide is not a list",
        Stage::Parse,
        "version: 1\nhide: delete_*\n",
    ),
    (
        "unknown key in validate",
        Stage::Load,
        "version: 1\ntools:\n  x:\n    rules: [{ validate: { schema: { type: object }, required: [a] } }]\n",
    ),
    (
        "validate with nothing to check",
        Stage::Load,
        "version: 1\ntools:\n  x:\n    rules: [{ validate: {} }]\n",
    ),
    (
        "unknown key in a condition",
        Stage::Load,
        "version: 1\ntools:\n  x:\n    rules: [{ action: deny, when: [{ path: a, op: eq, value: 1, extra: 2 }] }]\n",
    ),
    (
        "bad condition operator",
        Stage::Load,
        "version: 1\ntools:\n  x:\n    rules: [{ action: deny, when: [{ path: a, op: equals, value: 1 }] }]\n",
    ),
    (
        "regex that is not a string",
        Stage::Load,
        "version: 1\ntools:\n  x:\n    rules: [{ action: deny, when: [{ path: a, op: regex, value: 5 }] }]\n",
    ),
    (
        "in without a list",
        Stage::Load,
        "version: 1\ntools:\n  x:\n    rules: [{ validate: { require: [{ path: a, op: in, value: 5 }] } }]\n",
    ),
    (
        "bad algorithm",
        Stage::Load,
        "version: 1\ntools:\n  x:\n    rules: [{ rate_limit: { max: 3, window: 60, algorithm: leaky-bucket } }]\n",
    ),
    (
        "bad fail_mode",
        Stage::Load,
        "version: 1\ntools:\n  x:\n    rules: [{ rate_limit: { max: 3, window: 60, fail_mode: maybe } }]\n",
    ),
    (
        "bad scope",
        Stage::Load,
        "version: 1\ntools:\n  x:\n    rules: [{ rate_limit: { max: 3, window: 60, scope: everyone } }]\n",
    ),
];

#[tokio::test]
async fn bad_documents_are_rejected_by_the_schema_and_by_tollgate() {
    let v = validator();
    let engine = PolicyEngine::new(EngineConfig {
        cache: Some(CodeCache::new(
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("code-cache"),
        )),
        ..EngineConfig::default()
    })
    .unwrap();
    let mut failures = Vec::new();
    for (what, stage, doc) in BAD {
        if v.is_valid(&yaml(doc)) {
            failures.push(format!("{what}: the schema accepts it"));
        }
        let rejected_at = match parse_native(doc, Path::new("/policies")) {
            Err(_) => Some(Stage::Parse),
            Ok(policy) => Chain::load(&policy, &engine, Arc::new(MemoryStore::new()), "t")
                .await
                .err()
                .map(|_| Stage::Load),
        };
        if rejected_at != Some(*stage) {
            failures.push(format!(
                "{what}: Tollgate rejects it at {rejected_at:?}, expected {stage:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The pack manifest schema (policies/tollgate-pack.schema.json) accepts every manifest this
/// repository ships (the examples and the `pack new` template), names exactly the fields the
/// parser accepts, and refuses what the parser refuses.
#[test]
fn pack_manifest_schema_matches_the_parser() {
    let schema: Value = serde_json::from_str(&read("policies/tollgate-pack.schema.json")).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let mut manifests: Vec<String> = std::fs::read_dir(repo().join("examples/plugins"))
        .unwrap()
        .map(|e| e.unwrap().path().join("tollgate-pack.json"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    manifests.push(read("host/templates/common/tollgate-pack.json").replace("__NAME__", "x"));
    manifests.push(read("host/templates/policy/tollgate-pack.json").replace("__NAME__", "x"));
    let catalog = std::fs::read_dir(repo().join("policies/catalog")).unwrap();
    manifests.extend(
        catalog
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .map(|p| std::fs::read_to_string(p.join("tollgate-pack.json")).unwrap()),
    );
    assert!(manifests.len() >= 6 + 13, "{}", manifests.len());
    for m in &manifests {
        let doc: Value = serde_json::from_str(m).unwrap();
        assert!(
            schema_errors(&v, &doc).is_empty(),
            "{:?}\n{m}",
            schema_errors(&v, &doc)
        );
        tollgate::pack::manifest::Manifest::parse(m.as_bytes(), false).unwrap();
    }
    let src = read("host/src/pack/manifest.rs");
    assert_eq!(
        struct_fields(&src, "Manifest"),
        property_names(&schema, ""),
        "Manifest fields vs schema"
    );
    assert_eq!(
        struct_fields(&src, "ComponentEntry"),
        property_names(&schema, "/properties/components/items"),
        "ComponentEntry fields vs schema"
    );
    assert_eq!(
        struct_fields(&src, "FileEntry"),
        property_names(&schema, "/$defs/file"),
        "FileEntry fields vs schema"
    );
    let neither = r#"{"name": "x", "version": "1.0.0"}"#;
    let doc: Value = serde_json::from_str(neither).unwrap();
    assert!(!schema_errors(&v, &doc).is_empty(), "{neither}");
    assert!(tollgate::pack::manifest::Manifest::parse(neither.as_bytes(), false).is_err());
    let escaping = manifests[0].replacen("\"file\": \"", "\"file\": \"../", 1);
    let doc: Value = serde_json::from_str(&escaping).unwrap();
    assert!(!schema_errors(&v, &doc).is_empty(), "{escaping}");
    assert!(tollgate::pack::manifest::Manifest::parse(escaping.as_bytes(), false).is_err());
}
