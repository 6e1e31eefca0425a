//! Glue between the generated WIT bindings and the [`Policy`] trait, used by
//! [`export_policy!`](crate::export_policy). Not part of the public API.

#[cfg(target_arch = "wasm32")]
pub use wasm::*;

#[cfg(target_arch = "wasm32")]
mod wasm {
    use crate::{Call, Policy, ResultVerdict, Verdict};

    /// The bindings generated from `wit/v0.1`; hidden behind the SDK's own types.
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit/v0.1",
            world: "plugin",
            pub_export_macro: true,
            export_macro_name: "__export_plugin_world",
            default_bindings_module: "tollgate_sdk::__export::bindings",
        });
    }

    pub use bindings::tollgate::policy::types::{
        Call as WitCall, Denial as WitDenial, ResultVerdict as WitResultVerdict,
        Verdict as WitVerdict,
    };
    pub use bindings::Guest;

    fn to_call(call: WitCall) -> Call {
        Call::from_parts(
            call.tool,
            call.arguments,
            call.server,
            call.caller,
            call.metadata,
        )
    }

    fn not_configured() -> WitVerdict {
        WitVerdict::Deny(WitDenial {
            reason: "the plugin was called before it was configured".into(),
            code: "policy_error".into(),
            retry_after_ms: None,
        })
    }

    /// Run [`Policy::check_call`] and convert its verdict.
    pub fn check_call<P: Policy>(policy: Option<&P>, call: WitCall) -> WitVerdict {
        let Some(policy) = policy else {
            return not_configured();
        };
        match policy.check_call(&to_call(call)) {
            Verdict::Allow => WitVerdict::Allow,
            Verdict::Deny(d) => WitVerdict::Deny(WitDenial {
                reason: d.reason,
                code: d.code,
                retry_after_ms: d.retry_after_ms,
            }),
            Verdict::Rewrite(args) => WitVerdict::Rewrite(args.to_string()),
        }
    }

    /// Run [`Policy::check_result`] and convert its verdict.
    pub fn check_result<P: Policy>(
        policy: Option<&P>,
        call: WitCall,
        result: String,
    ) -> WitResultVerdict {
        match policy.map(|p| p.check_result(&to_call(call), &result)) {
            Some(ResultVerdict::Replace(v)) => WitResultVerdict::Replace(v.to_string()),
            _ => WitResultVerdict::Pass,
        }
    }

    /// Run [`Policy::visible`]; an unconfigured plugin hides nothing.
    pub fn visible<P: Policy>(policy: Option<&P>, tool: &str, caller: &str) -> bool {
        policy.is_none_or(|p| p.visible(tool, caller))
    }
}
