#!/usr/bin/env bash
# Tollgate's whole test suite, from a fresh clone: installs what it needs (the WebAssembly
# toolchain, the real MCP servers and clients of tests/peers), then runs the guest SDK's and
# plugins' native unit tests, the host's unit and integration tests (engine limits, chain, stdio
# proxy) and the end-to-end tests against real MCP servers and SDK clients.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

echo "== setup: wasm toolchain and test peers" >&2
scripts/wasm-toolchain.sh >/dev/null
scripts/test-peers.sh
scripts/redis-server.sh install

echo "== guest SDK and built-in plugins, natively" >&2
cargo test --manifest-path plugins/Cargo.toml --target-dir plugins/target/native

echo "== host and SDK (unit, integration, end-to-end)" >&2
cargo test --workspace
