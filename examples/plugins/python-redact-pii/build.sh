#!/usr/bin/env sh
# Builds build/python-redact-pii.wasm (a WebAssembly component) from rules.py with componentize-py
# (installed from PyPI into .venv on the first build). `--stub-wasi` leaves the component without
# WASI imports. `tollgate pack build .` runs this, then packs and tests the result.
set -eu
cd "$(dirname "$0")"
if [ ! -x .venv/bin/componentize-py ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check componentize-py==0.25.1
fi
mkdir -p build
.venv/bin/componentize-py -d ../../../wit/v0.2 -w plugin componentize --stub-wasi rules -o build/python-redact-pii.wasm
