"""Scan-method benchmark (issue 4 point 8, R2.1): what smart scan costs the child compared with
conventional scan, on the same corpus, and what a look-up costs on the wire.

  1. One real child (parent + PostgreSQL from the integration harness, smtp-sink downstream)
     with a full conventional signature set (--sigs) and the smart-protection service inside
     the parent holding --hashes digests. The same smtp_load corpus (N messages of SIZE bytes,
     concurrency C) is sent in each method; per method: the scan service's CPU time per message
     (utime + stime from /proc, delta over the run / N), its resident memory, the look-up
     service's CPU per message (the parent's, where smart scan moves work), and throughput;
     and the same with neither engine ("none"), the floor both methods share.
  2. Look-up round trip: 1 and 10 simulated children — keep-alive HTTP connections posting a
     batch of 3 digests (one known, two unknown) like the scan service does, back to back —
     against the same service; p50/p99 of the round trip.

Prints Markdown for docs/BENCHMARKS.md. Never fails on a number.

  usage: method_bench.py [--bin build/bin] [--load build/tests/smtp_load] [-n 3000] [-s 20000]
                         [-c 10] [--sigs 100000] [--hashes 1000000] [--lookups 2000]
                         [--corpus attachments|text]   (-s: size of a text message)
"""

import argparse
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--load", default=None)
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("-s", type=int, default=20000)
    ap.add_argument("-c", type=int, default=10)
    ap.add_argument("--sigs", type=int, default=100_000)
    ap.add_argument("--hashes", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=2000)
    ap.add_argument("--corpus", choices=("attachments", "text"), default="attachments")
    return ap.parse_args()


ARGS = parse_args()
os.environ["PORTCULLIS_BIN"] = os.path.abspath(ARGS.bin)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import signatures  # noqa: E402
from cluster import parse_conf, write_conf  # noqa: E402
from harness import (LOOPBACK, Cluster, Parent, PostgresServer, Proc, free_port,  # noqa: E402
                     make_dir, wait_for_port, wait_until)
from lookups import LookupClient, child_credential  # noqa: E402
from scanning import scan_dirs, set_setting, wait_signatures_loaded  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


class SinkDownstream:
    """Stands in for the downstream Postfix: the child's downstream is smtp-sink."""

    def __init__(self, port):
        self.port = port

    def stop(self):
        pass


def cpu_s(pid):
    """utime + stime of every thread of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def corpus_message(path):
    """Business mail as it usually comes: a text body, an HTML alternative and a zip of office
    files (binary and text members, ~120 KB before compression) — ClamAV unpacks and scans the
    members, smart scan hashes the decoded parts."""
    import io
    import random
    import zipfile
    from email.message import EmailMessage

    rnd = random.Random(1)
    members = {f"report-{i}.bin": bytes(rnd.getrandbits(8) for _ in range(16000)) for i in range(4)}
    members["notes.txt"] = ("quarterly figures, see the attached sheets\n" * 400).encode()
    members["index.html"] = ("<html><body><p>figures</p></body></html>\n" * 300).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    m = EmailMessage()
    m["From"] = "bench@origin.test"
    m["To"] = "sink@sink.test"
    m["Subject"] = "Quarterly figures"
    m["Message-ID"] = "<method-bench@origin.test>"
    m["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    m.set_content("Hello,\n\nplease find the figures attached.\n\nRegards\n" * 20)
    m.add_alternative("<html><body><p>Hello, please find the figures attached.</p></body></html>",
                      subtype="html")
    m.add_attachment(buf.getvalue(), maintype="application", subtype="zip",
                     filename="figures.zip")
    with open(path, "wb") as f:
        f.write(m.as_bytes())
    return os.path.getsize(path)


def load(port, conc, n, size):
    cmd = [ARGS.load, "-p", str(port), "-c", str(conc), "-n", str(n)]
    cmd += ["-m", ARGS.message] if ARGS.message else ["-s", str(size)]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    line = cp.stdout.strip().splitlines()[-1] if cp.stdout.strip() else ""
    if cp.returncode != 0:
        sys.stderr.write(f"smtp_load rc={cp.returncode}: {line}\n{cp.stderr}")
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in line.split())}


def lookup_rtts(port, children, per_child, known, credential):
    """Round trips of per_child look-ups on each of `children` keep-alive HTTPS connections
    carrying a child's credential (R8.7), as the scan service makes them."""
    out, lock = [], threading.Lock()

    def child():
        c = LookupClient(port, credential)
        mine = []
        for _ in range(per_child):
            t0 = time.perf_counter()
            status, _ = c.lookup([known, secrets.token_hex(32), secrets.token_hex(32)])
            mine.append((time.perf_counter() - t0) * 1000)
            assert status == 200, status
        c.close()
        with lock:
            out.extend(mine)

    threads = [threading.Thread(target=child) for _ in range(children)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    out.sort()
    return out[len(out) // 2], out[min(len(out) - 1, int(len(out) * 0.99))], len(out) / wall


def main():
    if ARGS.load is None:
        ARGS.load = os.path.join(os.path.dirname(os.path.abspath(ARGS.bin)), "tests", "smtp_load")
    run_dir = tempfile.mkdtemp(prefix="portcullis-bench-", dir="/tmp")
    os.chmod(run_dir, 0o755)
    ARGS.message = None
    if ARGS.corpus == "attachments":
        ARGS.message = os.path.join(run_dir, "corpus.eml")
        ARGS.s = corpus_message(ARGS.message)
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
        cluster.downstream = SinkDownstream(sink_port)
        cluster.parent = Parent(cluster.base, pg.dsn)
        sps_port = free_port()
        with open(cluster.parent.conf_path) as f:
            pconf = parse_conf(f.read())
        pconf["sps_listen"] = f"{LOOPBACK}:{sps_port}"
        write_conf(cluster.parent.conf_path, pconf)
        cluster.parent.start()
        parent_pid = cluster.parent.proc.pid

        # the look-up service's table: --hashes random digests plus one known
        known = hashlib.sha256(b"portcullis method bench known digest").hexdigest()
        path = os.path.join(run_dir, "digests.txt")
        with open(path, "w") as f:
            f.write(f"{known} Bench.Known\n")
            for _ in range(ARGS.hashes):
                f.write(f"{secrets.token_hex(32)} Bench.Random\n")
        t0 = time.monotonic()
        cluster.cli_ok("sps", "import", path, timeout=600)
        print(f"# sps import of {ARGS.hashes + 1} digests: {time.monotonic() - t0:.1f}s",
              file=sys.stderr)

        child = cluster.add_child("child1")
        m = wait_signatures_loaded(child, 0, 180, since=child.mark)
        print(f"# {m.group(0)}", file=sys.stderr)
        scan_pid = child.proc.children()[0]
        set_setting(cluster, "smart_scan.url", f"https://{LOOPBACK}:{sps_port}/v1/lookup")

        rows = {}
        # "none": neither engine (av.enabled=false, smart scan off) — the floor both share:
        # SMTP in and out, MIME, part digests, policy
        for method, smart, av in (("none", "false", "false"), ("conventional", "false", "true"),
                                  ("smart", "true", "true")):
            set_setting(cluster, "av.enabled", av, timeout=30)
            set_setting(cluster, "smart_scan.enabled", smart, timeout=30)
            wait_until(lambda: ((cluster.child_status("child1") or {}).get("health") or {})
                       .get("scan_method") == method, 30, f"child1 to report {method} scan")
            load(child.smtp_port, ARGS.c, min(300, ARGS.n), ARGS.s)  # warm-up
            c0, p0 = cpu_s(scan_pid), cpu_s(parent_pid)
            r = load(child.smtp_port, ARGS.c, ARGS.n, ARGS.s)
            c1, p1 = cpu_s(scan_pid), cpu_s(parent_pid)
            rows[method] = dict(r=r, child_ms=(c1 - c0) * 1000 / ARGS.n,
                                parent_ms=(p1 - p0) * 1000 / ARGS.n, rss=rss_mb(scan_pid))
            print(f"# {method}: {rows[method]}", file=sys.stderr)
        assert child.proc.children() == [scan_pid], "scan service restarted during the benchmark"

        rtt = {k: lookup_rtts(sps_port, k, ARGS.lookups, known,
                                 child_credential(cluster.pg, child)) for k in (1, 10)}

        print("| method | scan service CPU per message | look-up service CPU per message | "
              "scan service RSS | msg/s | p50/p99 latency (ms) | errors |")
        print("|---|---|---|---|---|---|---|")
        for method in ("none", "conventional", "smart"):
            x = rows[method]
            print(f"| {method} | {x['child_ms']:.3f} ms | {x['parent_ms']:.3f} ms | "
                  f"{x['rss']:.0f} MB | {x['r']['msg_per_s']:.0f} | "
                  f"{x['r']['p50_ms']:.2f}/{x['r']['p99_ms']:.2f} | "
                  f"{int(x['r'].get('errors', 0))} |")
        print()
        print("| simulated children | look-up round trip p50 | p99 | look-ups/s |")
        print("|---|---|---|---|")
        for k, (p50, p99, rate) in rtt.items():
            print(f"| {k} | {p50:.2f} ms | {p99:.2f} ms | {rate:.0f} |")
        what = ("with a text body, an HTML part and a zip of 6 office files"
                if ARGS.message else "of text")
        print(f"\n({ARGS.n} messages of {ARGS.s} bytes {what} at concurrency {ARGS.c} per method; "
              f"{m.group('sigs')} conventional signatures; {ARGS.hashes + 1} digests in the "
              f"look-up service; {ARGS.lookups} look-ups of 3 digests per simulated child; "
              f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d', time.gmtime())})")
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
