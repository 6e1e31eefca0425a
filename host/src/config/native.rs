//! Tollgate's native policy format (YAML or JSON), a superset of the form in the product's
//! seed documents:
//!
//! ```yaml
//! version: 1
//! default: allow
//! hide: ["delete_*"]
//! tools:
//!   send_message:
//!     rules:
//!       - action: allow
//!         rate_limit: { max: 30, window: 60 }   # or "30/minute"
//!   "*":
//!     rules: []
//! ```

mod rule;

use super::include::{self, Fragment, IncludeFile, Origin, Section};
use super::{DefaultAction, Format, LimitSpec, PluginSource, Policy, ToolRules};
use crate::engine::Capability;
use crate::pack::registry::{self, Cache, OciRef};
use crate::pins::annotations::{Selector, NEEDS_LOCK};
use crate::pins::{Baseline, OnMismatch, PinPolicy};
use indexmap::IndexMap;
use rule::{compile_rule, RuleFile};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Optional: the short form the product pages show has none.
    #[serde(default)]
    version: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    /// Fragments taken in before this file's own rules (see [`include`]).
    #[serde(default)]
    include: Vec<IncludeFile>,
    #[serde(default)]
    default: Option<DefaultWord>,
    #[serde(default)]
    hide: Vec<String>,
    #[serde(default)]
    limits: Option<LimitsFile>,
    #[serde(default)]
    plugins: BTreeMap<String, PluginFile>,
    #[serde(default)]
    tools: IndexMap<String, ToolFile>,
    /// A lock file, or `{file, on_change, on_new, unlisted_calls}`.
    #[serde(default)]
    pins: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinsFile {
    file: String,
    #[serde(default)]
    on_change: Option<MismatchWord>,
    #[serde(default)]
    on_new: Option<MismatchWord>,
    #[serde(default)]
    unlisted_calls: Option<UnlistedWord>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum MismatchWord {
    Hide,
    Deny,
    Warn,
}

impl From<MismatchWord> for OnMismatch {
    fn from(w: MismatchWord) -> Self {
        match w {
            MismatchWord::Hide => OnMismatch::Hide,
            MismatchWord::Deny => OnMismatch::Deny,
            MismatchWord::Warn => OnMismatch::Warn,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum UnlistedWord {
    Deny,
    Allow,
}

/// `pins:` as the file says it -> the policy's pinning (the lock file relative to the policy, or
/// `tofu`: trust on first use).
fn pin_policy(pins: &Value, base: &Path) -> Result<PinPolicy, String> {
    let file: PinsFile = match pins {
        Value::String(s) => PinsFile {
            file: s.clone(),
            on_change: None,
            on_new: None,
            unlisted_calls: None,
        },
        other => serde_json::from_value(other.clone()).map_err(|e| format!("pins: {e}"))?,
    };
    Ok(PinPolicy {
        baseline: match file.file.as_str() {
            "tofu" => Baseline::FirstUse,
            path => Baseline::File(base.join(path)),
        },
        on_change: file.on_change.map_or(OnMismatch::Hide, Into::into),
        on_new: file.on_new.map_or(OnMismatch::Hide, Into::into),
        refuse_unlisted: file.unlisted_calls != Some(UnlistedWord::Allow),
    })
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum DefaultWord {
    Allow,
    Deny,
}

#[derive(Debug, Deserialize, Clone, Copy, Default)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    deadline_ms: Option<u64>,
    memory_mib: Option<u64>,
    fuel: Option<u64>,
}

impl From<LimitsFile> for LimitSpec {
    fn from(l: LimitsFile) -> Self {
        LimitSpec {
            deadline_ms: l.deadline_ms,
            memory_mib: l.memory_mib,
            fuel: l.fuel,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginFile {
    source: String,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    component: Option<String>,
    #[serde(default)]
    trusted_keys: Vec<String>,
    #[serde(default)]
    grant: Vec<String>,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    limits: Option<LimitsFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolFile {
    /// Drop the rules included files give this pattern; keep only this file's.
    #[serde(default)]
    replace: bool,
    #[serde(default)]
    rules: Vec<RuleFile>,
}

/// Parse a native policy document. `base` resolves relative plugin paths and includes. Errors
/// carry the line and column where the parser knows them.
pub fn parse_native(text: &str, base: &Path) -> Result<Policy, String> {
    let fragment = compose(text, &Origin::operator(base))?;
    let mut tools = Vec::new();
    let mut all_tools = Vec::new();
    for (pattern, section) in fragment.sections {
        if pattern == "*" {
            all_tools = section.rules;
        } else {
            tools.push(ToolRules {
                pattern,
                rules: section.rules,
            });
        }
    }
    Ok(Policy {
        format: Format::Native,
        default: fragment.default.unwrap_or(DefaultAction::Allow),
        hide: fragment.hide,
        tools,
        all_tools,
        pins: fragment.pins,
        included: fragment.files,
    })
}

/// One file from `origin`: its includes, in order, then its own rules.
pub(super) fn compose(text: &str, origin: &Origin) -> Result<Fragment, String> {
    let file: File = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    match &file.version {
        None => {}
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(Value::String(s)) if s == "1" => {}
        Some(other) => {
            return Err(format!(
                "unsupported policy version {other}: this Tollgate reads version 1"
            ))
        }
    }
    let base = origin.dir.as_path();
    let pins = file
        .pins
        .as_ref()
        .map(|p| pin_policy(p, base))
        .transpose()?;
    let locked = matches!(&pins, Some(p) if matches!(p.baseline, Baseline::File(_)));
    let selectors = file.tools.keys().map(|k| ("tools", k));
    for (section, pattern) in selectors.chain(file.hide.iter().map(|h| ("hide", h))) {
        match Selector::parse(pattern) {
            Some(Err(e)) => return Err(format!("{section}: {e}")),
            Some(Ok(_)) if !locked => {
                return Err(format!("{section}: `{pattern}` {NEEDS_LOCK}"));
            }
            _ => {}
        }
    }
    let mut merged = Fragment::default();
    for entry in file.include {
        let included = include::load(entry, origin)?;
        merged.absorb(
            included,
            false,
            origin.shown.as_deref().unwrap_or("this file"),
        )?;
    }
    let defaults: LimitSpec = file.limits.unwrap_or_default().into();
    let plugins = plugin_sources(&file.plugins, origin)?;
    let mut own = Fragment {
        default: file.default.map(|d| match d {
            DefaultWord::Deny => DefaultAction::Deny,
            DefaultWord::Allow => DefaultAction::Allow,
        }),
        hide: file.hide,
        sections: Default::default(),
        pins,
        files: Vec::new(),
    };
    for (pattern, tool) in &file.tools {
        let rules = tool
            .rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let label = match &r.name {
                    Some(name) => format!("{}{name}", origin.prefix),
                    None => format!("{}tools.{pattern}.rules[{i}]", origin.prefix),
                };
                compile_rule(r, &label, pattern, i, &plugins, defaults, origin).transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        own.sections.insert(
            pattern.clone(),
            Section {
                replace: tool.replace,
                rules,
            },
        );
    }
    merged.absorb(own, true, "this file")?;
    Ok(merged)
}

/// The file's `plugins:` with each source resolved: a path against the file's folder (`.` in a
/// pack's fragment is the pack itself), or an `oci://` reference fetched into the cache. A
/// fragment's plugins must be trusted as its include requires and may use only what it grants.
fn plugin_sources<'f>(
    plugins: &'f BTreeMap<String, PluginFile>,
    origin: &Origin,
) -> Result<BTreeMap<String, (PluginSource, &'f PluginFile)>, String> {
    let mut out = BTreeMap::new();
    for (name, p) in plugins {
        let at = |msg: String| format!("plugin `{name}`: {msg}");
        let grants: Vec<Capability> = p
            .grant
            .iter()
            .map(|g| g.parse())
            .collect::<Result<_, crate::engine::capabilities::UnknownCapability>>()
            .map_err(|e| at(e.to_string()))?;
        if let Some(allowed) = &origin.grants {
            let beyond: Vec<&str> = grants
                .iter()
                .filter(|g| !allowed.contains(g))
                .map(|g| g.name())
                .collect();
            if !beyond.is_empty() {
                return Err(at(format!(
                    "grants [{}], which the include does not; add `grant: [{}]` to the include if you trust the pack with them",
                    beyond.join(", "),
                    beyond.join(", ")
                )));
            }
        }
        let path = if OciRef::is_oci(&p.source) {
            let r = OciRef::parse(&p.source).map_err(|e| at(e.to_string()))?;
            registry::fetch(&r, &Cache::default_location())
                .map_err(|e| at(e.to_string()))?
                .archive
        } else {
            origin.dir.join(&p.source)
        };
        let mut trusted_keys = p.trusted_keys.clone();
        trusted_keys.extend(origin.trusted_keys.iter().cloned());
        let source = PluginSource::File {
            path,
            sha256: p.sha256.clone(),
            component: p.component.clone(),
            trusted_keys,
            grants,
        };
        out.insert(name.clone(), (source, p));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DenyAs;
    use serde_json::json;

    fn parse(text: &str) -> Result<Policy, String> {
        parse_native(text, Path::new("/policies"))
    }

    #[test]
    fn the_seed_form_compiles_to_a_rate_limit_plugin() {
        let p = parse("version: 1\ntools:\n  send_conversation_message:\n    rules:\n      - action: allow\n        rate_limit: { max: 30, window: 60 }\n").unwrap();
        let rule = &p.tools[0].rules[0];
        assert_eq!(rule.plugin, "rate-limit");
        assert_eq!(
            rule.config,
            json!({"counter": "send_conversation_message#0", "max": 30, "window_ms": 60000})
        );
        assert_eq!(rule.label, "tools.send_conversation_message.rules[0]");
    }

    #[test]
    fn deny_validate_and_star_rules_compile_in_order() {
        let p = parse(
            r#"
version: 1
default: deny
hide: ["delete_*"]
tools:
  create:
    rules:
      - validate: { schema: { type: object, required: [name] } }
      - action: deny
        reason: no admins
        when: [{path: args.role, op: eq, value: admin}]
        deny_as: error
  "*":
    rules:
      - rate_limit: "100/hour"
"#,
        )
        .unwrap();
        assert_eq!(p.default, DefaultAction::Deny);
        assert_eq!(p.hide, vec!["delete_*"]);
        let rules = &p.tools[0].rules;
        assert_eq!(
            (rules[0].plugin.as_str(), rules[1].plugin.as_str()),
            ("validate", "deny")
        );
        assert_eq!(rules[1].deny_as, DenyAs::Error);
        assert_eq!(rules[1].config["when"][0]["op"], "eq");
        assert_eq!(p.all_tools[0].config["window_ms"], 3_600_000);
    }

    #[test]
    fn mistakes_are_reported_with_where_and_what() {
        let unknown = parse("version: 1\ntools:\n  x:\n    rulez: []\n").unwrap_err();
        assert!(
            unknown.starts_with(
                "tools.x: unknown field `rulez`, expected `replace` or `rules` at line 4 column 5"
            ),
            "{unknown}"
        );
        let ask = |extra: &str| {
            parse(&format!("version: 1\ntools:\n  x:\n    rules:\n      - action: ask\n        message: ok?\n{extra}"))
        };
        assert_eq!(
            ask("        wait: true\n").unwrap().tools[0].rules[0].ask_wait_ms,
            25_000
        );
        assert_eq!(ask("        wait: 90\n").unwrap_err(), "rule tools.x.rules[0]: wait: 90 seconds is not allowed: at most 50 (clients give up on a call after about 60 s), or true for 25 s");
        assert_eq!(
            ask("        channels: [operator, pager]\n").unwrap_err(),
            "rule tools.x.rules[0]: unknown approval channel `pager`; expected client or operator"
        );
        assert_eq!(ask("        code: nope\n").unwrap_err(), "rule tools.x.rules[0]: an `action: ask` rule has no `code`: its answers have codes of their own (approval_pending, approval_denied, approval_expired)");
        assert!(parse("version: 1\ntools:\n  x:\n    rules:\n      - action: deny\n        reason: no\n        wait: 5\n").unwrap_err().contains("`timeout`, `channels` and `wait` belong to a rule that can ask"));
        let both = parse("version: 1\ntools:\n  x:\n    rules:\n      - action: deny\n        rate_limit: 1/minute\n").unwrap_err();
        assert_eq!(both, "rule tools.x.rules[0]: a rule does one thing, but this one has action: deny and rate_limit; split it into several rules");
        let window =
            parse("version: 1\ntools:\n  x:\n    rules:\n      - rate_limit: 3/fortnight\n")
                .unwrap_err();
        assert!(
            window.starts_with("rule tools.x.rules[0]: invalid rate `3/fortnight`"),
            "{window}"
        );
        let plugin =
            parse("version: 1\ntools:\n  x:\n    rules:\n      - plugin: nope\n").unwrap_err();
        assert!(
            plugin.contains("plugin `nope` is not defined under `plugins:`"),
            "{plugin}"
        );
        assert!(parse("version: 2\n")
            .unwrap_err()
            .starts_with("unsupported policy version 2"));
    }
}
