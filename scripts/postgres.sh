#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests of `--storage postgresql://` (no mock): Debian's
# package, installed when missing, a fresh cluster in a temporary folder listening on
# 127.0.0.1 only, trust authentication for the local test user.
#   eval "$(./scripts/postgres.sh start)"   prints EDGETUNE_TEST_POSTGRES and EDGETUNE_PG_DIR
#   ./scripts/postgres.sh stop "$EDGETUNE_PG_DIR"
set -euo pipefail

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$d" ] && command -v pg_ctl >/dev/null; then d=$(dirname "$(readlink -f "$(command -v pg_ctl)")"); fi
  echo "$d"
}

# Runs a server program as the `postgres` user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  start)
    bin=$(bindir)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
      echo "installing PostgreSQL (Debian's postgresql package)" >&2
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
      bin=$(bindir)
    fi
    dir=$(mktemp -d /tmp/edgetune-pg.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    # A free port on the loopback.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$bin/initdb" -D "$dir/data" -U edgetune --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >&2
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U edgetune edgetune >&2
    echo "export EDGETUNE_TEST_POSTGRES=postgresql://edgetune@127.0.0.1:$port/edgetune"
    echo "export EDGETUNE_PG_DIR=$dir"
    ;;
  stop)
    dir=${2:?the folder start printed}
    bin=$(bindir)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >&2 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
