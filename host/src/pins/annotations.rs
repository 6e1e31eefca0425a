//! Policy sections that select tools by their annotations (`"@destructive"`, `"@read-only"`,
//! …), read from the reviewed lock file, never from what a server claims at run time.
//!
//! Annotations are hints a server gives about its own tools; the MCP specification says a
//! client must not trust them from a server it does not trust. Pinned, they are what an operator
//! reviewed, and a server that changes them changes its pin. So a policy may select tools by
//! annotation only when it pins the server to a lock file, and the selection is made once, when
//! the policy loads, from the lock file's definitions.
//!
//! Absent hints take the specification's defaults: `readOnlyHint` false, `destructiveHint` true
//! (meaningful only for tools that are not read-only), `idempotentHint` false, `openWorldHint`
//! true. A tool that says nothing is therefore destructive and open-world: a policy that refuses
//! `@destructive` refuses it too.

use serde_json::Value;

/// A selector a policy's `tools:` (or `hide:`) may name instead of a tool name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// `@read-only`: `readOnlyHint` is true.
    ReadOnly,
    /// `@destructive`: not read-only, and `destructiveHint` is true or absent.
    Destructive,
    /// `@idempotent`: `idempotentHint` is true.
    Idempotent,
    /// `@open-world`: `openWorldHint` is true or absent.
    OpenWorld,
    /// `@closed-world`: `openWorldHint` is false.
    ClosedWorld,
}

/// Each selector by the word policies use.
const WORDS: &[(&str, Selector)] = &[
    ("@read-only", Selector::ReadOnly),
    ("@destructive", Selector::Destructive),
    ("@idempotent", Selector::Idempotent),
    ("@open-world", Selector::OpenWorld),
    ("@closed-world", Selector::ClosedWorld),
];

impl Selector {
    /// The selector a pattern names: `None` for a tool name or glob, an error naming the known
    /// selectors for an `@word` that is none of them.
    pub fn parse(pattern: &str) -> Option<Result<Selector, String>> {
        if !pattern.starts_with('@') {
            return None;
        }
        Some(
            WORDS
                .iter()
                .find(|(word, _)| *word == pattern)
                .map(|(_, s)| *s)
                .ok_or_else(|| {
                    let known: Vec<&str> = WORDS.iter().map(|(w, _)| *w).collect();
                    format!(
                        "`{pattern}` is not a tool annotation selector (known: {})",
                        known.join(", ")
                    )
                }),
        )
    }

    /// Whether a tool definition's annotations (absent hints at their defaults) say this.
    pub fn matches(self, tool: &Value) -> bool {
        let hint = |name: &str, default: bool| {
            tool.get("annotations")
                .and_then(|a| a.get(name))
                .and_then(Value::as_bool)
                .unwrap_or(default)
        };
        let read_only = hint("readOnlyHint", false);
        match self {
            Selector::ReadOnly => read_only,
            Selector::Destructive => !read_only && hint("destructiveHint", true),
            Selector::Idempotent => hint("idempotentHint", false),
            Selector::OpenWorld => hint("openWorldHint", true),
            Selector::ClosedWorld => !hint("openWorldHint", true),
        }
    }
}

/// The names of the tools a lock file's reviewed definitions put under `selector`, sorted.
pub fn select(lock: &super::Lock, selector: Selector) -> Vec<String> {
    lock.tools
        .iter()
        .filter(|(name, pinned)| selector.matches(&pinned.definition(name)))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Why a policy that selects tools by annotation is refused when it does not pin the server to
/// a lock file.
pub const NEEDS_LOCK: &str = "selects tools by their annotations, which are only the server's claims unless an operator reviewed them (the MCP specification says not to trust annotations from a server that is not trusted); pin the server with `tollgate pin` and name the lock file with `pins: FILE` (`pins: tofu` trusts whatever a server says first, so it is not enough)";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_hints_take_the_specifications_defaults() {
        let silent = json!({"name": "t"});
        assert!(Selector::Destructive.matches(&silent));
        assert!(Selector::OpenWorld.matches(&silent));
        assert!(!Selector::ReadOnly.matches(&silent));
        assert!(!Selector::ClosedWorld.matches(&silent));
        let reader =
            json!({"name": "r", "annotations": {"readOnlyHint": true, "destructiveHint": true}});
        assert!(Selector::ReadOnly.matches(&reader));
        assert!(
            !Selector::Destructive.matches(&reader),
            "destructiveHint means nothing for a read-only tool"
        );
        let additive =
            json!({"name": "a", "annotations": {"destructiveHint": false, "openWorldHint": false}});
        assert!(!Selector::Destructive.matches(&additive));
        assert!(Selector::ClosedWorld.matches(&additive));
    }

    #[test]
    fn an_unknown_selector_is_refused_naming_the_known_ones() {
        assert_eq!(Selector::parse("send_*"), None);
        assert_eq!(
            Selector::parse("@destructive"),
            Some(Ok(Selector::Destructive))
        );
        assert_eq!(
            Selector::parse("@dangerous"),
            Some(Err("`@dangerous` is not a tool annotation selector (known: @read-only, @destructive, @idempotent, @open-world, @closed-world)".into()))
        );
    }
}
