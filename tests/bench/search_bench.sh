#!/usr/bin/env bash
# Searches at 10 million rows (issue 12 point 5, R10.3): loads a real PostgreSQL through the
# schema's indexes and times the console's searches through a real parent; prints the table
# for docs/BENCHMARKS.md. Not a test.
#   usage: tests/bench/search_bench.sh [BUILD=build] [--rows N] [--stored N] [--keep DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
shift || true
cmake --build "$build" --target portcullis portcullis-parent >/dev/null
mkdir -p "$build/bench"
/usr/bin/python3 tests/bench/search_bench.py --bin "$build/bin" "$@" \
    2>"$build/bench/search_bench.log" | tee "$build/bench/search_bench.md"
