"""Smart scan and its failure modes (R2.1–R2.6) through the real mail path: one child whose
scan service looks message digests up at the smart-protection service (`portcullis-parent
--sps-only` on the parent's database), upstream and downstream Postfix. Stopped, hung and
too-slow servers give `451 4.4.3` with the message named in the child's log (R2.5); failures
past the threshold switch the child to conventional scan — that child's own state, in its
Health and a system event, never the fleet's setting (R2.3, R8.4); no return by itself unless
smart_scan.auto_return or the administrator's `child reload NAME` (R2.4).
The tests share the module's cluster and run in order."""

import hashlib
import json
import os
import re
import socket
import threading
import time

import pytest

from harness import (LOOPBACK, Proc, account, bin_path, free_port, make_message, new_token,
                     parse_conf, wait_until, write_conf)
from scanning import (SENDER, attachment_message, scan_cluster, send_direct,
                      set_setting, wait_config_current)

RCPT = "user@child1.test"
ABORTED = r"id=(?P<id>[0-9A-Za-z]+) scan aborted: smart-protection server connection error \("
DEFERRED_4XX = re.compile(r"said: 451 4\.4\.3 ")
MALWARE = b"portcullis smart-scan test payload: known malicious content\r\n"
MALWARE_NAME = "Test.Smart.Known"


class HungServer:
    """A TCP listener that accepts connections and never answers: a hung server, not a fake
    of the service (it speaks no HTTP at all)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            c.close()


def _sps_proc(module_dir, cluster, port):
    with open(cluster.parent.conf_path) as f:
        conf = parse_conf(f.read())
    conf["sps_listen"] = f"{LOOPBACK}:{port}"
    path = os.path.join(module_dir, "sps.conf")
    write_conf(path, conf)
    return Proc("sps", [bin_path("portcullis-parent"), "--sps-only", "-c", path],
                os.path.join(module_dir, "sps.log"))


class Sps:
    """The look-up service as a process that the tests stop and start again."""

    def __init__(self, module_dir, cluster):
        self.port = free_port()
        self.url = f"https://{LOOPBACK}:{self.port}/v1/lookup"
        self.proc = _sps_proc(module_dir, cluster, self.port)

    def start(self):
        mark = self.proc.log_mark()
        self.proc.start()
        self.proc.wait_for_log(r"sps ready listen=\S+ pin=", 20, since=mark)

    def stop(self):
        self.proc.stop()


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = scan_cluster(module_dir, pg, n_children=1)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def sps(module_dir, cluster):
    s = Sps(module_dir, cluster)
    s.start()
    path = os.path.join(module_dir, "digests.txt")
    with open(path, "w") as f:
        f.write(f"{hashlib.sha256(MALWARE).hexdigest()} {MALWARE_NAME}\n")
    cluster.cli_ok("sps", "import", path, timeout=60)
    yield s
    s.stop()


def _child(cluster):
    return cluster.children["child1"]


def _health(cluster):
    return (cluster.child_status("child1") or {}).get("health") or {}


def _setting(cluster, key):
    out = json.loads(cluster.cli_ok("settings", "get", key, "--json"))
    v = out["settings"][0]["value"]
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def _smart_on(cluster, url, **extra):
    for k, v in extra.items():
        set_setting(cluster, f"smart_scan.{k}", v)
    set_setting(cluster, "smart_scan.url", url)
    set_setting(cluster, "smart_scan.enabled", "true")
    # a switch of an earlier test is this child's own state (R8.4): the administrator's
    # per-child way back ends it
    cluster.cli_ok("child", "reload", "child1")


def _events(cluster, like):
    return cluster.pg.query("SELECT category, severity, message FROM events "
                            "WHERE message LIKE %s ORDER BY at", (like,))


def _clean(tok):
    return make_message(tok, SENDER, RCPT)


def test_r2_1_smart_scan_lookup(cluster, sps):
    """R2.1: with smart scan on, a clean message is delivered after its digests are looked up
    (no ClamAV scan), a message whose attachment's digest the server knows is quarantined by
    the Viruses rule with the server's name, and the console shows method "smart"."""
    _smart_on(cluster, sps.url, switch_to_conventional="false")
    child = _child(cluster)
    mark = child.proc.log_mark()
    r = send_direct(child.smtp_port, _clean(new_token("smart-clean")))
    assert r.code == 250 and "quarantined" not in r.text, r
    r = send_direct(child.smtp_port, attachment_message(new_token("smart-bad"), RCPT,
                                                        [("payload.bin", MALWARE)]))
    assert r.code == 250 and r.quarantined, r
    log = child.proc.log_since(mark)
    assert re.search(r"scan av=skipped smart=clean ", log), log
    assert re.search(r"scan av=skipped smart=virus:" + re.escape(MALWARE_NAME), log), log
    wait_until(lambda: _health(cluster).get("scan_method") == "smart", 20,
               "Health scan_method smart")
    assert _health(cluster).get("smart_scan_state") == "ok"


def test_r2_5_server_stopped_451_then_delivered(cluster, sps):
    """R2.5: with the server stopped and the switch off, every message gets 451 4.4.3 (the
    upstream Postfix defers it with that reply) and the child logs `id=<id> scan aborted:
    smart-protection server connection error (…)` naming each message; once the server is back
    a flush delivers all of them (sent = delivered, nothing lost or duplicated)."""
    up, down = cluster.upstream, cluster.downstream
    child = _child(cluster)
    before = down.delivered_count()
    mark = child.proc.log_mark()
    sps.stop()
    try:
        tokens, items = [], []
        for i in range(5):
            tok = new_token(f"stopped-{i}")
            tokens.append(tok)
            items.append((_clean(tok), SENDER, [RCPT]))
        ids = set(up.send_many(items))
        assert len(ids) == 5 and None not in ids

        def all_deferred():
            q = {e["queue_id"]: e for e in up.queue()}
            if not ids <= set(q):
                return None
            for qid in ids:
                if q[qid]["queue_name"] != "deferred" or not all(
                        DEFERRED_4XX.search(r.get("delay_reason", ""))
                        for r in q[qid]["recipients"]):
                    return None
            return q
        wait_until(all_deferred, 60, "5 messages deferred upstream with 451 4.4.3")
        aborted = set(m.group("id") for m in re.finditer(ABORTED, child.proc.log_since(mark)))
        assert len(aborted) >= 5, child.proc.log_since(mark)
        assert down.delivered_count() == before
        assert _setting(cluster, "smart_scan.enabled") == "true"  # switch off: no switch
    finally:
        sps.start()
    up.flush()
    delivered = down.wait_delivered(before + 5, 90)
    summary = account(tokens, delivered)
    assert summary["sent"] == summary["delivered"] == 5
    up.wait_queue_empty(30)


def test_r2_5_hung_server_times_out(cluster, sps):
    """R2.5/R2.6: a server that accepts and never answers: each look-up ends after
    query_timeout_ms (300) with 451 4.4.3 and the logged abort. A slow server (one that would
    answer after query_timeout_ms) is this same case from the client's side: the answer comes
    after the transfer was ended. Back on the real service the message is delivered."""
    hung = HungServer()
    child = _child(cluster)
    try:
        set_setting(cluster, "smart_scan.query_timeout_ms", 300)
        set_setting(cluster, "smart_scan.url", f"https://{LOOPBACK}:{hung.port}/v1/lookup")
        tok = new_token("hung")
        mark = child.proc.log_mark()
        r = send_direct(child.smtp_port, _clean(tok))
        assert r.code == 451 and r.text.startswith("4.4.3"), r
        assert 0.25 <= r.elapsed < 5, r
        m = re.search(ABORTED + r"(?P<d>[^)]*)\)", child.proc.log_since(mark))
        assert m and "imeout" in m.group("d"), child.proc.log_since(mark)
    finally:
        hung.close()
        set_setting(cluster, "smart_scan.url", sps.url)
        set_setting(cluster, "smart_scan.query_timeout_ms", 1500)
    r = send_direct(child.smtp_port, _clean(tok))
    assert r.code == 250, r


def test_r8_7_lookups_only_to_the_pinned_key(cluster, sps, module_dir):
    """R8.7: the children look up only over HTTPS with the parent's pinned key. A plain-http
    smart_scan.url is refused by the settings (exit 2, the reason named); a look-up service
    with another key (a replica whose state_dir made its own certificate: what an attacker on
    the path would present) gets no digest — 451 4.4.3, the pin mismatch in the child's log,
    nothing delivered; back on the real service the message is delivered."""
    rc, out, err = cluster.cli("settings", "set", "smart_scan.url",
                               f"http://{LOOPBACK}:{sps.port}/v1/lookup")
    assert rc == 2 and "https://" in err and "R8.7" in err, (rc, out, err)
    rc, out, err = cluster.cli("settings", "set", "wrs.url", f"http://{LOOPBACK}:1/v1/rate")
    assert rc == 2 and "https://" in err, (rc, out, err)
    with open(cluster.parent.conf_path) as f:
        conf = parse_conf(f.read())
    port = free_port()
    conf["sps_listen"] = f"{LOOPBACK}:{port}"
    conf["state_dir"] = os.path.join(module_dir, "foreign-state")
    os.makedirs(conf["state_dir"], mode=0o700, exist_ok=True)
    path = os.path.join(module_dir, "foreign-sps.conf")
    write_conf(path, conf)
    foreign = Proc("foreign-sps", [bin_path("portcullis-parent"), "--sps-only", "-c", path],
                   os.path.join(module_dir, "foreign-sps.log"))
    foreign.start()
    child = _child(cluster)
    try:
        m = foreign.wait_for_log(r"sps ready listen=\S+ pin=(?P<pin>\S+)", 20)
        pin = cluster.pg.query("SELECT tls_pin FROM update_server")[0][0]
        assert m.group("pin") != pin, "the foreign service has the parent's key"
        set_setting(cluster, "smart_scan.switch_to_conventional", "false")
        _smart_on(cluster, f"https://{LOOPBACK}:{port}/v1/lookup")
        before = cluster.downstream.delivered_count()
        tok = new_token("foreign-key")
        mark = child.proc.log_mark()
        r = send_direct(child.smtp_port, _clean(tok))
        assert r.code == 451 and r.text.startswith("4.4.3"), r
        m = re.search(ABORTED + r"(?P<d>[^)]*)\)", child.proc.log_since(mark))
        assert m and "pinned public key" in m.group("d"), child.proc.log_since(mark)
        assert cluster.downstream.delivered_count() == before
    finally:
        foreign.stop()
        set_setting(cluster, "smart_scan.url", sps.url)
    r = send_direct(child.smtp_port, _clean(tok))
    assert r.code == 250, r


def test_r2_3_switch_after_threshold_no_auto_return(cluster, sps):
    """R2.3/R2.4, R8.4: switch on, 3 failures within 60 s → the child switches to
    conventional: its Health says "conventional", a system warning event and an administrator
    notification are recorded, the fleet's smart_scan.enabled stays true (a child's message
    changes only that child), and later mail is scanned by ClamAV and delivered. With
    auto_return off the method stays conventional after the server is back until the
    administrator's `child reload child1`; with auto_return on and auto_return_after=3 a
    second switch returns to smart by itself."""
    child = _child(cluster)
    down = cluster.downstream
    hung = HungServer()
    try:
        set_setting(cluster, "smart_scan.query_timeout_ms", 300)
        set_setting(cluster, "smart_scan.failure_threshold", 3)
        set_setting(cluster, "smart_scan.failure_window_s", 60)
        set_setting(cluster, "smart_scan.switch_to_conventional", "true")
        set_setting(cluster, "smart_scan.url", f"https://{LOOPBACK}:{hung.port}/v1/lookup")
        for i in range(3):
            r = send_direct(child.smtp_port, _clean(new_token(f"switch-{i}")))
            assert r.code == 451 and r.text.startswith("4.4.3"), r
        ev = wait_until(lambda: _events(cluster, "%switched to conventional scan%"), 30,
                        "the switch's system event")
        assert _setting(cluster, "smart_scan.enabled") == "true", "R8.4: fleet setting changed"
        assert ev[0][0] == "system" and ev[0][1] == "warning" and "3 look-up failures" in ev[0][2]
        # R2.4 Beyond: and an administrator notification, queued with the event
        notes = cluster.pg.query("SELECT subject FROM notifications WHERE subject LIKE %s",
                                 ("%switched to conventional scan",))
        assert notes == [("Portcullis: child child1 switched to conventional scan",)], notes
        wait_config_current(cluster)
        wait_until(lambda: _health(cluster).get("scan_method") == "conventional", 30,
                   "Health scan_method conventional")
        before = down.delivered_count()
        tok = new_token("after-switch")
        mark = child.proc.log_mark()
        r = send_direct(child.smtp_port, _clean(tok))
        assert r.code == 250 and "quarantined" not in r.text, r
        assert re.search(r"scan av=clean ", child.proc.log_since(mark))
        account([tok], down.wait_delivered(before + 1, 60))
    finally:
        hung.close()
    # the server is back: no return by itself (auto_return off)
    set_setting(cluster, "smart_scan.url", sps.url)
    time.sleep(8)  # longer than two health checks: nothing may happen
    assert _setting(cluster, "smart_scan.enabled") == "true"
    assert _health(cluster).get("scan_method") == "conventional"
    assert not _events(cluster, "%switched to smart scan%")
    # the administrator's way back for this one child
    cluster.cli_ok("child", "reload", "child1")
    wait_until(lambda: _health(cluster).get("scan_method") == "smart", 30,
               "Health scan_method smart after `child reload`")
    wait_until(lambda: _events(cluster, "%switched to smart scan: resumed by the administrator%"),
               30, "the resume event")
    # auto_return on: a second switch, then back to smart once the server answered for 3 s
    set_setting(cluster, "smart_scan.auto_return_after", 3)
    set_setting(cluster, "smart_scan.auto_return", "true")
    hung = HungServer()
    try:
        set_setting(cluster, "smart_scan.url", f"https://{LOOPBACK}:{hung.port}/v1/lookup")
        for i in range(3):
            r = send_direct(child.smtp_port, _clean(new_token(f"switch2-{i}")))
            assert r.code == 451, r
        wait_until(lambda: _health(cluster).get("scan_method") == "conventional", 30,
                   "the second switch")
    finally:
        hung.close()
    set_setting(cluster, "smart_scan.url", sps.url)
    wait_until(lambda: _events(cluster, "%switched to smart scan: smart-protection server "
                                        "answered%"), 30, "the automatic return's event")
    wait_until(lambda: _health(cluster).get("scan_method") == "smart", 30,
               "Health scan_method smart")
    assert _setting(cluster, "smart_scan.enabled") == "true"
    mark = child.proc.log_mark()
    r = send_direct(child.smtp_port, _clean(new_token("returned")))
    assert r.code == 250, r
    assert re.search(r"smart=clean", child.proc.log_since(mark))


def test_r2_3_unreachable_at_start_switches(cluster, sps):
    """R2.2/R2.3: when smart scan starts (here: enabled by the administrator) the server is
    checked at once; unreachable with the switch on → conventional scan straight away, recorded
    as this child's state (system event "unreachable at start"; the fleet setting stays true,
    R8.4), and mail is delivered."""
    child = _child(cluster)
    dead = free_port()  # nothing listens there: connection refused
    set_setting(cluster, "smart_scan.enabled", "false")
    set_setting(cluster, "smart_scan.url", f"https://{LOOPBACK}:{dead}/v1/lookup")
    set_setting(cluster, "smart_scan.auto_return", "false")
    cluster.cli_ok("settings", "set", "smart_scan.enabled", "true")
    wait_until(lambda: _events(cluster, "%switched to conventional scan: smart-protection server "
                                        "unreachable at start%"), 30, "the start-up switch event")
    wait_until(lambda: _health(cluster).get("scan_method") == "conventional", 30,
               "Health scan_method conventional")
    assert _setting(cluster, "smart_scan.enabled") == "true"
    r = send_direct(child.smtp_port, _clean(new_token("start-unreachable")))
    assert r.code == 250 and "quarantined" not in r.text, r


def test_r2_3_switch_while_parent_down_recorded_on_return(cluster, sps):
    """R2.3: a switch that happens while the parent is unreachable is not lost: the child's
    spool keeps its event and ships it when the link is back; the fleet setting is untouched
    (R8.4)."""
    child = _child(cluster)
    set_setting(cluster, "smart_scan.auto_return", "false")
    set_setting(cluster, "smart_scan.failure_threshold", 2)
    set_setting(cluster, "smart_scan.failure_window_s", 60)
    set_setting(cluster, "smart_scan.query_timeout_ms", 300)
    set_setting(cluster, "smart_scan.switch_to_conventional", "true")
    _smart_on(cluster, sps.url)
    wait_config_current(cluster)
    wait_until(lambda: _health(cluster).get("scan_method") == "smart", 30,
               "Health scan_method smart before the outage")
    events_before = len(_events(cluster, "%switched to conventional scan%"))

    sps.stop()
    cluster.parent.stop()
    try:
        mark = child.proc.log_mark()
        for i in range(2):
            r = send_direct(child.smtp_port, _clean(new_token(f"pdown-switch-{i}")))
            assert r.code in (250, 451), r  # 451 until the switch, then conventional
        child.proc.wait_for_log(r"scan method changed to conventional", 30, since=mark)
        assert _setting(cluster, "smart_scan.enabled") == "true"  # nobody recorded it yet
    finally:
        cluster.parent.start()
        sps.start()
    wait_until(lambda: len(_events(cluster, "%switched to conventional scan%")) > events_before,
               60, "the switch's system event after the parent returned")
    assert _setting(cluster, "smart_scan.enabled") == "true"
    wait_config_current(cluster)
