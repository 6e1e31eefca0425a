//! Builds the guest plugins (plugins/) as WebAssembly components through scripts/build-guests.sh,
//! precompiles the built-in ones with wasmtime (the engine's own settings, from
//! `src/engine/settings.rs`) and tells the crate where both are, so `cargo build` alone produces
//! a complete binary whose first start compiles none of its own plugins.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/engine/settings.rs"]
mod settings;

/// The built-in plugins (`src/builtin.rs` embeds each one's component and precompiled code).
const BUILTINS: &[&str] = &[
    "tollgate_plugin_deny",
    "tollgate_plugin_rate_limit",
    "tollgate_plugin_redact",
    "tollgate_plugin_validate",
];

fn main() {
    let host =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = host
        .parent()
        .expect("host/ sits in the repository root")
        .to_path_buf();
    for watched in [
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "plugins/deny",
        "plugins/rate-limit",
        "plugins/redact",
        "plugins/validate",
        "plugins/fixtures",
        "guest-sdk/src",
        "guest-sdk/Cargo.toml",
        "wit",
        "scripts/build-guests.sh",
        "host/src/engine/settings.rs",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let out = root.join("plugins/target/wasm32-unknown-unknown/release");
    let status = Command::new("bash")
        .arg(root.join("scripts/build-guests.sh"))
        .arg("--quiet")
        .status()
        .expect("cannot run bash scripts/build-guests.sh");
    if !status.success() {
        panic!("building the guest plugins failed (scripts/build-guests.sh); see the output above");
    }
    println!("cargo:rustc-env=TOLLGATE_GUEST_DIR={}", out.display());
    let precompiled = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    precompile(&out, &precompiled);
    println!(
        "cargo:rustc-env=TOLLGATE_PRECOMPILED_DIR={}",
        precompiled.display()
    );
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("deflating into memory");
    encoder.finish().expect("deflating into memory")
}

/// Compile each built-in component for this machine with the engine's settings (no fuel: the
/// default; a policy that meters fuel compiles them at run time, once, into the code cache).
fn precompile(components: &Path, out: &Path) {
    let mut config = wasmtime::Config::new();
    settings::apply(&mut config, false);
    let engine = wasmtime::Engine::new(&config).expect("a wasmtime engine for precompiling");
    for name in BUILTINS {
        let wasm = components.join(format!("{name}.wasm"));
        let bytes =
            std::fs::read(&wasm).unwrap_or_else(|e| panic!("cannot read {}: {e}", wasm.display()));
        let code = engine
            .precompile_component(&bytes)
            .unwrap_or_else(|e| panic!("cannot precompile {}: {e:#}", wasm.display()));
        // Compiled code and components deflate to a third: the binary holds them compressed.
        for (file, bytes) in [
            (format!("{name}.cwasm.z"), &code),
            (format!("{name}.wasm.z"), &bytes),
        ] {
            let target = out.join(file);
            std::fs::write(&target, deflate(bytes))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
        }
        // The digest that names the component in the engine and the code cache, so a start
        // does not hash megabytes of built-in components.
        let digest: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(
            <sha2::Sha256 as sha2::Digest>::new(),
            &bytes,
        ))
        .into();
        let target = out.join(format!("{name}.sha256"));
        std::fs::write(&target, digest)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
    }
}
