//! Compiled code: compiled once per engine, a fresh cache filled safely from many threads, and the code compiled at build time accepted.

use super::*;

#[test]
fn the_same_bytes_compile_once_per_engine() {
    let engine = PolicyEngine::new(EngineConfig {
        cache: None,
        ..EngineConfig::default()
    })
    .unwrap();
    let first = engine.compile(&crate::builtin::DENY.wasm(), None).unwrap();
    let again = engine.compile(&[], Some(&crate::builtin::DENY)).unwrap();
    let other = engine
        .compile(&crate::builtin::RATE_LIMIT.wasm(), None)
        .unwrap();
    assert_eq!(first.image_range(), again.image_range());
    assert_ne!(first.image_range(), other.image_range());
}

/// Tests and proxies start engines side by side on one cache directory: every engine's first
/// write of the built-ins' code into a fresh cache must leave each of them with sound code
/// (two writes through one temporary name once truncated a file another engine had mapped).
#[test]
fn engines_on_many_threads_fill_one_fresh_code_cache_safely() {
    let dir = std::env::temp_dir().join(format!("tollgate-cache-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                let engine = PolicyEngine::new(EngineConfig {
                    cache: Some(CodeCache::new(&dir)),
                    max_instances: 8,
                    ..EngineConfig::default()
                })
                .unwrap();
                for b in crate::builtin::ALL {
                    engine.compile(&[], Some(b)).unwrap();
                }
            });
        }
    });
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".cwasm"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// If the build script's settings drifted from the engine's, every first start would
/// compile the built-ins again (seconds) while everything still worked.
#[test]
fn the_built_in_plugins_code_compiled_at_build_time_fits_the_engine() {
    let engine = PolicyEngine::new(EngineConfig {
        cache: None,
        ..EngineConfig::default()
    })
    .unwrap();
    for b in crate::builtin::ALL {
        assert_eq!(*b.sha256, cache::digest(&b.wasm()), "built-in `{}`", b.kind);
        // SAFETY: code the build script compiled from the embedded component.
        unsafe { wasmtime::component::Component::deserialize(&engine.engine, b.precompiled()) }
            .unwrap_or_else(|e| panic!("built-in `{}`: {e:#}", b.kind));
    }
}
