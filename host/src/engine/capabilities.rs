//! What a plugin may import beyond the `tollgate:policy` contract. Nothing by default: a plugin
//! gets a capability only when the operator grants it in the policy file, and a component that
//! imports an interface it was not granted is refused at load time with the interface's name.
//!
//! Capabilities are sets of WASI 0.2 interfaces, served by `wasmtime-wasi` with an empty context:
//! no environment variables, no arguments, no preopened directories, no network, a closed stdin.
//!
//! | capability | interfaces |
//! |------------|------------|
//! | `clocks`   | `wasi:clocks/wall-clock`, `wasi:clocks/monotonic-clock` |
//! | `random`   | `wasi:random/random`, `wasi:random/insecure`, `wasi:random/insecure-seed` |
//! | `output`   | `wasi:cli/stdout`, `wasi:cli/stderr` (and `terminal-*`): lines go to Tollgate's log, tagged with the plugin |
//!
//! Always allowed, because they reach nothing on their own: `wasi:io/*` (they only act on
//! resources the interfaces above hand out), `wasi:filesystem/preopens` and `types` (the list of
//! preopened directories is always empty, so a plugin never holds a descriptor to act on;
//! wasi-libc's start-up imports both), `wasi:cli/environment` (empty), `wasi:cli/exit` (ends the
//! call as a trap) and `wasi:cli/stdin` (closed). Never granted: sockets, HTTP and anything
//! Tollgate does not know.

use std::fmt;
use std::str::FromStr;

/// One grantable capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Wall-clock and monotonic time (e.g. business-hours rules).
    Clocks,
    /// Random numbers.
    Random,
    /// Writing to stdout/stderr, forwarded to Tollgate's log.
    Output,
}

impl Capability {
    /// Every capability, in documentation order.
    pub const ALL: [Capability; 3] = [Capability::Clocks, Capability::Random, Capability::Output];

    /// The name used in policy files and pack manifests.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Clocks => "clocks",
            Capability::Random => "random",
            Capability::Output => "output",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability `{0}` (known: clocks, random, output)")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL
            .into_iter()
            .find(|c| c.name() == s.trim())
            .ok_or_else(|| UnknownCapability(s.to_string()))
    }
}

/// What importing an interface takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Part of Tollgate's own contract, or harmless on its own.
    Nothing,
    /// Allowed when this capability is granted.
    Needs(Capability),
    /// Never given to plugins.
    Never,
}

/// The interface name without its `@version`.
pub fn unversioned(import: &str) -> &str {
    import.split('@').next().unwrap_or(import)
}

/// What importing `import` (a component import name such as `wasi:clocks/wall-clock@0.2.6`)
/// takes. `tollgate:policy` interfaces are checked for their version elsewhere.
pub fn requirement(import: &str) -> Requirement {
    let name = unversioned(import);
    if name.starts_with("tollgate:policy/") || name.starts_with("wasi:io/") {
        return Requirement::Nothing;
    }
    match name {
        "wasi:cli/environment"
        | "wasi:cli/exit"
        | "wasi:cli/stdin"
        | "wasi:cli/terminal-input"
        | "wasi:cli/terminal-stdin"
        | "wasi:filesystem/types"
        | "wasi:filesystem/preopens" => Requirement::Nothing,
        "wasi:clocks/wall-clock" | "wasi:clocks/monotonic-clock" => {
            Requirement::Needs(Capability::Clocks)
        }
        "wasi:random/random" | "wasi:random/insecure" | "wasi:random/insecure-seed" => {
            Requirement::Needs(Capability::Random)
        }
        "wasi:cli/stdout"
        | "wasi:cli/stderr"
        | "wasi:cli/terminal-output"
        | "wasi:cli/terminal-stdout"
        | "wasi:cli/terminal-stderr" => Requirement::Needs(Capability::Output),
        _ => Requirement::Never,
    }
}

/// Why a component's imports were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// It needs a capability the operator did not grant.
    #[error("it imports `{import}`, which needs the `{capability}` capability; grant it in the policy file (`grant: [{capability}]` on the plugin) if you trust this plugin with it")]
    NotGranted {
        /// The import.
        import: String,
        /// What would allow it.
        capability: Capability,
    },
    /// It needs something plugins never get.
    #[error("it imports `{import}`, which Tollgate never gives to plugins (no network or other host access beyond the capabilities clocks, random and output, and no preopened directories)")]
    Forbidden {
        /// The import.
        import: String,
    },
}

/// Check every import of a component against what was granted; the first refusal is returned.
pub fn check_imports<'a>(
    imports: impl IntoIterator<Item = &'a str>,
    granted: &[Capability],
) -> Result<(), ImportError> {
    for import in imports {
        match requirement(import) {
            Requirement::Nothing => {}
            Requirement::Needs(c) if granted.contains(&c) => {}
            Requirement::Needs(capability) => {
                return Err(ImportError::NotGranted {
                    import: import.to_string(),
                    capability,
                })
            }
            Requirement::Never => {
                return Err(ImportError::Forbidden {
                    import: import.to_string(),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_and_io_need_nothing_clocks_need_a_grant_files_never() {
        let imports = [
            "tollgate:policy/log@0.1.0",
            "wasi:io/poll@0.2.12",
            "wasi:clocks/wall-clock@0.2.12",
        ];
        assert_eq!(
            check_imports(imports, &[]),
            Err(ImportError::NotGranted {
                import: "wasi:clocks/wall-clock@0.2.12".into(),
                capability: Capability::Clocks
            })
        );
        assert_eq!(check_imports(imports, &[Capability::Clocks]), Ok(()));
        let err = check_imports(["wasi:sockets/tcp@0.2.0"], &Capability::ALL).unwrap_err();
        assert!(err.to_string().contains("never gives"), "{err}");
        assert!(matches!(
            check_imports(["acme:secrets/vault"], &Capability::ALL),
            Err(ImportError::Forbidden { .. })
        ));
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for c in Capability::ALL {
            assert_eq!(c.name().parse::<Capability>(), Ok(c));
        }
        assert!("network".parse::<Capability>().is_err());
    }
}
