//! The built-in plugins, compiled from `plugins/` by the guest build (run from `build.rs`) and
//! embedded in the binary twice: as components, and as code wasmtime compiled from them at build
//! time, so a first start compiles nothing of ours (the code is used when it fits the running
//! engine; otherwise the component is compiled as any plugin is). Both are deflated (20 MB of
//! them become 7): a first start inflates the code into the code cache once, and later starts
//! map it from there without inflating anything.

/// The built-in plugins, by kind: what policy files name and the rest of Tollgate matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `deny`: refuse with a reason, always or when conditions hold.
    Deny,
    /// `rate-limit`: limits through the host's counters.
    RateLimit,
    /// `redact`: replace patterns in tool results.
    Redact,
    /// `validate`: JSON Schema and conditions on the arguments.
    Validate,
}

impl Kind {
    /// Every kind, in the order policy documentation lists them.
    pub const ALL: [Kind; 4] = [Kind::Deny, Kind::RateLimit, Kind::Redact, Kind::Validate];

    /// The name policy files use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deny => "deny",
            Kind::RateLimit => "rate-limit",
            Kind::Redact => "redact",
            Kind::Validate => "validate",
        }
    }

    /// The kind a policy file names, if it is built in.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Its plugin.
    pub fn plugin(self) -> &'static Builtin {
        match self {
            Kind::Deny => &DENY,
            Kind::RateLimit => &RATE_LIMIT,
            Kind::Redact => &REDACT,
            Kind::Validate => &VALIDATE,
        }
    }

    /// Whether its plugin looks at results as well as calls.
    pub fn checks_results(self) -> bool {
        self == Kind::Redact
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One built-in plugin.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Which one.
    pub kind: Kind,
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
    ($kind:expr, $file:literal) => {
        Builtin {
            kind: $kind,
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
pub const DENY: Builtin = builtin!(Kind::Deny, "tollgate_plugin_deny");
/// `rate-limit`: limits through the host's counters.
pub const RATE_LIMIT: Builtin = builtin!(Kind::RateLimit, "tollgate_plugin_rate_limit");
/// `redact`: replace patterns in tool results.
pub const REDACT: Builtin = builtin!(Kind::Redact, "tollgate_plugin_redact");
/// `validate`: JSON Schema and conditions on the arguments.
pub const VALIDATE: Builtin = builtin!(Kind::Validate, "tollgate_plugin_validate");

/// The built-in plugins.
pub const ALL: &[Builtin] = &[DENY, RATE_LIMIT, REDACT, VALIDATE];

/// A built-in plugin, by the name policy files use for it.
pub fn get(name: &str) -> Option<&'static Builtin> {
    Kind::from_name(name).map(Kind::plugin)
}
