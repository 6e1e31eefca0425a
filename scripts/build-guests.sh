#!/usr/bin/env bash
# Builds Tollgate's guest plugins (plugins/: the built-in ones and the test fixtures) as
# WebAssembly components for wasm32-unknown-unknown, installing the toolchain first if needed.
# Output: plugins/target/wasm32-unknown-unknown/release/*.wasm
#
# Called by host/build.rs (so `cargo build` just works) and usable by hand. Quick when nothing
# changed: cargo's own up-to-date check.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# This may run inside another cargo's build script: drop everything that cargo passes down so the
# nested build is configured only by what follows.
for var in $(env | sed -n 's/^\(CARGO_[A-Za-z0-9_]*\)=.*/\1/p; s/^\(RUST[A-Za-z0-9_]*\)=.*/\1/p'); do
  case "$var" in CARGO_HOME|RUSTUP_HOME|RUSTUP_TOOLCHAIN) ;; *) unset "$var" ;; esac
done
unset CARGO DEBUG OPT_LEVEL PROFILE TARGET HOST NUM_JOBS OUT_DIR

toolchain=$("$root/scripts/wasm-toolchain.sh")
eval "$toolchain"

export RUSTC
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$LINKER"
# Plugins have no randomness: the SDK supplies getrandom's backend (guest-sdk/src/entropy.rs).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS='--cfg getrandom_backend="custom"'
args=(build --release --target wasm32-unknown-unknown --manifest-path "$root/plugins/Cargo.toml"
      --target-dir "$root/plugins/target")
if [ -n "$BUILD_STD" ]; then
  export RUSTC_BOOTSTRAP=1
  args+=("-Zbuild-std=$BUILD_STD")
fi
cargo "${args[@]}" "$@"
