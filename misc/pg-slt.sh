#!/usr/bin/env bash
# Runs sqllogictest files against a throwaway PostgreSQL 15 cluster, to check
# (or, with --complete, regenerate) the expected results in test/sqllogictest.
#
# Usage: misc/pg-slt.sh [--complete] [runner args...] [files or directories...]
#
#   misc/pg-slt.sh                                   # check every suite
#   misc/pg-slt.sh -v test/sqllogictest/views.slt    # one file, print failures
#   misc/pg-slt.sh --complete test/sqllogictest/new.slt
#
# The cluster lives in a temporary directory (C collation, trust auth) on port
# $PG_SLT_PORT (default 5499) and is stopped and removed on exit. Every file
# gets a fresh database, as Freshet files get a fresh server. PostgreSQL's
# binaries are taken from $PG_BIN, /usr/lib/postgresql/15/bin, or installed
# with apt-get (postgresql-15) when running as root. After --complete, review
# the diff: see test/sqllogictest/README.md for the caveats.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/freshet-target}"
port="${PG_SLT_PORT:-5499}"
pg_bin="${PG_BIN:-/usr/lib/postgresql/15/bin}"

if [ ! -x "$pg_bin/initdb" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
  fi
  [ -x "$pg_bin/initdb" ] || { echo "PostgreSQL 15 not found in $pg_bin (set PG_BIN)" >&2; exit 2; }
fi

# Split the arguments into runner options and paths.
opts=()
paths=()
for arg in "$@"; do
  if [ -e "$arg" ]; then paths+=("$arg"); else opts+=("$arg"); fi
done
[ ${#paths[@]} -gt 0 ] || paths=(test/sqllogictest)

cargo build -q -p sqllogictest@0.1.0
runner="$CARGO_TARGET_DIR/debug/sqllogictest"

# initdb refuses to run as root: run the server as `postgres` then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

dir="$(mktemp -d /tmp/pg-slt.XXXXXX)"
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
cleanup() {
  as_pg "'$pg_bin/pg_ctl' -D '$dir/data' -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

as_pg "'$pg_bin/initdb' -D '$dir/data' -A trust -E UTF8 --locale=C.UTF-8" >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 2; }
as_pg "'$pg_bin/pg_ctl' -D '$dir/data' -o '-p $port -k $dir' -l '$dir/log' -w start" >/dev/null \
  || { cat "$dir/log" >&2; exit 2; }
psql=("$pg_bin/psql" -q -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1)
"${psql[@]}" -c "CREATE ROLE freshet SUPERUSER LOGIN"

# Expand directories into files, sorted like the runner does.
files=()
for p in "${paths[@]}"; do
  if [ -d "$p" ]; then
    while IFS= read -r f; do files+=("$f"); done < <(find "$p" -name '*.slt' -o -name '*.test' | LC_ALL=C sort)
  else
    files+=("$p")
  fi
done

status=0
: >"$dir/summary"
for f in "${files[@]}"; do
  PGOPTIONS='-c client_min_messages=warning' \
    "${psql[@]}" -c "DROP DATABASE IF EXISTS freshet" -c "CREATE DATABASE freshet OWNER freshet"
  "$runner" --url "postgres://freshet@127.0.0.1:$port/freshet" ${opts[@]+"${opts[@]}"} "$f" \
    >"$dir/out" || status=1
  grep -v '^[0-9]* \(passed\|files\)' "$dir/out" || true
  grep "^$f: [0-9]* passed" "$dir/out" >>"$dir/summary" || true
done
# The closing line: totals over all files (not printed for --complete).
if [ -s "$dir/summary" ]; then
  awk '{ p += $(NF-5); f += $(NF-3); s += $(NF-1) }
       END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$dir/summary"
fi
exit $status
