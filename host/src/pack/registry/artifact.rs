//! What a pack looks like in a registry: the artifact's types and limits, and the check of a
//! manifest before anything it names is downloaded.

use super::RegistryError;
use crate::pack::archive::MAX_PACK_BYTES;
use crate::pack::sha256_hex;
use oci_client::manifest::{OciDescriptor, OciImageManifest};

/// The artifact type of a Tollgate pack's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.tollgate.pack.v1+json";
/// The media type of the pack's one layer, its `.tar.gz`.
pub const LAYER_TYPE: &str = "application/vnd.tollgate.pack.layer.v1.tar+gzip";
/// The OCI empty config that artifacts carry.
pub(super) const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
/// Layer types a pack is read from: ours, a gzip image layer, and what `oras push` writes for a
/// file without a type.
pub(super) const ACCEPTED_LAYERS: &[&str] = &[
    LAYER_TYPE,
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar",
];
/// Manifest types asked for.
pub(super) const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// The most a manifest may weigh.
pub(super) const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The pack's layer that a manifest names, after checking the manifest's digest and shape.
pub(super) fn check_manifest(
    bytes: &[u8],
    digest: &str,
    reference: &str,
) -> Result<OciDescriptor, RegistryError> {
    let actual = format!("sha256:{}", sha256_hex(bytes));
    if actual != digest {
        return Err(RegistryError::Digest {
            reference: reference.to_string(),
            what: "the manifest",
            expected: digest.to_string(),
            actual,
        });
    }
    let not_a_pack = |why: String| RegistryError::NotAPack {
        reference: reference.to_string(),
        why,
    };
    let manifest: OciImageManifest = serde_json::from_slice(bytes)
        .map_err(|e| not_a_pack(format!("its manifest is not an OCI image manifest ({e})")))?;
    let [layer] = manifest.layers.as_slice() else {
        return Err(not_a_pack(format!(
            "a pack is one layer, and this artifact has {}",
            manifest.layers.len()
        )));
    };
    if !ACCEPTED_LAYERS.contains(&layer.media_type.as_str()) {
        return Err(not_a_pack(format!(
            "its layer's media type is {}, not {LAYER_TYPE}",
            layer.media_type
        )));
    }
    if layer.size < 0 || layer.size as u64 > MAX_PACK_BYTES {
        return Err(RegistryError::TooLarge {
            reference: reference.to_string(),
            size: layer.size,
        });
    }
    Ok(layer.clone())
}

/// An in-memory sink that refuses to grow past a pack's limit (a registry may send more than
/// the manifest declared).
pub(super) struct Bounded(pub(super) Vec<u8>);

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if (self.0.len() + buf.len()) as u64 > MAX_PACK_BYTES {
            return std::task::Poll::Ready(Err(std::io::Error::other(format!(
                "the layer is bigger than the {} MiB a pack may hold",
                MAX_PACK_BYTES >> 20
            ))));
        }
        self.0.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_is_checked_against_its_digest_its_one_layer_and_the_size_limit() {
        let manifest = |layers: &str| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "config":{{"mediaType":"{EMPTY_CONFIG}","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},
                "layers":[{layers}]}}"#
            )
        };
        let layer = |size: u64| {
            format!(
                r#"{{"mediaType":"{LAYER_TYPE}","digest":"sha256:{}","size":{size}}}"#,
                "b".repeat(64)
            )
        };
        let check = |text: String| {
            let digest = format!("sha256:{}", sha256_hex(text.as_bytes()));
            check_manifest(text.as_bytes(), &digest, "oci://r/p:1").map(|l| l.size)
        };
        assert_eq!(check(manifest(&layer(10))).unwrap(), 10);
        let e = check(manifest(&layer(MAX_PACK_BYTES + 1)))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "oci://r/p:1: the pack's layer is 268435457 bytes, more than the 256 MiB"
            ),
            "{e}"
        );
        let two = format!("{},{}", layer(1), layer(1));
        let e = check(manifest(&two)).unwrap_err().to_string();
        assert_eq!(
            e,
            "oci://r/p:1: not a Tollgate pack: a pack is one layer, and this artifact has 2"
        );
        let text = manifest(&layer(10));
        let e = check_manifest(
            text.as_bytes(),
            &format!("sha256:{}", "0".repeat(64)),
            "oci://r/p:1",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("oci://r/p:1: the manifest has digest sha256:"),
            "{e}"
        );
    }
}
