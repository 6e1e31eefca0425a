#!/usr/bin/env bash
# Clippy over the guest SDK as plugins compile it (wasm32-unknown-unknown): the code behind
# `cfg(target_arch = "wasm32")` (the export glue, the host imports) is invisible to a native
# `cargo clippy`. Uses the same toolchain route as scripts/build-guests.sh; on the Debian route
# that is Debian's rustc-web with its matching clippy (rust-web-clippy, apt-installed if missing).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

toolchain=$("$root/scripts/wasm-toolchain.sh")
eval "$toolchain"

export RUSTC
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS='--cfg getrandom_backend="custom"'
args=(clippy --target wasm32-unknown-unknown --manifest-path "$root/Cargo.toml" -p tollgate-sdk
      --target-dir "$root/target/guest-clippy")
if [ -n "$BUILD_STD" ]; then
  if [ ! -x /usr/bin/cargo-clippy ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "clippy-guests: installing rust-web-clippy (Debian's clippy for rustc-web)" >&2
    $sudo env DEBIAN_FRONTEND=noninteractive flock /var/lock/tollgate-apt.lock apt-get -o DPkg::Lock::Timeout=600 install -y -q rust-web-clippy >/dev/null
  fi
  export RUSTC_BOOTSTRAP=1
  exec /usr/bin/cargo-clippy "${args[@]}" "-Zbuild-std=$BUILD_STD" -- -D warnings
fi
exec cargo "${args[@]}" -- -D warnings
