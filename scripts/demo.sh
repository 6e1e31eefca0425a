#!/usr/bin/env bash
# Tollgate's main job on an embedded default, from a fresh clone: build Tollgate (installing the
# WebAssembly toolchain if needed), put it in front of a small MCP server with policies/demo.yaml,
# and show allowed, denied, hidden and rate-limited calls with their reasons.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
echo "== building tollgate (first build installs the wasm toolchain and takes a few minutes)" >&2
cargo build --quiet --bin tollgate
echo "== tollgate check policies/demo.yaml" >&2
target/debug/tollgate check policies/demo.yaml
echo
echo "== an agent talking to the demo server through tollgate:"
TOLLGATE_LOG=${TOLLGATE_LOG:-warn} python3 scripts/demo/client.py target/debug/tollgate policies/demo.yaml
