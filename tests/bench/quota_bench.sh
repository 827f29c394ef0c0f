#!/bin/sh
# quota_bench.sh: the child manager's quota check, verification walk and purge (R5.8, R5.9) on
# N small stored files in hourly buckets (default 1,000,000 files of 1 KiB, 1000 per bucket),
# beside `du -s` of the same tree. IO heavy: run once, on a quiet machine.
#   tests/bench/quota_bench.sh [BUILD_DIR] [N]
# Needs the quota_bench helper (cmake --build BUILD_DIR --target quota_bench). Each step is
# bounded by BENCH_STEP_TIMEOUT seconds; the tree (~4 GB with 4 KiB blocks) is removed at the end.
set -eu

BUILD=${1:-build}
N=${2:-1000000}
SIZE=${BENCH_FILE_SIZE:-1024}
PER_BUCKET=${BENCH_PER_BUCKET:-1000}
STEP_TIMEOUT=${BENCH_STEP_TIMEOUT:-1800}
HELPER=$BUILD/tests/quota_bench

[ -x "$HELPER" ] || { echo "quota_bench.sh: $HELPER missing: cmake --build $BUILD --target quota_bench" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/quota-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
mkdir -p "$WORK/q" "$WORK/state"

echo "quota_bench: $N files of $SIZE bytes, $PER_BUCKET per hourly bucket, in $WORK"
timeout "$STEP_TIMEOUT" "$HELPER" make "$WORK/q" "$N" "$SIZE" "$PER_BUCKET"
sync
t0=$(date +%s.%N)
timeout "$STEP_TIMEOUT" du -s --apparent-size -B1 "$WORK/q"
t1=$(date +%s.%N)
echo "du_s=$(echo "$t1 - $t0" | bc) (du -s --apparent-size, same tree, same cache state)"
t0=$(date +%s.%N)
timeout "$STEP_TIMEOUT" du -s "$WORK/q" >/dev/null
t1=$(date +%s.%N)
echo "du_s_again=$(echo "$t1 - $t0" | bc) (du -s, warm)"
timeout "$STEP_TIMEOUT" "$HELPER" run "$WORK/q" "$WORK/state"
t0=$(date +%s.%N)
rm -rf "$WORK/q"
t1=$(date +%s.%N)
echo "rm_rf_rest_s=$(echo "$t1 - $t0" | bc) (rm -rf of the remaining half, for comparison)"
