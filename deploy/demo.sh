#!/usr/bin/env bash
# The demo on a fresh Debian 12 machine, as root: installs the packages, builds, then starts a
# local PostgreSQL, a parent, two children and real Postfix instances (upstream and
# downstream) on loopback under /tmp/portcullis-demo, relays sample mail through both
# children, prints the fleet status, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh
PORTCULLIS_SKIP_BROWSER_TESTS=1 ./deploy/build-web.sh   # the console's chart library (npm)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPORTCULLIS_SANITIZE=OFF >/dev/null
cmake --build build -j"$(nproc)"
PORTCULLIS_BIN="$(pwd)/build/bin" exec /usr/bin/python3 deploy/demo.py "$@"
