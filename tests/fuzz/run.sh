#!/usr/bin/env bash
# The libFuzzer targets of tests/fuzz (R8.6): builds them with clang (ASan + UBSan) into
# build-fuzz and runs each for FUZZ_SECONDS (default 15) from its seed corpus
# (tests/fuzz/corpus/<target>, taken from the tests' own inputs) plus what earlier runs found
# (build-fuzz/corpus/<target>). A crash, leak, timeout or sanitizer report fails the run and
# leaves the input in build-fuzz/artifacts/. Long runs: FUZZ_SECONDS=600 tests/fuzz/run.sh
# (docs/BENCHMARKS.md reports them). Optional arguments: target names to run only those.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
seconds=${FUZZ_SECONDS:-15}

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORTCULLIS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz >/dev/null

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
mkdir -p build-fuzz/artifacts
failed=0
for t in "${targets[@]}"; do
    work="build-fuzz/corpus/$t"
    mkdir -p "$work"
    log="build-fuzz/$t.log"
    # -max_len: the limits of what each parser takes; mime and smtp_data get whole messages
    case "$t" in
        fuzz_mime|fuzz_smtp_data|fuzz_update_pkg) max_len=262144 ;;
        *) max_len=16384 ;;
    esac
    if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "build-fuzz/fuzz/$t" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
            -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-" \
            "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo ?)
        echo "fuzz $t: ok, $runs runs in ${seconds} s, corpus $(ls "$work" | wc -l)"
    else
        echo "fuzz $t: FAILED (see $root/$log and build-fuzz/artifacts/):"
        grep -E "ERROR|SUMMARY|==[0-9]+==|deadly signal|Test unit written" "$log" | head -20
        failed=1
    fi
done
exit $failed
