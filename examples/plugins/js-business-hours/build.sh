#!/usr/bin/env sh
# Builds build/js-business-hours.wasm (a WebAssembly component) from policy.js with componentize-js
# (installed from npm into node_modules on the first build). `-d` drops the WASI features this
# policy has no use for; it keeps `clocks`, because it reads the time (the pack asks for the
# `clocks` capability, and `output`, which the JS runtime imports alongside it).
# `tollgate pack build .` runs this, then packs and tests the result.
set -eu
cd "$(dirname "$0")"
# With a lock file, exactly what it pins (and the lock is never rewritten); else the latest match.
if [ ! -x node_modules/.bin/componentize-js ]; then
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent
  else npm install --no-audit --no-fund --silent; fi
fi
mkdir -p build
node_modules/.bin/componentize-js policy.js --wit ../../../wit/v0.2 -n plugin \
  -d http fetch-event stdio random -o build/js-business-hours.wasm
