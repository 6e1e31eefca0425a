//! Glue between the generated WIT bindings and the [`Policy`](crate::Policy) trait, used by
//! [`export_policy!`](crate::export_policy). Not part of the public API.

#[cfg(target_arch = "wasm32")]
pub use wasm::*;

#[cfg(target_arch = "wasm32")]
mod wasm {
    use crate::{Call, Denial, Policy, ResultVerdict, Verdict};

    /// The bindings generated from `wit/v0.2`; hidden behind the SDK's own types.
    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit/v0.2",
            world: "plugin",
            pub_export_macro: true,
            export_macro_name: "__export_plugin_world",
            default_bindings_module: "tollgate_sdk::__export::bindings",
        });
    }

    pub use bindings::exports::tollgate::policy::rules::{Guest, GuestRule, Rule};
    pub use bindings::tollgate::policy::types::{
        ApprovalRequest as WitApprovalRequest, Call as WitCall, Denial as WitDenial,
        ResultVerdict as WitResultVerdict, Verdict as WitVerdict,
    };

    fn to_call(call: WitCall) -> Call {
        Call::from_parts(
            call.tool,
            call.arguments,
            call.server,
            call.caller,
            call.metadata,
        )
    }

    fn to_denial(d: Denial) -> WitDenial {
        WitDenial {
            reason: d.reason,
            code: d.code,
            retry_after_ms: d.retry_after_ms,
        }
    }

    /// Run [`Policy::check_call`] and convert its verdict.
    pub fn check_call<P: Policy>(policy: &P, call: WitCall) -> WitVerdict {
        match policy.check_call(&to_call(call)) {
            Verdict::Allow => WitVerdict::Allow,
            Verdict::Deny(d) => WitVerdict::Deny(to_denial(d)),
            Verdict::Rewrite(args) => WitVerdict::Rewrite(args.to_string()),
            Verdict::Ask(a) => WitVerdict::Ask(WitApprovalRequest {
                message: a.message,
                timeout_ms: a.timeout_ms,
            }),
        }
    }

    /// Run [`Policy::check_result`] and convert its verdict.
    pub fn check_result<P: Policy>(policy: &P, call: WitCall, result: String) -> WitResultVerdict {
        match policy.check_result(&to_call(call), &result) {
            ResultVerdict::Pass => WitResultVerdict::Pass,
            ResultVerdict::Replace(v) => WitResultVerdict::Replace(v.to_string()),
            ResultVerdict::Deny(d) => WitResultVerdict::Deny(to_denial(d)),
        }
    }
}
