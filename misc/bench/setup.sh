#!/usr/bin/env bash
# Installs the benchmarks' comparators: PostgreSQL 15 (apt, when root and missing) and
# DuckDB (a pinned PyPI version in the project's venv, $FRESHET_VENV or
# $HOME/.cache/freshet-venv). Idempotent; misc/bench/run.sh calls it first.
set -euo pipefail

duckdb_version="1.5.5"
pg_bin="${PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ ! -x "$pg_bin/initdb" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing postgresql-15" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >&2
  fi
  [ -x "$pg_bin/initdb" ] || { echo "PostgreSQL 15 not found in $pg_bin (set PG_BIN)" >&2; exit 2; }
fi

venv="${FRESHET_VENV:-$HOME/.cache/freshet-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
if [ "$("$venv/bin/python" -c 'import duckdb; print(duckdb.__version__)' 2>/dev/null)" != "$duckdb_version" ]; then
  echo "== installing duckdb==$duckdb_version into $venv" >&2
  "$venv/bin/pip" install -q "duckdb==$duckdb_version" >&2
fi
