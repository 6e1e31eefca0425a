//! `tollgate pack push`: a pack's `.tar.gz` as a one-layer OCI artifact.

use super::artifact::EMPTY_CONFIG;
use super::connect::client_for;
use super::{block_on, credentials, unreachable, OciRef, RegistryError, ARTIFACT_TYPE, LAYER_TYPE};
use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::OciImageManifest;
use std::collections::BTreeMap;

/// Push a pack's `.tar.gz` bytes to `reference` (its tag); returns the manifest's digest.
/// `title` names the layer's file (`NAME-VERSION.tar.gz`), as `oras pull` writes it.
pub fn push(
    archive: Vec<u8>,
    title: &str,
    annotations: BTreeMap<String, String>,
    reference: &OciRef,
) -> Result<String, RegistryError> {
    block_on(async {
        let name = reference.to_string();
        let refused = |e: oci_client::errors::OciDistributionError| match unreachable(&e) {
            Some(cause) => RegistryError::Unreachable {
                reference: name.clone(),
                cause,
                what: "anything (nothing was pushed)".into(),
            },
            None => RegistryError::Registry {
                reference: name.clone(),
                cause: e.to_string(),
            },
        };
        if reference.pinned().is_some() || reference.reference.tag().is_none() {
            return Err(RegistryError::BadReference {
                reference: name.clone(),
                why: "a push names a tag, not a digest".into(),
            });
        }
        let client = client_for(reference.registry());
        let auth = credentials(reference.registry());
        let layers = vec![ImageLayer::new(
            archive,
            LAYER_TYPE.to_string(),
            Some(BTreeMap::from([(
                "org.opencontainers.image.title".to_string(),
                title.to_string(),
            )])),
        )];
        let config = Config::new(b"{}".to_vec(), EMPTY_CONFIG.to_string(), None);
        let mut manifest = OciImageManifest::build(&layers, &config, Some(annotations));
        manifest.artifact_type = Some(ARTIFACT_TYPE.to_string());
        client
            .push(
                &reference.reference,
                &layers,
                config,
                &auth,
                Some(manifest.clone()),
            )
            .await
            .map_err(refused)?;
        client
            .fetch_manifest_digest(&reference.reference, &auth)
            .await
            .map_err(refused)
    })
}
