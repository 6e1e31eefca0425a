//! A rule bound to its plugin: each call takes an instance in which the rule is built, runs the
//! rule's method under the rule's limits, and gives the instance back (or drops it on failure).

use super::bindings::{v0_1, v0_2};
use super::call::{
    from_v0_1, from_v0_2, to_wit_call, validate, validate_review, CallInput, Reviewed, Verdict,
};
use super::limits::Limits;
use super::plugin::{bounded, Exports, Plugin, PluginError};
use crate::state::Reservation;
use std::sync::Arc;

/// One rule of a policy, bound to the plugin that runs it: its configuration and its limits.
pub struct BoundRule {
    pub(super) plugin: Arc<Plugin>,
    pub(super) slot: usize,
    pub(super) config: Arc<str>,
    pub(super) limits: Limits,
}

impl BoundRule {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.plugin.name
    }

    /// The rule's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The plugin the rule runs in.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Decide a call. On success returns the verdict and the counter reservations the rule made
    /// (the caller commits or refunds them); on failure the reservations are already refunded
    /// and the failing instance is dropped.
    pub async fn check_call(
        &self,
        call: &CallInput,
    ) -> Result<(Verdict, Vec<Reservation>), PluginError> {
        let p = &self.plugin;
        let (mut instance, resource) = p.acquire(self).await?;
        let _ticking = p.ticker.enter();
        let deadline = self.limits.deadline;
        let outcome = match (&instance.exports, resource) {
            (Exports::V0_1(b), _) => {
                let call = to_wit_call!(v0_1, call);
                let check = b.call_check_call(&mut instance.store, &call);
                bounded(p.may_block, deadline, check).await.map(from_v0_1)
            }
            (Exports::V0_2 { bindings, .. }, Some(rule)) => {
                let call = to_wit_call!(v0_2, call);
                let rules = bindings.tollgate_policy_rules();
                let api = rules.rule();
                let check = api.call_check_call(&mut instance.store, rule, &call);
                bounded(p.may_block, deadline, check).await.map(from_v0_2)
            }
            (Exports::V0_2 { .. }, None) => unreachable!("acquire builds the rule"),
        };
        let reservations = std::mem::take(&mut instance.store.data_mut().reservations);
        let verdict = match outcome {
            Ok(v) => validate(v),
            Err(e) => Err(p.classify(&instance.store, &self.limits, e, false)),
        };
        match verdict {
            Ok(verdict) => {
                p.pool.give_back(instance);
                Ok((verdict, reservations))
            }
            Err(failure) => {
                p.refund_all(reservations).await;
                Err(p.error(failure))
            }
        }
    }

    /// Ask whether `tool` is visible to `caller`. A failing plugin hides the tool (fail closed).
    pub async fn visible(&self, tool: &str, caller: &str) -> Result<bool, PluginError> {
        let p = &self.plugin;
        let (mut instance, resource) = p.acquire(self).await?;
        let _ticking = p.ticker.enter();
        let deadline = self.limits.deadline;
        let outcome = match (&instance.exports, resource) {
            (Exports::V0_1(b), _) => {
                let visible = b.call_visible(&mut instance.store, tool, caller);
                bounded(p.may_block, deadline, visible).await
            }
            (Exports::V0_2 { bindings, .. }, Some(rule)) => {
                let rules = bindings.tollgate_policy_rules();
                let api = rules.rule();
                let visible = api.call_visible(&mut instance.store, rule, tool, caller);
                bounded(p.may_block, deadline, visible).await
            }
            (Exports::V0_2 { .. }, None) => unreachable!("acquire builds the rule"),
        };
        match outcome {
            Ok(v) => {
                p.pool.give_back(instance);
                Ok(v)
            }
            Err(e) => Err(p.error(p.classify(&instance.store, &self.limits, e, false))),
        }
    }

    /// Let the rule inspect (and maybe replace or withhold) a successful tool result.
    pub async fn check_result(
        &self,
        call: &CallInput,
        result_json: &str,
    ) -> Result<Reviewed, PluginError> {
        let p = &self.plugin;
        let (mut instance, resource) = p.acquire(self).await?;
        let _ticking = p.ticker.enter();
        let deadline = self.limits.deadline;
        let outcome = match (&instance.exports, resource) {
            (Exports::V0_1(b), _) => {
                let call = to_wit_call!(v0_1, call);
                let check = b.call_check_result(&mut instance.store, &call, result_json);
                bounded(p.may_block, deadline, check)
                    .await
                    .map(|v| match v {
                        v0_1::tollgate::policy::types::ResultVerdict::Pass => Reviewed::Pass,
                        v0_1::tollgate::policy::types::ResultVerdict::Replace(json) => {
                            Reviewed::Replace(json)
                        }
                    })
            }
            (Exports::V0_2 { bindings, .. }, Some(rule)) => {
                use v0_2::tollgate::policy::types::ResultVerdict as R;
                let call = to_wit_call!(v0_2, call);
                let rules = bindings.tollgate_policy_rules();
                let api = rules.rule();
                let check = api.call_check_result(&mut instance.store, rule, &call, result_json);
                bounded(p.may_block, deadline, check)
                    .await
                    .map(|v| match v {
                        R::Pass => Reviewed::Pass,
                        R::Replace(json) => Reviewed::Replace(json),
                        R::Deny(d) => Reviewed::Deny {
                            reason: d.reason,
                            code: d.code,
                        },
                    })
            }
            (Exports::V0_2 { .. }, None) => unreachable!("acquire builds the rule"),
        };
        let reviewed = match outcome {
            Ok(r) => validate_review(r),
            Err(e) => Err(p.classify(&instance.store, &self.limits, e, false)),
        };
        match reviewed {
            Ok(r) => {
                p.pool.give_back(instance);
                Ok(r)
            }
            Err(failure) => Err(p.error(failure)),
        }
    }
}
