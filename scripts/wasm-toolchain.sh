#!/usr/bin/env bash
# Installs (if needed) and describes the toolchain that builds Tollgate's guest plugins for
# wasm32-unknown-unknown as WebAssembly components. Idempotent and quick when all is present.
#
#   scripts/wasm-toolchain.sh          install if needed, then print `KEY=VALUE` lines:
#                                      ROUTE, RUSTC, LINKER, BUILD_STD (consumed by build-guests.sh)
#
# Two routes, preferred in this order:
#   rustup  - `rustup target list --installed` has wasm32-unknown-unknown: plain stable cargo,
#             linked by the toolchain's own wasm-component-ld.
#   debian  - Debian's rustc-web (which knows wasm targets but ships no wasm std) builds std from
#             rust-web-src with -Zbuild-std; rust-web-llvm provides wasm-component-ld.
#             `rustup target add` cannot work on machines without access to its download host.
set -euo pipefail

log() { printf 'wasm-toolchain: %s\n' "$*" >&2; }

if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  sysroot=$(rustc --print sysroot)
  linker="$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld"
  if [ -x "$linker" ]; then
    echo "ROUTE=rustup"
    echo "RUSTC=$(rustup which rustc)"
    echo "LINKER=$linker"
    echo "BUILD_STD="
    exit 0
  fi
  log "rustup has wasm32-unknown-unknown but no wasm-component-ld at $linker; using the Debian route"
fi

debian_linker=/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld
debian_pkgs=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 wasi-libc)
if [ ! -x "$debian_linker" ] || [ ! -d /usr/lib/rustlib/src/rust/library ] || [ ! -x /usr/bin/rustc ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "no wasm32-unknown-unknown rustup target and no apt-get: install the target with 'rustup target add wasm32-unknown-unknown'"
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing ${debian_pkgs[*]} (about 160 MiB, once)"
  # Other installs may run at the same time (pack builds, the system's own): one apt at a time.
  apt() { DEBIAN_FRONTEND=noninteractive $sudo flock /var/lock/tollgate-apt.lock apt-get -o DPkg::Lock::Timeout=600 "$@"; }
  apt update -qq >&2
  apt install -y -qq "${debian_pkgs[@]}" >&2
fi
echo "ROUTE=debian"
echo "RUSTC=/usr/bin/rustc"
echo "LINKER=$debian_linker"
echo "BUILD_STD=std,panic_abort"
