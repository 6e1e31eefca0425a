#!/usr/bin/env bash
# Install the real MCP servers and clients that Tollgate's end-to-end tests run against.
#
# Usage:  scripts/test-peers.sh                      # idempotent; well under a second when current
#         TEST_PEERS_FORCE=1 scripts/test-peers.sh   # reinstall everything
#         PYTHON=python3.12 scripts/test-peers.sh    # pick the interpreter for the venvs (>= 3.10)
#
# Everything lands under tests/peers/ (node_modules/ and .env/ are not committed):
#   .env/bin/node  node >= 20: the system node, or npm's node-linux-<arch> build when that is older
#   node_modules/  `npm ci` from package-lock.json: @modelcontextprotocol/{sdk, server-everything,
#                  server-filesystem, server-memory} and playwright-core (drives Chromium for the
#                  console test; Debian's chromium is apt-installed when missing, and so is
#                  docker-registry, the OCI registry the pack tests push to)
#   .env/py1       venv from requirements-py1.txt: mcp 1.30.0 + mcp-server-time
#   .env/py2       venv from requirements-py2.txt: mcp 2.3.0 (2026-07-28 revision) + mcp-server-time
# Each part is skipped while its stamp file matches the pinned inputs. On Debian/Ubuntu as root,
# missing node/npm/python3-venv are installed with apt-get. One line per step goes to stderr; the
# tools' own output goes to tests/peers/.env/install.log and its tail is shown on failure.
set -euo pipefail

PEERS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/peers" && pwd)
ENVDIR=$PEERS/.env
LOG=$ENVDIR/install.log
PYTHON=${PYTHON:-python3}
NODE_DL_VERSION=22.23.3 # npm package node-linux-<arch>, used only when the system node is < 20

say() { printf 'test-peers: %s\n' "$*" >&2; }
die() {
	say "ERROR: $*"
	if [ -s "$LOG" ]; then say "last lines of $LOG:" && tail -n 25 "$LOG" >&2; fi
	exit 1
}
run() { "$@" >>"$LOG" 2>&1; }
# fresh STAMPFILE CONTENT: true when the part was installed from exactly these inputs.
fresh() { [ -z "${TEST_PEERS_FORCE:-}" ] && [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
apt_install() {
	{ [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; } || die "missing $*; please install it"
	say "apt-get install $*"
	# One apt at a time: pack builds and the system may be installing too.
	local apt=(env DEBIAN_FRONTEND=noninteractive flock /var/lock/tollgate-apt.lock apt-get -o DPkg::Lock::Timeout=600)
	run "${apt[@]}" update -q && run "${apt[@]}" install -y -q "$@" ||
		die "apt-get install $* failed"
}

mkdir -p "$ENVDIR/bin"
: >"$LOG"
if command -v flock >/dev/null; then # parallel test runs may call this concurrently
	exec 9>"$ENVDIR/.lock"
	flock 9
fi
start=$SECONDS

# 1. node >= 20 (required by @hono/node-server in the SDK) at the stable path .env/bin/node.
{ command -v node && command -v npm; } >/dev/null || apt_install nodejs npm
# The HTTPS tests make their certificates with openssl.
command -v openssl >/dev/null || apt_install openssl
# The console's browser test drives Debian's Chromium, headless, with playwright-core.
command -v chromium >/dev/null || apt_install chromium
# The registry tests push and pull packs through Debian's CNCF distribution registry.
command -v docker-registry >/dev/null || apt_install docker-registry
sys_node=$(command -v node)
if [ "$("$sys_node" -p 'process.versions.node.split(".")[0]')" -ge 20 ]; then
	ln -sfn "$sys_node" "$ENVDIR/bin/node"
	say "node: using system node $("$sys_node" --version)"
else
	case $(uname -m) in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
	pkg=node-linux-$arch@$NODE_DL_VERSION
	if fresh "$ENVDIR/node/.tollgate-stamp" "$pkg"; then
		say "node: $pkg up to date"
	else
		say "node: system node is $("$sys_node" --version); installing $pkg from npm"
		rm -rf "$ENVDIR/node" && mkdir -p "$ENVDIR/node"
		run npm install --prefix "$ENVDIR/node" --no-audit --no-fund "$pkg" || die "npm install $pkg failed"
		echo "$pkg" >"$ENVDIR/node/.tollgate-stamp"
	fi
	ln -sfn "$ENVDIR/node/node_modules/node-linux-$arch/bin/node" "$ENVDIR/bin/node"
fi
export PATH=$ENVDIR/bin:$PATH # npm ci below runs under this node too

# 2. npm packages, exactly as locked.
stamp="$(sha256sum <"$PEERS/package-lock.json" | cut -c1-64) node $(node --version)"
if fresh "$PEERS/node_modules/.tollgate-stamp" "$stamp"; then
	say "npm: node_modules up to date"
else
	say "npm: npm ci in tests/peers"
	(cd "$PEERS" && run npm ci --no-audit --no-fund) || die "npm ci failed"
	echo "$stamp" >"$PEERS/node_modules/.tollgate-stamp"
fi

# 3. Python virtualenvs: py1 (mcp 1.x) and py2 (mcp 2.x) must stay separate.
command -v "$PYTHON" >/dev/null || apt_install python3 python3-venv
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PYTHON is older than 3.10"
pyver=$("$PYTHON" -c 'import platform; print(platform.python_version())')
for n in 1 2; do
	dir=$ENVDIR/py$n
	req=$PEERS/requirements-py$n.txt
	pins=$(grep -E '^mcp(-server-time)?==' "$req" | tr '\n' ' ')
	stamp="${pins}python $pyver sha256 $(sha256sum <"$req" | cut -c1-64)"
	if fresh "$dir/.tollgate-stamp" "$stamp" && [ -x "$dir/bin/python" ]; then
		say "py$n: ${pins}up to date"
		continue
	fi
	say "py$n: creating venv with ${pins}(python $pyver)"
	if ! run "$PYTHON" -m venv --clear "$dir"; then
		apt_install python3-venv # Debian ships ensurepip separately
		run "$PYTHON" -m venv --clear "$dir" || die "$PYTHON -m venv $dir failed"
	fi
	run "$dir/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off -r "$req" ||
		die "pip install -r $req failed"
	echo "$stamp" >"$dir/.tollgate-stamp"
done

say "ready in $((SECONDS - start))s"
