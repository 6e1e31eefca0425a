//! The layer list of `lib.rs` against the imports: every `crate::MODULE` a module's code names
//! (comments and test modules aside) must be on a lower line of the list.

use std::collections::BTreeMap;
use std::path::Path;

/// Each module's line in lib.rs's list (1 is the top).
fn layers() -> BTreeMap<String, usize> {
    let lib = include_str!("lib.rs");
    let mut out = BTreeMap::new();
    let mut current = None;
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//!") else {
            break;
        };
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        // A numbered line, or the indented continuation of one.
        let numbered = rest
            .split_once(". ")
            .and_then(|(n, text)| Some((n.trim().parse::<usize>().ok()?, text)));
        let (n, text) = match (numbered, current) {
            (Some((n, text)), _) => (n, text),
            (None, Some(n)) if rest.starts_with("   ") => (n, rest),
            _ => {
                current = None;
                continue;
            }
        };
        current = Some(n);
        for name in text.split("[`").skip(1) {
            let name = name.split('`').next().unwrap();
            if !name.contains("::") {
                out.insert(name.to_string(), n);
            }
        }
    }
    out
}

/// The code of a module (a file or a folder), without comments and `#[cfg(test)]` modules.
fn code(path: &Path) -> String {
    let mut out = String::new();
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        walk(path)
    } else {
        vec![path.to_path_buf()]
    };
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let text = match text.find("#[cfg(test)]\nmod ") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        for line in text.lines() {
            let line = line.trim_start();
            if !line.starts_with("//") {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.file_name().is_some_and(|n| n != "tests.rs")
        {
            // A `tests.rs` beside a module is its `#[cfg(test)] mod tests;`: test code.
            out.push(p);
        }
    }
    out
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let layers = layers();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = Vec::new();
    for line in include_str!("lib.rs").lines() {
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        {
            modules.push(name.to_string());
        }
    }
    assert!(modules.len() >= 18, "{modules:?}");
    let mut wrong = Vec::new();
    for m in &modules {
        let Some(&own) = layers.get(m) else {
            wrong.push(format!("`{m}` is not in lib.rs's layer list"));
            continue;
        };
        let path = if src.join(m).is_dir() {
            src.join(m)
        } else {
            src.join(format!("{m}.rs"))
        };
        let mut text = code(&path);
        if src.join(m).is_dir() && src.join(format!("{m}.rs")).is_file() {
            text.push_str(&code(&src.join(format!("{m}.rs"))));
        }
        for other in &modules {
            if other == m || !text.contains(&format!("crate::{other}")) {
                continue;
            }
            let theirs = layers[other];
            if theirs <= own {
                wrong.push(format!(
                    "`{m}` (line {own}) uses `{other}` (line {theirs}), which is not below it"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
