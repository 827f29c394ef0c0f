"""The quarantine, archive and log routes of the REST API (issue 6 point 1): search (R5.4) and
the log searches (R7.3) give what the CLI gives; show, download, release and delete act on two
real children through the same admin operations as the CLI, audited with the API user as the
actor; a child that is down is a 503 and the retry works once it is back; reconcile (R5.3);
bad query values are a 400 with a message. One cluster for the module; the tests build on each
other's messages in file order."""

import os
import pwd
import time
import urllib.parse
import uuid

import pytest

import signatures
from apiclient import Api, token_for
from harness import wait_until
from scanning import (attachment_message, audit_rows, quarantine_eicar_each, quarantined_file,
                      read_file, scan_cluster, send_direct, set_setting, stored_row,
                      wait_log_records, wait_quarantine_entries)

PER_CHILD = 3
INDEX_S = 60
V1 = "/api/v1"


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = scan_cluster(module_dir, pg, n_children=2)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def stored(cluster):
    """PER_CHILD EICAR messages quarantined on each child (scanning.quarantine_eicar_each),
    indexed by the parent with their tracking records."""
    out = quarantine_eicar_each(cluster, PER_CHILD, "apist", INDEX_S)
    wait_log_records(cluster, [v["msg_id"] for v in out.values()], INDEX_S)
    return out


class _Reply:
    def __init__(self, status, data, headers):
        self.status, self.data, self.headers = status, data, headers   # headers: lower-case

    def json(self):
        assert isinstance(self.data, dict), (self.status, self.data)
        return self.data


class _Client:
    """apiclient.Api with query fields encoded and the reply kept whole (status, data,
    headers), whatever the status."""

    def __init__(self, api):
        self.api = api

    def _call(self, method, path, query=None, body=None):
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return _Reply(*self.api.request(method, path, body))

    def get(self, path, query=None):
        return self._call("GET", path, query)

    def post(self, path, body=None):
        return self._call("POST", path, body=body)

    def delete(self, path):
        return self._call("DELETE", path)


@pytest.fixture(scope="module")
def api(cluster):
    """A client per role: {"viewer": …, "operator": …, "admin": …}."""
    return {role: _Client(Api(cluster.parent, token=token_for(cluster, role)))
            for role in ("viewer", "operator", "admin")}


def _ok(resp):
    assert resp.status == 200, (resp.status, resp.data)
    return resp.json()


def _bad(resp, status=400):
    assert resp.status == status, (resp.status, resp.data)
    err = resp.json().get("error")
    assert isinstance(err, str) and err.strip(), resp.data
    return err


def _pages_api(client, path, key, query, limit=2):
    """Every page of an API search: the pages' lists."""
    pages, after = [], None
    while True:
        q = dict(query, limit=str(limit))
        if after:
            q["after"] = after
        page = _ok(client.get(path, query=q))
        assert set(page) == {key, "next"}, page
        pages.append(page[key])
        after = page["next"]
        if after is None:
            return pages
        assert len(pages) < 100, "pagination does not end"


def _pages_cli(cluster, args, key, limit=2):
    pages, after = [], None
    while True:
        extra = ["--after", after] if after else []
        page = cluster.cli_json(*args, "--limit", str(limit), *extra)
        pages.append(page[key])
        after = page["next"]
        if after is None:
            return pages


def _api_users(cluster, role):
    return {r[0] for r in cluster.pg.query("SELECT name FROM users WHERE role = %s", (role,))}


def _pick(stored, name, n=0):
    return [f for f, v in stored.items() if v["child"] == name][n]


def test_r5_4_search_matches_cli_with_filters_and_pages(cluster, stored, api):
    """R5.4 / issue 6 point 1: GET /stored/quarantine (a viewer may) gives page for page what
    `quarantine search --json` gives — same messages, same cursors — across both children;
    each filter (child, recipient, subject, rule, verdict, area, state, since, until) narrows
    as the CLI's does; the archive is searched by its own kind."""
    sender = next(iter(stored.values()))["sender"]
    v = api["viewer"]
    pages = _pages_api(v, f"{V1}/stored/quarantine", "messages", {"sender": sender})
    assert pages == _pages_cli(cluster, ["quarantine", "search", "--sender", sender], "messages")
    ids = [m["file_id"] for p in pages for m in p]
    assert len(ids) == len(set(ids)) and set(ids) == set(stored), pages
    assert len(pages) >= 3 and all(len(p) <= 2 for p in pages)

    one = _pick(stored, "child1", 1)
    filters = [
        {"child": "child2"},
        {"recipient": stored[one]["rcpt"].upper(), "child": "child1"},
        {"subject": stored[one]["token"].upper()},
        {"rule": "Viruses"},
        {"verdict": "av:virus"},
        {"verdict": "av:clean"},
        {"area": "Default quarantine", "since": "1h"},
        {"until": "2000-01-01"},
        {"state": "stored"},
        {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00+02:00"},
    ]
    for f in filters:
        q = dict(f, sender=sender, limit="100")
        got = _ok(v.get(f"{V1}/stored/quarantine", query=q))
        args = [a for k, val in q.items() for a in (f"--{k}", val)]
        want = cluster.cli_json("quarantine", "search", *args)
        assert got == want, (f, got, want)
    assert {m["file_id"] for m in _ok(v.get(f"{V1}/stored/quarantine", query={
        "sender": sender, "child": "child2"}))["messages"]} == \
        {f for f, x in stored.items() if x["child"] == "child2"}
    arch = _ok(v.get(f"{V1}/stored/archive", query={"sender": sender}))
    assert arch == {"messages": [], "next": None}, arch


def test_issue6_bad_queries_are_400(cluster, stored, api):
    """Issue 6 point 1 (bad input → 400 with a message, nothing changed): bad times, cursors,
    limits out of range, unknown query fields, an unknown store, a malformed reference, bad
    reconcile bodies; an unknown reference is a 404."""
    op = api["operator"]
    base = f"{V1}/stored/quarantine"
    for q in ({"limit": "0"}, {"limit": "10001"}, {"limit": "ten"}, {"limit": "-1"},
              {"after": "x"}, {"after": "12.ab"}, {"since": "soon"}, {"until": "2026-13-45"},
              {"bogus": "1"}, {"sender": ""}, {"category": "all"}):
        err = _bad(op.get(base, query=q))
        assert any(k in err for k in q), (q, err)
    assert "10000" in _bad(op.get(base, query={"limit": "10001"}))
    assert "cursor" in _bad(op.get(base, query={"after": "x"}))
    assert "ISO-8601" in _bad(op.get(base, query={"since": "soon"}))
    assert "quarantine or archive" in _bad(op.get(f"{V1}/stored/junk"))
    assert "quarantine or archive" in _bad(op.get(f"{V1}/stored/junk/1"))
    assert "index id" in _bad(op.get(f"{base}/0123"))
    assert "index id" in _bad(op.delete(f"{base}/not-a-ref"))
    assert "no quarantine message" in _bad(op.get(f"{base}/{'f' * 32}"), 404)
    assert "no quarantine message" in _bad(op.post(f"{base}/{'e' * 32}/release"), 404)
    assert "no archive message" in _bad(op.get(f"{V1}/stored/archive/{_pick(stored, 'child1')}"),
                                        404)
    _bad(op.post(f"{V1}/reconcile", body={"kind": "both"}))
    _bad(op.post(f"{V1}/reconcile", body={"kind": 3}))
    _bad(op.post(f"{V1}/reconcile", body={"children": "child1"}))
    for path, q in ((f"{V1}/logs/tracking", {"action": "x", "subject": "y"}),
                    (f"{V1}/logs/tracking", {"since": "yesterday-ish"}),
                    (f"{V1}/logs/events", {"limit": "100000"}),
                    (f"{V1}/logs/events", {"sender": "a@b"}),
                    (f"{V1}/logs/audit", {"after": "1.2.3"}),
                    (f"{V1}/logs/audit", {"until": "never"})):
        _bad(op.get(path, query=q))
    assert all(stored_row(cluster, f)[1] == "stored" for f in stored), "a bad request changed state"


def test_r5_4_show_gives_headers(cluster, stored, api):
    """R5.4 / issue 6 point 1: GET /stored/quarantine/{ref} (operator) gives the index row and
    the header block read from the child, by file id and by index id; a viewer is refused
    (403); the show is audited with the API user as actor."""
    fid = _pick(stored, "child2", 0)
    row_id = stored_row(cluster, fid)[0]
    for ref in (fid, str(row_id)):
        shown = _ok(api["operator"].get(f"{V1}/stored/quarantine/{ref}"))
        assert shown["child"] == "child2" and shown["file_id"] == fid and shown["id"] == row_id
        assert shown["state"] == "stored" and "headers_error" not in shown
        assert stored[fid]["token"] in shown["headers"]
        assert "\nSubject:" in "\n" + shown["headers"]
        assert stored[fid]["rcpt"] in shown["recipients"]
    assert api["viewer"].get(f"{V1}/stored/quarantine/{fid}").status == 403
    actors = {a for a, r, _d in audit_rows(cluster, "quarantine show", fid) if r == "ok"}
    assert actors and actors <= _api_users(cluster, "operator"), actors


def test_r5_4_raw_download_byte_identical(cluster, stored, api):
    """R5.4 / issue 6 point 1: GET /stored/quarantine/{ref}/raw gives the file byte for byte
    as stored on the child, as message/rfc822 named <file_id>.eml, by file id and index id;
    audited as a download by the API user."""
    fid = _pick(stored, "child1", 2)
    on_child = read_file(quarantined_file(cluster, "child1", fid))
    for ref in (fid, str(stored_row(cluster, fid)[0])):
        r = api["operator"].get(f"{V1}/stored/quarantine/{ref}/raw")
        assert r.status == 200, (r.status, r.data[:300])
        assert r.data == on_child
        assert r.headers.get("content-type", "").startswith("message/rfc822"), r.headers
        assert f"{fid}.eml" in r.headers.get("content-disposition", ""), r.headers
    rows = audit_rows(cluster, "quarantine download", fid)
    assert len(rows) == 2 and all(r == "ok" for _a, r, _d in rows), rows
    assert {a for a, _r, _d in rows} <= _api_users(cluster, "operator")


def test_issue6_raw_download_capped_by_message_size(cluster, stored, api):
    """Issue 6 point 1 (R5.4): a raw download is held in memory, so it is capped at
    smtp.max_message_size plus 1 MiB: with the setting at its minimum a 1.5 MB quarantined
    message is a 413 that points to the CLI; restored, the same download works byte for byte."""
    tok = f"apist-big-{uuid.uuid4().hex[:6]}"
    msg = attachment_message(tok, "big@child2.test", [("eicar.com", signatures.EICAR),
                                                      ("pad.bin", os.urandom(1_100_000))])
    rep = send_direct(cluster.children["child2"].smtp_port, msg, rcpts=("big@child2.test",))
    assert rep.cls == "quarantined", rep
    wait_quarantine_entries(cluster, [rep.file_id], INDEX_S)
    url = f"{V1}/stored/quarantine/{rep.file_id}/raw"
    set_setting(cluster, "smtp.max_message_size", 1024)
    try:
        err = _bad(api["operator"].get(url), 413)
        assert "portcullis quarantine download" in err, err
    finally:
        set_setting(cluster, "smtp.max_message_size", 52428800)
    r = api["operator"].get(url)
    assert r.status == 200 and r.data == read_file(quarantined_file(cluster, "child2",
                                                                  rep.file_id))


def test_r5_4_release_delivers_and_is_audited(cluster, stored, api):
    """R5.4 / issue 6 point 1: POST /stored/quarantine/{ref}/release makes the child deliver
    the message to its downstream MTA with the original envelope (the downstream Maildir gets
    it, body intact); the row becomes removed (released); the audit log has the release with
    the API user as actor; a second release is a 409; the archive has no release route."""
    fid = _pick(stored, "child2", 1)
    v = stored[fid]
    res = _ok(api["operator"].post(f"{V1}/stored/quarantine/{fid}/release"))
    assert set(res) == {"message"} and "released" in res["message"], res
    d = wait_until(lambda: next((x for x in cluster.downstream.delivered()
                                 if x.token == v["token"]), None),
                   30, f"released message {v['token']} in the downstream Maildir")
    assert d.body_intact()
    assert v["rcpt"] in (d["Delivered-To"] or ""), d["Delivered-To"]
    assert quarantined_file(cluster, "child2", fid) is None
    assert stored_row(cluster, fid)[1:] == ("removed", "released")
    rows = audit_rows(cluster, "quarantine release", fid)
    assert [r for _a, r, _d in rows] == ["ok"], rows
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert rows[0][0] != me and rows[0][0] in _api_users(cluster, "operator"), rows
    assert "removed (released)" in _bad(api["operator"].post(
        f"{V1}/stored/quarantine/{fid}/release"), 409)
    shown = _ok(api["operator"].get(f"{V1}/stored/quarantine/{fid}"))
    assert shown["state"] == "removed" and "headers" not in shown
    gone = _ok(api["viewer"].get(f"{V1}/stored/quarantine",
                                 query={"state": "removed", "child": "child2"}))
    assert fid in [m["file_id"] for m in gone["messages"]]
    assert api["viewer"].post(f"{V1}/stored/quarantine/{fid}/release").status == 403
    assert api["operator"].post(f"{V1}/stored/archive/{fid}/release").status in (404, 405)


def test_r5_4_delete_removes_file_and_index(cluster, stored, api):
    """R5.4 / issue 6 point 1: DELETE /stored/quarantine/{ref} removes the file on the child;
    the row says removed (deleted); audited with the API user; deleting again is a 409."""
    fid = _pick(stored, "child1", 0)
    assert quarantined_file(cluster, "child1", fid)
    res = _ok(api["operator"].delete(f"{V1}/stored/quarantine/{stored_row(cluster, fid)[0]}"))
    assert "deleted" in res["message"], res
    assert quarantined_file(cluster, "child1", fid) is None
    assert stored_row(cluster, fid)[1:] == ("removed", "deleted")
    rows = audit_rows(cluster, "quarantine delete", fid)
    assert [r for _a, r, _d in rows] == ["ok"] and rows[0][0] in _api_users(cluster, "operator")
    assert "removed (deleted)" in _bad(api["operator"].delete(f"{V1}/stored/quarantine/{fid}"),
                                       409)


def test_r5_4_child_down_is_503_and_retry_works(cluster, stored, api):
    """R5.4 / R7.4 / issue 6 point 1: with child1's manager stopped, a delete of its message
    is a 503 at once saying the child is down (with Retry-After), a show gives the row with
    "headers_error", the file is untouched; after the child is back the same request works."""
    c1 = cluster.children["child1"]
    fid = _pick(stored, "child1", 1)
    op = api["operator"]
    c1.stop()
    try:
        cluster.wait_child_state("child1", "down", 30)
        t0 = time.monotonic()
        r = op.delete(f"{V1}/stored/quarantine/{fid}")
        assert time.monotonic() - t0 < 10, "a down child must fail at once, not time out"
        err = _bad(r, 503)
        assert "child child1 is down" in err and "retried" in err, err
        assert r.headers.get("retry-after"), r.headers
        assert _bad(op.get(f"{V1}/stored/quarantine/{fid}/raw"), 503)
        shown = _ok(op.get(f"{V1}/stored/quarantine/{fid}"))
        assert "is down" in shown["headers_error"] and "headers" not in shown, shown
        assert stored_row(cluster, fid)[1] == "stored"
    finally:
        c1.start()
    cluster.wait_child_state("child1", "up", 30)
    assert quarantined_file(cluster, "child1", fid)
    _ok(op.delete(f"{V1}/stored/quarantine/{fid}"))
    assert quarantined_file(cluster, "child1", fid) is None
    assert [r for _a, r, _d in audit_rows(cluster, "quarantine delete", fid)] == ["failed", "ok"]


def test_r5_3_reconcile_answers_differences(cluster, stored, api):
    """R5.3 / issue 6 point 1: POST /reconcile finds a file deleted by hand on child2, marks
    its row removed (reconcile) and answers the totals and the list of differences; a second
    run finds nothing; {child, kind} narrows it to one child; an unknown child is a 404; a
    viewer is refused."""
    gone = _pick(stored, "child2", 2)
    os.unlink(quarantined_file(cluster, "child2", gone))
    res = _ok(api["operator"].post(f"{V1}/reconcile", body={}))
    diffs = {(d["child"], d["kind"], d["what"], d["file_id"]) for d in res["differences"]}
    assert ("child2", "quarantine", "no_file", gone) in diffs, res
    assert res["totals"]["children"] == 2 and res["totals"]["failed"] == 0, res
    assert res["totals"]["no_file"] >= 1 and res["error"] is None and not res["truncated"]
    assert stored_row(cluster, gone)[1:] == ("removed", "reconcile")
    again = _ok(api["operator"].post(f"{V1}/reconcile", body={"kind": "quarantine"}))
    assert again["differences"] == [], again
    one = _ok(api["operator"].post(f"{V1}/reconcile",
                                   body={"child": "child2", "kind": "quarantine"}))
    assert one["totals"]["children"] == 1 and one["differences"] == []
    assert "nochild" in _bad(api["operator"].post(f"{V1}/reconcile",
                                                  body={"child": "nochild"}), 404)
    assert api["viewer"].post(f"{V1}/reconcile", body={}).status == 403


def test_r7_3_tracking_events_audit_searches(cluster, stored, api):
    """R7.3 / issue 6 point 1: GET /logs/tracking gives what `log query --json` gives (page
    for page, filters sender/verdict/action/child); GET /logs/events gives the cluster events
    (category all by default, or one category) like `log query --category`; GET /logs/audit
    (operator) lists the audit log newest first, paged, filtered by actor and action — the
    release done through the API is there with the API user as actor."""
    sender = next(iter(stored.values()))["sender"]
    v = api["viewer"]
    pages = _pages_api(v, f"{V1}/logs/tracking", "records", {"sender": sender})
    assert pages == _pages_cli(cluster, ["log", "query", "--sender", sender], "records")
    recs = [r for p in pages for r in p]
    assert {r["msg_id"] for r in recs} == {x["msg_id"] for x in stored.values()}
    assert all(r["action"] == "quarantined" for r in recs)
    for q in ({"verdict": "av:virus"}, {"action": "delivered"}, {"child": "child1"},
              {"since": "1h", "recipient": stored[_pick(stored, "child2")]["rcpt"]}):
        q = dict(q, sender=sender, limit="1000")
        args = [a for k, val in q.items() for a in (f"--{k}", val)]
        assert _ok(v.get(f"{V1}/logs/tracking", query=q)) == \
            cluster.cli_json("log", "query", *args), q
    assert _ok(v.get(f"{V1}/logs/tracking", query={"sender": sender, "until": "2000-01-01"})) \
        == {"records": [], "next": None}

    ev = _ok(v.get(f"{V1}/logs/events", query={"limit": "1000"}))
    assert ev == cluster.cli_json("log", "query", "--category", "all", "--limit", "1000")
    assert any(e["message"].startswith("reconcile child") for e in ev["events"]), ev
    cats = {e["category"] for e in ev["events"]}
    cat = sorted(cats)[0]
    one = _ok(v.get(f"{V1}/logs/events", query={"category": cat, "limit": "1000"}))
    assert one["events"] and {e["category"] for e in one["events"]} == {cat}

    released = _pick(stored, "child2", 1)
    actor = audit_rows(cluster, "quarantine release", released)[0][0]
    assert api["viewer"].get(f"{V1}/logs/audit").status == 403
    rows = _ok(api["operator"].get(f"{V1}/logs/audit",
                                   query={"actor": actor, "action": "quarantine release"}))
    assert [(e["actor"], e["result"]) for e in rows["entries"]] == [(actor, "ok")], rows
    assert released in rows["entries"][0]["target"]
    audit_pages = _pages_api(api["operator"], f"{V1}/logs/audit", "entries", {"actor": actor},
                             limit=3)
    entries = [e for p in audit_pages for e in p]
    want = cluster.pg.query("SELECT id FROM audit_log WHERE actor = %s ORDER BY at DESC, id DESC",
                            (actor,))
    assert [e["id"] for e in entries] == [w[0] for w in want] and len(audit_pages) >= 2
    assert {"show", "download", "release", "delete"} <= \
        {e["action"].split(" ", 1)[1] for e in entries if e["action"].startswith("quarantine ")}
    assert _ok(api["operator"].get(f"{V1}/logs/audit", query={
        "actor": actor, "since": "2100-01-01"})) == {"entries": [], "next": None}
