#!/usr/bin/env sh
# Builds build/rust-block-secrets.wasm (a WebAssembly component) and runs the native unit tests.
# `tollgate pack build .` runs this, then packs and tests the result.
set -eu
cd "$(dirname "$0")"
cargo test --quiet
eval "$(bash ../../../scripts/wasm-toolchain.sh)"
export RUSTC
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$LINKER"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS='--cfg getrandom_backend="custom"'
if [ -n "$BUILD_STD" ]; then
  RUSTC_BOOTSTRAP=1 cargo build --release --target wasm32-unknown-unknown -Zbuild-std="$BUILD_STD"
else
  cargo build --release --target wasm32-unknown-unknown
fi
mkdir -p build
cp "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/$(echo rust-block-secrets | tr - _).wasm" build/rust-block-secrets.wasm
