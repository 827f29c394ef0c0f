#!/usr/bin/python3
"""REST API benchmark (issue 6); see api_bench.sh. wrk runs for --seconds per route at 1 and
16 connections (4 threads) with a viewer's bearer token; log-in is timed over 20 sequential
POST /api/v1/login calls (argon2id at libsodium's interactive limits)."""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import apiclient  # noqa: E402
from harness import Cluster, PostgresServer  # noqa: E402

ROUTES = ["/api/v1/me", "/api/v1/status", "/metrics", "/api/v1/stored/quarantine?limit=50"]
LOGINS = 20


def wrk(url, token, conns, secs):
    threads = min(conns, 4)
    cp = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{secs}s",
                         "--latency", "-H", f"Authorization: Bearer {token}", url],
                        capture_output=True, text=True, timeout=secs + 60)
    out = cp.stdout
    print(out, cp.stderr, file=sys.stderr)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out)
    if cp.returncode != 0 or not (rps and p50 and p99):
        sys.exit(f"api_bench: wrk failed on {url} (exit {cp.returncode}); see the log")
    # wrk prints the line only when some answers were not 2xx/3xx
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps.group(1), p50.group(1), p99.group(1), bad.group(1) if bad else "0"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    os.environ["PORTCULLIS_BIN"] = os.path.abspath(a.bin)
    run_dir = tempfile.mkdtemp(prefix="api-bench-")
    os.chmod(run_dir, 0o755)
    pg = PostgresServer(run_dir)
    pg.start()
    cluster = None
    try:
        cluster = Cluster(os.path.join(run_dir, "cluster"), pg, n_children=2, upstream=False)
        cluster.start()
        token = apiclient.token_for(cluster, "viewer")
        base = f"https://127.0.0.1:{cluster.parent.https_port}"
        print("| route | connections | requests/s | p50 | p99 | non-2xx |")
        print("|---|---|---|---|---|---|")
        for route in ROUTES:
            for conns in (1, 16):
                rps, p50, p99, bad = wrk(base + route, token, conns, a.seconds)
                print(f"| `GET {route}` | {conns} | {rps} | {p50} | {p99} | {bad} |")
        password = apiclient.password_for(cluster, "viewer")
        times = []
        for _ in range(LOGINS):
            api = apiclient.Api(cluster.parent)
            t0 = time.monotonic()
            status = api.login("viewer-user", password)[0]
            times.append((time.monotonic() - t0) * 1000)
            if status != 200:   # a quick 401/429 is not an argon2id log-in
                sys.exit(f"api_bench: log-in answered {status}")
        times.sort()
        print(f"\nlog-in (argon2id, {LOGINS} sequential, one TLS connection each): "
              f"p50 {times[len(times) // 2]:.1f} ms, max {times[-1]:.1f} ms")
    finally:
        if cluster is not None:
            cluster.stop()
        pg.stop()


if __name__ == "__main__":
    main()
