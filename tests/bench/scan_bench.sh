#!/usr/bin/env bash
# Scan-service benchmark (issue 3): messages/s, p50/p99 latency added to each message
# (MAIL FROM → final 250, measured by tests/bench/smtp_load.c) and the scan service's RSS at
# concurrency 1, 10 and 50, for 20 KB messages: straight into smtp-sink (the limit), through a
# real child with scanning off (av.enabled=false), and through it with ClamAV + policy on a
# 100 000-signature set with 1 % infected mail. The child runs under a real parent and
# PostgreSQL (the integration harness starts them in /tmp); its downstream is smtp-sink.
# Not a test: prints a Markdown table for docs/BENCHMARKS.md and never fails on a number.
#   usage: tests/bench/scan_bench.sh [BUILD=build] [N=3000] [SIZE=20000] [SIGS=100000]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
n=${2:-3000}
size=${3:-20000}
sigs=${4:-100000}
cmake --build "$build" --target smtp_load portcullis portcullis-parent portcullis-child >/dev/null
mkdir -p "$build/bench"
/usr/bin/python3 tests/bench/scan_bench.py --bin "$build/bin" --load "$build/tests/smtp_load" \
    -n "$n" -s "$size" --sigs "$sigs" 2>"$build/bench/scan_bench.log" | tee "$build/bench/scan_bench.md"
