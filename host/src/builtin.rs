//! The built-in plugins, compiled from `plugins/` by the guest build (run from `build.rs`) and
//! embedded in the binary twice: as components, and as code wasmtime compiled from them at build
//! time, so a first start compiles nothing of ours (the code is used when it fits the running
//! engine; otherwise the component is compiled as any plugin is). Both are deflated (20 MB of
//! them become 7): a first start inflates the code into the code cache once, and later starts
//! map it from there without inflating anything.

/// One built-in plugin.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The name policy files use for it.
    pub name: &'static str,
    /// Its component, deflated.
    wasm: &'static [u8],
    /// Its code, compiled at build time for the engine settings of
    /// [`crate::engine::settings`] without fuel, deflated.
    precompiled: &'static [u8],
    /// The sha256 of its component, computed at build time.
    pub sha256: &'static [u8; 32],
}

impl Builtin {
    /// Its component.
    pub fn wasm(&self) -> Vec<u8> {
        inflate(self.wasm)
    }

    /// Its code, compiled at build time for the engine settings of
    /// [`crate::engine::settings`] without fuel.
    pub fn precompiled(&self) -> Vec<u8> {
        inflate(self.precompiled)
    }
}

fn inflate(deflated: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::with_capacity(deflated.len() * 3);
    flate2::read::DeflateDecoder::new(deflated)
        .read_to_end(&mut out)
        .expect("the build script deflated this");
    out
}

macro_rules! builtin {
    ($name:literal, $file:literal) => {
        Builtin {
            name: $name,
            wasm: include_bytes!(concat!(
                env!("TOLLGATE_PRECOMPILED_DIR"),
                "/",
                $file,
                ".wasm.z"
            )),
            precompiled: include_bytes!(concat!(
                env!("TOLLGATE_PRECOMPILED_DIR"),
                "/",
                $file,
                ".cwasm.z"
            )),
            sha256: include_bytes!(concat!(
                env!("TOLLGATE_PRECOMPILED_DIR"),
                "/",
                $file,
                ".sha256"
            )),
        }
    };
}

/// `deny`: refuse with a reason, always or when conditions hold.
pub const DENY: Builtin = builtin!("deny", "tollgate_plugin_deny");
/// `rate-limit`: limits through the host's counters.
pub const RATE_LIMIT: Builtin = builtin!("rate-limit", "tollgate_plugin_rate_limit");
/// `redact`: replace patterns in tool results.
pub const REDACT: Builtin = builtin!("redact", "tollgate_plugin_redact");
/// `validate`: JSON Schema and conditions on the arguments.
pub const VALIDATE: Builtin = builtin!("validate", "tollgate_plugin_validate");

/// The built-in plugins.
pub const ALL: &[Builtin] = &[DENY, RATE_LIMIT, REDACT, VALIDATE];

/// A built-in plugin, by the name policy files use for it.
pub fn get(name: &str) -> Option<&'static Builtin> {
    ALL.iter().find(|b| b.name == name)
}
