"""Message tracking reports from the children's spools to PostgreSQL (R7.3): one message_log row
per transaction the child logged, exactly once, also when the parent or the database is away
while mail flows (the records wait in the child's spool and arrive when it is back). One
cluster for the module; the outage tests run after the plain one."""

import json
import re
import time
import uuid

import pytest

from harness import Cluster, make_message, new_token, wait_until

# The scan service's one line per transaction: "id=<16 hex> from=<…> … result=<outcome>"
RESULT_LINE = re.compile(r"\bid=([0-9a-f]{16}) from=<([^>]*)>.*\bresult=(\w+)")
PARENT_OUTAGE_S = 60
DB_OUTAGE_S = 20


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = Cluster(module_dir, pg, n_children=1).start()
    yield c
    c.stop()


def _send(cluster, n, sender, prefix):
    """Sends n messages from sender to child1.test through the upstream Postfix and waits until
    all are delivered downstream."""
    up, down = cluster.upstream, cluster.downstream
    before = down.delivered_count()
    items = []
    for i in range(n):
        tok = new_token(f"{prefix}-{i:03d}")
        rcpt = f"user{i}@child1.test"
        items.append((make_message(tok, sender, rcpt), sender, [rcpt]))
    ids = up.send_many(items)
    assert len(ids) == n and all(ids), "upstream did not queue every message"
    down.wait_delivered(before + n, 180)


def _logged_ids(child, sender, mark):
    """msg ids of the child's result= lines for sender since mark: {id: result}."""
    out = {}
    for m in RESULT_LINE.finditer(child.proc.log_since(mark)):
        if m.group(2) == sender:
            assert m.group(1) not in out, f"id {m.group(1)} logged twice"
            out[m.group(1)] = m.group(3)
    return out


def _log_query(cluster, *args):
    out = cluster.cli_ok("log", "query", "--json", *args)
    return json.loads(out)


def _rows_for(cluster, sender):
    """Every message_log record for sender, read page by page through the CLI (keyset cursor)."""
    rows, after = [], None
    while True:
        args = ["--sender", sender, "--since", "2h", "--limit", "40"]
        if after:
            args += ["--after", after]
        page = _log_query(cluster, *args)
        rows += page["records"]
        after = page["next"]
        if after is None:
            return rows


def _wait_rows(cluster, sender, expected_ids, timeout):
    """Polls until message_log holds a row for every expected id; returns the rows."""
    def complete():
        rows = _rows_for(cluster, sender)
        return rows if {r["msg_id"] for r in rows} >= set(expected_ids) else None
    return wait_until(complete, timeout,
                      f"{len(expected_ids)} tracking records from {sender} in message_log")


def _assert_exactly_once(cluster, sender, logged):
    """message_log holds exactly one row per logged transaction of sender, and nothing else."""
    rows = cluster.pg.query("SELECT msg_id, count(*) FROM message_log WHERE sender = %s "
                            "GROUP BY msg_id", (sender,))
    counts = {r[0]: r[1] for r in rows}
    dup = {k: v for k, v in counts.items() if v != 1}
    assert not dup, f"msg ids stored more than once: {dup}"
    assert set(counts) == set(logged), (
        f"missing={sorted(set(logged) - set(counts))[:5]} "
        f"unexpected={sorted(set(counts) - set(logged))[:5]}")


def test_r7_3_every_message_tracked_once(cluster):
    """R7.3: 50 messages through the real chain (upstream Postfix -> child -> downstream) give
    exactly one message_log row each: the msg ids in message_log are exactly those of the
    child's result= log lines, none twice; `log query --json` returns them with the record's
    fields, filters by sender, recipient and action, pages with --after, and refuses bad
    arguments with exit 2."""
    c1 = cluster.children["child1"]
    sender = f"track-{uuid.uuid4().hex[:8]}@origin.test"
    mark = c1.proc.log_mark()
    t0 = time.monotonic()
    _send(cluster, 50, sender, "track")
    logged = wait_until(lambda: (lambda d: d if len(d) >= 50 else None)(
        _logged_ids(c1, sender, mark)), 30, "50 result= lines in child1's log")
    rows = _wait_rows(cluster, sender, logged, 30)
    print(f"R7.3: 50 messages sent, delivered and tracked in {time.monotonic() - t0:.1f}s")
    _assert_exactly_once(cluster, sender, logged)

    r = rows[0]
    for key in ("child", "msg_id", "message_id", "queue_id", "sender", "recipients",
                "client_addr", "client_name", "size", "verdicts", "rule", "action",
                "received_at", "subject", "reply", "quarantine_area", "archived_to",
                "ms_receive", "ms_scan", "ms_deliver"):
        assert key in r, f"log query record lacks {key!r}: {r}"
    assert r["child"] == "child1" and r["sender"] == sender
    assert all(x["action"] == "delivered" for x in rows), {x["action"] for x in rows}
    assert rows == sorted(rows, key=lambda x: x["received_at"], reverse=True)

    # filters
    one = [x for x in rows if x["recipients"]]
    if one:
        rcpt = one[0]["recipients"][0]
        got = _log_query(cluster, "--recipient", rcpt.upper(), "--sender", sender)["records"]
        assert got and all(rcpt in x["recipients"] for x in got)
    assert _log_query(cluster, "--sender", sender, "--action", "quarantined")["records"] == []
    assert len(_log_query(cluster, "--sender", sender, "--child", "child1",
                          "--limit", "100")["records"]) == 50
    assert _log_query(cluster, "--sender", sender, "--until", "2000-01-01")["records"] == []

    # usage errors
    for bad in (["--limit", "0"], ["--since", "yesterday-ish"], ["--after", "nope"],
                ["--bogus", "1"], ["--sender"]):
        rc, _out, err = cluster.cli("log", "query", *bad)
        assert rc == 2, (bad, rc, err)
        assert err.strip(), bad
    rc, out, _err = cluster.cli("quarantine", "list", "--json")
    assert rc == 0 and json.loads(out) == {"messages": [], "next": None}
    rc, out, _err = cluster.cli("log", "query", "--sender", sender, "--limit", "3")
    # the table: a header, one row per record (each names the child in its own column), and
    # the cursor line; recipients like user@child1.test must not be counted as rows
    rows = [ln for ln in out.splitlines() if re.match(r"^\d{4}-\d\d-\d\dT\S+\s+child1\s", ln)]
    assert rc == 0 and len(rows) == 3 and "more: --after " in out, out


def test_quarantine_list_pages_and_filters(cluster):
    """R7.3 (stored-message index): `quarantine list --json` returns the index rows of kind
    quarantine only, newest first, filtered by area, paged by --after; `archive list` the
    archive ones."""
    epoch = "ab" * 16
    for i in range(5):
        kind = "archive" if i == 4 else "quarantine"
        area = "Virus area" if i % 2 == 0 else "Spam area"
        cluster.pg.query(
            "INSERT INTO stored_messages (child_id, child, area, kind, file_id, bucket, size, "
            "received_at, sender, recipients, subject, verdicts, rule, msg_id, spool_epoch, seq) "
            "SELECT id, name, %s, %s, %s, '2026112319', 100, now() - %s * interval '1 minute', "
            "'q@origin.test', ARRAY['r@child1.test'], 'subj', "
            "'[{\"engine\":\"av\",\"result\":\"virus\",\"detail\":\"Eicar\"}]', "
            "'virus rule', %s, %s, %s FROM children WHERE name = 'child1'",
            (area, kind, f"file{i}", i, f"{i:016x}", epoch, 1000 + i))
    out = json.loads(cluster.cli_ok("quarantine", "list", "--json"))
    assert [m["file_id"] for m in out["messages"]] == ["file0", "file1", "file2", "file3"]
    m = out["messages"][0]
    for key in ("child", "area", "kind", "file_id", "bucket", "size", "received_at", "sender",
                "recipients", "subject", "verdicts", "rule", "msg_id", "state"):
        assert key in m, key
    assert m["state"] == "stored" and m["kind"] == "quarantine" and m["child"] == "child1"
    virus = json.loads(cluster.cli_ok("quarantine", "list", "--json", "--area", "Virus area"))
    assert [x["file_id"] for x in virus["messages"]] == ["file0", "file2"]
    p1 = json.loads(cluster.cli_ok("quarantine", "list", "--json", "--limit", "3"))
    p2 = json.loads(cluster.cli_ok("quarantine", "list", "--json", "--limit", "3",
                                   "--after", p1["next"]))
    assert [x["file_id"] for x in p1["messages"] + p2["messages"]] == \
        ["file0", "file1", "file2", "file3"] and p2["next"] is None
    arch = json.loads(cluster.cli_ok("archive", "list", "--json"))
    assert [x["file_id"] for x in arch["messages"]] == ["file4"]
    rc, _out, _err = cluster.cli("quarantine", "list", "--verdict", "virus")
    assert rc == 2


def _outage(cluster, stop, start, outage_s, n, prefix):
    """Stops something (stop()), sends n messages (all delivered meanwhile: mail does not need
    the parent), keeps it stopped for outage_s, starts it again and waits until every tracking
    record arrived; checks exactly-once against the child's log."""
    c1 = cluster.children["child1"]
    sender = f"{prefix}-{uuid.uuid4().hex[:8]}@origin.test"
    mark = c1.proc.log_mark()
    t0 = time.monotonic()
    stop()
    try:
        _send(cluster, n, sender, prefix)
        logged = wait_until(lambda: (lambda d: d if len(d) >= n else None)(
            _logged_ids(c1, sender, mark)), 30, f"{n} result= lines in child1's log")
        assert set(logged.values()) == {"relayed"}, set(logged.values())
        delivered_s = time.monotonic() - t0
        remaining = outage_s - (time.monotonic() - t0)
        if remaining > 0:
            time.sleep(remaining)   # the outage itself: a timed wait by design
    finally:
        start()
    t1 = time.monotonic()
    _wait_rows(cluster, sender, logged, 120)
    caught_up = time.monotonic() - t1
    print(f"R7.3 {prefix}: {n} messages delivered {delivered_s:.1f}s into a {outage_s}s outage; "
          f"all tracked {caught_up:.1f}s after the restart")
    _assert_exactly_once(cluster, sender, logged)


def test_r7_3_parent_down_nothing_lost(cluster):
    """R7.3: with the parent stopped for 60 s while 100 messages flow (all delivered meanwhile),
    every tracking record arrives exactly once after the parent returns: message_log has one row
    per msg id the child logged, and no msg id twice."""
    _outage(cluster, cluster.parent.stop, cluster.parent.start, PARENT_OUTAGE_S, 100, "pdown")


def test_r7_3_database_down_nothing_lost(cluster):
    """R7.3: the same with PostgreSQL stopped for 20 s instead (the parent up, acknowledging
    nothing it could not commit): 50 messages, every record exactly once after it returns."""
    pg = cluster.pg
    _outage(cluster, pg.stop, lambda: pg.start(reset=False), DB_OUTAGE_S, 50, "dbdown")
