//! Where each server entry's value lies in a JSON file's text, so an edit replaces those bytes
//! and nothing else. A minimal scanner over text `serde_json` has already accepted.

/// `(name, start, end)` of every member of the top-level object's `key` object, in file order.
pub fn servers(text: &str, key: &str) -> Option<Vec<(String, usize, usize)>> {
    let b = text.as_bytes();
    let open = skip_ws(b, 0);
    let (_, start, _) = members(text, open)?
        .into_iter()
        .find(|(name, _, _)| name == key)?;
    members(text, start)
}

/// The members of the object opening at `open`: each name and its value's span.
fn members(text: &str, open: usize) -> Option<Vec<(String, usize, usize)>> {
    let b = text.as_bytes();
    if b.get(open) != Some(&b'{') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = skip_ws(b, open + 1);
    if b.get(i) == Some(&b'}') {
        return Some(out);
    }
    loop {
        let after = string_end(b, i)?;
        let name: String = serde_json::from_str(&text[i..after]).ok()?;
        i = skip_ws(b, after);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, i + 1);
        let end = value_end(b, start)?;
        out.push((name, start, end));
        i = skip_ws(b, end);
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return Some(out),
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The index after the string starting at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// The index after the value starting at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_servers_value_is_found_whatever_the_layout() {
        let text = r#"{ "theme": {"a": [1, "}"]},
  "mcpServers": {
    "fs": { "command": "npx", "args": ["-y", "x\"y"] },
    "remote":{"url":"http://h/mcp"}, "n": 3
  }
}"#;
        let spans = servers(text, "mcpServers").unwrap();
        let found: Vec<(&str, &str)> = spans
            .iter()
            .map(|(n, s, e)| (n.as_str(), &text[*s..*e]))
            .collect();
        assert_eq!(
            found,
            vec![
                ("fs", r#"{ "command": "npx", "args": ["-y", "x\"y"] }"#),
                ("remote", r#"{"url":"http://h/mcp"}"#),
                ("n", "3"),
            ]
        );
        assert_eq!(servers(text, "absent"), None);
    }
}
