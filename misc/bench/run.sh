#!/usr/bin/env bash
# Runs Freshet's benchmarks and prints their tables; JSON results go to
# misc/bench/results/. Benchmarks are programs, never tests: they measure, print and
# record, and assert nothing about speed.
#
# Usage: misc/bench/run.sh [benchmark ...]     (default: all)
#   benchmarks: subscribe_latency
#
# Builds release binaries in $CARGO_TARGET_DIR (default $HOME/.cache/freshet-target).
# Extra flags for one benchmark can be given in FRESHET_BENCH_ARGS.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/freshet-target}"
all=(subscribe_latency)
benches=("$@")
[ ${#benches[@]} -eq 0 ] && benches=("${all[@]}")

echo "== building release binaries"
cargo build --release --bin environmentd -p environmentd
cargo build --release -p freshet-bench

mkdir -p misc/bench/results
bin="$CARGO_TARGET_DIR/release"
for bench in "${benches[@]}"; do
  case "$bench" in
    subscribe_latency)
      # shellcheck disable=SC2086
      "$bin/subscribe_latency" --server-bin "$bin/environmentd" --ticks 1,10 \
        --out misc/bench/results/subscribe_latency.json ${FRESHET_BENCH_ARGS:-}
      ;;
    *)
      echo "unknown benchmark $bench (known: ${all[*]})" >&2
      exit 2
      ;;
  esac
  echo
done
