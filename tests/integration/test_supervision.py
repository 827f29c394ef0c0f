"""Scan service supervision by the child's manager (R1.3, R1.5, R1.6): the upstream queue is
flushed after every start, so mail deferred while the scan service was down is delivered at
once and not after the upstream Postfix's retry times (R4.1 defaults: 15 min); "scan service
stopped" / "started" and the flush reach `portcullis log query --category system`; a killed or
hung scan service is restarted. The machine's own Postfix (/etc/postfix) is never touched."""

import hashlib
import json
import os
import signal
import sys
import time

import pytest

from harness import (LOOPBACK, Cluster, account, make_message, new_token, run, wait_for_port,
                     wait_port_closed, wait_until)

SENDER = "sender@origin.test"
POSTCONF = "/usr/sbin/postconf"
# R4.1: the model's retry settings; with these, nothing but a flush retries within 15 minutes
R4_1_RETRY = {"queue_run_delay": "900s", "minimal_backoff_time": "900s",
              "maximal_backoff_time": "3600s"}
SYSTEM_POSTFIX_FILES = ("/etc/postfix/main.cf", "/etc/postfix/master.cf")


def system_postfix_snapshot():
    """SHA-256 (or None: absent) of the system Postfix's configuration files."""
    out = {}
    for p in SYSTEM_POSTFIX_FILES:
        try:
            with open(p, "rb") as f:
                out[p] = hashlib.sha256(f.read()).hexdigest()
        except FileNotFoundError:
            out[p] = None
    return out


def system_events(cluster, child="child1"):
    """`portcullis log query --category system --json` for child (last hour), oldest first."""
    out = cluster.cli_ok("log", "query", "--category", "system", "--child", child, "--since",
                         "1h", "--limit", "1000", "--json")
    return list(reversed(json.loads(out)["events"]))


def count_events(cluster, text, child="child1"):
    return sum(1 for e in system_events(cluster, child) if text in e["message"])


def wait_new_event(cluster, text, before, timeout=30, child="child1"):
    """Waits for more than `before` system events containing text; returns the newest."""
    def got():
        evs = [e for e in system_events(cluster, child) if text in e["message"]]
        return evs[-1] if len(evs) > before else None
    return wait_until(got, timeout, f"a new system event {text!r} for {child}")


def scan_pid(child):
    """Pid of the child's scan service (`portcullis-child scan …`), or None."""
    pids = child.proc.scan_services()
    return pids[0] if pids else None


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    etc = system_postfix_snapshot()
    c = Cluster(module_dir, pg, n_children=1).start()
    try:
        up = c.upstream
        up.extra_main.update(R4_1_RETRY)
        up.set_filters(up.filters)          # rewrites main.cf and reloads
        for k, v in R4_1_RETRY.items():
            got = run([POSTCONF, "-c", up.conf_dir, "-h", k]).stdout.strip()
            assert got == v, (k, got)
        # the harness points the flush at this upstream; wait until the child has it
        c.wait_children_current(c.status()["config_version"], 30)
        yield c
    finally:
        c.stop()
    assert system_postfix_snapshot() == etc, "the system Postfix configuration was changed"


def test_r1_5_flush_after_start_delivers_deferred_mail(cluster):
    """R1.3/R1.5/R1.6: with the child (manager and scan service) stopped, 50 messages sent to
    the upstream Postfix are deferred there (connection refused); the upstream has the R4.1
    retry settings (first retry after 15 min). When the child starts, all 50 are delivered to
    the downstream within 2 minutes — only the manager's flush after the scan service start can
    explain it — exactly once each; "scan service stopped", "scan service started" and
    "upstream queue flushed" are in `log query --category system`."""
    up, down = cluster.upstream, cluster.downstream
    child = cluster.children["child1"]
    n_stopped = count_events(cluster, "scan service stopped")
    n_started = count_events(cluster, "scan service started")
    n_flushed = count_events(cluster, "upstream queue flushed")

    child.stop()
    wait_port_closed(LOOPBACK, child.smtp_port, 30)
    tokens, items = [], []
    for i in range(50):
        tok = new_token(f"sup-a-{i:02d}")
        rcpt = f"user{i}@child1.test"
        tokens.append(tok)
        items.append((make_message(tok, SENDER, rcpt), SENDER, [rcpt]))
    before = down.delivered_count()
    ids = up.send_many(items)
    assert len(ids) == 50 and all(ids)

    def all_deferred():
        q = [m for m in up.queue() if m["queue_id"] in set(ids)]
        return len(q) == 50 and all(m["queue_name"] == "deferred" for m in q) and q
    queued = wait_until(all_deferred, 60, "all 50 messages deferred in the upstream queue")
    reasons = {r.get("delay_reason", "") for m in queued for r in m["recipients"]}
    assert any("Connection refused" in r for r in reasons), reasons
    assert down.delivered_count() == before

    t0 = time.monotonic()
    child.start()
    delivered = down.wait_delivered(before + 50, 120)
    elapsed = time.monotonic() - t0
    sys.stderr.write(f"\nR1.5: 50 deferred messages delivered {elapsed:.1f} s after the child "
                     f"started\n")
    assert elapsed < 120
    assert account(tokens, delivered)["delivered"] == 50
    up.wait_queue_empty(30)

    stopped = wait_new_event(cluster, "scan service stopped", n_stopped)
    assert "the manager is stopping" in stopped["message"], stopped
    started = wait_new_event(cluster, "scan service started", n_started)
    flushed = wait_new_event(cluster, "upstream queue flushed", n_flushed)
    assert started["severity"] == "info" and flushed["severity"] == "info"
    assert f"-c {up.conf_dir} -f" in flushed["message"], flushed
    assert stopped["severity"] == "warning"
    text = cluster.cli_ok("log", "query", "--category", "system", "--child", "child1")
    assert "SEVERITY" in text and "upstream queue flushed" in text, text
    rc, _out, err = cluster.cli("log", "query", "--category", "system", "--sender", SENDER)
    assert rc == 2 and "--sender does not apply with --category" in err, err


def test_r1_6_killed_scan_service_restarted_and_flushed(cluster):
    """R1.5/R1.6: kill -9 of the scan service: the manager sees it (SIGCHLD), records "scan
    service stopped" with the signal, restarts it, records "scan service started" and flushes
    the upstream queue again; mail flows through the new process."""
    up, down = cluster.upstream, cluster.downstream
    child = cluster.children["child1"]
    n = {t: count_events(cluster, t) for t in ("scan service stopped", "scan service started",
                                               "upstream queue flushed")}
    old = wait_until(lambda: scan_pid(child), 10, "the scan service process")
    os.kill(old, signal.SIGKILL)
    new = wait_until(lambda: (lambda p: p if p and p != old else None)(scan_pid(child)), 30,
                     "a new scan service process")
    wait_for_port(LOOPBACK, child.smtp_port, 30)

    stopped = wait_new_event(cluster, "scan service stopped", n["scan service stopped"])
    assert f"pid={old}" in stopped["message"] and "signal 9" in stopped["message"], stopped
    assert stopped["severity"] == "warning"
    started = wait_new_event(cluster, "scan service started", n["scan service started"])
    assert f"pid={new}" in started["message"], started
    flushed = wait_new_event(cluster, "upstream queue flushed", n["upstream queue flushed"])
    assert f"pid={new}" in flushed["message"], flushed

    tok = new_token("sup-b")
    before = down.delivered_count()
    up.send(make_message(tok, SENDER, "after-kill@child1.test"), SENDER, "after-kill@child1.test")
    assert account([tok], down.wait_delivered(before + 1, 60))["delivered"] == 1


def test_r1_5_hung_scan_service_killed_and_restarted(cluster):
    """R1.5: the periodic check (supervise.check_interval_s = 2 here) finds a scan service that
    sends no statistics (SIGSTOP: alive but hung), kills it and the manager restarts it; the
    reason is recorded ("not responding", "hung") with the stop, then start and flush."""
    child = cluster.children["child1"]
    cluster.cli_ok("settings", "set", "supervise.check_interval_s", "2")
    cluster.wait_children_current(cluster.status()["config_version"], 30)
    n = {t: count_events(cluster, t) for t in ("not responding", "scan service stopped",
                                               "scan service started", "upstream queue flushed")}
    old = wait_until(lambda: scan_pid(child), 10, "the scan service process")
    t0 = time.monotonic()
    os.kill(old, signal.SIGSTOP)
    try:
        new = wait_until(lambda: (lambda p: p if p and p != old else None)(scan_pid(child)), 60,
                         "the hung scan service to be replaced")
        elapsed = time.monotonic() - t0
        sys.stderr.write(f"\nR1.5: hung scan service replaced after {elapsed:.1f} s\n")
        hung = wait_new_event(cluster, "not responding", n["not responding"])
        assert f"pid={old}" in hung["message"] and "no statistics" in hung["message"], hung
        assert hung["severity"] == "error"
        stopped = wait_new_event(cluster, "scan service stopped", n["scan service stopped"])
        assert f"pid={old}" in stopped["message"] and "hung" in stopped["message"], stopped
        started = wait_new_event(cluster, "scan service started", n["scan service started"])
        assert f"pid={new}" in started["message"]
        wait_new_event(cluster, "upstream queue flushed", n["upstream queue flushed"])
        wait_for_port(LOOPBACK, child.smtp_port, 30)
    finally:
        try:
            os.kill(old, signal.SIGCONT)
        except ProcessLookupError:
            pass
        cluster.cli_ok("settings", "set", "supervise.check_interval_s", "60")


def test_r7_4_child_commands_flush_reload_apply_mta_purge(cluster):
    """R7.4: the parent's commands to a whole child, each answered (or failed with a clear
    reason): `child flush` runs mta.adapter's queue flush now and records "upstream queue flushed"
    (on the administrator's request); `child reload` makes the scan service reload its
    signatures; `child apply-mta` is refused while mta.apply is off and, on (the commands
    pointing at this test's upstream instance), applies the mta.* settings again even when
    unchanged; `child purge` runs the quota and retention purge and answers with what it
    deleted; a stopped child fails at once with "is down". Every one is audited."""
    up = cluster.upstream
    child = cluster.children["child1"]
    cluster.wait_child_state("child1", "up", 30)

    # flush
    n_flushed = count_events(cluster, "upstream queue flushed")
    out = cluster.cli_ok("child", "flush", "child1")
    assert "child child1: upstream queue flushed" in out, out
    ev = wait_new_event(cluster, "upstream queue flushed", n_flushed)
    assert "administrator's request" in ev["message"] and f"-c {up.conf_dir} -f" in ev["message"]
    assert ev["severity"] == "info"

    # reload
    mark = child.proc.log_mark()
    data = json.loads(cluster.cli_ok("child", "reload", "child1", "--json"))
    assert data["ok"] is True and data["command"] == "reload", data
    child.proc.wait_for_log(r"reload (started|queued) reason=administrator", 30, since=mark)
    child.proc.wait_for_log(r"loaded sigs=\d+", 60, since=mark)

    # apply-mta: off → refused, clearly
    cluster.cli_ok("settings", "set", "mta.apply", "false")
    cluster.wait_children_current(cluster.status()["config_version"], 30)
    rc, _out, err = cluster.cli("child", "apply-mta", "child1")
    assert rc == 1 and "mta.apply is off" in err, (rc, err)
    # … on, pointed at the test upstream: applied (again, even when unchanged)
    n_applied = count_events(cluster, "MTA settings applied")
    cluster.cli_ok("settings", "set", "mta.adapter", cluster.upstream_adapter())
    cluster.cli_ok("settings", "set", "mta.apply", "true")
    cluster.wait_children_current(cluster.status()["config_version"], 30)
    wait_new_event(cluster, "MTA settings applied", n_applied)   # the change, by itself
    try:
        data = json.loads(cluster.cli_ok("child", "apply-mta", "child1", "--json"))
        assert data["ok"] is True and data["detail"]["state"] == "ok", data
        assert "queue_run_delay=" in data["detail"]["params"], data
        wait_new_event(cluster, "MTA settings applied", n_applied + 1)  # the command's, again
        got = run([POSTCONF, "-c", up.conf_dir, "-h", "queue_run_delay"]).stdout.strip()
        assert got == data["detail"]["params"].split()[0].split("=")[1], got
    finally:
        cluster.cli_ok("settings", "set", "mta.apply", "false")

    # purge
    data = json.loads(cluster.cli_ok("child", "purge", "child1", "--json"))
    d = data["detail"]
    assert data["ok"] is True and "deleted" in d, data
    for store in ("quarantine", "archive"):
        assert {"deleted_quota", "deleted_retention", "files_now"} <= set(d[store]), d

    # audited
    rows = cluster.pg.query("SELECT action, result FROM audit_log WHERE target = 'child1' "
                            "AND action LIKE %s ORDER BY id", ("child %",))
    acts = [tuple(r) for r in rows]
    for a in ("child flush", "child reload", "child apply_mta", "child purge"):
        assert (a, "ok") in acts, acts
    assert ("child apply_mta", "failed") in acts, acts

    # a stopped child: at once, "is down"
    child.stop()
    try:
        cluster.wait_child_state("child1", "down", 30)
        for verb in ("flush", "reload", "purge", "apply-mta"):
            rc, _out, err = cluster.cli("child", verb, "child1")
            assert rc == 1 and "child child1 is down" in err, (verb, rc, err)
        rc, _out, err = cluster.cli("child", "flush", "nosuchchild")
        assert rc == 1 and "not known" in err, err
        rc, _out, err = cluster.cli("child", "flush")
        assert rc == 2, err
    finally:
        child.start()
    cluster.wait_child_state("child1", "up", 30)
