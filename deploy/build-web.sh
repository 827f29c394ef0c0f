#!/usr/bin/env bash
# Builds the web console's one dependency and the browser tests' driver (issue 6): installs the
# locked npm packages (web/package-lock.json: chart.js; tests/browser/package-lock.json:
# playwright-core) and copies chart.js's UMD build to web/vendor/, so the parent serves every
# asset itself and the console never fetches anything from the internet.
# Idempotent; needs npm (deploy/install-deps.sh). Run as any user that can write the tree.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"

if ! command -v npm >/dev/null 2>&1; then
    echo "build-web.sh: npm is missing; run deploy/install-deps.sh as root first" >&2
    exit 1
fi

npm_ci() {
    # --ignore-scripts: neither package needs an install script (playwright-core downloads
    # nothing; the tests drive Debian's /usr/bin/chromium)
    (cd "$1" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
}

npm_ci "$root/web"
mkdir -p "$root/web/vendor"
install -m 0644 "$root/web/node_modules/chart.js/dist/chart.umd.js" "$root/web/vendor/chart.umd.js"

if [ "${PORTCULLIS_SKIP_BROWSER_TESTS:-0}" != "1" ]; then
    npm_ci "$root/tests/browser"
fi

echo "build-web.sh: web/vendor/chart.umd.js ready (chart.js $(sed -n 's/^ *"version": "\(.*\)",$/\1/p' \
    "$root/web/node_modules/chart.js/package.json" | head -1))"
