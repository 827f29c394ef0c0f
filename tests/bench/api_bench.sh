#!/usr/bin/env bash
# REST API benchmark (issue 6): requests/s and latency of the parent's HTTPS API under wrk —
# GET /api/v1/status (two children), GET /metrics, a quarantine search, GET /api/v1/me (the
# floor: authentication only) — and the cost of one argon2id log-in. A real parent and
# PostgreSQL from the integration harness in /tmp. Not a test: prints a Markdown table for
# docs/BENCHMARKS.md and never fails on a number. Installs wrk (Debian) if it is missing.
#   usage: tests/bench/api_bench.sh [BUILD=build] [SECONDS=10]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
secs=${2:-10}
command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
cmake --build "$build" --target portcullis portcullis-parent portcullis-child >/dev/null
mkdir -p "$build/bench"
/usr/bin/python3 tests/bench/api_bench.py --bin "$build/bin" --seconds "$secs" \
    2>"$build/bench/api_bench.log" | tee "$build/bench/api_bench.md"
