#!/usr/bin/env bash
# Runs Freshet's benchmarks and prints their tables (Freshet and every comparator from
# the same run); JSON results go to misc/bench/results/<benchmark>.json and the
# printed tables to misc/bench/results/latest.md. Benchmarks are programs, never
# tests: they measure, print and record, and assert nothing about speed.
#
# Usage: misc/bench/run.sh [benchmark ...]     (default: all, in this order)
#   b1 | nexmark          Nexmark q0-q8 (no q6) as materialized views, 1 and 2 workers, against
#                         the same plans hand-written in differential dataflow
#   b2 | small_delta      commit -> current count/max GROUP BY view, Δ = 1, 100, 10K, against
#                         PostgreSQL REFRESH MATERIALIZED VIEW, DuckDB recompute, hand-written DD
#   b3 | crossover        the same by Δ up to half the base: where incremental stops winning
#   b6 | idle_views       idle CPU and tick latency with 200 materialized views over 5 tables
#   b7 | ingest           COPY FROM STDIN into an indexed table, against PostgreSQL COPY
#   memory                bytes per arranged row of an index, against the packed row size
#   subscribe_latency     commit -> SUBSCRIBE delivery of plain INSERTs (no comparator)
#
# Scale and repetitions are flags of each program (--rows, --runs, ...); give extra
# flags for the benchmarks named on the command line in FRESHET_BENCH_ARGS.
# Builds release binaries in $CARGO_TARGET_DIR (default $HOME/.cache/freshet-target);
# misc/bench/setup.sh installs the comparators (PostgreSQL 15, DuckDB).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/freshet-target}"
all=(b1 b2 b3 b6 b7 memory subscribe_latency)
benches=("$@")
[ ${#benches[@]} -eq 0 ] && benches=("${all[@]}")

misc/bench/setup.sh
echo "== building release binaries" >&2
cargo build -q --release --bin environmentd -p environmentd
cargo build -q --release -p freshet-bench -p freshet-bench-dd

results=misc/bench/results
mkdir -p "$results"
bin="$CARGO_TARGET_DIR/release"
common=(--server-bin "$bin/environmentd")
start=$(date +%s)
: >"$results/latest.md.tmp"
for bench in "${benches[@]}"; do
  # shellcheck disable=SC2206
  extra=(${FRESHET_BENCH_ARGS:-})
  case "$bench" in
    b1 | nexmark) cmd=("$bin/nexmark" "${common[@]}" --out "$results") ;;
    b2 | small_delta) cmd=("$bin/delta" "${common[@]}" --bench b2 --out "$results") ;;
    b3 | crossover) cmd=("$bin/delta" "${common[@]}" --bench b3 --base 1000000 --out "$results") ;;
    b6 | idle_views) cmd=("$bin/idle_views" "${common[@]}" --out "$results") ;;
    b7 | ingest) cmd=("$bin/ingest" "${common[@]}" --out "$results") ;;
    memory) cmd=("$bin/memory" "${common[@]}" --out "$results") ;;
    subscribe_latency)
      cmd=("$bin/subscribe_latency" "${common[@]}" --ticks 1,10 --out "$results/subscribe_latency.json")
      ;;
    *)
      echo "unknown benchmark $bench (known: ${all[*]})" >&2
      exit 2
      ;;
  esac
  "${cmd[@]}" ${extra[@]+"${extra[@]}"} | tee -a "$results/latest.md.tmp"
  echo | tee -a "$results/latest.md.tmp"
done
mv "$results/latest.md.tmp" "$results/latest.md"
echo "== ${benches[*]}: $(($(date +%s) - start)) s (tables in $results/latest.md)" >&2
