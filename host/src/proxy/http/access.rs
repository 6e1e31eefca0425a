//! Who may talk to the listener: `Host` and `Origin` validation (DNS-rebinding protection) and
//! token authentication (`Authorization: Bearer`, or an `X-API-Key` header), whose identity
//! becomes the caller plugins and rate-limit scopes see.

use hyper::header::{HeaderMap, AUTHORIZATION, HOST, ORIGIN};
use std::net::SocketAddr;

/// The header API-key clients send their key in.
const API_KEY: &str = "x-api-key";

/// A bearer token and the caller it stands for.
#[derive(Clone)]
pub struct Token {
    /// The caller identity.
    pub caller: String,
    /// The secret.
    pub secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}, <secret>)", self.caller)
    }
}

/// The access rules of one listener.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Accepted bearer tokens; empty means no authentication.
    pub tokens: Vec<Token>,
    /// Extra `Host` names accepted besides loopback ones (and the bound address).
    pub allowed_hosts: Vec<String>,
    /// Extra `Origin`s accepted besides loopback ones, e.g. `https://app.example.com`.
    pub allowed_origins: Vec<String>,
    /// Whether the listener is bound to a loopback address.
    pub loopback: bool,
    /// The bound address, accepted as a `Host`.
    pub bound: Option<SocketAddr>,
    /// Callers (of `tokens`) who may list and decide approval requests at `/approvals`.
    pub approvers: Vec<String>,
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no or a wrong bearer token.
    Unauthorized(String),
    /// 403: a foreign origin or host.
    Forbidden(String),
}

/// The host part of `host[:port]` or `[v6]:port`.
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Compare secrets without stopping at the first differing byte.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Access {
    /// Check a request's headers; on success returns the authenticated caller, if tokens are
    /// configured.
    pub fn check(&self, headers: &HeaderMap) -> Result<Option<String>, Refusal> {
        self.check_site(headers)?;
        self.authenticate(headers)
    }

    /// Check `Host` and `Origin` only, for what holds no data (the console's page).
    pub fn check_site(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check_host(headers)?;
        self.check_origin(headers)
    }

    fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
            return Err(Refusal::Forbidden("a Host header is required".into()));
        };
        let name = host_name(host);
        let bound = self.bound.map(|a| a.ip().to_string());
        let known = (self.loopback && is_loopback_name(name))
            || bound.as_deref() == Some(name)
            || self
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name) || h.eq_ignore_ascii_case(host));
        // A listener on a public address with no allowed hosts configured accepts any Host (it
        // is reached by names we cannot know); loopback listeners never do, which is what stops
        // DNS rebinding.
        if known || (!self.loopback && self.allowed_hosts.is_empty()) {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "Host `{host}` is not allowed (allow it with --allowed-host)"
            )))
        }
    }

    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        // Clients that are not browsers send no Origin; browsers always do.
        let Some(origin) = headers.get(ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("");
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let loopback_origin = authority.is_some_and(|a| is_loopback_name(host_name(a)));
        let listed = self
            .allowed_origins
            .iter()
            .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin));
        if listed || (self.loopback && loopback_origin) {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "Origin `{origin}` is not allowed (allow it with --allowed-origin)"
            )))
        }
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Option<String>, Refusal> {
        if self.tokens.is_empty() {
            return Ok(None);
        }
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        // Clients configured with an API key send it in its own header.
        let api_key = || headers.get(API_KEY).and_then(|v| v.to_str().ok());
        let presented = bearer.or_else(api_key).map(str::trim);
        let Some(presented) = presented else {
            return Err(Refusal::Unauthorized(
                "authentication required: send `Authorization: Bearer <token>` or `X-API-Key: <token>`".into(),
            ));
        };
        // Check every token so the time taken does not say which one came close.
        let mut caller = None;
        for t in &self.tokens {
            if same_secret(&t.secret, presented) && caller.is_none() {
                caller = Some(t.caller.clone());
            }
        }
        caller
            .map(Some)
            .ok_or_else(|| Refusal::Unauthorized("the bearer token is not valid".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn local() -> Access {
        Access {
            loopback: true,
            bound: Some("127.0.0.1:8080".parse().unwrap()),
            ..Access::default()
        }
    }

    #[test]
    fn loopback_hosts_and_origins_pass_and_foreign_ones_do_not() {
        let a = local();
        assert_eq!(a.check(&headers(&[("host", "127.0.0.1:8080")])), Ok(None));
        assert_eq!(
            a.check(&headers(&[
                ("host", "localhost:8080"),
                ("origin", "http://localhost:3000")
            ])),
            Ok(None)
        );
        assert_eq!(a.check(&headers(&[("host", "[::1]:8080")])), Ok(None));
        assert!(matches!(
            a.check(&headers(&[("host", "evil.example:8080")])),
            Err(Refusal::Forbidden(m)) if m.contains("evil.example")
        ));
        assert!(matches!(
            a.check(&headers(&[("host", "127.0.0.1:8080"), ("origin", "https://evil.example")])),
            Err(Refusal::Forbidden(m)) if m.contains("Origin `https://evil.example`")
        ));
        assert!(matches!(
            a.check(&headers(&[("host", "127.0.0.1:8080"), ("origin", "null")])),
            Err(Refusal::Forbidden(_))
        ));
        let listed = Access {
            allowed_origins: vec!["https://app.example.com".into()],
            ..local()
        };
        assert_eq!(
            listed.check(&headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "https://app.example.com")
            ])),
            Ok(None)
        );
    }

    #[test]
    fn tokens_name_the_caller() {
        let a = Access {
            tokens: vec![
                Token {
                    caller: "alice".into(),
                    secret: "s3cret-a".into(),
                },
                Token {
                    caller: "bob".into(),
                    secret: "s3cret-b".into(),
                },
            ],
            ..local()
        };
        let h = |auth: &str| headers(&[("host", "127.0.0.1:8080"), ("authorization", auth)]);
        assert_eq!(a.check(&h("Bearer s3cret-b")), Ok(Some("bob".into())));
        assert!(matches!(
            a.check(&h("Bearer s3cret-c")),
            Err(Refusal::Unauthorized(_))
        ));
        assert!(matches!(
            a.check(&h("Basic abc")),
            Err(Refusal::Unauthorized(_))
        ));
        assert!(matches!(
            a.check(&headers(&[("host", "127.0.0.1:8080")])),
            Err(Refusal::Unauthorized(m)) if m.contains("Bearer") && m.contains("X-API-Key")
        ));
        let key = |k: &str| headers(&[("host", "127.0.0.1:8080"), ("x-api-key", k)]);
        assert_eq!(a.check(&key("s3cret-a")), Ok(Some("alice".into())));
        assert!(matches!(
            a.check(&key("s3cret-x")),
            Err(Refusal::Unauthorized(_))
        ));
    }
}
