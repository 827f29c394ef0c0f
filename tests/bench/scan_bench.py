"""Scan-service benchmark (issue 3): throughput, per-message latency (MAIL → final 250) and the
scan service's RSS at concurrency 1, 10 and 50 for SIZE-byte messages, three columns in one
run:

  direct    smtp_load → smtp-sink                         (the limit of this box)
  scan off  smtp_load → child's scan service → smtp-sink  (av.enabled = false: MIME + policy)
  ClamAV    smtp_load → child's scan service → smtp-sink  (av.enabled = true, >= 100 000
            signatures, 1 % of messages carry EICAR and are quarantined)

The child is a real one (parent + PostgreSQL from the integration harness, settings pushed with
the admin CLI); only its downstream is Postfix's smtp-sink instead of a Postfix instance.
Prints a Markdown table for docs/BENCHMARKS.md. Never fails on a number.

  usage: scan_bench.py [--bin build/bin] [--load build/tests/smtp_load] [-n 3000] [-s 20000]
                       [--sigs 100000] [--conc 1,10,50]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--load", default=None)
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("-s", type=int, default=20000)
    ap.add_argument("--sigs", type=int, default=100_000)
    ap.add_argument("--conc", default="1,10,50")
    ap.add_argument("--infected-every", type=int, default=100)
    return ap.parse_args()


ARGS = parse_args()
os.environ["PORTCULLIS_BIN"] = os.path.abspath(ARGS.bin)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import signatures  # noqa: E402
from harness import (LOOPBACK, Cluster, Parent, PostgresServer, Proc, free_port,  # noqa: E402
                     make_dir, wait_for_port)
from scanning import scan_dirs, set_setting, wait_signatures_loaded  # noqa: E402


class SmtpSinkDownstream:
    """Stands in for the downstream Postfix: the child's downstream is smtp-sink."""

    def __init__(self, port):
        self.port = port

    def stop(self):
        pass


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))
    hwm = int(re.search(r"VmHWM:\s+(\d+)", text).group(1))
    return rss, hwm


def load(port, conc, n, size, infected_every=0):
    cmd = [ARGS.load, "-p", str(port), "-c", str(conc), "-n", str(n), "-s", str(size),
           "-i", str(infected_every)]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    line = cp.stdout.strip().splitlines()[-1] if cp.stdout.strip() else ""
    res = dict(kv.split("=", 1) for kv in line.split())
    if cp.returncode != 0:
        sys.stderr.write(f"smtp_load rc={cp.returncode}: {line}\n{cp.stderr}")
    return {k: float(v) for k, v in res.items()}


def main():
    if ARGS.load is None:
        ARGS.load = os.path.join(os.path.dirname(os.path.abspath(ARGS.bin)), "tests", "smtp_load")
    conc = [int(c) for c in ARGS.conc.split(",")]
    run_dir = tempfile.mkdtemp(prefix="portcullis-bench-", dir="/tmp")
    os.chmod(run_dir, 0o755)
    pg = PostgresServer(run_dir)
    procs, cluster = [], None
    try:
        pg.start()
        sink_port = free_port()
        sink = Proc("smtp-sink", ["/usr/sbin/smtp-sink", "-u", "postfix", "-c",
                                  f"{LOOPBACK}:{sink_port}", "1024"],
                    os.path.join(run_dir, "smtp-sink.log"))
        sink.start()
        procs.append(sink)
        wait_for_port(LOOPBACK, sink_port, 10, "smtp-sink")

        base = os.path.join(run_dir, "cluster")

        def conf(name):
            dirs = scan_dirs(base, name)
            make_dir(dirs["signature_dir"], 0o755)
            signatures.write_standard_set(dirs["signature_dir"], ARGS.sigs)
            return dirs
        cluster = Cluster(base, pg, n_children=0, upstream=False, child_conf=conf)
        pg.reset_database()
        cluster.downstream = SmtpSinkDownstream(sink_port)
        cluster.parent = Parent(cluster.base, pg.dsn).start()
        t0 = time.monotonic()
        child = cluster.add_child("child1")
        m = wait_signatures_loaded(child, 0, 120, since=child.mark)
        print(f"# signatures: {m.group(0)} (child ready after {time.monotonic() - t0:.1f}s)",
              file=sys.stderr)
        scan_pid = child.proc.children()[0]
        # the per-message log line costs little, but bench at warning level like production
        rows = {}
        for label, av in (("off", "false"), ("clamav", "true")):
            set_setting(cluster, "av.enabled", av, timeout=30)
            for c in conc:
                infected = ARGS.infected_every if label == "clamav" else 0
                # warm up (connections, caches), then measure
                load(child.smtp_port, c, min(200, ARGS.n), ARGS.s, infected)
                r = load(child.smtp_port, c, ARGS.n, ARGS.s, infected)
                rss, hwm = rss_kb(scan_pid)
                rows[(label, c)] = (r, rss, hwm)
                print(f"# {label} c={c}: {r} rss={rss}kB hwm={hwm}kB", file=sys.stderr)
        for c in conc:
            load(sink_port, c, min(200, ARGS.n), ARGS.s)
            rows[("direct", c)] = (load(sink_port, c, ARGS.n, ARGS.s), 0, 0)
            print(f"# direct c={c}: {rows[('direct', c)][0]}", file=sys.stderr)
        assert child.proc.children() == [scan_pid], "scan service restarted during the benchmark"

        print("| concurrency | direct (msg/s, p50/p99 ms) | scanning off (msg/s, % of direct, "
              "p50/p99 added ms, RSS MB) | ClamAV + policy (msg/s, % of direct, p50/p99 added ms, "
              "RSS MB) |")
        print("|---|---|---|---|")
        for c in conc:
            d = rows[("direct", c)][0]
            cells = [f"{d['msg_per_s']:.0f}, {d['p50_ms']:.2f}/{d['p99_ms']:.2f}"]
            for label in ("off", "clamav"):
                r, rss, _hwm = rows[(label, c)]
                err = f", {int(r['errors'])} errors" if r.get("errors") else ""
                cells.append(f"{r['msg_per_s']:.0f}, {100 * r['msg_per_s'] / d['msg_per_s']:.0f} %, "
                             f"{r['p50_ms'] - d['p50_ms']:.2f}/{r['p99_ms'] - d['p99_ms']:.2f}, "
                             f"{rss / 1024:.0f}{err}")
            print(f"| {c} | " + " | ".join(cells) + " |")
        print(f"\n({ARGS.n} messages of {ARGS.s} bytes per cell; ClamAV column: "
              f"{m.group('sigs')} signatures, every {ARGS.infected_every}th message carries "
              f"EICAR; {os.cpu_count()} cores; {time.strftime('%Y-%m-%d', time.gmtime())})")
    finally:
        if cluster is not None:
            for ch in cluster.children.values():
                ch.stop()
            if cluster.parent is not None:
                cluster.parent.stop()
        for p in procs:
            p.stop()
        pg.stop()
    if not os.environ.get("PORTCULLIS_KEEP"):
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
