#!/usr/bin/env bash
# A throwaway Redis for Tollgate's tests and benchmarks of the Redis counter store.
#
#   scripts/redis-server.sh install     apt-get install redis-server unless `redis-server` is on
#                                       PATH (idempotent; `apt-get update` only if the install
#                                       fails without it)
#   scripts/redis-server.sh start DIR   start redis-server on a free 127.0.0.1 port, working in
#                                       DIR (pid file and log there), without persistence;
#                                       prints the port. Stop it with `kill "$(cat DIR/redis.pid)"`.
set -euo pipefail

say() { printf 'redis-server.sh: %s\n' "$*" >&2; }

install() {
	if command -v redis-server >/dev/null 2>&1; then
		return 0
	fi
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		say "redis-server is missing; install it (Debian/Ubuntu: apt-get install redis-server)"
		exit 1
	fi
	say "installing redis-server with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	# One apt at a time: pack builds and the system may be installing too.
	apt() { flock /var/lock/tollgate-apt.lock apt-get -o DPkg::Lock::Timeout=600 "$@"; }
	if ! apt install -y -qq redis-server >/dev/null 2>&1; then
		apt update -qq >/dev/null
		apt install -y -qq redis-server >/dev/null
	fi
	command -v redis-server >/dev/null 2>&1 || {
		say "redis-server is still not on PATH after installing"
		exit 1
	}
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
	local dir=${1:?usage: redis-server.sh start DIR}
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local port
	port=$(free_port)
	redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
		--dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
		--save '' --appendonly no >/dev/null
	# Wait until it answers (at most 5 s).
	for _ in $(seq 50); do
		if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
			echo "$port"
			return 0
		fi
		sleep 0.1
	done
	say "redis-server did not answer on port $port; log:"
	tail -n 20 "$dir/redis.log" >&2 || true
	exit 1
}

case "${1:-}" in
install) install ;;
start) start "${2:-}" ;;
*)
	say "usage: $0 install | start DIR"
	exit 2
	;;
esac
