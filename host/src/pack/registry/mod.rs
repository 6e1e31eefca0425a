//! Packs in OCI registries: `oci://REGISTRY/REPO:TAG`, optionally pinned `@sha256:…`.
//!
//! **Layout** (what `tollgate pack push` writes, and what `oras push` can write by hand):
//! an OCI image manifest with `artifactType` [`ARTIFACT_TYPE`], the empty config
//! (`application/vnd.oci.empty.v1+json`, `{}`) and one layer: the pack's `.tar.gz` as
//! [`LAYER_TYPE`] (a `tar+gzip` image layer or oras's default `tar` type are read too; the bytes
//! are checked as a pack either way).
//!
//! **Pulling** resolves the tag, downloads the manifest and its one layer (each checked against
//! its digest, the layer against [`MAX_PACK_BYTES`] before a byte is read) and keeps both in a
//! cache by digest (`$XDG_CACHE_HOME/tollgate/packs`). A pinned digest that the tag no longer
//! points to refuses to load; a tag that moved since the last pull is reported. When the
//! registry cannot be reached, the cached copy of the pinned digest (or of the tag's last pull)
//! is used, with a warning; the pack is then opened with the same checks as a local one.
//!
//! **Transport**: HTTPS, except plain HTTP for a loopback registry (`localhost`, `127.*`,
//! `[::1]`). **Credentials**: `TOLLGATE_REGISTRY_USERNAME` / `TOLLGATE_REGISTRY_PASSWORD`, else the
//! registry's entry in the Docker config file (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), else anonymous.

mod artifact;
mod cache;
mod connect;
mod push;

pub use artifact::{ARTIFACT_TYPE, LAYER_TYPE};
pub use cache::Cache;
pub use connect::credentials;
pub use push::push;

use super::archive::MAX_PACK_BYTES;
use super::sha256_hex;
use artifact::{check_manifest, Bounded, MANIFEST_TYPES, MAX_MANIFEST_BYTES};
use connect::client_for;
use oci_client::Reference;
use std::path::PathBuf;

/// How a registry reference starts in a policy file and on the command line.
pub const SCHEME: &str = "oci://";

/// A registry reference could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not `oci://REGISTRY/REPO:TAG[@sha256:…]`.
    #[error("{reference}: not a registry reference ({why}); write oci://REGISTRY/REPOSITORY:TAG, optionally with @sha256:DIGEST")]
    BadReference {
        /// What was written.
        reference: String,
        /// What is wrong.
        why: String,
    },
    /// The registry could not be reached and nothing usable is cached.
    #[error(
        "{reference}: the registry cannot be reached ({cause}), and no copy of {what} is cached"
    )]
    Unreachable {
        /// The reference.
        reference: String,
        /// Why.
        cause: String,
        /// What a cached copy would have had to be.
        what: String,
    },
    /// The registry answered with an error (unknown tag or repository, refused credentials…).
    #[error("{reference}: the registry refused: {cause}")]
    Registry {
        /// The reference.
        reference: String,
        /// What it said.
        cause: String,
    },
    /// The artifact is not a pack.
    #[error("{reference}: not a Tollgate pack: {why}")]
    NotAPack {
        /// The reference.
        reference: String,
        /// Why.
        why: String,
    },
    /// Bigger than a pack may be.
    #[error("{reference}: the pack's layer is {size} bytes, more than the {} MiB a pack may hold", MAX_PACK_BYTES >> 20)]
    TooLarge {
        /// The reference.
        reference: String,
        /// Its declared size.
        size: i64,
    },
    /// Bytes that are not what their digest says.
    #[error("{reference}: {what} has digest {actual}, but {expected} was expected")]
    Digest {
        /// The reference.
        reference: String,
        /// The manifest or the layer.
        what: &'static str,
        /// The digest expected.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The tag now points to another manifest than the pinned digest.
    #[error("{reference}: the tag now points to {now}, not to the pinned {pinned}; review the new pack and update the pin, or pull it by digest")]
    PinMoved {
        /// The reference.
        reference: String,
        /// The pin.
        pinned: String,
        /// Where the tag points now.
        now: String,
    },
    /// The cache could not be read or written.
    #[error("pack cache {path}: {cause}")]
    Cache {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

/// `oci://REGISTRY/REPO:TAG[@sha256:…]`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRef {
    reference: Reference,
    written: String,
}

impl OciRef {
    /// Parse a reference written with or without `oci://`.
    pub fn parse(text: &str) -> Result<OciRef, RegistryError> {
        let bare = text.strip_prefix(SCHEME).unwrap_or(text);
        let bad = |why: String| RegistryError::BadReference {
            reference: text.to_string(),
            why,
        };
        if !bare
            .split('/')
            .next()
            .is_some_and(|r| r.contains(['.', ':']) || r == "localhost")
        {
            return Err(bad("it does not start with a registry host".into()));
        }
        let reference: Reference = bare.parse().map_err(|e| bad(format!("{e}")))?;
        if let Some(d) = reference.digest() {
            let hex = d.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad(format!("the digest {d} is not sha256:<64 hex digits>")));
            }
        }
        Ok(OciRef {
            reference,
            written: format!("{SCHEME}{bare}"),
        })
    }

    /// Whether `text` is a registry reference (starts with `oci://`).
    pub fn is_oci(text: &str) -> bool {
        text.starts_with(SCHEME)
    }

    /// The registry's host (and port).
    pub fn registry(&self) -> &str {
        self.reference.registry()
    }

    /// The pinned manifest digest, if any.
    pub fn pinned(&self) -> Option<&str> {
        self.reference.digest()
    }

    /// The same repository at `digest`: what a pinned reference to the fetched pack says.
    pub fn at(&self, digest: &str) -> String {
        let r = &self.reference;
        match r.tag() {
            Some(tag) => format!("{SCHEME}{}/{}:{tag}@{digest}", r.registry(), r.repository()),
            None => format!("{SCHEME}{}/{}@{digest}", r.registry(), r.repository()),
        }
    }
}

impl std::fmt::Display for OciRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

/// A pack fetched (or found in the cache).
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The pack's `.tar.gz` in the cache, ready for [`super::Pack::open`].
    pub archive: PathBuf,
    /// The manifest's digest (`sha256:…`).
    pub digest: String,
    /// Whether the registry could not be reached and the cached copy was used.
    pub offline: bool,
}

/// Run a registry conversation to its end from synchronous code (a policy's load), on a thread
/// of its own so that it works inside and outside a runtime.
fn block_on<T: Send>(f: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the registry client")
                .block_on(f)
        })
        .join()
        .expect("the registry client does not panic")
    })
}

/// Whether an error means the registry was not reached at all (rather than that it refused).
fn unreachable(e: &oci_client::errors::OciDistributionError) -> Option<String> {
    match e {
        oci_client::errors::OciDistributionError::RequestError(r)
            if r.is_connect() || r.is_timeout() =>
        {
            let mut cause = r.to_string();
            let mut source = std::error::Error::source(r);
            while let Some(s) = source {
                cause = format!("{cause}: {s}");
                source = s.source();
            }
            Some(cause)
        }
        _ => None,
    }
}

/// Fetch the pack at `reference` (or use the cache; see the module's documentation).
pub fn fetch(reference: &OciRef, cache: &Cache) -> Result<Fetched, RegistryError> {
    block_on(fetch_async(reference, cache))
}

async fn fetch_async(r: &OciRef, cache: &Cache) -> Result<Fetched, RegistryError> {
    let name = r.to_string();
    let client = client_for(r.registry());
    let auth = credentials(r.registry());
    let refused = |e: oci_client::errors::OciDistributionError| RegistryError::Registry {
        reference: name.clone(),
        cause: e.to_string(),
    };
    let digest = match r.reference.tag() {
        Some(tag) => {
            let by_tag = Reference::with_tag(
                r.registry().to_string(),
                r.reference.repository().to_string(),
                tag.to_string(),
            );
            match client.fetch_manifest_digest(&by_tag, &auth).await {
                Ok(now) => {
                    if let Some(pinned) = r.pinned().filter(|p| *p != now) {
                        return Err(RegistryError::PinMoved {
                            reference: name,
                            pinned: pinned.to_string(),
                            now,
                        });
                    }
                    if let Some(before) = cache.last_seen(r).filter(|b| *b != now) {
                        tracing::warn!(reference = %name, before = %before, now = %now, "the tag moved since the last pull: {name} was {before} and is now {now}");
                    }
                    now
                }
                Err(e) => match unreachable(&e) {
                    Some(cause) => return offline(r, cache, cause),
                    None => return Err(refused(e)),
                },
            }
        }
        None => r
            .pinned()
            .expect("a reference has a tag or a digest")
            .to_string(),
    };
    if let Some(archive) = cache.cached(&digest, &name)? {
        remember_tag(cache, r, &digest)?;
        return Ok(Fetched {
            archive,
            digest,
            offline: false,
        });
    }
    let by_digest = Reference::with_digest(
        r.registry().to_string(),
        r.reference.repository().to_string(),
        digest.clone(),
    );
    let (manifest, _) = match client
        .pull_manifest_raw(&by_digest, &auth, MANIFEST_TYPES)
        .await
    {
        Ok(m) => m,
        Err(e) => match unreachable(&e) {
            Some(cause) => return offline(r, cache, cause),
            None => return Err(refused(e)),
        },
    };
    if manifest.len() > MAX_MANIFEST_BYTES {
        return Err(RegistryError::NotAPack {
            reference: name,
            why: format!("its manifest is {} bytes", manifest.len()),
        });
    }
    let layer = check_manifest(&manifest, &digest, &name)?;
    let mut bytes = Bounded(Vec::with_capacity(layer.size as usize));
    client
        .pull_blob(&by_digest, &layer, &mut bytes)
        .await
        .map_err(|e| match e {
            oci_client::errors::OciDistributionError::DigestError(d) => RegistryError::Digest {
                reference: name.clone(),
                what: "the layer",
                expected: layer.digest.clone(),
                actual: d.to_string(),
            },
            e => refused(e),
        })?;
    let actual = format!("sha256:{}", sha256_hex(&bytes.0));
    if actual != layer.digest {
        return Err(RegistryError::Digest {
            reference: name,
            what: "the layer",
            expected: layer.digest,
            actual,
        });
    }
    let archive = cache.blob(&layer.digest, "tar.gz");
    cache.write(&archive, &bytes.0)?;
    cache.write(&cache.blob(&digest, "json"), &manifest)?;
    remember_tag(cache, r, &digest)?;
    Ok(Fetched {
        archive,
        digest,
        offline: false,
    })
}

fn remember_tag(cache: &Cache, r: &OciRef, digest: &str) -> Result<(), RegistryError> {
    match cache.tag_file(r) {
        Some(file) => cache.write(&file, digest.as_bytes()),
        None => Ok(()),
    }
}

/// The registry is down: the cached copy of the pin, else of the tag's last pull.
fn offline(r: &OciRef, cache: &Cache, cause: String) -> Result<Fetched, RegistryError> {
    let name = r.to_string();
    let wanted = r
        .pinned()
        .map(str::to_string)
        .or_else(|| cache.last_seen(r));
    let unreachable = |what: String| RegistryError::Unreachable {
        reference: name.clone(),
        cause: cause.clone(),
        what,
    };
    let Some(digest) = wanted else {
        return Err(unreachable("it".into()));
    };
    let Some(archive) = cache.cached(&digest, &name)? else {
        return Err(unreachable(digest));
    };
    tracing::warn!(reference = %name, digest = %digest, "the registry cannot be reached ({cause}); using the cached copy of {digest}");
    Ok(Fetched {
        archive,
        digest,
        offline: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_a_registry_and_a_tag_or_a_pinned_digest() {
        let pin = format!("sha256:{}", "a".repeat(64));
        let r = OciRef::parse(&format!("oci://localhost:5000/tollgate/github:1.0@{pin}")).unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.pinned(), Some(pin.as_str()));
        let e = OciRef::parse("oci://tollgate/github:1.0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not start with a registry host"), "{e}");
        let e = OciRef::parse("oci://localhost:5000/x@sha256:abc")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("oci://localhost:5000/x@sha256:abc: not a registry reference"),
            "{e}"
        );
    }
}
