//! `include:`: policy fragments from files and policy packs (local or `oci://`), composed with
//! the operator's own rules.
//!
//! How they combine (documented for users in `policies/catalog/README.md`):
//! - **Order.** Included fragments come first, in the order of the list (each with its own
//!   includes before it), then the file's own rules. Rules for the same tool pattern are joined
//!   in that order, and a call must pass all of them: an include can add checks, and the
//!   operator's rules add more.
//! - **Overrides.** A tool entry with `replace: true` drops every included rule of the same
//!   pattern and keeps only the file's own.
//! - **`default`** is the operator's file's when it says one; else `deny` if any included
//!   fragment says `deny`; else `allow`.
//! - **`hide`** is the union of every file's.
//! - **`pins`** are the operator's file's; else the one included fragment that sets them (two
//!   that do are refused).
//! - **Names.** A fragment's `plugins:` and `limits:` apply to its own rules only; its rules'
//!   labels and rate-limit counters carry the pack's (or file's) name, so they never share a
//!   counter with the operator's rules.
//!
//! Trust is the same as for plugins: a pack is opened with every check of [`crate::pack`]; a
//! `sha256` pins its manifest (`tollgate-pack.json`), `trusted_keys` require its signature, and
//! a fragment's plugins may use only the capabilities the include grants.

use super::Rule;
use crate::engine::Capability;
use crate::pack::registry::{self, Cache, OciRef};
use crate::pack::{archive, manifest, sha256_hex, Pack};
use crate::pins::PinPolicy;
use indexmap::IndexMap;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// An entry of `include:` as written: a path or reference, or the long form.
#[derive(Debug)]
pub(super) enum IncludeFile {
    /// `./common.yaml`, `packs/github`, `oci://…`.
    Short(String),
    /// `{source, sha256, trusted_keys, grant}`.
    Long(IncludeEntry),
}

/// The long form of an include.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IncludeEntry {
    source: String,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    trusted_keys: Vec<String>,
    #[serde(default)]
    grant: Vec<String>,
}

impl<'de> Deserialize<'de> for IncludeFile {
    /// By hand rather than `untagged`, so that a mistake in the long form is named (`unknown
    /// field `trusted_key``) instead of "did not match any variant".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(IncludeFile::Short(s)),
            v @ serde_json::Value::Object(_) => serde_json::from_value(v)
                .map(IncludeFile::Long)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "an include is a path or reference, or {{source, sha256, trusted_keys, grant}}, not {other}"
            ))),
        }
    }
}

impl IncludeFile {
    fn entry(self) -> IncludeEntry {
        match self {
            IncludeFile::Short(source) => IncludeEntry {
                source,
                sha256: None,
                trusted_keys: Vec::new(),
                grant: Vec::new(),
            },
            IncludeFile::Long(e) => e,
        }
    }
}

/// Where a fragment comes from, and what its rules may do.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    /// Where its relative paths resolve.
    pub dir: PathBuf,
    /// How `check` names it; `None` for the operator's own file.
    pub shown: Option<String>,
    /// What its rules' labels and counters start with (`github:`); empty for the operator's.
    pub prefix: String,
    /// Keys the include requires of the pack (and so of its plugins).
    pub trusted_keys: Vec<String>,
    /// What the include grants its plugins; `None` for the operator's file, which grants
    /// freely.
    pub grants: Option<Vec<Capability>>,
    /// The includes above this one (sources), to refuse cycles.
    pub stack: Vec<String>,
}

impl Origin {
    /// The operator's policy file in `dir`.
    pub fn operator(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            shown: None,
            prefix: String::new(),
            trusted_keys: Vec::new(),
            grants: None,
            stack: Vec::new(),
        }
    }
}

/// The rules of one tool pattern in a fragment.
#[derive(Debug, Default)]
pub(super) struct Section {
    /// `replace: true`: drop included rules of this pattern.
    pub replace: bool,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// A file's rules with its includes merged in.
#[derive(Debug, Default)]
pub(super) struct Fragment {
    /// `default:` if said.
    pub default: Option<super::DefaultAction>,
    /// `hide:`.
    pub hide: Vec<String>,
    /// Tool patterns (`"*"` included) in order.
    pub sections: IndexMap<String, Section>,
    /// `pins:` if set.
    pub pins: Option<PinPolicy>,
    /// The local files and pack folders read to build it (for hot reload).
    pub files: Vec<PathBuf>,
}

impl Fragment {
    /// Merge `other` in: an included fragment (`own` false) or the file's own rules after its
    /// includes (`own` true).
    pub fn absorb(&mut self, other: Fragment, own: bool, shown: &str) -> Result<(), String> {
        use super::DefaultAction::Deny;
        self.files.extend(other.files);
        for h in other.hide {
            if !self.hide.contains(&h) {
                self.hide.push(h);
            }
        }
        for (pattern, section) in other.sections {
            let entry = self.sections.entry(pattern).or_default();
            if own && section.replace {
                entry.rules = section.rules;
            } else {
                entry.rules.extend(section.rules);
            }
        }
        self.default = match (own, other.default) {
            (true, Some(d)) => Some(d),
            (false, Some(Deny)) => Some(Deny),
            (false, Some(d)) => self.default.or(Some(d)),
            (_, None) => self.default,
        };
        match (other.pins, own) {
            (Some(p), true) => self.pins = Some(p),
            (Some(_), false) if self.pins.is_some() => {
                return Err(format!(
                    "include {shown}: two included fragments set `pins:`; set them in this file instead"
                ))
            }
            (Some(p), false) => self.pins = Some(p),
            (None, _) => {}
        }
        Ok(())
    }
}

/// Read one include of a file at `parent`, checked before anything is compiled, and compose
/// it (its own includes first).
pub(super) fn load(include: IncludeFile, parent: &Origin) -> Result<Fragment, String> {
    let e = include.entry();
    let fail = |why: String| format!("include {}: {why}", e.source);
    let grants = e
        .grant
        .iter()
        .map(|g| g.parse::<Capability>().map_err(|x| fail(x.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let local = !OciRef::is_oci(&e.source);
    let (path, from) = if OciRef::is_oci(&e.source) {
        let r = OciRef::parse(&e.source).map_err(|x| x.to_string())?;
        let fetched = registry::fetch(&r, &Cache::default_location()).map_err(|x| x.to_string())?;
        (fetched.archive, r.at(&fetched.digest))
    } else {
        let path = parent.dir.join(&e.source);
        let shown = path.display().to_string();
        (path, shown)
    };
    let key =
        std::fs::canonicalize(&path).map_or_else(|_| from.clone(), |p| p.display().to_string());
    if parent.stack.contains(&key) {
        let mut chain = parent.stack.clone();
        chain.push(key);
        return Err(fail(format!("an include cycle: {}", chain.join(" → "))));
    }
    let is_pack = path.is_dir() || archive::is_archive(&path);
    let (text, origin) = if is_pack {
        let pack = Pack::open(&path).map_err(|x| fail(x.to_string()))?;
        pack.check_trust(&e.trusted_keys)
            .map_err(|x| fail(x.to_string()))?;
        if let Some(pin) = &e.sha256 {
            let actual = sha256_hex(&pack.files[manifest::FILE]);
            if !actual.eq_ignore_ascii_case(pin.trim()) {
                return Err(fail(format!(
                    "the pack's {} has sha256 {actual}, but the include pins {pin}",
                    manifest::FILE
                )));
            }
        }
        let Some((text, _cases)) = pack.policy().map_err(|x| fail(x.to_string()))? else {
            return Err(fail(format!(
                "pack {} carries no policy fragment; use its components under `plugins:` with `source: {}`",
                pack.manifest.name, e.source
            )));
        };
        let dir = if path.is_dir() {
            path.clone()
        } else {
            unpacked(&pack).map_err(fail)?
        };
        let m = &pack.manifest;
        let signed = match &pack.signer {
            Some(k) => format!(", signed by {k}"),
            None => String::new(),
        };
        let origin = Origin {
            dir,
            shown: Some(format!("pack {} {} ({from}{signed})", m.name, m.version)),
            prefix: format!("{}:", m.name),
            trusted_keys: e.trusted_keys.clone(),
            grants: Some(grants),
            stack: Vec::new(),
        };
        (text, origin)
    } else {
        if !e.trusted_keys.is_empty() {
            return Err(fail(
                "a plain file carries no signature; publish it in a pack to require one".into(),
            ));
        }
        let bytes = std::fs::read(&path).map_err(|x| fail(format!("cannot read {from}: {x}")))?;
        if let Some(pin) = &e.sha256 {
            let actual = sha256_hex(&bytes);
            if !actual.eq_ignore_ascii_case(pin.trim()) {
                return Err(fail(format!(
                    "the file has sha256 {actual}, but the include pins {pin}"
                )));
            }
        }
        let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("include")
            .to_string();
        let origin = Origin {
            dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            shown: Some(format!("file {from}")),
            prefix: format!("{stem}:"),
            trusted_keys: Vec::new(),
            grants: Some(grants),
            stack: Vec::new(),
        };
        (text, origin)
    };
    if super::detect_format(&text) != super::Format::Native {
        return Err(fail(
            "an included fragment is written in Tollgate's own format (version 1)".into(),
        ));
    }
    let mut stack = parent.stack.clone();
    stack.push(key);
    let origin = Origin { stack, ..origin };
    let mut fragment = super::native::compose(&text, &origin)
        .map_err(|x| fail(format!("{}: {x}", origin.shown.as_deref().unwrap_or(""))))?;
    if local {
        // A pack folder changes through its manifest, which holds every digest.
        fragment.files.push(match path.is_dir() {
            true => path.join(manifest::FILE),
            false => path,
        });
    }
    Ok(fragment)
}

/// An archived pack's files in a folder of the cache (by its manifest's digest), so that its
/// fragment's `source: .` and lock files resolve; opening it again re-checks every digest.
fn unpacked(pack: &Pack) -> Result<PathBuf, String> {
    let digest = sha256_hex(&pack.files[manifest::FILE]);
    let dir = Cache::default_location().unpacked(&digest);
    if dir.join(manifest::FILE).is_file() {
        return Ok(dir);
    }
    // Written aside and renamed, so a folder that exists is whole.
    let fail = |e: std::io::Error| format!("cannot unpack into {}: {e}", dir.display());
    let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
    archive::write_dir(&tmp, &pack.files).map_err(fail)?;
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another process unpacked it first.
        Err(_) if dir.join(manifest::FILE).is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(fail(e)),
    }
}

#[cfg(test)]
mod tests;
