//! # Tollgate guest SDK
//!
//! Write a Tollgate policy plugin in a few lines: implement [`Policy`] (every method but
//! [`Policy::new`] has a default), then export it with [`export_policy!`]. The crate hides the
//! generated WebAssembly bindings of the `tollgate:policy` WIT package; plugin code sees plain Rust
//! types ([`Call`], [`Verdict`]) and the host imports as ordinary functions ([`counters::take`],
//! [`log::info`]).
//!
//! ```
//! use tollgate_sdk::{deny, allow, Call, Policy, Verdict};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { forbidden: String }
//!
//! struct NoForbiddenWord(Config);
//!
//! impl Policy for NoForbiddenWord {
//!     type Config = Config;
//!     fn new(config: Config) -> Result<Self, String> { Ok(Self(config)) }
//!     fn check_call(&self, call: &Call) -> Verdict {
//!         if call.arguments_json().contains(&self.0.forbidden) {
//!             deny(format!("the arguments contain '{}'", self.0.forbidden))
//!         } else {
//!             allow()
//!         }
//!     }
//! }
//! tollgate_sdk::export_policy!(NoForbiddenWord);
//!
//! // Plugin logic unit-tests natively:
//! let p = NoForbiddenWord::new(Config { forbidden: "rm -rf".into() }).unwrap();
//! assert!(p.check_call(&Call::new("shell", serde_json::json!({"cmd": "rm -rf /"}))).is_deny());
//! ```
//!
//! Build a plugin crate (`crate-type = ["cdylib", "rlib"]`) for `wasm32-unknown-unknown`; the
//! export macro also stamps the WIT version ([`WIT_VERSION`]) into the component so the host can
//! refuse a plugin built against another contract.

mod call;
pub mod conditions;
pub mod counters;
#[cfg(target_arch = "wasm32")]
mod entropy;
pub mod log;
mod verdict;

#[doc(hidden)]
pub mod __export;

pub use call::Call;
pub use verdict::{allow, deny, deny_with, rewrite, Denial, ResultVerdict, Verdict};

/// The version of the `tollgate:policy` WIT package this SDK implements.
pub const WIT_VERSION: &str = "0.1.0";

/// Name of the custom section in which [`export_policy!`] stamps [`WIT_VERSION`].
pub const WIT_VERSION_SECTION: &str = "tollgate-wit-version";

#[doc(hidden)]
pub const WIT_VERSION_STAMP: [u8; WIT_VERSION.len()] = {
    let bytes = WIT_VERSION.as_bytes();
    let mut out = [0u8; WIT_VERSION.len()];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
};

/// A policy plugin. Implement [`Policy::new`]; override the other methods for what your plugin
/// decides. Defaults: allow every call, pass every result, hide no tool.
pub trait Policy: Sized + 'static {
    /// The plugin's configuration, deserialised from the JSON the policy file gives it (`{}`
    /// when it gives none). Use `#[serde(deny_unknown_fields)]` so typos are reported.
    type Config: serde::de::DeserializeOwned;

    /// Build the plugin from its configuration. Called once when the policy is loaded; an error
    /// rejects the whole policy file with this message, so say what is wrong and how to fix it.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// Decide a `tools/call` before the server sees it.
    fn check_call(&self, _call: &Call) -> Verdict {
        Verdict::Allow
    }

    /// Inspect a successful tool result (a `CallToolResult` as JSON text); may replace it.
    fn check_result(&self, _call: &Call, _result: &str) -> ResultVerdict {
        ResultVerdict::Pass
    }

    /// Whether `tool` is listed to `caller` in `tools/list` (and callable at all).
    fn visible(&self, _tool: &str, _caller: &str) -> bool {
        true
    }
}

/// Parse a plugin configuration the way the host's `configure` call does, so tests can check
/// both the happy path and the exact error a bad configuration produces.
pub fn configure<P: Policy>(config_json: &str) -> Result<P, String> {
    let config: P::Config = serde_json::from_str(if config_json.trim().is_empty() {
        "{}"
    } else {
        config_json
    })
    .map_err(|e| format!("invalid configuration: {e}"))?;
    P::new(config)
}

/// Export a [`Policy`] implementation as this component's `tollgate:policy/plugin` world.
///
/// Use it once per plugin crate, at the top level: `tollgate_sdk::export_policy!(MyPolicy);`.
/// On native targets it expands to nothing, so the crate still builds and unit-tests natively.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[used]
            #[link_section = "tollgate-wit-version"]
            static TOLLGATE_WIT_VERSION: [u8; $crate::WIT_VERSION.len()] = $crate::WIT_VERSION_STAMP;

            ::std::thread_local! {
                static POLICY: ::std::cell::RefCell<::std::option::Option<$policy>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            struct TollgateExport;

            impl $crate::__export::Guest for TollgateExport {
                fn configure(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    let policy = $crate::configure::<$policy>(&config)?;
                    POLICY.with(|slot| *slot.borrow_mut() = ::std::option::Option::Some(policy));
                    ::std::result::Result::Ok(())
                }
                fn check_call(call: $crate::__export::WitCall) -> $crate::__export::WitVerdict {
                    POLICY.with(|slot| $crate::__export::check_call(slot.borrow().as_ref(), call))
                }
                fn check_result(
                    call: $crate::__export::WitCall,
                    tool_result: ::std::string::String,
                ) -> $crate::__export::WitResultVerdict {
                    POLICY.with(|slot| $crate::__export::check_result(slot.borrow().as_ref(), call, tool_result))
                }
                fn visible(tool: ::std::string::String, caller: ::std::string::String) -> bool {
                    POLICY.with(|slot| $crate::__export::visible(slot.borrow().as_ref(), &tool, &caller))
                }
            }

            $crate::__export::bindings::__export_plugin_world!(TollgateExport with_types_in $crate::__export::bindings);
        };
    };
}
