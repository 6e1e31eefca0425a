//! How Tollgate reaches a registry: HTTPS (plain HTTP only to this machine), TLS through ring,
//! and credentials from the environment or the Docker config file.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use std::path::PathBuf;
use std::time::Duration;

/// Whether `registry` (host, maybe with a port) is this machine.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn client_for(registry: &str) -> Client {
    // One TLS provider for the whole binary (ring, as the listener's); installing it twice is
    // harmless.
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig {
        protocol: if is_loopback(registry) {
            ClientProtocol::HttpsExcept(vec![registry.to_string()])
        } else {
            ClientProtocol::Https
        },
        connect_timeout: Some(Duration::from_secs(5)),
        read_timeout: Some(Duration::from_secs(30)),
        platform_resolver: None,
        ..ClientConfig::default()
    })
}

/// Credentials for `registry`: the environment's, else the Docker config file's, else none.
pub fn credentials(registry: &str) -> RegistryAuth {
    if let (Ok(user), Ok(password)) = (
        std::env::var("TOLLGATE_REGISTRY_USERNAME"),
        std::env::var("TOLLGATE_REGISTRY_PASSWORD"),
    ) {
        return RegistryAuth::Basic(user, password);
    }
    let file = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".docker")))
        .map(|d| d.join("config.json"));
    file.and_then(|f| std::fs::read(f).ok())
        .and_then(|bytes| docker_config_auth(&bytes, registry))
        .unwrap_or(RegistryAuth::Anonymous)
}

/// The `auths` entry of a Docker config file for `registry`: `auth` (base64 `user:password`) or
/// `username` and `password`.
fn docker_config_auth(config: &[u8], registry: &str) -> Option<RegistryAuth> {
    use base64::Engine;
    let config: serde_json::Value = serde_json::from_slice(config).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(key, v)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()?;
        let same = host == registry
            || (registry == "docker.io" && host == "index.docker.io")
            || (registry == "index.docker.io" && host == "docker.io");
        same.then_some(v)
    })?;
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?;
        let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        return Some(RegistryAuth::Basic(user.into(), password.into()));
    }
    let user = entry.get("username")?.as_str()?;
    let password = entry.get("password")?.as_str()?;
    Some(RegistryAuth::Basic(user.into(), password.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_only_for_this_machine() {
        for r in [
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "ghcr.io",
            "registry.example:5000",
            "10.0.0.1:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }

    #[test]
    fn docker_config_credentials_are_read_by_registry() {
        let config = br#"{"auths":{"https://ghcr.io":{"auth":"dXNlcjpzM2NyZXQ="},
            "localhost:5000":{"username":"me","password":"pw"}}}"#;
        let basic = |a: Option<RegistryAuth>| match a {
            Some(RegistryAuth::Basic(u, p)) => Some((u, p)),
            _ => None,
        };
        assert_eq!(
            basic(docker_config_auth(config, "ghcr.io")),
            Some(("user".into(), "s3cret".into()))
        );
        assert_eq!(
            basic(docker_config_auth(config, "localhost:5000")),
            Some(("me".into(), "pw".into()))
        );
        assert!(docker_config_auth(config, "quay.io").is_none());
    }
}
