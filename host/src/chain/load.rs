//! Loading a policy's rules: each rule's plugin read and verified (once per plugin), bound to
//! its instance pool, and wrapped with what the chain needs to run it.

use super::{ChainError, ChainRule};
use crate::config::{PluginSource, Rule};
use crate::engine::{PluginSet, PluginSpec, PolicyEngine};
use crate::state::CounterStore;
use std::sync::Arc;

/// What a policy load has read and loaded so far, shared by its rules.
#[derive(Default)]
pub(super) struct Loaded {
    /// Plugin files and packs, read and verified, by plugin name.
    pub(super) files: std::collections::HashMap<String, crate::pack::Resolved>,
    /// Plugins and their instance pools.
    pub(super) plugins: PluginSet,
}

pub(super) async fn load_rule(
    rule: &Rule,
    engine: &PolicyEngine,
    loaded: &mut Loaded,
    counters: &Arc<dyn CounterStore>,
    server: &str,
) -> Result<ChainRule, ChainError> {
    let mut known = None;
    let wasm: &[u8] = match &rule.source {
        PluginSource::Builtin(kind) => {
            known = Some(kind.plugin());
            // The engine takes a built-in's bytes from it, and only if its code does not fit.
            &[]
        }
        PluginSource::File {
            path,
            sha256,
            component,
            trusted_keys,
            grants,
        } => {
            let pack_error = |cause| ChainError::Pack {
                rule: rule.label.clone(),
                plugin: rule.plugin.clone(),
                cause,
            };
            // A plugin's file or pack is read and verified once per policy, however many rules
            // use it; each rule's configuration is still checked against the pack's schema.
            let resolved = match loaded.files.entry(rule.plugin.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    crate::pack::resolve(crate::pack::PluginRef {
                        path,
                        sha256: sha256.as_deref(),
                        component: component.as_deref(),
                        trusted_keys,
                        grants,
                    })
                    .map_err(pack_error)?,
                ),
            };
            resolved.check_config(&rule.config).map_err(pack_error)?;
            &resolved.wasm
        }
    };
    let grants: &[crate::engine::Capability] = match &rule.source {
        PluginSource::File { grants, .. } => grants,
        PluginSource::Builtin(_) => &[],
    };
    let limits = rule.limits.to_limits();
    let prefix = format!("{server}/{}/", rule.plugin);
    let spec = PluginSpec {
        name: &rule.plugin,
        wasm,
        counters: counters.clone(),
        key_prefix: &prefix,
        grants,
        builtin: known,
    };
    let bound = engine
        .load_rule(&mut loaded.plugins, &spec, &rule.config.to_string(), limits)
        .await
        .map_err(|cause| ChainError::Load {
            rule: rule.label.clone(),
            cause,
        })?;
    Ok(ChainRule {
        latency: crate::metrics::PluginLatency::of(&rule.plugin),
        label: rule.label.clone(),
        bound,
        deny_as: rule.deny_as,
        refund_on_error_result: rule.refund_on_error_result,
        answers_visibility: matches!(rule.source, PluginSource::File { .. }),
        dry_run: rule.dry_run,
        checks_results: match rule.source {
            PluginSource::Builtin(kind) => kind.checks_results(),
            PluginSource::File { .. } => true,
        },
        ask_timeout_ms: rule.ask_timeout_ms,
        ask_channels: rule.ask_channels,
        ask_wait_ms: rule.ask_wait_ms,
        version: version(rule),
    })
}

/// A digest of what a rule decides with (its plugin, that plugin's code, its configuration):
/// approvals given under one version of a rule do not carry over to another.
fn version(rule: &Rule) -> String {
    use sha2::{Digest, Sha256};
    let code = match &rule.source {
        PluginSource::Builtin(kind) => Some(kind.plugin().sha256.to_vec()),
        PluginSource::File { sha256, .. } => sha256.as_ref().map(|s| s.as_bytes().to_vec()),
    };
    let mut config = String::new();
    crate::pins::canonical(&rule.config, &mut config);
    let mut h = Sha256::new();
    h.update(rule.plugin.as_bytes());
    h.update([0]);
    h.update(code.unwrap_or_default());
    h.update([0]);
    h.update(config.as_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
