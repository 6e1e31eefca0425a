//! Reviewed policies for servers people run, matched to a server entry by the package it starts.
//! (The repository's `policies/` files, embedded; the catalog of policy packs grows from here.)

/// A reviewed policy and the packages it is for.
pub struct Reviewed {
    /// Its name (the file under `policies/`).
    pub name: &'static str,
    /// The policy text.
    pub text: &'static str,
    /// Package or image names that identify the server in a command line.
    packages: &'static [&'static str],
}

/// The reviewed policies.
pub const REVIEWED: &[Reviewed] = &[
    Reviewed {
        name: "filesystem",
        text: include_str!("../../../policies/filesystem.yaml"),
        packages: &[
            "@modelcontextprotocol/server-filesystem",
            "mcp-server-filesystem",
        ],
    },
    Reviewed {
        name: "github",
        text: include_str!("../../../policies/github.yaml"),
        packages: &["@modelcontextprotocol/server-github", "github-mcp-server"],
    },
    Reviewed {
        name: "twilio",
        text: include_str!("../../../policies/twilio.yaml"),
        packages: &["@twilio-alpha/mcp"],
    },
    Reviewed {
        name: "memory",
        text: include_str!("../../../policies/memory.yaml"),
        packages: &["@modelcontextprotocol/server-memory"],
    },
    Reviewed {
        name: "time",
        text: include_str!("../../../policies/time.yaml"),
        packages: &["mcp-server-time", "mcp_server_time"],
    },
    Reviewed {
        name: "fetch",
        text: include_str!("../../../policies/fetch.yaml"),
        packages: &["mcp-server-fetch", "mcp_server_fetch"],
    },
    Reviewed {
        name: "git",
        text: include_str!("../../../policies/git.yaml"),
        packages: &["mcp-server-git", "mcp_server_git"],
    },
    Reviewed {
        name: "sqlite",
        text: include_str!("../../../policies/sqlite.yaml"),
        packages: &["mcp-server-sqlite", "mcp_server_sqlite"],
    },
    Reviewed {
        name: "playwright",
        text: include_str!("../../../policies/playwright.yaml"),
        packages: &["@playwright/mcp"],
    },
];

/// The reviewed policy for a server started by `command` with `args`, if there is one: a
/// package name appears as an argument (`npx -y @modelcontextprotocol/server-filesystem@1.2`)
/// or as the command itself.
pub fn find(command: &str, args: &[String]) -> Option<&'static Reviewed> {
    let names = std::iter::once(command).chain(args.iter().map(String::as_str));
    let words: Vec<&str> = names
        .map(|w| {
            // A version suffix (`pkg@1.2`, `@scope/pkg@latest`) is not part of the name.
            match w.rfind('@') {
                Some(at) if at > 0 => &w[..at],
                _ => w,
            }
        })
        .map(|w| {
            w.rsplit(['/', '\\'])
                .next()
                .filter(|_| !w.starts_with('@'))
                .unwrap_or(w)
        })
        .collect();
    REVIEWED
        .iter()
        .find(|r| r.packages.iter().any(|p| words.contains(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_matched_by_the_package_it_starts_whatever_its_version() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let found = |c: &str, a: &[&str]| find(c, &args(a)).map(|r| r.name);
        assert_eq!(
            found(
                "npx",
                &[
                    "-y",
                    "@modelcontextprotocol/server-filesystem@2026.1.14",
                    "/tmp"
                ]
            ),
            Some("filesystem")
        );
        assert_eq!(
            found("/usr/local/bin/github-mcp-server", &["stdio"]),
            Some("github")
        );
        assert_eq!(
            found("npx", &["-y", "@twilio-alpha/mcp", "AC/KEY:SECRET"]),
            Some("twilio")
        );
        assert_eq!(found("uvx", &["mcp-server-time"]).map(|_| ()), Some(()));
        assert_eq!(found("python", &["-m", "mcp_server_git"]), Some("git"));
        assert_eq!(
            found("npx", &["@playwright/mcp@latest"]),
            Some("playwright")
        );
        assert_eq!(found("uvx", &["some-other-server"]), None);
    }
}
