#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root: installs the packages, builds
# twice (plain, and with ASan+UBSan), runs the unit tests of both builds through ctest, each
# libFuzzer target of tests/fuzz for a short while, and the
# integration tests through pytest against real PostgreSQL, Postfix and ZeroMQ, and the web
# console through Debian's chromium driven by playwright-core.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

./deploy/install-deps.sh
./deploy/build-web.sh   # the console's chart library and the browser tests' playwright-core (npm)

jobs=$(nproc)
echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORTCULLIS_SANITIZE=OFF >/dev/null
cmake --build build -j"$jobs"
echo "== build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPORTCULLIS_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"

echo "== unit tests (ctest, plain build)"
(cd build && ctest --output-on-failure -j"$jobs")
echo "== unit tests (ctest, sanitizer build)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j"$jobs")

echo "== fuzz targets (libFuzzer, clang ASan+UBSan: each briefly; long runs: docs/BENCHMARKS.md)"
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" ./tests/fuzz/run.sh

# Debian's python3 (with python3-pytest, -psycopg2, -zmq), whatever else is first on PATH.
echo "== integration tests (pytest, plain build)"
PORTCULLIS_BIN="$root/build/bin" /usr/bin/python3 -m pytest -v -p no:cacheprovider \
    tests/integration "$@"
echo "== integration tests (pytest, sanitizer build: any ASan/LSan/UBSan report fails the module)"
PORTCULLIS_BIN="$root/build-asan/bin" ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/integration "$@"
