#!/usr/bin/env python3
"""Fleet benchmark (issue 12 point 4, R10.1, R10.2): a real PostgreSQL (the integration
harness, in /tmp), and tests/fleet_sim running K simulated children against a real parent —
first linking and taking the configuration, then reporting as fast as acknowledgements allow,
then enrolling through the enrolment socket with one-time tokens and, STORM_AT seconds in, all
losing their link at once and coming back as real children do (a reconnect storm, R10.2).
With several --bin LABEL=DIR the parents are measured side by side in one run: for each K,
each parent in turn on a fresh database. Every tracking record is a new one (random message
id, new sequence number): nothing is answered from a cache. Prints a Markdown table for
docs/BENCHMARKS.md; never fails on a number.
  usage: tests/bench/fleet_bench.sh [BUILD=build] [K ...]
         fleet_bench.py --bin before=DIR --bin after=DIR --sim SIM [K ...]"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import cluster  # noqa: E402
from harness import Parent, PostgresServer  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True, action="append",
                   help="LABEL=DIR[,KEY=VALUE...]: a build's bin directory and parent.conf "
                        "keys of its own; repeat to compare")
    p.add_argument("--sim", required=True, help="build/tests/fleet_sim")
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--loads", default="link,reports,storm",
                   help="comma-separated: link, reports, storm")
    p.add_argument("k", nargs="*", type=int, default=[100, 1000, 3000])
    return p.parse_args()


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu():
    """{pid: CPU seconds} of every PostgreSQL process (the server and its backends)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
            out[int(d)] = cpu_s(int(d))
        except OSError:
            pass
    return out


STORM_AT = 8  # seconds into the storm run


def sim(args, parent, pg, k, load, prefix):
    cmd = [args.sim, "--endpoint", parent.cluster_endpoint, "--server-key",
           open(os.path.join(parent.state_dir, "parent.pub")).read().strip(),
           "--dsn", pg.dsn, "-k", str(k), "--seconds", str(args.seconds), "--prefix", prefix]
    if load == "reports":
        cmd.append("--reports")
    elif load == "storm":
        cmd += ["--enrol-endpoint", parent.enrol_endpoint, "--storm-at", str(STORM_AT)]
    c0, p0 = cpu_s(parent.proc.pid), postgres_cpu()
    s0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the simulator, once reaped
    t0 = time.monotonic()
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 600)
    wall = time.monotonic() - t0
    s1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = cp.stdout.strip().splitlines()[-1] if cp.stdout.strip() else ""
    if cp.returncode != 0 or not line:
        sys.stderr.write(f"fleet_sim rc={cp.returncode}: {cp.stdout}\n{cp.stderr}")
        return None
    r = dict(kv.split("=", 1) for kv in line.split())
    p1 = postgres_cpu()
    r["parent_cpu_pct"] = f"{100 * (cpu_s(parent.proc.pid) - c0) / wall:.0f}"
    r["pg_cpu_pct"] = f"{100 * sum(v - p0.get(pid, 0) for pid, v in p1.items()) / wall:.0f}"
    sim_s = s1.ru_utime + s1.ru_stime - s0.ru_utime - s0.ru_stime
    r["sim_cpu_pct"] = f"{100 * sim_s / wall:.0f}"
    return r


def main():
    args = parse_args()
    bins = []  # (label, bin dir, {parent.conf key: value})
    for b in args.bin:
        spec, *conf = b.split(",")
        label, bdir = spec.split("=", 1) if "=" in spec else (os.path.basename(spec) or spec, spec)
        bins.append((label, bdir, dict(kv.split("=", 1) for kv in conf)))
    run_dir = tempfile.mkdtemp(prefix="portcullis-fleet-", dir="/tmp")
    os.chmod(run_dir, 0o755)
    pg = PostgresServer(run_dir)
    rows = []
    try:
        pg.start()
        for k in args.k:
            for label, bdir, conf in bins:
                cluster.BIN_DIR = os.path.abspath(bdir)  # where Parent finds its binary
                pg.reset_database()
                parent = Parent(os.path.join(run_dir, f"{label}-{k}"), pg.dsn)
                if conf:
                    with open(parent.conf_path) as f:
                        values = cluster.parse_conf(f.read())
                    values.update(conf)
                    cluster.write_conf(parent.conf_path, values)
                parent.start()
                try:
                    for load in args.loads.split(","):
                        r = sim(args, parent, pg, k, load, f"sim{k}{load[0]}")
                        if r is not None:
                            rows.append((label, k, load, r))
                            print(f"# {label} k={k} load={load}: {r}", file=sys.stderr)
                finally:
                    parent.stop()
    finally:
        pg.stop()
    print("| parent | children | load | configs received | Hello→snapshot p50 / p99 | all "
          "recorded in the database | links dropped | records acknowledged/s | rows = "
          "distinct | CPU: parent / PostgreSQL / simulator |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, k, load, r in rows:
        if load == "storm":
            continue
        print(f"| {label} | {k} | {'reports' if load == 'reports' else 'link + config'} | {r['configs']} | "
              f"{r['hello_to_snapshot_p50_ms']} / {r['hello_to_snapshot_p99_ms']} ms | "
              f"{r['all_recorded_ms']} ms | {r['links_dropped']} | {r['acked_per_s']} | "
              f"{r['rows']} = {r['distinct']} | {r['parent_cpu_pct']} / {r['pg_cpu_pct']} / "
              f"{r['sim_cpu_pct']} % |")

    print()
    print(f"Reconnect storm: enrolment by token through the enrolment socket, then at {STORM_AT} s "
          "every child loses its link at once and comes back as a real child does.")
    print()
    print("| parent | children | enrolled | enrolment p50 / p99 | refused or unanswered | "
          "back after the storm | storm settled in | links dropped after the storm | "
          "CPU: parent / PostgreSQL / simulator |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, k, load, r in rows:
        if load != "storm":
            continue
        print(f"| {label} | {k} | {r.get('enrolled', '-')} | {r.get('enrol_p50_ms', '-')} / "
              f"{r.get('enrol_p99_ms', '-')} ms | {r.get('enrol_refused', '-')} | "
              f"{r.get('storm_back', '-')} | {r.get('storm_settle_ms', '-')} ms | "
              f"{r.get('storm_links_dropped', '-')} | {r['parent_cpu_pct']} / {r['pg_cpu_pct']} / "
              f"{r['sim_cpu_pct']} % |")


if __name__ == "__main__":
    main()
