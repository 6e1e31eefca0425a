//! Which of a policy's tool sections apply to a tool: its own (its exact name, else the first
//! glob that matches, in file order) and every annotation section (`"@destructive"`, …) whose
//! selector its reviewed definition matches. Built once per load, so a call finds its sections
//! in constant time whatever the policy's size.

use crate::config::glob_match;
use crate::pins::annotations::{self, Selector};
use crate::pins::Lock;
use std::collections::{HashMap, HashSet};

/// The sections of a policy, indexed by the tools they apply to.
#[derive(Debug, Default)]
pub(super) struct Sections {
    /// Sections by exact tool name.
    exact: HashMap<String, usize>,
    /// Sections whose pattern is a glob, in file order.
    globs: Vec<(String, usize)>,
    /// Annotation sections by the locked tools they select, in file order.
    annotated: HashMap<String, Vec<usize>>,
    /// Tools `hide:` names by annotation.
    hidden: HashSet<String>,
    /// `hide:` names and globs.
    hide_patterns: Vec<String>,
}

impl Sections {
    /// Index the sections' patterns (in file order); annotation selectors (in sections and in
    /// `hide`) are resolved against the lock file's reviewed definitions. Without a lock they
    /// are plain names (the native loader refuses selectors without one before this).
    pub(super) fn index<'a>(
        patterns: impl Iterator<Item = &'a str>,
        hide: &[String],
        lock: Option<&Lock>,
    ) -> Sections {
        let mut sections = Sections::default();
        let selected = |selector: Selector| -> Vec<String> {
            lock.map(|lock| annotations::select(lock, selector))
                .unwrap_or_default()
        };
        for (i, pattern) in patterns.enumerate() {
            // Without a lock (formats that have no selectors), an `@…` pattern is a name.
            match Selector::parse(pattern).filter(|_| lock.is_some()) {
                Some(Ok(selector)) => {
                    for tool in selected(selector) {
                        sections.annotated.entry(tool).or_default().push(i);
                    }
                }
                Some(Err(_)) => {}
                None if pattern.contains(['*', '?']) => {
                    sections.globs.push((pattern.to_string(), i));
                }
                None => {
                    sections.exact.entry(pattern.to_string()).or_insert(i);
                }
            }
        }
        for pattern in hide {
            match Selector::parse(pattern).filter(|_| lock.is_some()) {
                Some(Ok(selector)) => sections.hidden.extend(selected(selector)),
                Some(Err(_)) => {}
                None => sections.hide_patterns.push(pattern.clone()),
            }
        }
        sections
    }

    /// The tool's own section: its exact name, else the first glob that matches.
    pub(super) fn own(&self, tool: &str) -> Option<usize> {
        self.exact.get(tool).copied().or_else(|| {
            self.globs
                .iter()
                .find(|(pattern, _)| glob_match(pattern, tool))
                .map(|(_, i)| *i)
        })
    }

    /// The annotation sections that select the tool, in file order.
    pub(super) fn annotated(&self, tool: &str) -> &[usize] {
        self.annotated.get(tool).map_or(&[], Vec::as_slice)
    }

    /// Whether `hide:` names the tool (by name, glob or one of its annotations).
    pub(super) fn hidden(&self, tool: &str) -> bool {
        self.hidden.contains(tool) || self.hide_patterns.iter().any(|p| glob_match(p, tool))
    }

    /// Whether `hide:` hides anything at all.
    pub(super) fn hides_any(&self) -> bool {
        !self.hidden.is_empty() || !self.hide_patterns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tool_gets_its_own_section_and_every_annotation_section_that_selects_it() {
        let lock = Lock::of(
            None,
            &[
                json!({"name": "read_file", "annotations": {"readOnlyHint": true}}),
                json!({"name": "write_file", "annotations": {"readOnlyHint": false, "destructiveHint": true}}),
                json!({"name": "mystery"}),
            ],
        );
        let patterns = ["write_file", "@destructive", "*_file", "@read-only"];
        let s = Sections::index(
            patterns.into_iter(),
            &["@read-only".to_string(), "mys*".to_string()],
            Some(&lock),
        );
        assert_eq!(s.own("write_file"), Some(0));
        assert_eq!(s.own("read_file"), Some(2));
        assert_eq!(s.own("mystery"), None);
        assert_eq!(s.annotated("write_file"), &[1]);
        assert_eq!(
            s.annotated("mystery"),
            &[1],
            "a tool that says nothing is destructive"
        );
        assert_eq!(s.annotated("read_file"), &[3]);
        assert!(s.hidden("read_file") && !s.hidden("write_file"));
        assert!(s.hidden("mystery"), "hide globs are held here too");
        assert_eq!(
            s.annotated("unlocked_tool"),
            &[] as &[usize],
            "only locked tools are selected"
        );
    }
}
