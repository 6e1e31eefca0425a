//! A whole agent message through a session with a real policy chain (built-in WebAssembly
//! plugins): never a panic, and a message that is not valid JSON-RPC is never forwarded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tollgate::chain::Chain;
use tollgate::config::parse_native;
use tollgate::engine::{EngineConfig, PolicyEngine};
use tollgate::proxy::Session;
use tollgate::state::memory::MemoryStore;

const POLICY: &str = r#"
version: 1
hide: [hidden]
tools:
  send:
    rules:
      - validate: { schema: { type: object, required: [to] } }
      - action: deny
        reason: no
        when: [{ path: args.to, op: regex, value: "^\\+1900" }]
      - rate_limit: "1000/second"
"#;

struct World {
    runtime: tokio::runtime::Runtime,
    session: Session,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let policy = parse_native(POLICY, std::path::Path::new(".")).unwrap();
        let chain = runtime.block_on(async {
            let engine = PolicyEngine::new(EngineConfig::default()).unwrap();
            Chain::load(&policy, &engine, Arc::new(MemoryStore::new()), "fuzz").await.unwrap()
        });
        World { runtime, session: Session::new(Arc::new(chain)) }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let routed = w.runtime.block_on(w.session.from_client(data));
    if let Some(forwarded) = &routed.to_server {
        assert!(tollgate::jsonrpc::parse(forwarded).is_ok(), "forwarded something that does not parse");
    }
    for answer in &routed.to_client {
        assert!(tollgate::jsonrpc::parse(answer).is_ok(), "answered something that does not parse");
    }
});
