#!/usr/bin/env python3
"""Fleet benchmark (issue 12 point 4, R10.1, R10.2): a real parent and PostgreSQL (the
integration harness, in /tmp), and tests/fleet_sim running K simulated children against it —
first linking and taking the configuration, then reporting as fast as acknowledgements allow.
Prints a Markdown table for docs/BENCHMARKS.md; never fails on a number.
  usage: tests/bench/fleet_bench.sh [BUILD=build] [K ...]"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from harness import Parent, PostgresServer  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True, help="build/bin")
    p.add_argument("--sim", required=True, help="build/tests/fleet_sim")
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("k", nargs="*", type=int, default=[100, 1000, 3000])
    return p.parse_args()


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sim(args, parent, pg, k, reports, prefix):
    cmd = [args.sim, "--endpoint", parent.cluster_endpoint, "--server-key",
           open(os.path.join(parent.state_dir, "parent.pub")).read().strip(),
           "--dsn", pg.dsn, "-k", str(k), "--seconds", str(args.seconds), "--prefix", prefix]
    if reports:
        cmd.append("--reports")
    c0 = cpu_s(parent.proc.pid)
    t0 = time.monotonic()
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 600)
    wall = time.monotonic() - t0
    line = cp.stdout.strip().splitlines()[-1] if cp.stdout.strip() else ""
    if cp.returncode != 0 or not line:
        sys.stderr.write(f"fleet_sim rc={cp.returncode}: {cp.stdout}\n{cp.stderr}")
        return None
    r = dict(kv.split("=", 1) for kv in line.split())
    r["parent_cpu_pct"] = f"{100 * (cpu_s(parent.proc.pid) - c0) / wall:.0f}"
    return r


def main():
    args = parse_args()
    os.environ["PORTCULLIS_BIN"] = os.path.abspath(args.bin)
    run_dir = tempfile.mkdtemp(prefix="portcullis-fleet-", dir="/tmp")
    os.chmod(run_dir, 0o755)
    pg = PostgresServer(run_dir)
    parent = None
    rows = []
    try:
        pg.start()
        pg.reset_database()
        parent = Parent(run_dir, pg.dsn)
        parent.start()
        for k in args.k:
            for reports in (False, True):
                r = sim(args, parent, pg, k, reports, f"sim{k}{'r' if reports else 'l'}")
                if r is not None:
                    rows.append((k, reports, r))
                    print(f"# k={k} reports={reports}: {r}", file=sys.stderr)
        log = parent.proc.log_text()
        stalls = len(re.findall(r"child down name=sim", log))
    finally:
        if parent is not None:
            parent.stop()
        pg.stop()
    print(f"| children | load | configs received | Hello→snapshot p50 / p99 | all recorded in "
          f"the database | links dropped (sim / parent's log) | records acknowledged/s | rows "
          f"= distinct | parent CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, reports, r in rows:
        print(f"| {k} | {'reports' if reports else 'link + config'} | {r['configs']} | "
              f"{r['hello_to_snapshot_p50_ms']} / {r['hello_to_snapshot_p99_ms']} ms | "
              f"{r['all_recorded_ms']} ms | {r['links_dropped']} | {r['acked_per_s']} | "
              f"{r['rows']} = {r['distinct']} | {r['parent_cpu_pct']} % |")
    print(f"\n(parent's log: {stalls} 'child down' lines over all runs)")


if __name__ == "__main__":
    main()
