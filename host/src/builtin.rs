//! The built-in plugins, compiled from `plugins/` by the guest build (run from `build.rs`) and
//! embedded in the binary.

/// `deny`: refuse with a reason, always or when conditions hold.
pub const DENY: &[u8] = include_bytes!(concat!(
    env!("TOLLGATE_GUEST_DIR"),
    "/tollgate_plugin_deny.wasm"
));
/// `rate-limit`: limits through the host's counters.
pub const RATE_LIMIT: &[u8] = include_bytes!(concat!(
    env!("TOLLGATE_GUEST_DIR"),
    "/tollgate_plugin_rate_limit.wasm"
));
/// `redact`: replace patterns in tool results.
pub const REDACT: &[u8] = include_bytes!(concat!(
    env!("TOLLGATE_GUEST_DIR"),
    "/tollgate_plugin_redact.wasm"
));
/// `validate`: JSON Schema and conditions on the arguments.
pub const VALIDATE: &[u8] = include_bytes!(concat!(
    env!("TOLLGATE_GUEST_DIR"),
    "/tollgate_plugin_validate.wasm"
));

/// The built-in plugins by the name policy files use for them.
pub const ALL: &[(&str, &[u8])] = &[
    ("deny", DENY),
    ("rate-limit", RATE_LIMIT),
    ("redact", REDACT),
    ("validate", VALIDATE),
];

/// A built-in plugin's component, by name.
pub fn get(name: &str) -> Option<&'static [u8]> {
    ALL.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| *bytes)
}
