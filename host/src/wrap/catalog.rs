//! Reviewed policies for servers people run — the policy packs of `policies/catalog/`, embedded
//! — matched to a server entry by the packages their manifests name (`servers`).

use crate::pack::manifest::Manifest;

/// A reviewed policy pack and the packages it is for.
pub struct Reviewed {
    /// Its name (the folder under `policies/catalog/`).
    pub name: &'static str,
    /// The policy text.
    pub text: &'static str,
    /// Its manifest's text.
    manifest: &'static str,
}

impl Reviewed {
    /// Package or image names that identify the server in a command line (the manifest's
    /// `servers`).
    pub fn packages(&self) -> Vec<String> {
        Manifest::parse(self.manifest.as_bytes(), true)
            .map(|m| m.servers)
            .unwrap_or_default()
    }
}

macro_rules! reviewed {
    ($name:literal) => {
        Reviewed {
            name: $name,
            text: include_str!(concat!("../../../policies/catalog/", $name, "/policy.yaml")),
            manifest: include_str!(concat!(
                "../../../policies/catalog/",
                $name,
                "/tollgate-pack.json"
            )),
        }
    };
}

/// The reviewed policies.
pub const REVIEWED: &[Reviewed] = &[
    reviewed!("filesystem"),
    reviewed!("github"),
    reviewed!("twilio"),
    reviewed!("memory"),
    reviewed!("time"),
    reviewed!("fetch"),
    reviewed!("git"),
    reviewed!("sqlite"),
    reviewed!("playwright"),
    reviewed!("slack"),
    reviewed!("notion"),
    reviewed!("stripe"),
    reviewed!("postgres"),
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
        .find(|r| r.packages().iter().any(|p| words.contains(&p.as_str())))
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
        assert_eq!(
            found("npx", &["-y", "@stripe/mcp", "--tools=all"]),
            Some("stripe")
        );
        assert_eq!(found("uvx", &["some-other-server"]), None);
        for r in REVIEWED {
            assert!(
                !r.packages().is_empty(),
                "{}: its manifest names no servers",
                r.name
            );
        }
    }
}
