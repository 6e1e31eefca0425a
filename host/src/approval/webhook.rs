//! Telling operators that a call waits for them: each new approval request that an operator can
//! decide is POSTed to a webhook, off the call path (the agent's answer never waits for it), and
//! retried when the receiver fails.
//!
//! The body is JSON: `{"event": "approval_requested", "approval": {record}, "decide": "tollgate
//! approvals approve ID"}`. It is signed so the receiver can check it came from this Tollgate
//! and is fresh: `X-Tollgate-Signature: t=UNIX_SECONDS,v1=HEX`, where HEX is the HMAC-SHA256,
//! under the shared secret, of `UNIX_SECONDS.BODY`. HTTPS is verified against the system's
//! certificate authorities (`SSL_CERT_FILE` names another bundle); plain HTTP is accepted for
//! loopback receivers only, since the body names calls and their arguments' digest.

use super::Approval;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Uri;
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;

/// Attempts per notification, and the pause before each retry.
const BACKOFF: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(16),
];

/// The deadline of one attempt (connecting, TLS, the answer's head).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where system certificate authorities are looked for, in order (after `SSL_CERT_FILE`).
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// A webhook could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not one Tollgate posts to.
    #[error("approval webhook `{url}`: {why}")]
    Url {
        /// The URL.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// No certificate authorities to verify an HTTPS receiver with.
    #[error("approval webhook: no certificate authorities to verify HTTPS with ({0})")]
    Roots(String),
}

/// A receiver of approval requests.
pub struct Webhook {
    url: Uri,
    secret: Vec<u8>,
    /// For `https://` receivers.
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({}, <secret>)", self.url)
    }
}

impl Webhook {
    /// A webhook posting to `url`, signing with `secret` (at least 16 bytes).
    pub fn new(url: &str, secret: &str) -> Result<Self, WebhookError> {
        let bad = |why: &str| WebhookError::Url {
            url: url.into(),
            why: why.into(),
        };
        let uri: Uri = url.parse().map_err(|e| bad(&format!("not a URL ({e})")))?;
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        if secret.len() < 16 {
            return Err(bad("the signing secret is shorter than 16 characters"));
        }
        let tls = match uri.scheme_str() {
            Some("https") => Some(tls_connector()?),
            Some("http") if is_loopback(host) => None,
            Some("http") => return Err(bad(
                "plain http only for a loopback receiver (127.0.0.1, ::1, localhost); use https",
            )),
            _ => return Err(bad("expected an http:// or https:// URL")),
        };
        Ok(Self {
            url: uri,
            secret: secret.as_bytes().to_vec(),
            tls,
        })
    }

    /// Tell the receiver about `approval`, in the background; failures are logged.
    pub fn notify(self: &Arc<Self>, approval: &Approval) {
        let body = serde_json::json!({
            "event": "approval_requested",
            "approval": approval,
            "decide": format!("tollgate approvals approve {}", approval.id),
        })
        .to_string();
        let (hook, id) = (self.clone(), approval.id.clone());
        tokio::spawn(async move {
            let mut last = String::new();
            for (attempt, pause) in std::iter::once(Duration::ZERO).chain(BACKOFF).enumerate() {
                tokio::time::sleep(pause).await;
                match tokio::time::timeout(ATTEMPT_TIMEOUT, hook.post(&body)).await {
                    Ok(Ok(())) => {
                        crate::metrics::approval_webhook("delivered");
                        return;
                    }
                    Ok(Err(e)) => last = e,
                    Err(_) => last = format!("no answer within {ATTEMPT_TIMEOUT:?}"),
                }
                tracing::debug!(id, attempt, error = %last, "approval webhook attempt failed");
            }
            crate::metrics::approval_webhook("failed");
            tracing::warn!(id, url = %hook.url, error = %last, "approval webhook failed after {} attempts", BACKOFF.len() + 1);
        });
    }

    /// One attempt.
    async fn post(&self, body: &str) -> Result<(), String> {
        let host = self.url.host().unwrap_or_default().trim_matches(['[', ']']);
        let port = self
            .url
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let stamp = crate::state::now_ms() / 1000;
        let target = self.url.path_and_query().map_or("/", |p| p.as_str());
        let request = hyper::Request::post(target)
            .header(
                hyper::header::HOST,
                self.url.authority().map_or("", |a| a.as_str()),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("x-tollgate-event", "approval_requested")
            .header("x-tollgate-signature", sign(&self.secret, stamp, body))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let status = match &self.tls {
            None => send(tcp, request).await?,
            Some(tls) => {
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| format!("bad server name {host}: {e}"))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS with {host}: {e}"))?;
                send(stream, request).await?
            }
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }
}

/// Send `request` on `io` (HTTP/1.1) and return the answer's status.
async fn send<IO>(io: IO, request: hyper::Request<Full<Bytes>>) -> Result<hyper::StatusCode, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer.status())
}

/// `t=STAMP,v1=HEX`: HEX is HMAC-SHA256 under `secret` of `STAMP.BODY`.
pub fn sign(secret: &[u8], stamp: u64, body: &str) -> String {
    format!(
        "t={stamp},v1={}",
        hmac_sha256_hex(secret, format!("{stamp}.{body}").as_bytes())
    )
}

/// HMAC-SHA256 of `message` under `key`, in hex.
fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, message);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A TLS client trusting the system's certificate authorities (or `SSL_CERT_FILE`'s).
fn tls_connector() -> Result<tokio_rustls::TlsConnector, WebhookError> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let bundle = from_env
        .into_iter()
        .chain(CA_BUNDLES.iter().map(std::path::PathBuf::from))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            WebhookError::Roots(format!("none of SSL_CERT_FILE, {}", CA_BUNDLES.join(", ")))
        })?;
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(&bundle)
        .map_err(|e| WebhookError::Roots(format!("{}: {e}", bundle.display())))?;
    for cert in certs.flatten() {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(WebhookError::Roots(format!(
            "{} holds no certificate",
            bundle.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Roots(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_the_stamp_and_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            sign(b"Jefe", 1_700_000_000, "{}"),
            format!(
                "t=1700000000,v1={}",
                hmac_sha256_hex(b"Jefe", b"1700000000.{}")
            )
        );
    }

    #[test]
    fn plain_http_is_for_loopback_receivers_only() {
        let secret = "0123456789abcdef";
        assert!(Webhook::new("http://127.0.0.1:9000/hook", secret).is_ok());
        assert!(Webhook::new("http://localhost/hook", secret).is_ok());
        assert_eq!(
            Webhook::new("http://hooks.example.com/x", secret).unwrap_err().to_string(),
            "approval webhook `http://hooks.example.com/x`: plain http only for a loopback receiver (127.0.0.1, ::1, localhost); use https"
        );
        assert_eq!(
            Webhook::new("http://127.0.0.1/x", "short").unwrap_err().to_string(),
            "approval webhook `http://127.0.0.1/x`: the signing secret is shorter than 16 characters"
        );
        assert!(Webhook::new("ftp://127.0.0.1/x", secret).is_err());
    }
}
