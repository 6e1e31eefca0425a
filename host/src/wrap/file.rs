//! A client's configuration file, read and written back with every other field and, as far as
//! the syntax allows, its formatting kept. In JSON only the text of the server entries Tollgate
//! changes is replaced, byte for byte everything else stays (comments are not JSON, so a file
//! with them is refused rather than stripped); TOML is edited in place with `toml_edit`, only the
//! server tables Tollgate changes being rewritten.

use super::clients::Syntax;
use super::json_spans;
use super::WrapError;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The table Codex keeps its servers in.
const TOML_SERVERS: &str = "mcp_servers";

/// A configuration file in memory.
pub struct ConfigFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its text as read.
    pub original: String,
    doc: Doc,
}

enum Doc {
    Json {
        value: Value,
        key: &'static str,
        indent: String,
        /// New text for server entries, by name, and whether it is to be indented to the
        /// entry's place (false: the file's own text, put back as it was).
        edits: Vec<(String, String, bool)>,
    },
    Toml(toml_edit::DocumentMut),
}

impl ConfigFile {
    /// Read and parse a configuration file.
    pub fn read(path: &Path, syntax: Syntax) -> Result<ConfigFile, WrapError> {
        let original = std::fs::read_to_string(path).map_err(|cause| WrapError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let invalid = |message: String| WrapError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let doc = match syntax {
            Syntax::Json(key) => {
                let value: Value = serde_json::from_str(&original).map_err(|e| {
                    invalid(format!(
                        "not JSON ({e}); comments and trailing commas are not JSON, and a file that has them is left for you to edit"
                    ))
                })?;
                if !value.is_object() {
                    return Err(invalid("the file is not a JSON object".into()));
                }
                if value.get(key).is_some_and(|s| !s.is_object()) {
                    return Err(invalid(format!("`{key}` is not an object")));
                }
                Doc::Json {
                    value,
                    key,
                    indent: indent_of(&original),
                    edits: Vec::new(),
                }
            }
            Syntax::Toml => {
                let doc: toml_edit::DocumentMut = original
                    .parse()
                    .map_err(|e| invalid(format!("not TOML: {e}")))?;
                if doc.get(TOML_SERVERS).is_some_and(|s| !s.is_table_like()) {
                    return Err(invalid("`mcp_servers` is not a table".into()));
                }
                Doc::Toml(doc)
            }
        };
        Ok(ConfigFile {
            path: path.to_path_buf(),
            original,
            doc,
        })
    }

    /// The server entries, by name, in file order (TOML entries as the JSON they stand for).
    pub fn servers(&self) -> Vec<(String, Value)> {
        match &self.doc {
            Doc::Json { value, key, .. } => value
                .get(*key)
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            Doc::Toml(doc) => doc
                .get(TOML_SERVERS)
                .and_then(|s| s.as_table_like())
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| (k.to_string(), item_to_json(v)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The text of one server's entry as the file has it: in JSON its value, in TOML its table
    /// (with its comments and key order) as a document of its own.
    pub fn entry_text(&self, name: &str) -> Option<String> {
        let key = match &self.doc {
            Doc::Json { key, .. } => key,
            Doc::Toml(_) => {
                let read: toml_edit::DocumentMut = self.original.parse().ok()?;
                let table = read.get(TOML_SERVERS)?.get(name)?.as_table()?.clone();
                let mut only = toml_edit::DocumentMut::new();
                let mut servers = toml_edit::Table::new();
                servers.set_implicit(true);
                servers.insert(name, toml_edit::Item::Table(table));
                only.insert(TOML_SERVERS, toml_edit::Item::Table(servers));
                return Some(only.to_string());
            }
        };
        let (_, start, end) = json_spans::servers(&self.original, key)?
            .into_iter()
            .find(|(n, _, _)| n == name)?;
        Some(self.original[start..end].to_string())
    }

    /// Put back one server's entry exactly as `text` ([`ConfigFile::entry_text`]'s): in JSON
    /// its very bytes; in TOML its keys' values, comments and order (what `set` changed).
    pub fn set_text(&mut self, name: &str, text: &str) {
        match &mut self.doc {
            Doc::Json { edits, .. } => edits.push((name.to_string(), text.to_string(), false)),
            Doc::Toml(doc) => {
                let fragment = text.parse::<toml_edit::DocumentMut>().ok();
                let original = fragment
                    .as_ref()
                    .and_then(|f| f.get(TOML_SERVERS)?.get(name)?.as_table());
                let current = doc
                    .get_mut(TOML_SERVERS)
                    .and_then(|s| s.get_mut(name))
                    .and_then(|t| t.as_table_mut());
                let (Some(original), Some(current)) = (original, current) else {
                    // Not a table on one side (an inline table now, say): put back its value.
                    let item = fragment
                        .as_ref()
                        .and_then(|f| f.get(TOML_SERVERS)?.get(name));
                    let entry = match item {
                        Some(item) => Some(item_to_json(item)),
                        None => serde_json::from_str::<Value>(text).ok(),
                    };
                    if let Some(entry) = entry {
                        self.set(name, &entry);
                    }
                    return;
                };
                keep_only(current, |k| original.contains_key(k));
                for (k, item) in original.iter() {
                    let same = current.get(k).map(item_to_json) == Some(item_to_json(item));
                    if let (false, Some(key)) = (same, original.key(k)) {
                        current.remove(k);
                        current.insert_formatted(key, item.clone());
                    }
                }
                let order: Vec<&str> = original.iter().map(|(k, _)| k).collect();
                let at = |k: &toml_edit::Key| order.iter().position(|o| *o == k.get());
                current.sort_values_by(|a, _, b, _| at(a).cmp(&at(b)));
            }
        }
    }

    /// Replace one server's entry.
    pub fn set(&mut self, name: &str, entry: &Value) {
        match &mut self.doc {
            Doc::Json {
                value,
                key,
                indent,
                edits,
            } => {
                if let Some(servers) = value.get_mut(*key).and_then(Value::as_object_mut) {
                    servers.insert(name.to_string(), entry.clone());
                }
                edits.push((name.to_string(), pretty(entry, indent), true));
            }
            Doc::Toml(doc) => {
                let Some(servers) = doc
                    .get_mut(TOML_SERVERS)
                    .and_then(|s| s.as_table_like_mut())
                else {
                    return;
                };
                // Only the keys whose values change are rewritten: the others keep their text.
                let (Some(table), Some(fields)) = (
                    servers.get_mut(name).and_then(|t| t.as_table_like_mut()),
                    entry.as_object(),
                ) else {
                    servers.insert(name, json_to_item(entry, true));
                    return;
                };
                keep_only(table, |k| fields.contains_key(k));
                for (k, v) in fields {
                    if table.get(k).map(item_to_json).as_ref() != Some(v) {
                        table.insert(k, json_to_item(v, false));
                    }
                }
            }
        }
    }

    /// The file's new text.
    pub fn render(&self) -> String {
        match &self.doc {
            Doc::Json { key, edits, .. } => {
                let spans = json_spans::servers(&self.original, key).unwrap_or_default();
                let mut replaced: Vec<(usize, usize, String)> = spans
                    .into_iter()
                    .filter_map(|(name, start, end)| {
                        let (_, text, indent) = edits.iter().rev().find(|(n, _, _)| *n == name)?;
                        if !indent {
                            return Some((start, end, text.clone()));
                        }
                        // Lines after the first continue at the indentation of the entry's key.
                        let line_start = self.original[..start].rfind('\n').map_or(0, |i| i + 1);
                        let line = &self.original[line_start..start];
                        let margin = &line[..line.len() - line.trim_start().len()];
                        Some((start, end, text.replace('\n', &format!("\n{margin}"))))
                    })
                    .collect();
                replaced.sort_by_key(|(start, _, _)| std::cmp::Reverse(*start));
                let mut text = self.original.clone();
                for (start, end, new) in replaced {
                    text.replace_range(start..end, &new);
                }
                text
            }
            Doc::Toml(doc) => doc.to_string(),
        }
    }

    /// Write `text` in place of the file (through a temporary file and a rename, keeping the
    /// file's permissions), after copying what was there to `backup`.
    pub fn write(&self, text: &str, backup: &Path) -> Result<(), WrapError> {
        let write_error = |path: &Path, cause| WrapError::Write {
            path: path.to_path_buf(),
            cause,
        };
        std::fs::write(backup, &self.original).map_err(|e| write_error(backup, e))?;
        let tmp = self.path.with_extension("tollgate-tmp");
        std::fs::write(&tmp, text).map_err(|e| write_error(&tmp, e))?;
        if let Ok(meta) = std::fs::metadata(&self.path) {
            let _ = std::fs::set_permissions(&tmp, meta.permissions());
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| write_error(&self.path, e))
    }
}

/// A server entry as pretty JSON, indented by `indent` per level, starting at column zero.
fn pretty(entry: &Value, indent: &str) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(entry, &mut ser).expect("JSON values serialise");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The indentation of the first indented line (two spaces when there is none).
fn indent_of(text: &str) -> String {
    text.lines()
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .find(|i| !i.is_empty())
        .unwrap_or("  ")
        .to_string()
}

/// Remove a table's keys that `keep` does not keep.
fn keep_only(table: &mut dyn toml_edit::TableLike, keep: impl Fn(&str) -> bool) {
    let gone: Vec<String> = table
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| !keep(k))
        .collect();
    for k in gone {
        table.remove(&k);
    }
}

/// A TOML item as JSON.
fn item_to_json(item: &toml_edit::Item) -> Value {
    match item {
        toml_edit::Item::Value(v) => value_to_json(v),
        toml_edit::Item::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.to_string(), item_to_json(v)))
                .collect(),
        ),
        toml_edit::Item::ArrayOfTables(a) => Value::Array(
            a.iter()
                .map(|t| item_to_json(&toml_edit::Item::Table(t.clone())))
                .collect(),
        ),
        toml_edit::Item::None => Value::Null,
    }
}

fn value_to_json(v: &toml_edit::Value) -> Value {
    use toml_edit::Value as T;
    match v {
        T::String(s) => Value::String(s.value().clone()),
        T::Integer(i) => Value::from(*i.value()),
        T::Float(f) => serde_json::Number::from_f64(*f.value()).map_or(Value::Null, Value::Number),
        T::Boolean(b) => Value::Bool(*b.value()),
        T::Datetime(d) => Value::String(d.value().to_string()),
        T::Array(a) => Value::Array(a.iter().map(value_to_json).collect()),
        T::InlineTable(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.to_string(), value_to_json(v)))
                .collect::<Map<_, _>>(),
        ),
    }
}

/// JSON as a TOML item: a table (or an inline one) for an object.
fn json_to_item(v: &Value, table: bool) -> toml_edit::Item {
    match v {
        Value::Object(map) if table => {
            let mut t = toml_edit::Table::new();
            for (k, v) in map {
                t.insert(k, json_to_item(v, false));
            }
            toml_edit::Item::Table(t)
        }
        other => toml_edit::Item::Value(json_to_value(other)),
    }
}

fn json_to_value(v: &Value) -> toml_edit::Value {
    match v {
        Value::String(s) => s.as_str().into(),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(0.0).into(),
        },
        Value::Array(items) => toml_edit::Value::Array(items.iter().map(json_to_value).collect()),
        Value::Object(map) => {
            let mut t = toml_edit::InlineTable::new();
            for (k, v) in map {
                t.insert(k, json_to_value(v));
            }
            toml_edit::Value::InlineTable(t)
        }
        // TOML has no null: an absent value.
        Value::Null => "".into(),
    }
}
