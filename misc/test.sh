#!/usr/bin/env bash
# Runs Freshet's whole test suite: unit and end-to-end tests (cargo test), the SQLite
# sqllogictest corpus as a progress report, and our own sqllogictest suites.
#
# Usage: misc/test.sh            (from anywhere; a fresh machine needs only Rust)
#
# Cargo's target directory lives outside the clone ($HOME/.cache/freshet-target unless
# CARGO_TARGET_DIR is set), so repeated runs build incrementally.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/freshet-target}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

python="$(misc/install-deps.sh | tail -n 1)"

echo "== build"
cargo build --workspace --all-targets

echo "== cargo test"
cargo test --workspace

bin="$CARGO_TARGET_DIR/debug"

echo "== clients: psql and psycopg against environmentd"
"$python" test/e2e/clients.py "$bin/environmentd"

corpus="$root/../shared/sqllogictest/sqlite"
if [ -d "$corpus" ]; then
  echo "== SQLite corpus: select1-5 (must pass completely)"
  "$bin/sqllogictest" --server-bin "$bin/environmentd" \
    "$corpus/select1.test" "$corpus/select2.test" "$corpus/select3.test" \
    "$corpus/select4.test" "$corpus/select5.test"
  echo "== SQLite corpus: evidence (progress report; SQLite-only features fail on PostgreSQL too)"
  "$bin/sqllogictest" --server-bin "$bin/environmentd" --allow-failures "$corpus/evidence"
else
  echo "== SQLite corpus not found at $corpus; skipped"
fi

echo "== sqllogictest suites (test/sqllogictest)"
"$bin/sqllogictest" --server-bin "$bin/environmentd" --label freshet test/sqllogictest

echo "== incremental views ≡ recompute (a subset; the full run is in doc/testing.md)"
if [ -d "$corpus" ]; then
  "$bin/incremental-views" --server-bin "$bin/environmentd" --every 40 \
    "$corpus/select1.test" "$corpus/select2.test" "$corpus/select3.test" \
    "$corpus/select4.test" "$corpus/select5.test"
fi
"$bin/incremental-views" --server-bin "$bin/environmentd" --every 2 test/sqllogictest
