"""Signed component updates (R3.7, R1.4): `portcullis update import` stores a signature package
(a tar.gz of ClamAV files) with its SHA-256 and an Ed25519 signature by the parent's update
key; the configuration names the current version; every child downloads it from the parent's
HTTPS server (self-signed key pinned, bearer token), verifies size, digest and signature,
extracts it beside the set in force and swaps the directory atomically; the scan service
reloads (hot swap, nothing deferred). Tampered or truncated packages (the stored bytes
altered in PostgreSQL) are refused and logged and the previous patterns stay in force; an
unreachable HTTPS server is retried with growing delays; a newer good version supersedes a
bad one. One cluster for the module (PostgreSQL, parent with HTTPS on a free port, two
children, no upstream MTA: mail goes straight to the scan services); the tests run in order."""

import json
import os
import re
import threading
import time

import pytest

import cluster as cluster_mod
import signatures
from harness import LOOPBACK, free_port, make_message, new_token, wait_until
from scanning import SENDER, scan_cluster, send_direct, set_setting

RCPT = "user@child1.test"
FAILED_RE = (r"update failed component=clamav version={v} reason=\"(?P<reason>[^\"]*)\" "
             r"attempt=(?P<attempt>\d+) retry_in_ms=(?P<delay>\d+)")


def _virus(version):
    """A test 'virus' only the package of this version detects: (bytes, ndb line)."""
    data = f"PORTCULLIS-UPDATE-TEST-VIRUS-{version}-0123456789abcdef".encode()
    name = f"Portcullis.Test.Update.{version.replace('-', '_')}"
    return data, f"{name}:0:*:{data.hex()}\n"


def _package(path, version):
    """A tar.gz signature set: EICAR, clamav-testfiles and this version's own test virus."""
    return signatures.write_package(path, {
        "portcullis-eicar.ndb": signatures.eicar_ndb_line(),
        "portcullis-testfiles.hdb": signatures.testfiles_hdb(),
        f"portcullis-update-{version}.ndb": _virus(version)[1],
    })


class _HttpsParent(cluster_mod.Parent):
    """The harness's parent with its HTTPS server on a free loopback port (the default
    0.0.0.0:7713 is shared by every test run on this machine)."""

    def __init__(self, base_dir, dsn):
        super().__init__(base_dir, dsn)
        self.https_port = free_port()
        self.set_https(f"{LOOPBACK}:{self.https_port}")

    def set_https(self, listen):
        with open(self.conf_path) as f:
            lines = [l for l in f if not l.startswith(("https_listen", "https_public_url"))]
        lines.append(f'https_listen = "{listen}"\n')
        lines.append(f"https_public_url = https://{LOOPBACK}:{self.https_port}\n")
        with open(self.conf_path, "w") as f:
            f.writelines(lines)


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    saved = cluster_mod.Parent
    cluster_mod.Parent = _HttpsParent
    try:
        c = scan_cluster(module_dir, pg, n_children=2, upstream=False)
    finally:
        cluster_mod.Parent = saved
    try:
        set_setting(c, "cluster.health_interval_s", 1)
        c.parent.proc.wait_for_log(r"https ready listen=", 30)
    except BaseException:
        c.stop()
        raise
    yield c
    c.stop()


def _import(cluster, tmp_dir, version, *extra):
    path = _package(os.path.join(tmp_dir, f"sigs-{version}.tar.gz"), version)
    return cluster.cli_ok("update", "import", "--version", version, *extra, path)


def _patterns(cluster, name):
    c = cluster.child_status(name) or {}
    h = c.get("health") or {}
    return h.get("patterns") or {}, h.get("update_state")


def _wait_installed(cluster, version, timeout=60, names=None):
    names = names or list(cluster.children)

    def ok():
        for n in names:
            if _patterns(cluster, n)[0].get("clamav") != version:
                return None
        return True
    return wait_until(ok, timeout, f"{names} to report clamav {version} in portcullis status")


def _quarantined(reply):
    return reply.code == 250 and "Ok: quarantined as" in reply.text


def _send_virus(cluster, version, child="child1"):
    data, _ = _virus(version)
    tok = new_token(f"upd-{version}")
    msg = make_message(tok, SENDER, RCPT, body=f"token {tok}\n{data.decode()}\n")
    return send_direct(cluster.children[child].smtp_port, msg)


def _wait_failures(child, version, n, since, timeout):
    rx = re.compile(FAILED_RE.format(v=re.escape(version)))

    def found():
        ms = list(rx.finditer(child.proc.log_since(since)))
        return ms if len(ms) >= n else None
    return wait_until(found, timeout, f"{child.name} to log {n} failed attempts for {version}")


def test_r3_7_import_installs_on_every_child_without_deferral(cluster, module_dir):
    """R3.7/R1.4: `update import --version v1` of a package with a new test virus: every child
    downloads it over HTTPS, verifies it and swaps the engine (no restart: same scan pid);
    status shows clamav=v1 for both; the new test virus is quarantined; a stream of clean
    messages sent to child1 during the swap gets 250 every time (no 4xx)."""
    c1 = cluster.children["child1"]
    marks = {n: ch.proc.log_mark() for n, ch in cluster.children.items()}
    pids = c1.proc.scan_services()
    stop = threading.Event()
    replies = []

    def stream():
        i = 0
        while not stop.is_set():
            tok = new_token(f"upd-stream-{i}")
            replies.append(send_direct(c1.smtp_port, make_message(tok, SENDER, RCPT)))
            i += 1

    t = threading.Thread(target=stream, daemon=True)
    t.start()
    try:
        out = _import(cluster, module_dir, "v1")
        assert "imported" in out and "current" in out, out
        _wait_installed(cluster, "v1")
        for n, ch in cluster.children.items():
            ch.proc.wait_for_log(r"update installed component=clamav version=v1 ", 10,
                                 since=marks[n])
            ch.proc.wait_for_log(r"signatures loaded sigs=\d+ dir=\S+ ms=\d+ swaps=[1-9]", 60,
                                 since=marks[n])
        # mail keeps flowing a little after the new engine is in force
        n0 = len(replies)
        wait_until(lambda: len(replies) >= n0 + 5, 30, "5 more messages after the swap")
    finally:
        stop.set()
        t.join(60)
    bad = [r for r in replies if r.code != 250]
    assert not bad, f"replies other than 250 during the swap: {bad[:5]}"
    assert len(replies) >= 5
    assert c1.proc.scan_services() == pids, "the scan service was restarted"
    for n in cluster.children:
        r = _send_virus(cluster, "v1", child=n)
        assert _quarantined(r), (n, r)
    pats, state = _patterns(cluster, "child1")
    assert pats.get("clamav") == "v1" and state == "ok", (pats, state)
    listing = json.loads(cluster.cli_ok("update", "list", "--json"))
    cur = [e for e in listing["components"] if e["current"]]
    assert [(e["component"], e["version"]) for e in cur] == [("clamav", "v1")]
    st = cluster.cli_ok("status")
    assert "clamav=v1" in st, st
    print(f"R3.7: v1 installed on {len(cluster.children)} children; {len(replies)} messages "
          "during the swap, all 250")


def _tamper_and_use(cluster, module_dir, version, how):
    _import(cluster, module_dir, version, "--no-use")
    if how == "tampered":   # same length, one byte changed: digest and signature fail
        cluster.pg.query("UPDATE components SET package = set_byte(package, 100, "
                         "mod(get_byte(package, 100) + 1, 256)) WHERE version = %s", (version,))
    else:                   # cut in half: fewer bytes than announced
        cluster.pg.query("UPDATE components SET package = substring(package FROM 1 FOR "
                         "(size / 2)::int) WHERE version = %s", (version,))
    cluster.cli_ok("update", "use", "clamav", version)


@pytest.mark.parametrize("version,how,reason", [
    ("v2-tampered", "tampered", "sha256 mismatch"),
    ("v3-truncated", "truncated", "size mismatch"),
])
def test_r3_7_bad_package_refused_previous_patterns_stay(cluster, module_dir, version, how,
                                                         reason):
    """R3.7: a package whose stored bytes were altered (tampered: one byte changed; truncated:
    cut in half) is refused by every child with the reason logged (`update failed … reason=`)
    and recorded as an event (category update, severity error) on the parent; the previous
    patterns stay in force (v1's test virus still quarantined, status still clamav=v1, its
    update_state names the failure) and the bad version's own test virus passes."""
    marks = {n: ch.proc.log_mark() for n, ch in cluster.children.items()}
    _tamper_and_use(cluster, module_dir, version, how)
    for n, ch in cluster.children.items():
        m = _wait_failures(ch, version, 1, marks[n], 30)[0]
        assert reason in m.group("reason"), m.group(0)

    def event():
        rows = cluster.pg.query("SELECT message FROM events WHERE category = 'update' AND "
                                "severity = 'error' AND message LIKE %s", (f"%{version}%",))
        return rows if rows and len(rows) >= len(cluster.children) else None
    wait_until(event, 30, f"update error events for {version}")

    def failing():
        for n in cluster.children:
            pats, state = _patterns(cluster, n)
            if pats.get("clamav") != "v1" or not state or reason not in state:
                return None
        return True
    wait_until(failing, 30, f"status: clamav=v1 and update_state naming '{reason}'")
    r = _send_virus(cluster, "v1")
    assert _quarantined(r), r
    r = _send_virus(cluster, version)
    assert r.code == 250 and not _quarantined(r), r
    assert f"! component update: clamav {version}" in cluster.cli_ok("status")


def test_r3_7_good_version_supersedes_bad_one(cluster, module_dir):
    """R3.7: while v3-truncated is being retried (retry delays growing), importing v4 makes it
    current and every child installs it at once — not after the pending retry delay — with
    the log saying v4 supersedes v3-truncated; v4's virus is quarantined, update_state ok."""
    c1 = cluster.children["child1"]
    mark = c1.proc.log_mark()
    # the bad version has failed at least twice: the next retry is ≥ 10 s away
    _wait_failures(c1, "v3-truncated", 1, mark, 30)
    t0 = time.monotonic()
    _import(cluster, module_dir, "v4")
    _wait_installed(cluster, "v4", timeout=30)
    took = time.monotonic() - t0
    c1.proc.wait_for_log(r"update component=clamav version=v4 supersedes version=v3-truncated",
                         5, since=mark)
    c1.proc.wait_for_log(r"signatures loaded sigs=\d+ dir=\S+ ms=\d+ swaps=", 60, since=mark)
    r = _send_virus(cluster, "v4")
    assert _quarantined(r), r
    assert _patterns(cluster, "child1")[1] == "ok"
    print(f"R3.7: v4 superseded v3-truncated and was installed {took:.1f} s after the import")


def _restart_parent(cluster, listen):
    cluster.parent.stop()
    cluster.parent.set_https(listen)
    cluster.parent.start()


def test_r3_7_https_server_down_retried_with_backoff(cluster, module_dir):
    """R3.7: the parent is stopped and started again with its HTTPS server off (the port
    closed); v5 imported then is announced to the children, whose downloads fail (connection
    refused) and are retried with growing delays (retry_in_ms 5000, then 10000); the previous
    patterns stay in force meanwhile. The parent is stopped and started with HTTPS on again:
    the next retry installs v5 on every child."""
    marks = {n: ch.proc.log_mark() for n, ch in cluster.children.items()}
    _restart_parent(cluster, "")
    for ch in cluster.children.values():
        ch.wait_link(60)
    _import(cluster, module_dir, "v5")
    delays = {}
    for n, ch in cluster.children.items():
        ms = _wait_failures(ch, "v5", 2, marks[n], 60)
        delays[n] = [int(m.group("delay")) for m in ms]
        assert "download failed" in ms[0].group("reason"), ms[0].group(0)
        assert delays[n][1] > delays[n][0], delays[n]
    r = _send_virus(cluster, "v4")
    assert _quarantined(r), r
    _restart_parent(cluster, f"{LOOPBACK}:{cluster.parent.https_port}")
    _wait_installed(cluster, "v5", timeout=90)
    for n, ch in cluster.children.items():
        ch.proc.wait_for_log(r"update installed component=clamav version=v5 ", 10, since=marks[n])
    r = _send_virus(cluster, "v5")
    assert _quarantined(r), r
    print(f"R3.7: retry delays while the HTTPS server was down: {delays}")


def test_r3_7_rollback_with_update_use(cluster):
    """R3.7/R1.4: `update use clamav v4` makes the older version current again (a rollback);
    the children fetch and install it; an unknown version is refused with exit 2."""
    cluster.cli_ok("update", "use", "clamav", "v4")
    _wait_installed(cluster, "v4", timeout=60)
    c1 = cluster.children["child1"]
    c1.proc.wait_for_log(r"update installed component=clamav version=v4 ", 10)
    rc, _out, err = cluster.cli("update", "use", "clamav", "nope")
    assert rc == 2 and "no clamav version nope" in err, err
