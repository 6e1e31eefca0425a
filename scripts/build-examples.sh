#!/usr/bin/env bash
# Builds every example plugin (examples/plugins/*) into a pack with `tollgate pack build`, which
# installs each language's toolchain when missing and runs the project's tests.yaml. The test
# suite does this by itself (host/tests/suite/packs.rs); this is for benchmarks and trying them out.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cargo build -q -p tollgate
for dir in examples/plugins/*/; do
  target/debug/tollgate pack build "$dir"
done
