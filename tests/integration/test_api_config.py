"""The children and configuration routes of the REST API (issue 6 point 1): settings, the MTA
retry timetable, policy rules, areas, anti-spam rules, web reputation, updates, notifications
and the children (enrolment, approval, removal, commands) — each through the same parent/admin
operation as the CLI, its effect checked through the CLI, the database or the children; every
change audited with the API user; every bad body (invalid JSON, wrong types, out-of-range or
unknown values, unknown or missing fields) a 400 with a message and nothing changed. One
cluster with two children for the module; the tests build on each other in file order."""

import os
from urllib.parse import quote, urlencode

import pytest

import signatures
from apiclient import Api, token_for
from cluster import Child
from harness import Cluster, wait_until

V1 = "/api/v1"
PUSH_S = 15          # a configuration version reaches both children within this
CHILD_UP_S = 30


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = Cluster(module_dir, pg, n_children=2).start()
    yield c
    c.stop()


class Resp:
    def __init__(self, status, body):
        self.status, self.body = status, body

    def json(self):
        assert isinstance(self.body, (dict, list)), f"not a JSON reply: {self.body!r}"
        return self.body


class Client:
    """apiclient.Api with a verb per method, path segments quoted and a query dict."""

    def __init__(self, api):
        self.api = api

    def call(self, method, path, body=None, query=None, raw_body=None):
        path = "/".join(quote(seg, safe="") for seg in path.split("/"))
        if query:
            path += "?" + urlencode(query)
        headers = {"Content-Type": "application/json"} if raw_body is not None else None
        status, out, _ = self.api.request(method, path, body, headers=headers,
                                          raw_body=raw_body)
        return Resp(status, out)

    def get(self, path, query=None):
        return self.call("GET", path, query=query)

    def post(self, path, body=None):
        return self.call("POST", path, body)

    def put(self, path, body=None):
        return self.call("PUT", path, body)

    def delete(self, path, body=None):
        return self.call("DELETE", path, body)


@pytest.fixture(scope="module")
def api(cluster):
    """A client per role: {"viewer": Client, "operator": Client, "admin": Client}."""
    return {role: Client(Api(cluster.parent, token=token_for(cluster, role)))
            for role in ("viewer", "operator", "admin")}


# -- helpers ------------------------------------------------------------------------------------

def _ok(resp):
    assert resp.status == 200, (resp.status, str(resp.body)[:500])
    return resp.json()


def _bad(resp, status=400):
    assert resp.status == status, (resp.status, str(resp.body)[:500])
    err = resp.json().get("error")
    assert isinstance(err, str) and err.strip(), resp.body
    return err


def _version(cluster):
    return cluster.status()["config_version"]


def _audit(cluster, action, target, actor=None):
    """The audit rows for action on target (by the API user of actor's role, or any):
    [(actor, result, detail)]."""
    rows = cluster.pg.query("SELECT actor, result, detail FROM audit_log WHERE action = %s AND "
                            "target = %s ORDER BY id", (action, target)) or []
    return [r for r in rows if actor is None or r[0] == f"{actor}-user"]


def _refused_unchanged(cluster, send, snapshot, status=400):
    """send() (the request, made here after the "before" snapshot) is a refusal with a
    message, and snapshot() (rows) and the configuration version are what they were before."""
    v0, rows0 = _version(cluster), snapshot()
    err = _bad(send(), status)
    assert _version(cluster) == v0
    assert snapshot() == rows0
    return err


def _bad_bodies(cluster, api, method, path, bodies, snapshot):
    """Invalid JSON, and each body of bodies (→ its expected words in the message): 400,
    nothing changed."""
    v0, rows0 = _version(cluster), snapshot()
    for raw in (b"{not json", b"[1, 2]", b'"just a string"'):
        resp = api["admin"].call(method, path, raw_body=raw)
        assert resp.status == 400 and resp.json().get("error"), (raw, resp.status, resp.body)
    call = getattr(api["admin"], method.lower())
    for body, words in bodies:
        err = _bad(call(path, body=body))
        for w in words:
            assert w in err, (body, err)
    assert _version(cluster) == v0, "a refused body made a configuration version"
    assert snapshot() == rows0, "a refused body changed the stored state"


# -- settings (R6.1, R6.2) ------------------------------------------------------------------------

def test_settings_read(cluster, api):
    """issue 6 point 1 (R6.1): GET /settings gives every setting with value, default, range,
    unit and description — the same as `portcullis settings get --json`; GET /settings/{key}
    one of them; an unknown key is a 404."""
    got = _ok(api["viewer"].get(f"{V1}/settings"))
    assert got == cluster.cli_json("settings", "get")
    one = _ok(api["viewer"].get(f"{V1}/settings/smart_scan.query_timeout_ms"))
    s = one["setting"]
    assert s["key"] == "smart_scan.query_timeout_ms" and s["value"] == 1500
    assert s["min"] == 1 and s["max"] == 60000 and s["description"]
    assert one["config_version"] == _version(cluster)
    assert "unknown setting" in _bad(api["viewer"].get(f"{V1}/settings/no.such"), 404)


def test_settings_change_reaches_both_children(cluster, api):
    """issue 6 point 1 (R6.2): PUT /settings/{key} {value: 2500} stores the value, answers the
    new configuration version, both children run it, the CLI shows it, and the change is
    audited as "settings set" by the API user; a string and a bool value are taken too."""
    v0 = _version(cluster)
    got = _ok(api["admin"].put(f"{V1}/settings/smart_scan.query_timeout_ms",
                               body={"value": 2500}))
    assert got["key"] == "smart_scan.query_timeout_ms" and got["value"] == 2500
    assert got["config_version"] > v0
    cluster.wait_children_current(got["config_version"], PUSH_S)
    assert "2500" in cluster.cli_ok("settings", "get", "smart_scan.query_timeout_ms")
    rows = _audit(cluster, "settings set", "smart_scan.query_timeout_ms", "admin")
    assert rows and rows[-1][1] == "ok" and "2500" in rows[-1][2], rows

    got = _ok(api["admin"].put(f"{V1}/settings/smart_scan.query_timeout_ms",
                               body={"value": "1500"}))
    assert got["value"] == 1500
    got = _ok(api["admin"].put(f"{V1}/settings/spam.enabled", body={"value": False}))
    assert got["value"] is False
    got = _ok(api["admin"].put(f"{V1}/settings/spam.enabled", body={"value": True}))
    assert got["value"] is True
    cluster.wait_children_current(got["config_version"], PUSH_S)


def test_settings_refusals_change_nothing(cluster, api):
    """issue 6 point 4 (R6.1): an out-of-range value (60001 for 1..60000) is a 400 naming the
    setting and its range; a wrong type, a fraction for a whole number, a missing or an unknown
    field and invalid JSON are 400s; an unknown setting a 404 — and the value and the
    configuration version stay as they were."""
    path = f"{V1}/settings/smart_scan.query_timeout_ms"

    def value():
        return cluster.cli_json("settings", "get", "smart_scan.query_timeout_ms")["settings"]

    err = _refused_unchanged(cluster, lambda: api["admin"].put(path, body={"value": 60001}), value)
    assert "smart_scan.query_timeout_ms" in err and "60000" in err, err
    _bad_bodies(cluster, api, "PUT", path, [
        ({"value": [1]}, ["value"]),
        ({"value": None}, ["value"]),
        ({"value": {"x": 1}}, ["value"]),
        ({"value": 2.5}, []),
        ({"value": "soon"}, []),
        ({}, ["value"]),
        ({"value": 2000, "extra": 1}, ["extra"]),
    ], value)
    _refused_unchanged(cluster, lambda: api["admin"].put(f"{V1}/settings/no.such", body={"value": 1}),
                       value, status=404)


# -- the MTA timetable (R4.3) -------------------------------------------------------------------

def test_mta_timetable(cluster, api):
    """issue 6 point 2 (R4.3): GET /mta is the retry timetable `portcullis mta timetable --json`
    prints, for the default or a given failure time and first queue run; malformed query values
    are 400s."""
    assert _ok(api["viewer"].get(f"{V1}/mta")) == cluster.cli_json("mta", "timetable")
    got = _ok(api["viewer"].get(f"{V1}/mta", query={"failure_at": "22:40",
                                                     "first_run_after": "1m"}))
    assert got == cluster.cli_json("mta", "timetable", "--failure-at", "22:40",
                            "--first-run-after", "1m")
    assert got["failure_at_s"] == 22 * 3600 + 40 * 60 and got["first_queue_run_after_s"] == 60
    assert got["retries"] and got["retries"][-1]["bounce_if_failed"] is True
    assert got["settings"]["queue_run_delay"] == 900
    assert "failure_at" in _bad(api["viewer"].get(f"{V1}/mta", query={"failure_at": "25:00"}))
    _bad(api["viewer"].get(f"{V1}/mta", query={"first_run_after": "soon"}))
    _bad(api["viewer"].get(f"{V1}/mta", query={"first_run_after": "2h"}))


# -- policy rules (R5.1) --------------------------------------------------------------------------

def _rules(cluster):
    return cluster.cli_json("policy", "list")["rules"]


def _rule(cluster, name):
    return next((r for r in _rules(cluster) if r["name"] == name), None)


def test_policy_rule_lifecycle(cluster, api):
    """issue 6 point 1 (R5.1): POST /policy/rules adds a rule (quarantine without an area goes
    to the default quarantine) that `portcullis policy list --json` shows and both children
    run; PUT moves and disables it; DELETE removes it; each answers its configuration version
    and is audited."""
    assert _ok(api["viewer"].get(f"{V1}/policy/rules")) == cluster.cli_json("policy", "list")
    got = _ok(api["admin"].post(f"{V1}/policy/rules", body={
        "name": "API exe", "scope": "inbound", "domains": ["child1.test"], "match": "any",
        "conditions": [{"kind": "attachment_extension", "value": "exe,scr"},
                       {"kind": "sender", "value": "@bad\\.test$", "negate": True}],
        "actions": [{"kind": "quarantine"}, {"kind": "tag_subject", "arg": "[exe]"}]}))
    assert got["changed"] is True
    cluster.wait_children_current(got["config_version"], PUSH_S)
    r = _rule(cluster, "API exe")
    assert r is not None and r["enabled"] is True and r["scope"] == "inbound"
    assert r["domains"] == ["child1.test"] and r["match"] == "any"
    assert r["conditions"][1] == {"kind": "sender", "value": "@bad\\.test$", "negate": True}
    assert r["actions"][0] == {"kind": "quarantine", "arg": "Default quarantine"}
    assert _audit(cluster, "policy add", "API exe", "admin")[-1][1] == "ok"

    _ok(api["admin"].post(f"{V1}/policy/rules", body={
        "name": "API tag", "enabled": False, "actions": [{"kind": "deliver"}]}))
    assert [x["name"] for x in _rules(cluster)][-2:] == ["API exe", "API tag"]
    got = _ok(api["admin"].put(f"{V1}/policy/rules/API tag", body={"position": 1,
                                                                   "enabled": True}))
    assert got["config_version"] == _version(cluster)
    assert _rules(cluster)[0]["name"] == "API tag" and _rules(cluster)[0]["enabled"] is True
    _ok(api["admin"].put(f"{V1}/policy/rules/API exe", body={"enabled": False}))
    assert _rule(cluster, "API exe")["enabled"] is False
    assert _audit(cluster, "policy change", "API exe", "admin")[-1][1] == "ok"

    got = _ok(api["admin"].delete(f"{V1}/policy/rules/API tag"))
    cluster.wait_children_current(got["config_version"], PUSH_S)
    assert _rule(cluster, "API tag") is None
    assert "no rule" in _bad(api["admin"].delete(f"{V1}/policy/rules/API tag"), 404)


def test_policy_bad_bodies(cluster, api):
    """issue 6 point 4 (R5.1): a rule the children's compiler refuses (an unknown condition, a
    broken regex, no action), wrong types, unknown fields at any depth and missing fields are
    400s with a message; the rules and the configuration version stay as they were; a
    duplicate name is a 409."""
    def rules():
        return _rules(cluster)

    act = [{"kind": "deliver"}]
    _bad_bodies(cluster, api, "POST", f"{V1}/policy/rules", [
        ({"name": "x", "conditions": [{"kind": "no_such_condition"}], "actions": act}, []),
        ({"name": "x", "conditions": [{"kind": "body_regex", "value": "(free"}],
          "actions": act}, []),
        ({"name": "x", "actions": []}, ["action"]),
        ({"name": "x"}, ["actions"]),
        ({"actions": act}, ["name"]),
        ({"name": 7, "actions": act}, ["name"]),
        ({"name": "x", "actions": act, "position": "first"}, ["position"]),
        ({"name": "x", "actions": act, "position": 0}, ["position"]),
        ({"name": "x", "actions": act, "enabled": "yes"}, ["enabled"]),
        ({"name": "x", "actions": act, "domains": "a.test"}, ["domains"]),
        ({"name": "x", "actions": act, "domains": [1]}, ["domains"]),
        ({"name": "x", "actions": act, "scope": "sideways"}, []),
        ({"name": "x", "actions": "deliver"}, ["actions"]),
        ({"name": "x", "actions": [{"kind": "deliver", "why": 1}]}, ["why"]),
        ({"name": "x", "actions": [{"arg": "y"}]}, ["kind"]),
        ({"name": "x", "actions": act, "conditions": [{"kind": "sender", "negate": 1}]},
         ["negate"]),
        ({"name": "x", "actions": act, "conditions": ["sender"]}, ["conditions[0]"]),
        ({"name": "x", "actions": act, "colour": "red"}, ["colour"]),
        ({"name": "x", "actions": [{"kind": "quarantine", "arg": "No such area"}]}, []),
    ], rules)
    _ok(api["admin"].post(f"{V1}/policy/rules", body={"name": "API dup", "actions": act}))
    _refused_unchanged(cluster, lambda: api["admin"].post(f"{V1}/policy/rules", body={
        "name": "API dup", "actions": act}), rules, status=409)
    _bad_bodies(cluster, api, "PUT", f"{V1}/policy/rules/API dup", [
        ({}, ["position"]),
        ({"position": 0}, ["position"]),
        ({"position": 99}, ["position"]),
        ({"enabled": "no"}, ["enabled"]),
        ({"enabled": False, "name": "y"}, ["name"]),
    ], rules)
    _refused_unchanged(cluster, lambda: api["admin"].put(f"{V1}/policy/rules/No such",
                                                 body={"enabled": False}), rules, status=404)
    _ok(api["admin"].delete(f"{V1}/policy/rules/API dup"))


# -- areas (R5.2) -----------------------------------------------------------------------------------

def _areas(cluster):
    return {a["name"]: a for a in cluster.cli_json("area", "list")["areas"]}


def test_areas(cluster, api):
    """issue 6 point 1 (R5.2): POST /areas adds an area (default retention 15 days), PUT changes
    its retention, DELETE removes it — refused (409) while a rule uses it; out-of-range
    retention, a bad kind, wrong types and unknown fields are 400s and change nothing."""
    assert _ok(api["viewer"].get(f"{V1}/areas")) == cluster.cli_json("area", "list")
    _ok(api["admin"].post(f"{V1}/areas", body={"name": "API hold", "kind": "quarantine"}))
    assert _areas(cluster)["API hold"]["retention_days"] == 15
    got = _ok(api["admin"].post(f"{V1}/areas", body={"name": "API keep", "kind": "archive",
                                                      "retention_days": 30}))
    cluster.wait_children_current(got["config_version"], PUSH_S)
    assert _areas(cluster)["API keep"]["kind"] == "archive"
    _ok(api["admin"].put(f"{V1}/areas/API hold", body={"retention_days": 45}))
    assert _areas(cluster)["API hold"]["retention_days"] == 45
    assert _audit(cluster, "area change", "API hold", "admin")[-1][1] == "ok"

    _bad_bodies(cluster, api, "PUT", f"{V1}/areas/API hold", [
        ({"retention_days": 61}, ["60"]),
        ({"retention_days": 0}, []),
        ({"retention_days": "45"}, ["retention_days"]),
        ({}, ["retention_days"]),
        ({"retention_days": 20, "kind": "archive"}, ["kind"]),
    ], lambda: _areas(cluster))
    _bad_bodies(cluster, api, "POST", f"{V1}/areas", [
        ({"name": "API x", "kind": "basement"}, []),
        ({"name": "API x"}, ["kind"]),
        ({"kind": "archive"}, ["name"]),
        ({"name": "API x", "kind": "archive", "retention_days": 99}, ["60"]),
        ({"name": "API x", "kind": "archive", "owner": "me"}, ["owner"]),
    ], lambda: _areas(cluster))

    _ok(api["admin"].post(f"{V1}/policy/rules", body={
        "name": "API hold rule", "conditions": [{"kind": "attachment_extension", "value": "bat"}],
        "actions": [{"kind": "quarantine", "arg": "API hold"}]}))
    err = _refused_unchanged(cluster, lambda: api["admin"].delete(f"{V1}/areas/API hold"),
                             lambda: _areas(cluster), status=409)
    assert "API hold rule" in err, err
    _ok(api["admin"].delete(f"{V1}/policy/rules/API hold rule"))
    _ok(api["admin"].delete(f"{V1}/areas/API hold"))
    _ok(api["admin"].delete(f"{V1}/areas/API keep"))
    assert "API hold" not in _areas(cluster) and "API keep" not in _areas(cluster)
    _bad(api["admin"].delete(f"{V1}/areas/API hold"), 404)


# -- anti-spam rules (R5.1) -------------------------------------------------------------------

def _spam(cluster):
    return cluster.cli_json("spam", "list")["rules"]


def test_spam_rules(cluster, api):
    """issue 6 point 1 (R5.1): POST /spam/rules adds a scored rule that `portcullis spam list`
    shows, PUT switches it off, DELETE removes it; a broken regex, a score out of range or not
    a number, an unknown kind and unknown or missing fields are 400s and change nothing."""
    assert _ok(api["viewer"].get(f"{V1}/spam/rules")) == cluster.cli_json("spam", "list")
    got = _ok(api["admin"].post(f"{V1}/spam/rules", body={
        "name": "API lottery", "kind": "body_regex", "value": "\\blottery\\b", "score": 1.25}))
    cluster.wait_children_current(got["config_version"], PUSH_S)
    r = next(x for x in _spam(cluster) if x["name"] == "API lottery")
    assert r["score"] == 1.25 and r["enabled"] is True and r["kind"] == "body_regex"
    _ok(api["admin"].post(f"{V1}/spam/rules", body={
        "name": "API no date", "kind": "header_missing", "value": "Date", "score": 2,
        "position": 1}))
    assert _spam(cluster)[0]["name"] == "API no date"
    _ok(api["admin"].put(f"{V1}/spam/rules/API lottery", body={"enabled": False}))
    assert next(x for x in _spam(cluster) if x["name"] == "API lottery")["enabled"] is False
    assert _audit(cluster, "spam change", "API lottery", "admin")[-1][1] == "ok"

    _bad_bodies(cluster, api, "POST", f"{V1}/spam/rules", [
        ({"name": "x", "kind": "body_regex", "value": "(unclosed", "score": 2}, []),
        ({"name": "x", "kind": "body_regex", "value": "a", "score": 1000}, []),
        ({"name": "x", "kind": "body_regex", "value": "a", "score": "2"}, ["score"]),
        ({"name": "x", "kind": "astrology", "value": "a", "score": 2}, []),
        ({"name": "x", "kind": "body_regex", "score": 2}, ["value"]),
        ({"name": "x", "kind": "body_regex", "value": "a"}, ["score"]),
        ({"name": "x", "kind": "body_regex", "value": "a", "score": 2, "weight": 1}, ["weight"]),
    ], lambda: _spam(cluster))
    _bad_bodies(cluster, api, "PUT", f"{V1}/spam/rules/API lottery", [
        ({}, ["enabled"]), ({"enabled": 0}, ["enabled"]),
    ], lambda: _spam(cluster))
    _ok(api["admin"].delete(f"{V1}/spam/rules/API lottery"))
    _ok(api["admin"].delete(f"{V1}/spam/rules/API no date"))
    assert not [x for x in _spam(cluster) if x["name"].startswith("API ")]
    _bad(api["admin"].delete(f"{V1}/spam/rules/API lottery"), 404)


# -- web reputation (R3.2) ------------------------------------------------------------------------

def test_wrs_import_and_list(cluster, api):
    """issue 6 point 1 (R3.2): POST /wrs merges checked entries into the web-reputation lists
    (a domain lower-cased, trailing dot dropped) with a new configuration version both
    children run; GET /wrs?limit= lists them as `portcullis wrs list --json`; replace empties
    the lists first; one bad entry refuses the whole import (400 naming it), nothing stored."""
    got = _ok(api["admin"].post(f"{V1}/wrs", body={"entries": [
        {"kind": "domain", "pattern": "Bad.Example.", "level": 80, "category": "malware"},
        {"kind": "url", "pattern": "http://phish.test/login", "level": 60,
         "category": "phishing"}]}))
    assert got["imported"] == 2 and got["total"] == 2
    cluster.wait_children_current(got["config_version"], PUSH_S)
    listed = _ok(api["viewer"].get(f"{V1}/wrs", query={"limit": "10"}))
    assert listed == cluster.cli_json("wrs", "list", "--limit", "10")
    assert {"kind": "domain", "pattern": "bad.example", "level": 80,
            "category": "malware"} in listed["entries"]
    assert _audit(cluster, "wrs import", "web-reputation lists", "admin")[-1][1] == "ok"

    def entries():
        return cluster.cli_json("wrs", "list", "--limit", "100")

    good = {"kind": "domain", "pattern": "ok.test", "level": 10, "category": "x"}
    _bad_bodies(cluster, api, "POST", f"{V1}/wrs", [
        ({"entries": [good, dict(good, level=0)]}, ["entries[1]", "level"]),
        ({"entries": [dict(good, level=101)]}, ["level"]),
        ({"entries": [dict(good, level="10")]}, ["level"]),
        ({"entries": [dict(good, kind="ip")]}, ["kind"]),
        ({"entries": [dict(good, pattern="no spaces.test")]}, ["domain"]),
        ({"entries": [dict(good, kind="url", pattern="phish.test/x")]}, ["URL"]),
        ({"entries": [dict(good, category="two words")]}, ["category"]),
        ({"entries": [dict(good, why="because")]}, ["why"]),
        ({"entries": [{"kind": "domain", "level": 5, "category": "x"}]}, ["pattern"]),
        ({"entries": good}, ["entries"]),
        ({}, ["entries"]),
        ({"entries": [good], "replace": "yes"}, ["replace"]),
        ({"entries": [good], "merge": True}, ["merge"]),
    ], entries)
    _bad(api["viewer"].get(f"{V1}/wrs", query={"limit": "-1"}))
    _bad(api["viewer"].get(f"{V1}/wrs", query={"limit": "many"}))

    got = _ok(api["admin"].post(f"{V1}/wrs", body={"entries": [good], "replace": True}))
    assert got["total"] == 1
    assert [e["pattern"] for e in entries()["entries"]] == ["ok.test"]


# -- updates (R3.7) ---------------------------------------------------------------------------------

def _package(path, version):
    return signatures.write_package(path, {
        "portcullis-eicar.ndb": signatures.eicar_ndb_line(),
        "portcullis-testfiles.hdb": signatures.testfiles_hdb()})


def test_updates_list_and_use(cluster, module_dir, api):
    """issue 6 point 1 (R3.7): GET /updates is `portcullis update list --json`; POST
    /updates/{component}/{version}/use makes a stored version current with a new configuration
    version (an older one too: a rollback), "changed": false when it already is; an unknown
    version is a 404, nothing changed."""
    for v in ("api-1", "api-2"):
        cluster.cli_ok("update", "import", "--version", v, "--no-use",
                       _package(os.path.join(module_dir, f"{v}.tar.gz"), v))
    listed = _ok(api["viewer"].get(f"{V1}/updates"))
    assert listed == cluster.cli_json("update", "list")
    assert {c["version"] for c in listed["components"]} >= {"api-1", "api-2"}

    def current():
        return [c["version"] for c in cluster.cli_json("update", "list")["components"]
                if c["current"]]

    v0 = _version(cluster)
    got = _ok(api["admin"].post(f"{V1}/updates/clamav/api-2/use"))
    assert got["changed"] is True and got["config_version"] > v0 and current() == ["api-2"]
    got = _ok(api["admin"].post(f"{V1}/updates/clamav/api-1/use"))
    assert current() == ["api-1"]
    assert _ok(api["admin"].post(f"{V1}/updates/clamav/api-1/use"))["changed"] is False
    assert _audit(cluster, "update use", "clamav api-1", "admin")[-1][1] == "ok"
    _refused_unchanged(cluster, lambda: api["admin"].post(f"{V1}/updates/clamav/api-9/use"), current,
                       status=404)
    _refused_unchanged(cluster, lambda: api["admin"].post(f"{V1}/updates/clamav/api-2/use",
                                                  body={"now": True}), current)


# -- notifications (R2.4) ---------------------------------------------------------------------------

def test_notifications(cluster, api):
    """issue 6 point 1 (R2.4, R5.11): POST /notifications/test queues a test mail, audited as
    "notify test"; GET /notifications?limit= lists it (as `portcullis notify list --json`);
    a bad limit is a 400."""
    got = _ok(api["admin"].post(f"{V1}/notifications/test"))
    listed = _ok(api["viewer"].get(f"{V1}/notifications", query={"limit": "5"}))
    assert listed["notifications"][0]["id"] == got["id"]
    assert listed["notifications"][0]["subject"] == "Portcullis test notification"
    assert [n["id"] for n in cluster.cli_json("notify", "list", "--limit", "5")] == \
        [n["id"] for n in listed["notifications"]]
    assert _audit(cluster, "notify test", "notify.admin_address", "admin")[-1][1] == "ok"
    for bad in ("0", "1001", "x"):
        _bad(api["viewer"].get(f"{V1}/notifications", query={"limit": bad}))


# -- children (R6.2, R7.1, R7.4) ---------------------------------------------------------------

def _names(cluster):
    return {c["name"]: c for c in cluster.child_list()}


def test_children_list_and_commands(cluster, api):
    """issue 6 point 1 (R7.4): GET /children lists both children up with their enrolment (as
    `portcullis child list --json`); POST /children/{name}/commands/flush (an operator) waits for
    the child's answer and is audited as "child flush" by the API user; an unknown command or
    child is a 404, a body a 400."""
    got = _ok(api["viewer"].get(f"{V1}/children"))
    assert {c["name"]: c["state"] for c in got["children"]} == {"child1": "up", "child2": "up"}
    assert all(c["enrolment"] == "enrolled" for c in got["children"])
    assert [c["name"] for c in got["children"]] == [c["name"] for c in cluster.child_list()]
    got = _ok(api["operator"].post(f"{V1}/children/child1/commands/flush"))
    assert got["child"] == "child1" and got["command"] == "flush" and got["ok"] is True
    assert _audit(cluster, "child flush", "child1", "operator")[-1][1] == "ok"
    _ok(api["operator"].post(f"{V1}/children/child2/commands/reload"))
    _bad(api["operator"].post(f"{V1}/children/child1/commands/explode"), 404)
    _bad(api["operator"].post(f"{V1}/children/child9/commands/flush"), 404)
    _bad(api["operator"].post(f"{V1}/children/child1/commands/flush", body={"now": 1}))


def test_enrol_token_enrols_a_third_child(cluster, api):
    """issue 6 point 1 (R7.1): POST /children {name} gives a one-time token with the
    child.conf lines (the parent's endpoints and public key); a child started with it enrols
    and comes up; the token is audited without being written down; a second token for an
    enrolled name is a 409; bad bodies are 400s."""
    got = _ok(api["admin"].post(f"{V1}/children", body={"name": "child3"}))
    assert got["name"] == "child3" and len(got["token"]) == 48 and got["expires_hours"] == 24
    assert got["parent_cluster"] == cluster.parent.cluster_endpoint
    assert got["parent_enrol"] == cluster.parent.enrol_endpoint
    assert got["parent_public_key"] == cluster.parent_public_key()
    assert f"enroll_token = {got['token']}" in got["child_conf"]
    rows = _audit(cluster, "child enroll-token", "child3", "admin")
    assert rows and rows[-1][1] == "ok" and got["token"] not in rows[-1][2], rows

    child = Child(cluster.base, "child3", cluster.parent, cluster.downstream.port, enroll={
        "enroll_token": got["token"], "parent_public_key": got["parent_public_key"]})
    cluster.children["child3"] = child
    child.start(timeout=CHILD_UP_S)
    cluster.wait_child_state("child3", "up", CHILD_UP_S)
    assert _names(cluster)["child3"]["enrolment"] == "enrolled"

    _refused_unchanged(cluster, lambda: api["admin"].post(f"{V1}/children", body={"name": "child3"}),
                       lambda: sorted(_names(cluster)), status=409)
    _bad_bodies(cluster, api, "POST", f"{V1}/children", [
        ({}, ["name"]), ({"name": 3}, ["name"]), ({"name": "bad name!"}, ["child name"]),
        ({"name": "child4", "role": "x"}, ["role"]),
    ], lambda: cluster.pg.query("SELECT child_name FROM enrol_tokens ORDER BY 1"))


def test_approve_command_to_down_child_and_remove(cluster, api):
    """issue 6 point 1 (R7.1, R7.4): a child started without a token stays pending until POST
    /children/{name}/approve lets it in; once it is stopped a command to it is a 503 saying it
    is down; DELETE /children/{name} forgets it (gone from the list; a second DELETE is a 404)."""
    child = cluster.add_child("child4", token=False)
    wait_until(lambda: (_names(cluster).get("child4") or {}).get("enrolment") == "pending",
               20, "child4 pending")
    fp = {"fingerprint": child.fingerprint()}
    assert "no pending child" in _bad(api["admin"].post(f"{V1}/children/child9/approve",
                                                        body=fp), 404)
    _bad(api["admin"].post(f"{V1}/children/child4/approve"), 400)  # R8.3: no fingerprint
    _ok(api["admin"].post(f"{V1}/children/child4/approve", body=fp))
    cluster.wait_child_state("child4", "up", CHILD_UP_S)
    assert _audit(cluster, "child approve", "child4", "admin")[-1][1] == "ok"

    child.stop()
    cluster.wait_child_state("child4", "down", CHILD_UP_S)
    err = _bad(api["operator"].post(f"{V1}/children/child4/commands/flush"), 503)
    assert "down" in err, err

    _ok(api["admin"].delete(f"{V1}/children/child4"))
    del cluster.children["child4"]
    assert "child4" not in _names(cluster)
    assert _audit(cluster, "child remove", "child4", "admin")[-1][1] == "ok"
    _bad(api["admin"].delete(f"{V1}/children/child4"), 404)
    assert {"child1", "child2"} <= set(_names(cluster))
