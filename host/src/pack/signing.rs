//! Ed25519 signatures over a pack's manifest (which holds every component's sha256, so the
//! signature covers the code too). Keys are written `ed25519:<base64 of the 32-byte public key>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

/// The signature's file name, next to the manifest.
pub const FILE: &str = "tollgate-pack.sig";

/// The first line of a private key file.
const KEY_HEADER: &str = "# Tollgate pack signing key (ed25519, PKCS#8, base64). Keep it secret.";

/// The contents of `tollgate-pack.sig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The signer's public key, `ed25519:…`.
    pub key: String,
    /// The signature over the manifest's bytes, base64.
    pub signature: String,
}

/// A signing or verification problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The private key file is not one `tollgate pack keygen` wrote.
    #[error("not a Tollgate signing key: {0}")]
    BadPrivateKey(String),
    /// A public key that is not `ed25519:<base64 of 32 bytes>`.
    #[error("{0:?} is not a public key of the form ed25519:<base64 of 32 bytes>")]
    BadPublicKey(String),
    /// The signature file cannot be read.
    #[error("{FILE} is not valid: {0}")]
    BadSignatureFile(String),
    /// The signature does not match the manifest and key.
    #[error("the signature by {0} does not match the pack's manifest (the pack was changed after signing, or signed with another key)")]
    Mismatch(String),
    /// Valid, but by a key the policy does not trust.
    #[error("the pack is signed by {key}, which is not among the trusted keys ({trusted})")]
    Untrusted {
        /// The signer.
        key: String,
        /// What the policy trusts.
        trusted: String,
    },
    /// Trusted keys are configured but the pack carries no signature.
    #[error("the policy requires a signature by one of {0}, but the pack has no {FILE}")]
    Unsigned(String),
    /// Key generation failed (no system randomness).
    #[error("cannot generate a key: {0}")]
    Generate(String),
}

/// A new key pair: the private key file's text and the public key.
pub fn generate() -> Result<(String, String), SigningError> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| SigningError::Generate(e.to_string()))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|e| SigningError::Generate(e.to_string()))?;
    let private = format!("{KEY_HEADER}\n{}\n", B64.encode(pkcs8.as_ref()));
    Ok((private, public_key_text(&pair)))
}

fn public_key_text(pair: &Ed25519KeyPair) -> String {
    format!("ed25519:{}", B64.encode(pair.public_key().as_ref()))
}

fn parse_private(text: &str) -> Result<Ed25519KeyPair, SigningError> {
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("");
    let der = B64
        .decode(body.trim())
        .map_err(|e| SigningError::BadPrivateKey(e.to_string()))?;
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
        .map_err(|e| SigningError::BadPrivateKey(e.to_string()))
}

/// The public key of a private key file's text.
pub fn public_key_of(private_key_text: &str) -> Result<String, SigningError> {
    Ok(public_key_text(&parse_private(private_key_text)?))
}

/// Sign the manifest's bytes.
pub fn sign(manifest: &[u8], private_key_text: &str) -> Result<Signature, SigningError> {
    let pair = parse_private(private_key_text)?;
    Ok(Signature {
        key: public_key_text(&pair),
        signature: B64.encode(pair.sign(manifest).as_ref()),
    })
}

fn public_key_bytes(key: &str) -> Result<Vec<u8>, SigningError> {
    let bad = || SigningError::BadPublicKey(key.to_string());
    let b64 = key.trim().strip_prefix("ed25519:").ok_or_else(bad)?;
    let bytes = B64.decode(b64).map_err(|_| bad())?;
    if bytes.len() != 32 {
        return Err(bad());
    }
    Ok(bytes)
}

/// Check a signature file against the manifest; with `trusted` keys, also that the signer is
/// one of them. Returns the signer's key.
pub fn verify(
    manifest: &[u8],
    signature_file: &[u8],
    trusted: &[String],
) -> Result<String, SigningError> {
    let sig: Signature = serde_json::from_slice(signature_file)
        .map_err(|e| SigningError::BadSignatureFile(e.to_string()))?;
    let key = public_key_bytes(&sig.key)?;
    let raw = B64
        .decode(sig.signature.trim())
        .map_err(|e| SigningError::BadSignatureFile(format!("`signature`: {e}")))?;
    UnparsedPublicKey::new(&ED25519, &key)
        .verify(manifest, &raw)
        .map_err(|_| SigningError::Mismatch(sig.key.clone()))?;
    if !trusted.is_empty() {
        let mut accepted = false;
        for t in trusted {
            if public_key_bytes(t)? == key {
                accepted = true;
            }
        }
        if !accepted {
            return Err(SigningError::Untrusted {
                key: sig.key,
                trusted: trusted.join(", "),
            });
        }
    }
    Ok(sig.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_every_way_it_fails() {
        let (private, public) = generate().unwrap();
        assert_eq!(public_key_of(&private).unwrap(), public);
        let manifest = br#"{"name":"p"}"#;
        let sig = serde_json::to_vec(&sign(manifest, &private).unwrap()).unwrap();
        assert_eq!(verify(manifest, &sig, &[]).unwrap(), public);
        assert_eq!(
            verify(manifest, &sig, std::slice::from_ref(&public)).unwrap(),
            public
        );
        assert!(matches!(
            verify(br#"{"name":"q"}"#, &sig, &[]),
            Err(SigningError::Mismatch(_))
        ));
        let (_, other) = generate().unwrap();
        assert!(matches!(
            verify(manifest, &sig, &[other]),
            Err(SigningError::Untrusted { .. })
        ));
        assert!(matches!(
            verify(manifest, &sig, &["ed25519:short".into()]),
            Err(SigningError::BadPublicKey(_))
        ));
        assert!(matches!(
            verify(manifest, b"not json", &[]),
            Err(SigningError::BadSignatureFile(_))
        ));
        assert!(sign(manifest, "garbage").is_err());
    }
}
