#!/usr/bin/env sh
# Builds build/c-path-allowlist.wasm (a WebAssembly component) from C with clang and wasi-libc, linked by
# wasm-component-ld. Installs clang-16, lld-16 and wasi-libc with apt when they are missing.
# `tollgate pack build .` runs this, then packs and tests the result.
set -eu
cd "$(dirname "$0")"
need=""
command -v clang-16 >/dev/null 2>&1 || need="clang-16 lld-16 libclang-rt-16-dev-wasm32"
[ -d /usr/include/wasm32-wasi ] || need="$need wasi-libc"
linker=""
for l in "$(rustc --print sysroot 2>/dev/null)/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld" \
         /usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld "$(command -v wasm-component-ld || true)"; do
  if [ -x "$l" ]; then linker="$l"; break; fi
done
[ -n "$linker" ] || need="$need rust-web-llvm"
if [ -n "$need" ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing $need" >&2
  # Several builds may install at once (and so may the system): one apt at a time.
  apt() { DEBIAN_FRONTEND=noninteractive $sudo flock /var/lock/tollgate-apt.lock apt-get -o DPkg::Lock::Timeout=600 "$@"; }
  apt update -qq >&2
  apt install -y -qq $need >&2
  [ -n "$linker" ] || linker=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld
fi
mkdir -p build
# In the Tollgate repository the bindings come from guest-sdk/c (`tollgate pack new` copies them
# into bindings/).
b=../../../guest-sdk/c
clang-16 --target=wasm32-wasi -O2 -Wall -mexec-model=reactor -I$b \
  $b/plugin.c plugin_impl.c $b/plugin_component_type.o \
  -fuse-ld="$linker" -Wl,--wasi-adapter=reactor -o build/c-path-allowlist.wasm
