//! Conditions on a call's arguments, with the operators of Intercept's policy language:
//! `eq`, `neq`, `in`, `not_in`, `lt`, `lte`, `gt`, `gte`, `regex`, `contains`, `exists`.
//!
//! A condition is written `{path, op, value}`; `path` is a dotted path into the arguments, with an
//! optional `args.` prefix (`args.to` and `to` are the same). Compile conditions once, in
//! [`Policy::new`](crate::Policy::new), and evaluate them per call.

use crate::call::lookup;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

/// A condition as written in a configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    /// Dotted path into the arguments, e.g. `args.message.to`.
    pub path: String,
    /// The operator.
    pub op: String,
    /// The operand (absent only for `exists`, which then means `true`).
    #[serde(default)]
    pub value: Option<Value>,
}

#[derive(Debug, Clone)]
enum Test {
    Eq(Value),
    Neq(Value),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Cmp(&'static str, f64),
    Regex(Regex),
    Contains(Value),
    Exists(bool),
}

/// A compiled condition, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Condition {
    path: String,
    op: String,
    test: Test,
}

/// Compile a list of conditions, naming the first bad one in the error.
pub fn compile_all(specs: &[ConditionSpec]) -> Result<Vec<Condition>, String> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Condition::compile(s)
                .map_err(|e| format!("condition {} ({} {}): {e}", i + 1, s.path, s.op))
        })
        .collect()
}

impl Condition {
    /// Compile one condition; the error says what operand the operator needed.
    pub fn compile(spec: &ConditionSpec) -> Result<Self, String> {
        let path = spec.path.strip_prefix("args.").unwrap_or(&spec.path);
        let path = if path == "args" { "" } else { path }.to_string();
        let value = spec.value.clone();
        let need = |what: &str| format!("operator `{}` needs {what} as its value", spec.op);
        let test = match spec.op.as_str() {
            "eq" => Test::Eq(value.ok_or_else(|| need("a value"))?),
            "neq" => Test::Neq(value.ok_or_else(|| need("a value"))?),
            "in" | "not_in" => {
                let Some(Value::Array(items)) = value else { return Err(need("a list")) };
                if spec.op == "in" {
                    Test::In(items)
                } else {
                    Test::NotIn(items)
                }
            }
            op @ ("lt" | "lte" | "gt" | "gte") => {
                let n = value.as_ref().and_then(Value::as_f64).ok_or_else(|| need("a number"))?;
                let op: &'static str = match op {
                    "lt" => "lt",
                    "lte" => "lte",
                    "gt" => "gt",
                    _ => "gte",
                };
                Test::Cmp(op, n)
            }
            "regex" => {
                let Some(Value::String(pattern)) = value else { return Err(need("a regular expression string")) };
                Test::Regex(Regex::new(&pattern).map_err(|e| format!("invalid regular expression: {e}"))?)
            }
            "contains" => Test::Contains(value.ok_or_else(|| need("a value"))?),
            "exists" => match value {
                None => Test::Exists(true),
                Some(Value::Bool(b)) => Test::Exists(b),
                Some(_) => return Err(need("true or false")),
            },
            other => {
                return Err(format!(
                    "unknown operator `{other}`; expected one of eq, neq, in, not_in, lt, lte, gt, gte, regex, contains, exists"
                ))
            }
        };
        Ok(Self {
            path,
            op: spec.op.clone(),
            test,
        })
    }

    /// Whether the condition holds for these arguments. A missing argument satisfies only
    /// `neq`, `not_in` and `exists: false`.
    pub fn holds(&self, arguments: &Value) -> bool {
        let actual = lookup(arguments, &self.path).filter(|v| !v.is_null());
        match (&self.test, actual) {
            (Test::Exists(want), a) => a.is_some() == *want,
            (Test::Neq(v), a) => !a.is_some_and(|a| json_eq(a, v)),
            (Test::NotIn(items), a) => !a.is_some_and(|a| items.iter().any(|v| json_eq(a, v))),
            (_, None) => false,
            (Test::Eq(v), Some(a)) => json_eq(a, v),
            (Test::In(items), Some(a)) => items.iter().any(|v| json_eq(a, v)),
            (Test::Cmp(op, n), Some(a)) => a.as_f64().is_some_and(|a| match *op {
                "lt" => a < *n,
                "lte" => a <= *n,
                "gt" => a > *n,
                _ => a >= *n,
            }),
            (Test::Regex(re), Some(Value::String(s))) => re.is_match(s),
            (Test::Regex(_), Some(_)) => false,
            (Test::Contains(v), Some(Value::String(s))) => {
                v.as_str().is_some_and(|v| s.contains(v))
            }
            (Test::Contains(v), Some(Value::Array(items))) => items.iter().any(|i| json_eq(i, v)),
            (Test::Contains(_), Some(_)) => false,
        }
    }

    /// The argument path this condition reads (without the `args.` prefix).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Plain words for what the condition requires, e.g. `` `amount` must be at most 100 ``.
    pub fn describe(&self) -> String {
        let p = if self.path.is_empty() {
            "the arguments".to_string()
        } else {
            format!("`{}`", self.path)
        };
        match &self.test {
            Test::Eq(v) => format!("{p} must equal {v}"),
            Test::Neq(v) => format!("{p} must not equal {v}"),
            Test::In(items) => format!("{p} must be one of {}", Value::Array(items.clone())),
            Test::NotIn(items) => format!("{p} must not be any of {}", Value::Array(items.clone())),
            Test::Cmp(op, n) => {
                let words = match *op {
                    "lt" => "less than",
                    "lte" => "at most",
                    "gt" => "greater than",
                    _ => "at least",
                };
                format!("{p} must be a number {words} {n}")
            }
            Test::Regex(re) => format!("{p} must match /{}/", re.as_str()),
            Test::Contains(v) => format!("{p} must contain {v}"),
            Test::Exists(true) => format!("{p} must be present"),
            Test::Exists(false) => format!("{p} must be absent"),
        }
    }

    /// The operator as written.
    pub fn op(&self) -> &str {
        &self.op
    }
}

/// JSON equality that treats `5` and `5.0` as equal.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(path: &str, op: &str, value: Value) -> Condition {
        Condition::compile(&ConditionSpec {
            path: path.into(),
            op: op.into(),
            value: Some(value),
        })
        .unwrap()
    }

    #[test]
    fn every_operator_decides_as_documented() {
        let args = json!({"to": "+15550001", "amount": 50, "tags": ["a", "b"], "body": "hello world", "n": null});
        let cases = [
            (cond("args.to", "eq", json!("+15550001")), true),
            (cond("to", "neq", json!("+15550001")), false),
            (cond("amount", "in", json!([10, 50.0])), true),
            (cond("amount", "not_in", json!([10, 50])), false),
            (cond("amount", "lt", json!(50)), false),
            (cond("amount", "lte", json!(50)), true),
            (cond("amount", "gt", json!(49.5)), true),
            (cond("amount", "gte", json!(51)), false),
            (cond("to", "regex", json!("^\\+1555")), true),
            (cond("body", "contains", json!("world")), true),
            (cond("tags", "contains", json!("c")), false),
            (cond("tags", "exists", json!(true)), true),
            (cond("n", "exists", json!(true)), false),
            (cond("missing", "neq", json!(1)), true),
            (cond("missing", "eq", json!(1)), false),
            (cond("missing", "not_in", json!([1])), true),
            (cond("missing", "exists", json!(false)), true),
            (cond("to", "lt", json!(5)), false),
        ];
        for (i, (c, want)) in cases.iter().enumerate() {
            assert_eq!(c.holds(&args), *want, "case {i}: {}", c.describe());
        }
    }

    #[test]
    fn bad_conditions_say_what_was_expected() {
        let bad = |op: &str, value: Value| {
            compile_all(&[ConditionSpec {
                path: "x".into(),
                op: op.into(),
                value: Some(value),
            }])
            .unwrap_err()
        };
        assert_eq!(
            bad("lt", json!("ten")),
            "condition 1 (x lt): operator `lt` needs a number as its value"
        );
        assert_eq!(
            bad("in", json!(3)),
            "condition 1 (x in): operator `in` needs a list as its value"
        );
        assert!(bad("regex", json!("("))
            .starts_with("condition 1 (x regex): invalid regular expression"));
        assert!(bad("like", json!(1)).contains("unknown operator `like`"));
    }

    #[test]
    fn descriptions_are_plain_words() {
        assert_eq!(
            cond("amount", "lte", json!(100)).describe(),
            "`amount` must be a number at most 100"
        );
        assert_eq!(
            cond("to", "in", json!(["a"])).describe(),
            "`to` must be one of [\"a\"]"
        );
    }
}
