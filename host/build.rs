//! Builds the guest plugins (plugins/) as WebAssembly components through scripts/build-guests.sh
//! and tells the crate where they are, so `cargo build` alone produces a complete binary.

use std::path::PathBuf;
use std::process::Command;

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
}
