#!/usr/bin/env bash
# Fleet views benchmark (issue 12 point 3): status, children list, health route, /metrics and
# `portcullis status --json` with K children; prints the table for docs/BENCHMARKS.md.
#   usage: [BEFORE=OTHER/bin] tests/bench/views_bench.sh [BUILD=build] [K ...]   (K: 1000 3000)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
shift || true
cmake --build "$build" >/dev/null
mkdir -p "$build/bench"
extra=()
[ -n "${BEFORE:-}" ] && extra=(--bin "before=$BEFORE")
/usr/bin/python3 tests/bench/views_bench.py "${extra[@]}" --bin "this=$build/bin" "$@" \
    2>"$build/bench/views_bench.log" | tee "$build/bench/views_bench.md"
