#!/usr/bin/python3
"""Portcullis demo: starts a PostgreSQL 15 server, a downstream Postfix (Maildir sink), a parent,
two children enrolled by one-time token and an upstream Postfix whose content filters point at
the children, all on 127.0.0.1 under /tmp/portcullis-demo; relays sample mail through both
children, prints `portcullis status` and the delivered count, makes a console user and shows
the REST API and Prometheus metrics, and stops everything it started (also on error, Ctrl-C or
SIGTERM) — or, with --keep, leaves it running for the web console until Ctrl-C. Uses the
integration-test harness (tests/integration).

Run as root with Debian's python3: /usr/bin/python3 deploy/demo.py [--messages N] [--keep]
Binaries come from $PORTCULLIS_BIN (default build/bin)."""

import argparse
import os
import shutil
import signal
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import apiclient  # noqa: E402
import harness  # noqa: E402
import scanning  # noqa: E402
import signatures  # noqa: E402

RUN_DIR = "/tmp/portcullis-demo"
SENDER = "demo@origin.test"


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def relay_sample_mail(cluster, per_child):
    up, down = cluster.upstream, cluster.downstream
    tokens, items = [], []
    for name in cluster.children:
        dom = f"{name}.test"
        for i in range(per_child):
            kind = {0: "8bit", 1: "dots"}.get(i, "plain")
            tok = harness.new_token(f"demo-{name}-{i:03d}")
            rcpt = f"user{i}@{dom}"
            tokens.append(tok)
            items.append((harness.make_message(tok, SENDER, rcpt, kind=kind), SENDER, [rcpt]))
    before = down.delivered_count()
    t0 = time.monotonic()
    up.send_many(items)
    print(f"sent {len(items)} messages into the upstream Postfix (127.0.0.1:{up.port})")
    delivered = down.wait_delivered(before + len(items), 120)
    summary = harness.account(tokens, delivered)
    up.wait_queue_empty(60)
    print(f"delivered {summary['delivered']} of {summary['sent']} to {down.maildir} in "
          f"{time.monotonic() - t0:.1f}s: bodies intact, none lost or duplicated, "
          f"upstream queue empty")
    return summary


def quarantine_sample_viruses(cluster):
    """One message per child with the EICAR test file attached: the default policy (R5.1)
    quarantines it on the child, and the index reaches the parent."""
    up = cluster.upstream
    items = []
    for name in cluster.children:
        tok = harness.new_token(f"demo-eicar-{name}")
        msg = scanning.attachment_message(tok, f"victim@{name}.test",
                                          [("eicar.com", signatures.EICAR)], sender=SENDER)
        items.append((msg, SENDER, [f"victim@{name}.test"]))
    up.send_many(items)
    print(f"sent {len(items)} messages carrying the EICAR test file")
    harness.wait_until(lambda: len(scanning.quarantine_list(cluster)) >= len(items), 60,
                       "the EICAR messages in `portcullis quarantine list`")
    up.wait_queue_empty(60)
    print(f"quarantined {len(items)} of {len(items)} on their children; indexed on the parent")


def show_admin_interfaces(cluster):
    """A console user, the fleet through the REST API, a few Prometheus series (issue 6)."""
    password = apiclient.make_user(cluster, "admin", "admin")
    url = f"https://127.0.0.1:{cluster.parent.https_port}/"
    print(f"web console: {url}  user admin, password {password}")
    print(f"  (self-signed certificate: {cluster.parent.state_dir}/https.crt)")
    api = apiclient.Api(cluster.parent, token=apiclient.token_for(cluster, "viewer"))
    status, body, _ = api.request("GET", "/api/v1/status")
    if status == 200:
        t = body.get("totals") or {}
        print(f"$ curl -H 'Authorization: Bearer …' {url}api/v1/status   → children "
              f"{t.get('children_up', '?')} up of {t.get('children', '?')}, "
              f"config version {body.get('config_version')}")
    status, text, _ = api.request("GET", "/metrics")
    if status == 200:
        print(f"$ curl -H 'Authorization: Bearer …' {url}metrics | grep -E 'child_up|messages_total'")
        for line in text.decode().splitlines():
            if line.startswith(("portcullis_child_up{", "portcullis_messages_total{")):
                print("  " + line)


def _install_mta_helper():
    """R8.1: the daemons drop root; the child's MTA helper is what a package installs —
    setuid root, executable by the group portcullis only (docs/OPERATIONS.md)."""
    import grp
    try:
        gid = grp.getgrnam("portcullis").gr_gid
    except KeyError:
        sys.exit("demo.py: the system group portcullis is missing: run deploy/install-deps.sh")
    helper = harness.bin_path("portcullis-mta")
    os.chown(helper, 0, gid)
    os.chmod(helper, 0o4750)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20, help="sample messages per child (20)")
    ap.add_argument("--keep", action="store_true",
                    help="leave everything running for the web console until Ctrl-C")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("demo.py: run as root (it starts Postfix instances and PostgreSQL as postgres)")
    if not 1 <= args.messages <= 1000:
        sys.exit("demo.py: --messages must be from 1 to 1000")
    signal.signal(signal.SIGTERM, _on_sigterm)

    _install_mta_helper()
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    harness.make_dir(RUN_DIR, 0o755)
    pg = cluster = None
    rc = 1
    try:
        print(f"run directory {RUN_DIR} (configuration and logs of every process)")
        pg = harness.PostgresServer(RUN_DIR).start()
        print(f"PostgreSQL 15 on 127.0.0.1:{pg.port}")
        cluster = harness.Cluster(os.path.join(RUN_DIR, "cluster"), pg, n_children=2)
        cluster.start()
        print(f"parent ready (cluster {cluster.parent.cluster_endpoint}); children: "
              + ", ".join(f"{n} smtp {c.smtp_address}" for n, c in cluster.children.items())
              + f"; downstream Postfix 127.0.0.1:{cluster.downstream.port}")
        relay_sample_mail(cluster, args.messages)
        # the next health reports (every cluster.health_interval_s, default 10 s) carry the
        # per-minute counts; show them if they come soon, the status either way
        try:
            harness.wait_until(lambda: all(
                ((c.get("health") or {}).get("messages_per_minute") or 0) > 0
                for c in cluster.status()["children"]), 15, "health reports with message counts")
        except harness.HarnessError:
            print("(health reports with this minute's counts not in yet)")
        quarantine_sample_viruses(cluster)

        # the quarantine usage in the status comes with the next health report too (R5.12)
        def usage_in():
            for c in cluster.status()["children"]:
                stores = (c.get("health") or {}).get("stores") or []
                if not any(s.get("kind") == "quarantine" and (s.get("files") or 0) > 0
                           for s in stores):
                    return False
            return True
        try:
            harness.wait_until(usage_in, 15, "health reports with the quarantine usage")
        except harness.HarnessError:
            print("(health reports with the quarantine usage not in yet)")
        print()
        print("$ portcullis status")
        print(cluster.cli_ok("status").rstrip())
        print()
        print("$ portcullis quarantine list")
        print(cluster.cli_ok("quarantine", "list").rstrip())
        print()
        print(f"delivered count: {cluster.downstream.delivered_count()}")
        print()
        show_admin_interfaces(cluster)
        rc = 0
        if args.keep:
            print("running until Ctrl-C")
            try:
                while True:
                    time.sleep(3600)   # idle: the processes serve; Ctrl-C or SIGTERM ends it
            except KeyboardInterrupt:
                print("stopping")
    except KeyboardInterrupt:
        print("\ninterrupted: stopping", file=sys.stderr)
        rc = 130
    except harness.HarnessError as e:
        print(f"demo failed: {e}", file=sys.stderr)
        for name, path in sorted(harness.ACTIVE_LOGS.items()):
            print(f"---- {name} ({path})\n{harness.tail(path, 30)}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # let the clean-up finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if cluster is not None:
            try:
                cluster.stop()
            except harness.HarnessError as e:
                print(f"while stopping: {e}", file=sys.stderr)
        if pg is not None:
            pg.stop()
        print(f"stopped everything; logs are in {RUN_DIR}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
