//! Prometheus metrics, process-wide: calls, decisions by tool / rule / code, dry-run denials,
//! per-plugin decision latency, upstream latency, counter-store errors, policy reloads. Served as
//! text at `/metrics` (on the HTTP listener, or on `--metrics ADDR` in stdio mode). Every series
//! name starts with `tollgate_`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// Histogram bucket bounds, in seconds (10 µs … 10 s).
const BUCKETS: [f64; 13] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05, 0.25, 1.0, 10.0,
];

/// A latency histogram.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
    }
}

/// A decision series of one tool: its (verdict, rule, code) labels and count.
type DecisionSeries = ([String; 3], u64);

#[derive(Default)]
struct Registry {
    calls: AtomicU64,
    /// Tool -> (verdict, rule, code) -> count; a tool has a handful of such series.
    decisions: Mutex<BTreeMap<String, Vec<DecisionSeries>>>,
    dry_run: Mutex<BTreeMap<[String; 3], u64>>,
    plugin_latency: Mutex<BTreeMap<String, Arc<Histogram>>>,
    upstream_latency: Histogram,
    store_errors: AtomicU64,
    reloads: Mutex<BTreeMap<&'static str, u64>>,
    /// (server, tool, change) -> tool listings that did not match their pin.
    pin_mismatches: Mutex<BTreeMap<[String; 3], u64>>,
    /// (outcome, channel) -> calls that needed approval.
    approvals: Mutex<BTreeMap<[&'static str; 2], u64>>,
    /// outcome -> approval webhook notifications.
    approval_webhooks: Mutex<BTreeMap<&'static str, u64>>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

/// A `tools/call` arrived.
pub fn call() {
    REGISTRY.calls.fetch_add(1, Ordering::Relaxed);
}

/// A decision: `verdict` is allow / deny / rewrite / unknown; `rule` and `code` are empty for
/// allowed calls.
pub fn decision(tool: &str, verdict: &str, rule: &str, code: &str) {
    let mut decisions = REGISTRY.decisions.lock().unwrap_or_else(|p| p.into_inner());
    // Looked up by reference: nothing is allocated for a series that exists.
    let series = match decisions.get_mut(tool) {
        Some(s) => s,
        None => decisions.entry(tool.to_string()).or_default(),
    };
    match series
        .iter_mut()
        .find(|([v, r, c], _)| v == verdict && r == rule && c == code)
    {
        Some((_, n)) => *n += 1,
        None => series.push(([verdict.into(), rule.into(), code.into()], 1)),
    }
}

/// A dry-run rule would have denied.
pub fn dry_run_denial(tool: &str, rule: &str, code: &str) {
    let key = [tool.into(), rule.into(), code.into()];
    *REGISTRY
        .dry_run
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key)
        .or_default() += 1;
}

/// One plugin's latency series, looked up once (when the plugin is loaded) so that recording a
/// call touches no lock.
#[derive(Clone)]
pub struct PluginLatency(Arc<Histogram>);

impl PluginLatency {
    /// The series of `plugin` (shared by every rule and policy that names it).
    pub fn of(plugin: &str) -> Self {
        let mut map = REGISTRY
            .plugin_latency
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Self(map.entry(plugin.to_string()).or_default().clone())
    }

    /// One call took `d`.
    pub fn observe(&self, d: Duration) {
        self.0.observe(d);
    }
}

/// The server answered a forwarded call after `d`.
pub fn upstream_latency(d: Duration) {
    REGISTRY.upstream_latency.observe(d);
}

/// The counter store failed an operation.
pub fn store_error() {
    REGISTRY.store_errors.fetch_add(1, Ordering::Relaxed);
}

/// A policy reload was tried: `ok` or `failed`.
pub fn reload(result: &'static str) {
    *REGISTRY
        .reloads
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(result)
        .or_default() += 1;
}

/// A listed tool did not match its pin: `change` is `changed` or `new`.
pub fn pin_mismatch(server: &str, tool: &str, change: &str) {
    *REGISTRY
        .pin_mismatches
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry([server.into(), tool.into(), change.into()])
        .or_default() += 1;
}

/// A call needed approval: `outcome` is `requested`, `waiting`, `used`, `denied`, `expired` or
/// `store_failed`; `channel` is the one that decided it (or that it waits on).
pub fn approval(outcome: &'static str, channel: &'static str) {
    *REGISTRY
        .approvals
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry([outcome, channel])
        .or_default() += 1;
}

/// An approval webhook notification ended: `delivered` or `failed` (after its retries).
pub fn approval_webhook(outcome: &'static str) {
    *REGISTRY
        .approval_webhooks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(outcome)
        .or_default() += 1;
}

/// A label value, escaped for the text format.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Everything, in the Prometheus text exposition format.
pub fn render() -> String {
    let r = &*REGISTRY;
    let mut out = String::new();
    out.push_str("# HELP tollgate_calls_total tools/call requests received.\n# TYPE tollgate_calls_total counter\n");
    let _ = writeln!(
        out,
        "tollgate_calls_total {}",
        r.calls.load(Ordering::Relaxed)
    );
    out.push_str("# HELP tollgate_decisions_total Decisions by tool, verdict, deciding rule and code.\n# TYPE tollgate_decisions_total counter\n");
    let decisions = r.decisions.lock().unwrap_or_else(|p| p.into_inner());
    let mut sorted: Vec<_> = decisions
        .iter()
        .flat_map(|(tool, series)| series.iter().map(move |(labels, n)| (tool, labels, n)))
        .collect();
    sorted.sort();
    for (tool, [verdict, rule, code], n) in sorted {
        let _ = writeln!(
            out,
            "tollgate_decisions_total{{tool=\"{}\",verdict=\"{}\",rule=\"{}\",code=\"{}\"}} {n}",
            esc(tool),
            esc(verdict),
            esc(rule),
            esc(code)
        );
    }
    out.push_str("# HELP tollgate_dry_run_denials_total Denials of dry-run rules, not enforced.\n# TYPE tollgate_dry_run_denials_total counter\n");
    for ([tool, rule, code], n) in r.dry_run.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(
            out,
            "tollgate_dry_run_denials_total{{tool=\"{}\",rule=\"{}\",code=\"{}\"}} {n}",
            esc(tool),
            esc(rule),
            esc(code)
        );
    }
    out.push_str("# HELP tollgate_plugin_seconds Time one plugin call took.\n# TYPE tollgate_plugin_seconds histogram\n");
    for (plugin, h) in r
        .plugin_latency
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        h.render(
            &mut out,
            "tollgate_plugin_seconds",
            &format!("plugin=\"{}\"", esc(plugin)),
        );
    }
    out.push_str("# HELP tollgate_upstream_seconds Time from forwarding a call to the server's answer.\n# TYPE tollgate_upstream_seconds histogram\n");
    r.upstream_latency
        .render(&mut out, "tollgate_upstream_seconds", "");
    out.push_str("# HELP tollgate_counter_store_errors_total Counter-store operations that failed.\n# TYPE tollgate_counter_store_errors_total counter\n");
    let _ = writeln!(
        out,
        "tollgate_counter_store_errors_total {}",
        r.store_errors.load(Ordering::Relaxed)
    );
    out.push_str("# HELP tollgate_reloads_total Policy reloads by result.\n# TYPE tollgate_reloads_total counter\n");
    for result in ["ok", "failed"] {
        let n = r
            .reloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(result)
            .copied()
            .unwrap_or(0);
        let _ = writeln!(out, "tollgate_reloads_total{{result=\"{result}\"}} {n}");
    }
    out.push_str("# HELP tollgate_pin_mismatches_total Listed tools that did not match their pin, by server, tool and change (changed, new).\n# TYPE tollgate_pin_mismatches_total counter\n");
    for ([server, tool, change], n) in r
        .pin_mismatches
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        let _ = writeln!(
            out,
            "tollgate_pin_mismatches_total{{server=\"{}\",tool=\"{}\",change=\"{}\"}} {n}",
            esc(server),
            esc(tool),
            esc(change)
        );
    }
    out.push_str("# HELP tollgate_approvals_total Calls that needed a person's approval, by outcome (requested, waiting, used, denied, expired, store_failed) and channel.\n# TYPE tollgate_approvals_total counter\n");
    for ([outcome, channel], n) in r.approvals.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(
            out,
            "tollgate_approvals_total{{outcome=\"{outcome}\",channel=\"{channel}\"}} {n}"
        );
    }
    out.push_str("# HELP tollgate_approval_webhooks_total Approval webhook notifications by outcome (delivered, failed after retries).\n# TYPE tollgate_approval_webhooks_total counter\n");
    for (outcome, n) in r
        .approval_webhooks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        let _ = writeln!(
            out,
            "tollgate_approval_webhooks_total{{outcome=\"{outcome}\"}} {n}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_render_in_the_text_format() {
        call();
        decision("send \"x\"", "deny", "tools.send.rules[0]", "rate_limited");
        PluginLatency::of("rate-limit").observe(Duration::from_micros(30));
        pin_mismatch("srv", "read_file", "changed");
        let text = render();
        assert!(
            text.contains("tollgate_pin_mismatches_total{server=\"srv\",tool=\"read_file\",change=\"changed\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "tollgate_decisions_total{tool=\"send \\\"x\\\"\",verdict=\"deny\",rule=\"tools.send.rules[0]\",code=\"rate_limited\"} 1"
        ), "{text}");
        assert!(
            text.contains("tollgate_plugin_seconds_bucket{plugin=\"rate-limit\",le=\"0.00005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "tollgate_plugin_seconds_bucket{plugin=\"rate-limit\",le=\"0.000025\"} 0"
            ),
            "{text}"
        );
        assert!(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .all(|l| l.starts_with("tollgate_")),
            "{text}"
        );
    }
}
