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
pub mod codes;
pub mod conditions;
pub mod counters;
#[cfg(target_arch = "wasm32")]
mod entropy;
pub mod log;
pub mod message;
mod verdict;

#[doc(hidden)]
pub mod __export;

pub use call::Call;
pub use verdict::{
    allow, ask, deny, deny_with, rewrite, ApprovalRequest, Denial, ResultVerdict, Verdict,
};

/// The version of the `tollgate:policy` WIT package this SDK implements.
pub const WIT_VERSION: &str = "0.2.0";

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

/// A policy plugin's rule. Implement [`Policy::new`]; override the other methods for what your
/// plugin decides. Defaults: allow every call, pass every result, hide no tool.
///
/// A value of this type is one rule of the operator's policy, built from that rule's
/// configuration; one plugin instance holds every rule that uses the plugin (the
/// `rule` resource of `tollgate:policy@0.2.0`). The host may build a rule again from the same
/// configuration at any time (after another rule's call failed the instance they shared), so
/// keep lasting state in the host's [`counters`], not in the value.
pub trait Policy: Sized + 'static {
    /// The plugin's configuration, deserialised from the JSON the policy file gives it (`{}`
    /// when it gives none). Use `#[serde(deny_unknown_fields)]` so typos are reported.
    type Config: serde::de::DeserializeOwned;

    /// Build the rule from its configuration. Called when the policy is loaded (an error rejects
    /// the whole policy file with this message and the rule's place, so say what is wrong and
    /// how to fix it), and again whenever the host rebuilds the rule in a fresh instance.
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

/// Export a [`Policy`] implementation as this component's `tollgate:policy/plugin` world: each
/// rule of the policy that uses the plugin becomes one `rule` resource holding one value of the
/// type.
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

            struct TollgateRule($policy);

            impl $crate::__export::GuestRule for TollgateRule {
                fn create(
                    config: ::std::string::String,
                ) -> ::std::result::Result<$crate::__export::Rule, ::std::string::String> {
                    $crate::configure::<$policy>(&config)
                        .map(|policy| $crate::__export::Rule::new(TollgateRule(policy)))
                }
                fn check_call(&self, call: $crate::__export::WitCall) -> $crate::__export::WitVerdict {
                    $crate::__export::check_call(&self.0, call)
                }
                fn check_result(
                    &self,
                    call: $crate::__export::WitCall,
                    tool_result: ::std::string::String,
                ) -> $crate::__export::WitResultVerdict {
                    $crate::__export::check_result(&self.0, call, tool_result)
                }
                fn visible(&self, tool: ::std::string::String, caller: ::std::string::String) -> bool {
                    $crate::Policy::visible(&self.0, &tool, &caller)
                }
            }

            struct TollgateExport;

            impl $crate::__export::Guest for TollgateExport {
                type Rule = TollgateRule;
            }

            $crate::__export::bindings::__export_plugin_world!(TollgateExport with_types_in $crate::__export::bindings);
        };
    };
}
