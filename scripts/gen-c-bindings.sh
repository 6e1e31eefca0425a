#!/usr/bin/env bash
# Regenerates the C bindings of the tollgate:policy WIT package (guest-sdk/c/) with
# wit-bindgen-cli 0.63.0 (`cargo install --locked wit-bindgen-cli@0.63.0`). The WIT package is
# versioned and frozen, so this only runs when a new WIT version is added; `tollgate pack new
# --lang c` copies these files into new projects.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wit-bindgen c "$root/wit/v0.2" --world plugin --out-dir "$root/guest-sdk/c"
