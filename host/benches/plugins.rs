//! The example plugins of each language (examples/plugins/, built into packs by `tollgate pack
//! build`): load time with an empty code cache (compile + instantiate + configure) and with the
//! cache filled, then the per-call cost of `check-call` (and of `check-result` for the Python
//! redaction plugin) on a reused instance, p50 / p99.
//!
//! Run: `scripts/build-examples.sh && cargo bench -p tollgate --bench plugins`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate::engine::{
    BoundRule, CallInput, Capability, CodeCache, EngineConfig, Limits, PluginSpec, PolicyEngine,
};
use tollgate::pack::Pack;
use tollgate::state::memory::MemoryStore;

struct Example {
    name: &'static str,
    lang: &'static str,
    config: &'static str,
    grants: &'static [Capability],
    arguments: &'static str,
}

const EXAMPLES: &[Example] = &[
    Example {
        name: "rust-block-secrets",
        lang: "Rust",
        config: "{}",
        grants: &[],
        arguments: r#"{"body":"deploy finished, see the dashboard"}"#,
    },
    Example {
        name: "c-path-allowlist",
        lang: "C",
        config: r#"{"allowed":["/srv/project/"]}"#,
        grants: &[],
        arguments: r#"{"path":"/srv/project/README.md"}"#,
    },
    Example {
        name: "js-business-hours",
        lang: "JavaScript",
        config: r#"{"open":0,"close":24,"days":[0,1,2,3,4,5,6]}"#,
        grants: &[Capability::Clocks, Capability::Output],
        arguments: r#"{}"#,
    },
    Example {
        name: "python-redact-pii",
        lang: "Python",
        config: "{}",
        grants: &[],
        arguments: r#"{"id":7}"#,
    },
];

const RESULT: &str =
    r#"{"content":[{"type":"text","text":"Ada, ada@example.com, SSN 123-45-6789"}]}"#;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn stats(mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "p50 {:>6.1} µs  p99 {:>6.1} µs",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6
    )
}

async fn load(cache: &std::path::Path, e: &Example, wasm: &[u8]) -> (Duration, BoundRule) {
    let engine = PolicyEngine::new(EngineConfig {
        cache: Some(CodeCache::new(cache)),
        max_memory_bytes: 256 << 20,
        ..EngineConfig::default()
    })
    .expect("engine");
    let limits = Limits {
        memory_bytes: 256 << 20,
        ..Limits::default()
    };
    let start = Instant::now();
    let plugin = engine
        .load(
            &PluginSpec {
                name: e.name,
                wasm,
                counters: Arc::new(MemoryStore::new()),
                key_prefix: "bench/",
                grants: e.grants,
                builtin: None,
            },
            e.config,
            limits,
        )
        .await
        .unwrap_or_else(|err| panic!("{}: {err}", e.name));
    (start.elapsed(), plugin)
}

#[tokio::main]
async fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/plugins");
    println!("language     component   first load   cached load   per call");
    for e in EXAMPLES {
        let folder = root.join(e.name).join("dist").join(e.name);
        let pack = Pack::open(&folder).unwrap_or_else(|err| {
            panic!("{err}\nbuild the examples first: scripts/build-examples.sh")
        });
        let (_, wasm) = pack.component(None).expect("one component");
        let cache = tempfile::tempdir().expect("temp dir");
        let (first, _) = load(cache.path(), e, wasm).await;
        let (cached, plugin) = load(cache.path(), e, wasm).await;
        let call = CallInput {
            tool: "read_text_file".into(),
            arguments: e.arguments.into(),
            server: "bench".into(),
            caller: "anonymous".into(),
            metadata: vec![],
        };
        let mut calls = Vec::new();
        for i in 0..2200 {
            let start = Instant::now();
            let (verdict, _) = plugin.check_call(&call).await.expect("check-call");
            let elapsed = start.elapsed();
            assert!(
                matches!(verdict, tollgate::engine::Verdict::Allow),
                "{verdict:?}"
            );
            if i >= 200 {
                calls.push(elapsed);
            }
        }
        println!(
            "{:<12} {:>6.1} MB   {:>8.1} ms   {:>8.2} ms    check-call {}",
            e.lang,
            wasm.len() as f64 / 1e6,
            first.as_secs_f64() * 1e3,
            cached.as_secs_f64() * 1e3,
            stats(calls)
        );
        if e.name == "python-redact-pii" {
            let mut results = Vec::new();
            for i in 0..2200 {
                let start = Instant::now();
                let replaced = plugin
                    .check_result(&call, RESULT)
                    .await
                    .expect("check-result");
                let elapsed = start.elapsed();
                assert!(matches!(replaced, tollgate::engine::Reviewed::Replace(_)));
                if i >= 200 {
                    results.push(elapsed);
                }
            }
            println!("{:<62}check-result {}", "", stats(results));
        }
    }
}
