"""Central quarantine operations (issue 5 point 4): from the parent's CLI, across two children
with real Postfix downstream and real PostgreSQL — search with filters and keyset pagination,
show, download, release, delete (R5.4) through commands with a reply and a timeout (R7.4),
each audited; a child that is down fails the operation clearly and a retry works once it is
back; reconciliation of files and index (R5.3), on demand and scheduled. One cluster for the
module; the tests build on each other's messages in file order."""

import os
import pwd
import shutil
import signal
import time
import uuid

import pytest

from harness import wait_until
from scanning import (audit_rows, quarantine_eicar_each, quarantined_file, read_file,
                      scan_cluster, set_setting, stored_row)

PER_CHILD = 3
INDEX_S = 60


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = scan_cluster(module_dir, pg, n_children=2)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def stored(cluster):
    """PER_CHILD EICAR messages quarantined on each child (scanning.quarantine_eicar_each),
    indexed by the parent."""
    return quarantine_eicar_each(cluster, PER_CHILD, "qops", INDEX_S)


def _search_all(cluster, *filters, limit=2):
    """Every page of `quarantine search` with filters: (messages, pages)."""
    pages, after = [], None
    while True:
        args = ["quarantine", "search", "--limit", str(limit), *filters]
        if after:
            args += ["--after", after]
        page = cluster.cli_json(*args)
        pages.append(page["messages"])
        after = page["next"]
        if after is None:
            return [m for p in pages for m in p], pages


def _cli_bytes(cluster, *args):
    """`portcullis ARGS` with stdout as bytes (a download is not text): (rc, stdout, stderr)."""
    import subprocess
    from harness import bin_path
    cp = subprocess.run([bin_path("portcullis"), "-c", cluster.parent.conf_path, *args],
                        capture_output=True, timeout=60)
    return cp.returncode, cp.stdout, cp.stderr.decode("utf-8", "replace")


def _pick(stored, name, n=0):
    return [f for f, v in stored.items() if v["child"] == name][n]


def test_r5_4_search_across_children_paged(cluster, stored):
    """R5.4: `quarantine search` finds the quarantined messages of both children; pages of 2
    are disjoint and together give every one (keyset cursor); each filter — child, recipient,
    subject, rule, verdict, area, time range — narrows correctly (a subject's %, _ and \\ are
    matched as typed); bad input is exit 2."""
    sender = next(iter(stored.values()))["sender"]
    msgs, pages = _search_all(cluster, "--sender", sender)
    ids = [m["file_id"] for m in msgs]
    assert len(ids) == len(set(ids)), "pages overlap"
    assert set(ids) == set(stored) and all(len(p) <= 2 for p in pages), pages
    assert len(pages) >= 3
    assert {m["child"] for m in msgs} == {"child1", "child2"}
    assert all(isinstance(m["id"], int) and m["state"] == "stored" for m in msgs)

    def only(*f):
        return {m["file_id"] for m in _search_all(cluster, "--sender", sender, *f, limit=100)[0]}
    c2 = {f for f, v in stored.items() if v["child"] == "child2"}
    assert only("--child", "child2") == c2
    one = _pick(stored, "child1", 1)
    assert only("--recipient", stored[one]["rcpt"].upper(), "--child", "child1") == {one}
    assert only("--subject", stored[one]["token"].upper()) == {one}
    # R10.3: "contains" runs as a LIKE for the trigram index; the text's own wildcards are
    # literal — "_" is not any character and "%" not any text
    assert only("--subject", stored[one]["token"][:-6].replace("-", "_")) == set()
    assert only("--subject", "%") == set() and only("--subject", "qops%child") == set()
    assert only("--subject", "\\") == set()
    assert only("--rule", "Viruses") == set(stored)
    assert only("--verdict", "av:virus") == set(stored)
    assert only("--verdict", "av:clean") == set()
    assert only("--area", "Default quarantine", "--since", "1h") == set(stored)
    assert only("--until", "2000-01-01") == set()
    assert only("--rule", "No such rule") == set()
    for bad in (["--limit", "0"], ["--after", "x"], ["--bogus", "1"], ["--since", "soon"]):
        rc, _o, err = cluster.cli("quarantine", "search", *bad)
        assert rc == 2 and err.strip(), (bad, rc, err)


def test_r5_4_show_and_download_byte_identical(cluster, stored, tmp_path):
    """R5.4/R7.4: `show` gives the index entry and the message's headers from the child;
    `download -o FILE` gives the file byte for byte as stored on the child (by file id and by
    index id); both are in the audit log with the OS user as actor."""
    fid = _pick(stored, "child2", 0)
    row_id = stored_row(cluster, fid)[0]
    shown = cluster.cli_json("quarantine", "show", fid)
    assert shown["child"] == "child2" and shown["file_id"] == fid and shown["id"] == row_id
    assert stored[fid]["token"] in shown["headers"] and "\nSubject:" in "\n" + shown["headers"]
    text = cluster.cli_ok("quarantine", "show", str(row_id))
    assert fid in text and "Subject:" in text

    on_child = read_file(quarantined_file(cluster, "child2", fid))
    for ref in (fid, str(row_id)):
        out = tmp_path / f"dl-{ref}.eml"
        cluster.cli_ok("quarantine", "download", ref, "-o", str(out))
        assert out.read_bytes() == on_child
    rc, out, _e = _cli_bytes(cluster, "quarantine", "download", fid)   # to stdout
    assert rc == 0 and out == on_child
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert [(a, r) for a, r, _d in audit_rows(cluster, "quarantine show", fid)] == [(me, "ok")] * 2
    assert len(audit_rows(cluster, "quarantine download", fid)) == 3
    rc, _o, err = cluster.cli("quarantine", "show", "0123")
    assert rc == 2 and "index id" in err
    rc, _o, err = cluster.cli("quarantine", "show", "f" * 32)
    assert rc == 1 and "no quarantine message" in err


def test_r5_4_release_delivers_to_original_recipient(cluster, stored):
    """R5.4/R7.4: `release` makes the child re-inject the stored message to its downstream MTA
    with the original envelope: the downstream Maildir gets it for the original recipient,
    body intact; the file is gone from the child and the index says released; audited. A
    second release is refused (exit 1)."""
    fid = _pick(stored, "child2", 1)
    v = stored[fid]
    down = cluster.downstream
    out = cluster.cli_ok("quarantine", "release", fid)
    assert "released" in out
    d = wait_until(lambda: next((x for x in down.delivered() if x.token == v["token"]), None),
                   30, f"released message {v['token']} in the downstream Maildir")
    assert d.body_intact()
    assert v["rcpt"] in (d["Delivered-To"] or ""), d["Delivered-To"]
    assert quarantined_file(cluster, "child2", fid) is None
    assert stored_row(cluster, fid)[1:] == ("removed", "released")
    assert [r for _a, r, _d in audit_rows(cluster, "quarantine release", fid)] == ["ok"]
    rc, _o, err = cluster.cli("quarantine", "release", fid)
    assert rc == 1 and "removed (released)" in err
    rc, _o, err = cluster.cli("archive", "release", fid)
    assert rc == 2


def test_r5_4_delete_removes_file_and_index(cluster, stored):
    """R5.4/R7.4: `delete` removes the file on the child and the index says deleted; audited;
    deleting again is refused (exit 1)."""
    fid = _pick(stored, "child1", 0)
    assert quarantined_file(cluster, "child1", fid)
    out = cluster.cli_ok("quarantine", "delete", str(stored_row(cluster, fid)[0]))
    assert "deleted" in out
    assert quarantined_file(cluster, "child1", fid) is None
    assert stored_row(cluster, fid)[1:] == ("removed", "deleted")
    st = cluster.cli_json("quarantine", "search", "--state", "removed", "--child", "child1")
    assert fid in [m["file_id"] for m in st["messages"]]
    assert [r for _a, r, _d in audit_rows(cluster, "quarantine delete", fid)] == ["ok"]
    rc, _o, err = cluster.cli("quarantine", "delete", fid)
    assert rc == 1 and "removed (deleted)" in err


def test_r7_4_child_down_clear_error_and_retry(cluster, stored):
    """R7.4/R5.4: with child1's manager stopped, an operation on its message fails at once
    (exit 1) saying the child is down and that it can be retried; the failure is audited and
    the file untouched. After the child is back the same operation succeeds."""
    c1 = cluster.children["child1"]
    fid = _pick(stored, "child1", 1)
    c1.stop()
    try:
        cluster.wait_child_state("child1", "down", 30)
        t0 = time.monotonic()
        rc, _o, err = cluster.cli("quarantine", "delete", fid)
        assert rc == 1 and "child child1 is down" in err and "retried" in err, err
        assert time.monotonic() - t0 < 10, "a down child must fail at once, not time out"
        assert [r for _a, r, _d in audit_rows(cluster, "quarantine delete", fid)] == ["failed"]
        assert stored_row(cluster, fid)[1] == "stored"
    finally:
        c1.start()
    cluster.wait_child_state("child1", "up", 30)
    assert quarantined_file(cluster, "child1", fid)
    cluster.cli_ok("quarantine", "delete", fid)
    assert quarantined_file(cluster, "child1", fid) is None
    assert [r for _a, r, _d in audit_rows(cluster, "quarantine delete", fid)] == ["failed", "ok"]
    rows = cluster.pg.query("SELECT state, error FROM commands WHERE kind = 'delete' "
                            "AND args->>'file_id' = %s ORDER BY id", (fid,))
    assert [r[0] for r in rows] == ["failed", "done"] and "down" in rows[0][1]


def test_r7_4_unanswered_command_times_out(cluster, stored):
    """R7.4: a child that takes no action (its manager stopped with SIGSTOP while the parent
    still counts it up) makes the command time out after cluster.command_timeout_s with a
    clear message, exit 1; the row says timeout."""
    set_setting(cluster, "cluster.command_timeout_s", 3)
    c2 = cluster.children["child2"]
    fid = _pick(stored, "child2", 2)
    os.kill(c2.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        rc, _o, err = cluster.cli("quarantine", "show", fid)
        took = time.monotonic() - t0
    finally:
        os.kill(c2.proc.pid, signal.SIGCONT)
    assert rc == 1 and ("did not answer within 3 s" in err or "is down" in err), err
    assert took < 15, took
    set_setting(cluster, "cluster.command_timeout_s", 30)
    cluster.wait_child_state("child2", "up", 30)
    cluster.cli_ok("quarantine", "show", fid)   # and it works again


def test_r5_3_reconcile_reports_and_repairs(cluster, stored):
    """R5.3: a file deleted by hand on child2 and a stray file planted on child1 (a copy of a
    message under a new file id, older than the fresh-file window) are both reported by
    `quarantine reconcile` and the index is repaired: the row of the missing file is marked
    removed, the stray gets a row (sender and recipient from its headers) and is searchable
    and downloadable. A second run finds nothing; `reconcile child2` does one child; an
    unknown child is refused."""
    gone = _pick(stored, "child2", 2)
    os.unlink(quarantined_file(cluster, "child2", gone))
    src = quarantined_file(cluster, "child1", _pick(stored, "child1", 2))
    stray = uuid.uuid4().hex
    dst = os.path.join(os.path.dirname(src), stray + ".eml")
    shutil.copyfile(src, dst)
    old = time.time() - 7200
    os.utime(dst, (old, old))

    res = cluster.cli_json("quarantine", "reconcile")
    diffs = {(d["child"], d["what"], d["file_id"]) for d in res["differences"]}
    assert ("child2", "no_file", gone) in diffs, res
    assert ("child1", "no_row", stray) in diffs, res
    assert res["totals"]["failed"] == 0 and res["totals"]["children"] == 2
    assert len(res["differences"]) == 2, res["differences"]
    assert stored_row(cluster, gone)[1:] == ("removed", "reconcile")
    sender = stored[_pick(stored, "child1", 2)]["sender"]
    found = cluster.cli_json("quarantine", "search", "--child", "child1", "--sender", sender)
    entry = next(m for m in found["messages"] if m["file_id"] == stray)
    assert entry["recipients"] == [stored[_pick(stored, "child1", 2)]["rcpt"]]
    rc, out, _e = _cli_bytes(cluster, "quarantine", "download", stray)
    assert rc == 0 and out == read_file(dst)
    again = cluster.cli_json("quarantine", "reconcile")
    assert again["differences"] == [], again
    text = cluster.cli_ok("quarantine", "reconcile", "child2")
    assert "1 children" in text
    rc, _o, err = cluster.cli("quarantine", "reconcile", "nochild")
    assert rc == 1 and "nochild" in err
    assert cluster.pg.query("SELECT count(*) FROM audit_log WHERE action = "
                            "'quarantine reconcile' AND result = 'ok'")[0][0] >= 5
    ev = cluster.pg.query("SELECT message FROM events WHERE message LIKE 'reconcile child%%'")
    assert len(ev) >= 2, ev


def test_r5_3_reconcile_runs_by_itself(cluster, stored):
    """R5.3: with reconcile.interval_s at its minimum (60 s) the parent reconciles every
    connected child by itself (audit actor 'system') and repairs a file deleted by hand."""
    fid = next(f for f, v in stored.items() if stored_row(cluster, f)[1] == "stored")
    name = stored[fid]["child"]
    os.unlink(quarantined_file(cluster, name, fid))
    set_setting(cluster, "reconcile.interval_s", 60)
    wait_until(lambda: stored_row(cluster, fid)[1:] == ("removed", "reconcile"), 150,
               f"the scheduled reconciliation to mark {fid} removed")
    rows = cluster.pg.query("SELECT action, target FROM audit_log WHERE actor = 'system'")
    assert ("quarantine reconcile", name) in {(a, t) for a, t in rows}, rows
