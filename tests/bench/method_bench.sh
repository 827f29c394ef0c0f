#!/usr/bin/env bash
# Scan-method benchmark (issue 4 point 8): the scan service's CPU time per message and resident
# memory in conventional and in smart scan on the same corpus, the look-up service's CPU per
# message, and the look-up round trip (p50/p99) with 1 and 10 simulated children. A real child
# under a real parent and PostgreSQL (integration harness, in /tmp); downstream smtp-sink.
# Not a test: prints Markdown for docs/BENCHMARKS.md and never fails on a number.
#   usage: tests/bench/method_bench.sh [BUILD=build] [N=3000] [CORPUS=attachments|text] [SIZE=20000]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
n=${2:-3000}
corpus=${3:-attachments}
size=${4:-20000}
cmake --build "$build" --target smtp_load portcullis portcullis-parent portcullis-child >/dev/null
mkdir -p "$build/bench"
/usr/bin/python3 tests/bench/method_bench.py --bin "$build/bin" --load "$build/tests/smtp_load" \
    -n "$n" --corpus "$corpus" -s "$size" 2>"$build/bench/method_bench.log" | tee "$build/bench/method_bench.md"
