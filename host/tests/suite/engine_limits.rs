//! The sandbox's limits, each as a pair: obeyed / violated with the exact message the agent
//! would read, and the engine still serving the next call. Uses the real `misbehave` fixture
//! component from plugins/fixtures.

use std::sync::Arc;
use std::time::Duration;
use tollgate::engine::{
    BoundRule, CallInput, EngineConfig, Limits, PluginSpec, PolicyEngine, Verdict,
};
use tollgate::state::memory::MemoryStore;

const MISBEHAVE: &[u8] = include_bytes!(concat!(
    env!("TOLLGATE_GUEST_DIR"),
    "/tollgate_fixture_misbehave.wasm"
));

fn engine() -> PolicyEngine {
    PolicyEngine::new(EngineConfig {
        cache: None,
        fuel: true,
        ..EngineConfig::default()
    })
    .unwrap()
}

fn call(tool: &str) -> CallInput {
    CallInput {
        tool: tool.into(),
        arguments: "{}".into(),
        server: "test".into(),
        caller: "anonymous".into(),
        metadata: vec![],
    }
}

fn spec<'a>(name: &'a str, wasm: &'a [u8]) -> PluginSpec<'a> {
    PluginSpec {
        name,
        wasm,
        counters: Arc::new(MemoryStore::new()),
        key_prefix: "t/",
        grants: &[],
        builtin: None,
    }
}

async fn load(engine: &PolicyEngine, mode: &str, limits: Limits) -> BoundRule {
    engine
        .load(
            &spec("misbehave", MISBEHAVE),
            &format!(r#"{{"mode":"{mode}"}}"#),
            limits,
        )
        .await
        .unwrap()
}

/// Load a plugin that must fail; the error as the user reads it.
async fn load_error(engine: &PolicyEngine, name: &str, wasm: &[u8], config: &str) -> String {
    match engine
        .load(&spec(name, wasm), config, Limits::default())
        .await
    {
        Ok(_) => panic!("plugin `{name}` loaded, but it must be refused"),
        Err(e) => e.to_string(),
    }
}

async fn failure_then_recovery(mode: &str, limits: Limits) -> String {
    let engine = engine();
    let plugin = load(&engine, mode, limits).await;
    let err = plugin
        .check_call(&call("boom"))
        .await
        .unwrap_err()
        .to_string();
    // The failing instance was dropped; the plugin keeps serving with a fresh one.
    let (verdict, _) = plugin.check_call(&call("ok")).await.unwrap();
    assert_eq!(
        verdict,
        Verdict::Allow,
        "the next call after `{mode}` must succeed"
    );
    err
}

#[tokio::test]
async fn a_plugin_that_loops_forever_is_stopped_at_its_deadline() {
    let limits = Limits {
        deadline: Duration::from_millis(20),
        ..Limits::default()
    };
    let err = failure_then_recovery("spin", limits).await;
    assert_eq!(err, "plugin `misbehave` ran past its deadline of 20 ms");
}

/// The epoch ticker parks when no plugin has run for a while (an idle Tollgate does not wake a
/// CPU a thousand times a second); the first call after that must still be held to its deadline.
#[tokio::test]
async fn a_plugin_that_loops_after_a_quiet_spell_is_still_stopped_at_its_deadline() {
    let limits = Limits {
        deadline: Duration::from_millis(20),
        ..Limits::default()
    };
    let engine = engine();
    let plugin = load(&engine, "spin", limits).await;
    tokio::time::sleep(tollgate::engine::ticker::QUIET_BEFORE_PARKING + Duration::from_millis(500))
        .await;
    let started = std::time::Instant::now();
    let err = plugin.check_call(&call("boom")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin `misbehave` ran past its deadline of 20 ms"
    );
    // Not a timing target: a parked ticker that nobody woke would let it spin for ever.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_plugin_within_its_deadline_answers() {
    let engine = engine();
    let plugin = load(
        &engine,
        "allow",
        Limits {
            deadline: Duration::from_millis(20),
            ..Limits::default()
        },
    )
    .await;
    assert_eq!(
        plugin.check_call(&call("anything")).await.unwrap().0,
        Verdict::Allow
    );
}

#[tokio::test]
async fn a_plugin_that_allocates_without_bound_hits_its_memory_limit() {
    let limits = Limits {
        memory_bytes: 8 << 20,
        ..Limits::default()
    };
    let err = failure_then_recovery("hog", limits).await;
    assert_eq!(err, "plugin `misbehave` exceeded its memory limit of 8 MiB");
}

#[tokio::test]
async fn a_plugin_within_its_memory_limit_answers() {
    let engine = engine();
    let plugin = load(
        &engine,
        "allow",
        Limits {
            memory_bytes: 2 << 20,
            ..Limits::default()
        },
    )
    .await;
    assert_eq!(
        plugin.check_call(&call("anything")).await.unwrap().0,
        Verdict::Allow
    );
}

#[tokio::test]
async fn a_plugin_that_traps_is_reported_and_replaced() {
    let err = failure_then_recovery("trap", Limits::default()).await;
    assert_eq!(
        err,
        "plugin `misbehave` trapped: wasm trap: wasm `unreachable` instruction executed"
    );
}

#[tokio::test]
async fn a_plugin_that_runs_out_of_fuel_is_stopped() {
    let limits = Limits {
        fuel: Some(1_000_000),
        deadline: Duration::from_secs(5),
        ..Limits::default()
    };
    let err = failure_then_recovery("spin", limits).await;
    assert_eq!(err, "plugin `misbehave` ran out of fuel (1000000 units)");
}

#[tokio::test]
async fn a_plugin_with_enough_fuel_answers() {
    let engine = engine();
    let limits = Limits {
        fuel: Some(1_000_000),
        ..Limits::default()
    };
    let plugin = load(&engine, "allow", limits).await;
    assert_eq!(
        plugin.check_call(&call("x")).await.unwrap().0,
        Verdict::Allow
    );
}

#[tokio::test]
async fn a_rewrite_that_is_not_an_object_is_an_invalid_verdict() {
    let err = failure_then_recovery("not-an-object", Limits::default()).await;
    assert_eq!(err, "plugin `misbehave` returned an invalid verdict: rewritten arguments that are not a JSON object");
}

#[tokio::test]
async fn a_configuration_the_plugin_rejects_fails_the_load() {
    let engine = engine();
    let err = load_error(&engine, "misbehave", MISBEHAVE, r#"{"mode":"sulk"}"#).await;
    assert_eq!(
        err,
        "plugin `misbehave` rejected its configuration: unknown mode `sulk`"
    );
    let err = load_error(&engine, "misbehave", MISBEHAVE, r#"{"mood":"x"}"#).await;
    assert!(err.starts_with("plugin `misbehave` rejected its configuration: invalid configuration: unknown field `mood`"), "{err}");
}

/// Replace the stamped version inside the component's custom section (same length, so the
/// binary stays valid) to get a plugin built against another WIT version.
fn restamp(wasm: &[u8], from: &str, to: &str) -> Vec<u8> {
    let marker = b"tollgate-wit-version";
    let at = wasm
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the SDK stamps every plugin");
    let mut out = wasm.to_vec();
    let start = at + marker.len();
    assert_eq!(&out[start..start + from.len()], from.as_bytes());
    out[start..start + to.len()].copy_from_slice(to.as_bytes());
    out
}

#[tokio::test]
async fn a_plugin_stamped_with_another_wit_version_is_refused_before_compiling() {
    let engine = engine();
    let other = restamp(MISBEHAVE, "0.2.0", "0.9.0");
    let err = load_error(&engine, "misbehave", &other, r#"{"mode":"allow"}"#).await;
    assert_eq!(
        err,
        "plugin `misbehave` cannot be loaded: it was built against tollgate:policy@0.9.0, but this Tollgate implements tollgate:policy@0.1.0, 0.2.0; rebuild it with a matching tollgate-sdk"
    );
    // The same engine still loads and runs a matching plugin.
    let plugin = load(&engine, "allow", Limits::default()).await;
    assert_eq!(
        plugin.check_call(&call("x")).await.unwrap().0,
        Verdict::Allow
    );
}

#[tokio::test]
async fn bytes_that_are_not_a_component_are_refused() {
    let engine = engine();
    let err = load_error(&engine, "junk", b"not wasm at all", "{}").await;
    assert!(
        err.starts_with("plugin `junk` cannot be loaded: it is not a WebAssembly component"),
        "{err}"
    );
}

#[tokio::test]
async fn compiled_code_is_cached_on_disk_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tollgate::engine::CodeCache::new(dir.path());
    let engine = PolicyEngine::new(EngineConfig {
        cache: Some(cache.clone()),
        ..EngineConfig::default()
    })
    .unwrap();
    let digest = tollgate::engine::cache::digest(MISBEHAVE);
    let (_, hit) = cache
        .load_or_compile(engine.engine(), MISBEHAVE, &digest)
        .unwrap();
    assert!(!hit, "first load compiles");
    let (_, hit) = cache
        .load_or_compile(engine.engine(), MISBEHAVE, &digest)
        .unwrap();
    assert!(hit, "second load comes from the cache");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
