//! Messages that quote a call's arguments: `Transfer {args.amount} to {args.to}?` becomes
//! `Transfer 250 to ACME?`. A placeholder is a dotted path in braces, with an optional `args.`
//! prefix (as in [conditions](crate::conditions)); `{tool}` is the tool's name. Strings are
//! quoted as they are, other values as JSON, an absent argument as `(none)`. `{{` and `}}` are
//! literal braces.

use crate::call::{lookup, Call};
use serde_json::Value;

/// The longest quoted value; longer ones are cut and end with `…`, so an argument cannot drown
/// the question a person is asked.
pub const MAX_QUOTED_CHARS: usize = 200;

/// `template` with its placeholders filled from `call`.
pub fn fill(template: &str, call: &Call) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        match (tail.starts_with('{'), tail.find('}')) {
            (true, Some(end)) => {
                out.push_str(&quote(&tail[1..end], call));
                rest = &tail[end + 1..];
            }
            _ => {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn quote(placeholder: &str, call: &Call) -> String {
    let placeholder = placeholder.trim();
    if placeholder == "tool" {
        return call.tool().to_string();
    }
    let path = placeholder.strip_prefix("args").unwrap_or(placeholder);
    let path = path.strip_prefix('.').unwrap_or(path);
    let text = match lookup(call.arguments(), path) {
        None | Some(Value::Null) => return "(none)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_quote_arguments_and_the_tool() {
        let call = Call::new(
            "transfer",
            json!({"amount": 250, "to": "ACME", "meta": {"tags": ["a", "b"]}}),
        );
        assert_eq!(
            fill(
                "{tool}: {args.amount} to {to}, tags {args.meta.tags}, memo {args.memo}?",
                &call
            ),
            r#"transfer: 250 to ACME, tags ["a","b"], memo (none)?"#
        );
        assert_eq!(
            fill("{{literal}} and a lone { brace", &call),
            "{literal} and a lone { brace"
        );
    }

    #[test]
    fn long_values_are_cut() {
        let call = Call::new("t", json!({"body": "x".repeat(500)}));
        let filled = fill("{args.body}", &call);
        assert_eq!(filled.chars().count(), MAX_QUOTED_CHARS + 1);
        assert!(filled.ends_with('…'));
    }
}
