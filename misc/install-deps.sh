#!/usr/bin/env bash
# Installs what the tests need on a fresh machine: a C compiler (SQLite's bundled
# build), psql (apt postgresql-client) and a Python venv with psycopg for the client
# tests. Later suites add PostgreSQL, an S3-compatible server and a Kafka broker here.
#
# Prints the venv's python on its last line of stdout.
set -euo pipefail

need() { command -v "$1" >/dev/null 2>&1; }
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq >&2; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

if ! need cargo; then
  echo "cargo is required (install Rust with rustup)" >&2
  exit 1
fi
need cc || apt_install build-essential
need psql || apt_install postgresql-client

venv="${FRESHET_VENV:-$HOME/.cache/freshet-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c "import psycopg" 2>/dev/null; then
  "$venv/bin/pip" install -q "psycopg[binary]>=3.1,<4" >&2
fi
echo "$venv/bin/python"
