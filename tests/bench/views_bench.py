#!/usr/bin/env python3
"""Fleet views benchmark (issue 12 point 3, R7.5, R10.1): how long the parent takes to answer
`GET /api/v1/status`, the children list, `/metrics` and `portcullis status --json` with K
children. A real parent, PostgreSQL and one real child (ClamAV engine, signatures made here)
whose last Health — as the parent stored it — is copied to K−1 more children rows, so every
child carries a real-sized report. With several --bin LABEL=DIR the parents are measured side
by side in one run, each on a fresh database. Prints a Markdown table for docs/BENCHMARKS.md;
never fails on a number.
  usage: tests/bench/views_bench.sh [BUILD=build] [K ...]
         views_bench.py --bin before=DIR --bin this=DIR [--requests N] [K ...]"""

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import cluster  # noqa: E402
from apiclient import tls_context, token_for  # noqa: E402
from harness import LOOPBACK, PostgresServer, wait_until  # noqa: E402
from scanning import scan_cluster, set_setting  # noqa: E402

ROUTES = ["/api/v1/status", "/api/v1/status?limit=1000", "/api/v1/children?state=down&limit=100",
          "/api/v1/children/child1/health", "/metrics"]


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True, action="append", help="LABEL=DIR of a build's bin")
    p.add_argument("--requests", type=int, default=30, help="requests per route")
    p.add_argument("k", nargs="*", type=int, default=[1000, 3000])
    return p.parse_args()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def add_children(pg, k):
    """K−1 rows beside child1, each with child1's stored Health; a third of them silent."""
    pg.query(
        "INSERT INTO children (name, public_key, enrolment, enrolled_at, connected, last_seen,"
        " applied_config_version, last_health, last_health_at, address, software_version) "
        "SELECT 'sim-' || lpad(i::text, 5, '0'), substr(md5(i::text) || md5('k' || i), 1, 40),"
        " 'enrolled', now(), mod(i, 3) <> 0, now(), c.applied_config_version, c.last_health, now(),"
        " '192.0.2.' || mod(i, 250), c.software_version "
        "FROM children c, generate_series(1, %s) AS i WHERE c.name = 'child1'", (k - 1,))


def measure(c, token, route, n):
    conn = http.client.HTTPSConnection(LOOPBACK, c.parent.https_port,
                                       context=tls_context(c.parent), timeout=60)
    times, size = [], 0
    try:
        for _ in range(n):
            t0 = time.monotonic()
            conn.request("GET", route, headers={"Authorization": f"Bearer {token}"})
            r = conn.getresponse()
            body = r.read()
            times.append((time.monotonic() - t0) * 1000)
            if r.status == 404:
                return None  # a parent without that route
            if r.status != 200:
                sys.exit(f"views_bench: {route} answered {r.status}: {body[:200]!r}")
            size = len(body)
    finally:
        conn.close()
    return pct(times, 0.5), pct(times, 0.95), size


def measure_cli(c, n):
    times, size = [], 0
    for _ in range(n):
        t0 = time.monotonic()
        out = c.cli_ok("status", "--json")
        times.append((time.monotonic() - t0) * 1000)
        size = len(out)
    return pct(times, 0.5), pct(times, 0.95), size


def main():
    args = parse_args()
    bins = [b.split("=", 1) for b in args.bin]
    run_dir = tempfile.mkdtemp(prefix="portcullis-views-", dir="/tmp")
    os.chmod(run_dir, 0o755)
    pg = PostgresServer(run_dir)
    rows = []
    try:
        pg.start()
        for k in args.k:
            for label, bdir in bins:
                cluster.BIN_DIR = os.path.abspath(bdir)
                os.environ["PORTCULLIS_BIN"] = cluster.BIN_DIR
                c = scan_cluster(os.path.join(run_dir, f"{label}-{k}"), pg, n_children=1,
                                 upstream=False)
                try:
                    set_setting(c, "cluster.health_interval_s", 1)
                    wait_until(lambda: pg.query("SELECT 1 FROM children WHERE name = 'child1' "
                                                "AND last_health ? 'stats'"), 60,
                               "child1's first Health with its counters")
                    add_children(pg, k)
                    token = token_for(c, "viewer")
                    for route in ROUTES:
                        got = measure(c, token, route, args.requests)
                        if got is None:
                            continue
                        p50, p95, size = got
                        rows.append((label, k, f"`GET {route}`", p50, p95, size))
                        print(f"# {label} k={k} {route}: p50={p50:.1f} p95={p95:.1f} "
                              f"bytes={size}", file=sys.stderr)
                    p50, p95, size = measure_cli(c, max(5, args.requests // 3))
                    rows.append((label, k, "`portcullis status --json`", p50, p95, size))
                finally:
                    c.stop()
                    pg.reset_database()
    finally:
        pg.stop()
    print("| parent | children | request | p50 | p95 | bytes |")
    print("|---|---|---|---|---|---|")
    for label, k, what, p50, p95, size in rows:
        print(f"| {label} | {k} | {what} | {p50:.1f} ms | {p95:.1f} ms | {size:,} |")


if __name__ == "__main__":
    main()
