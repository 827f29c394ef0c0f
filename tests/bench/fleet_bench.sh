#!/usr/bin/env bash
# Fleet benchmark (issue 12 point 4): K simulated children (tests/bench/fleet_sim.c) against a
# real parent and PostgreSQL; prints the table for docs/BENCHMARKS.md. Not a test.
#   usage: [BEFORE=OTHER/bin] [ALSO="LABEL=DIR[,KEY=VALUE...] ..."] tests/bench/fleet_bench.sh
#          [BUILD=build] [K ...]   (K: 100 1000 3000; KEY=VALUE: parent.conf keys of that parent)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
shift || true
cmake --build "$build" --target fleet_sim portcullis portcullis-parent >/dev/null
mkdir -p "$build/bench"
# BEFORE=DIR (a bin directory of another build) adds it to the same run, side by side
extra=()
[ -n "${BEFORE:-}" ] && extra=(--bin "before=$BEFORE")
for spec in ${ALSO:-}; do extra+=(--bin "$spec"); done
/usr/bin/python3 tests/bench/fleet_bench.py "${extra[@]}" --bin "this=$build/bin" \
    --sim "$build/tests/fleet_sim" "$@" \
    2>"$build/bench/fleet_bench.log" | tee "$build/bench/fleet_bench.md"
