"""Monitoring on the parent (issue 6 point 3; R7.5, R5.12): Prometheus /metrics in the text
exposition format 0.0.4, GET /api/v1/status and GET /api/v1/stats/timeseries, against a cluster
of two children with real Postfix downstream and real PostgreSQL. Mail goes straight to each
child's scan service, clean and EICAR; the figures must come back per child, in the format a
strict parser accepts, in agreement with `portcullis status --json` and the message log. One
cluster for the module; the configuration-lag test stops a child and runs last."""

import http.client
import json
import math
import os
import re
import subprocess
import time
import uuid

import pytest

import signatures
from apiclient import tls_context, token_for
from cluster import BIN_DIR
from harness import LOOPBACK, wait_until
from scanning import attachment_message, scan_cluster, send_direct, set_setting, with_headers

HEALTH_S = 1          # cluster.health_interval_s for the module: figures arrive within seconds
ARRIVE_S = 30         # a Health carrying what was sent reaches the parent's /metrics
CLEAN = {"child1": 2, "child2": 1}
EICAR = {"child1": 1, "child2": 2}
SIM = os.path.join(os.path.dirname(BIN_DIR), "tests", "fleet_sim")


# -- HTTP ---------------------------------------------------------------------------------------

def _get(cluster, path, token=None, headers=None):
    """GET path on the parent's HTTPS listener, trusting its own certificate: (status,
    headers {lower-case name: value}, body bytes — the exposition text is not JSON)."""
    conn = http.client.HTTPSConnection(LOOPBACK, cluster.parent.https_port,
                                       context=tls_context(cluster.parent), timeout=30)
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    try:
        conn.request("GET", path, headers=h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _get_json(cluster, token, path):
    status, _h, body = _get(cluster, path, token)
    assert status == 200, (path, status, body[:500])
    return json.loads(body)


# -- a strict reader of the text exposition format 0.0.4 -----------------------------------------

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(AssertionError):
    pass


def _value(text, line):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise ExpositionError(f"bad sample value {text!r} in {line!r}")
    return float(text)


def _labels(s, pos, line):
    """Parses {a="x",b="y"} from s[pos] == '{'; returns (dict, position after '}')."""
    out = {}
    pos += 1
    while True:
        if s[pos] == "}":
            return out, pos + 1
        m = LABEL_RE.match(s, pos)
        if not m or s[m.end():m.end() + 2] != '="':
            raise ExpositionError(f"bad label at {pos} in {line!r}")
        name, pos = m.group(0), m.end() + 2
        val = []
        while True:
            if pos >= len(s):
                raise ExpositionError(f"unterminated label value in {line!r}")
            c = s[pos]
            if c == "\\":
                nxt = s[pos + 1:pos + 2]
                if nxt not in ("\\", '"', "n"):
                    raise ExpositionError(f"bad escape \\{nxt} in {line!r}")
                val.append("\n" if nxt == "n" else nxt)
                pos += 2
            elif c == '"':
                pos += 1
                break
            elif c == "\n":
                raise ExpositionError(f"raw newline in a label value in {line!r}")
            else:
                val.append(c)
                pos += 1
        if name in out:
            raise ExpositionError(f"label {name} twice in {line!r}")
        out[name] = "".join(val)
        if s[pos] == ",":
            pos += 1
        elif s[pos] != "}":
            raise ExpositionError(f"expected , or }} at {pos} in {line!r}")


def parse_exposition(text):
    """Families {name: {"type", "help", "samples": [(sample name, labels, value)]}}; raises
    ExpositionError for anything the 0.0.4 format does not allow or this project never emits:
    a sample whose family has no TYPE (declared before it), a TYPE or HELP twice, a family's
    samples not together, a repeated series, a sample name that does not belong to its
    family's type, comments other than HELP and TYPE."""
    fams, order, seen_series = {}, [], set()
    current = None
    if not text.endswith("\n"):
        raise ExpositionError("the exposition must end with a newline")
    for line in text.split("\n")[:-1]:
        if line == "":
            raise ExpositionError("empty line")
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (\S+) ?(.*)", line)
            if not m or not NAME_RE.fullmatch(m.group(2)):
                raise ExpositionError(f"stray comment line {line!r}")
            kind, name, rest = m.groups()
            f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            if f["samples"]:
                raise ExpositionError(f"{kind} for {name} after its samples")
            key = kind.lower()
            if f[key] is not None:
                raise ExpositionError(f"{kind} twice for {name}")
            if kind == "TYPE" and rest not in TYPES:
                raise ExpositionError(f"unknown type {rest!r} for {name}")
            f[key] = rest
            if name not in order:
                order.append(name)
            current = name
            continue
        m = NAME_RE.match(line)
        if not m:
            raise ExpositionError(f"bad sample line {line!r}")
        sname, pos, labels = m.group(0), m.end(), {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = _labels(line, pos, line)
        if line[pos:pos + 1] != " ":
            raise ExpositionError(f"no space before the value in {line!r}")
        parts = line[pos + 1:].split(" ")
        if len(parts) not in (1, 2):
            raise ExpositionError(f"bad value/timestamp in {line!r}")
        value = _value(parts[0], line)
        fam = None
        for cand, suffixes in ((sname, ("",)), (sname.rsplit("_", 1)[0], None)):
            if cand in fams and fams[cand]["type"] is not None:
                t = fams[cand]["type"]
                sfx = sname[len(cand):]
                allowed = {"histogram": ("_bucket", "_sum", "_count"),
                           "summary": ("", "_sum", "_count")}.get(t, ("",))
                if sfx in allowed:
                    fam = cand
                    break
        if fam is None:
            raise ExpositionError(f"sample {sname} has no TYPE declared before it")
        if fam != current:
            raise ExpositionError(f"sample {sname} apart from the rest of family {fam}")
        if fams[fam]["type"] == "histogram" and sname.endswith("_bucket") and "le" not in labels:
            raise ExpositionError(f"histogram bucket without le: {line!r}")
        series = (sname, tuple(sorted(labels.items())))
        if series in seen_series:
            raise ExpositionError(f"series {series} twice")
        seen_series.add(series)
        fams[fam]["samples"].append((sname, labels, value))
    return fams


def check_histograms(fams):
    """Every histogram: per label set, le ascending ending in +Inf, counts cumulative
    (non-decreasing), +Inf equal to _count, a _sum present. Returns {family: {labels: dict}}."""
    out = {}
    for name, f in fams.items():
        if f["type"] != "histogram":
            continue
        groups = {}
        for sname, labels, value in f["samples"]:
            base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            g = groups.setdefault(base, {"buckets": [], "sum": None, "count": None})
            if sname == name + "_bucket":
                g["buckets"].append((_value(labels["le"], sname), value))
            elif sname == name + "_sum":
                g["sum"] = value
            else:
                g["count"] = value
        for base, g in groups.items():
            les = [le for le, _ in g["buckets"]]
            counts = [c for _, c in g["buckets"]]
            assert les and les[-1] == math.inf, (name, base, les)
            assert les == sorted(les) and len(set(les)) == len(les), (name, base, les)
            assert all(a <= b for a, b in zip(counts, counts[1:])), (name, base, counts)
            assert g["count"] is not None and g["sum"] is not None, (name, base)
            assert counts[-1] == g["count"], (name, base, counts[-1], g["count"])
        out[name] = {base: g for base, g in groups.items()}
    return out


def sample(fams, family, sname=None, **labels):
    """The value of the one sample of family (sample name sname) whose labels include labels."""
    hits = [v for n, lab, v in fams[family]["samples"]
            if n == (sname or family) and all(lab.get(k) == v2 for k, v2 in labels.items())]
    assert len(hits) == 1, (family, labels, hits)
    return hits[0]


# -- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = scan_cluster(module_dir, pg, n_children=2)
    try:
        set_setting(c, "cluster.health_interval_s", HEALTH_S)
    except BaseException:
        c.stop()
        raise
    yield c
    c.stop()


@pytest.fixture(scope="module")
def viewer(cluster):
    return token_for(cluster, "viewer")


def _metrics(cluster, token):
    status, headers, body = _get(cluster, "/metrics", token)
    assert status == 200, (status, body[:500])
    return headers, body.decode("utf-8")


def _clean_message(tok, rcpt):
    return with_headers(tok, rcpt, f"token {tok}\r\nnothing to see here\r\n".encode())


@pytest.fixture(scope="module")
def sent(cluster, viewer):
    """CLEAN and EICAR messages per child straight to its scan service; returns {"base":
    /metrics families before, "msgs": [(child, kind, msg_id, time sent)]}."""
    base = parse_exposition(_metrics(cluster, viewer)[1])
    msgs = []
    for name, child in cluster.children.items():
        for i in range(CLEAN[name]):
            tok = f"met-clean-{name}-{i}-{uuid.uuid4().hex[:6]}"
            rcpt = f"user{i}@{name}.test"
            t = time.time()
            rep = send_direct(child.smtp_port, _clean_message(tok, rcpt), rcpts=(rcpt,))
            assert rep.cls == "delivered", rep
            msgs.append((name, "clean", rep.msg_id, t))
        for i in range(EICAR[name]):
            tok = f"met-eicar-{name}-{i}-{uuid.uuid4().hex[:6]}"
            rcpt = f"user{i}@{name}.test"
            t = time.time()
            rep = send_direct(child.smtp_port, attachment_message(
                tok, rcpt, [("eicar.com", signatures.EICAR)]), rcpts=(rcpt,))
            assert rep.cls == "quarantined", rep
            msgs.append((name, "eicar", rep.msg_id, t))
    assert all(m[2] for m in msgs), msgs
    return {"base": base, "msgs": msgs}


def _delta(fams, base, family, **labels):
    before = [v for n, lab, v in base.get(family, {"samples": []})["samples"]
              if n == family and all(lab.get(k) == v2 for k, v2 in labels.items())]
    return sample(fams, family, **labels) - (before[0] if before else 0)


def _arrived(cluster, token, base):
    """/metrics once every child's counters show what was sent (else None)."""
    fams = parse_exposition(_metrics(cluster, token)[1])
    try:
        for name in cluster.children:
            if (_delta(fams, base, "portcullis_messages_total", child=name, outcome="relayed")
                    < CLEAN[name] or
                    _delta(fams, base, "portcullis_messages_total", child=name,
                           outcome="quarantined") < EICAR[name] or
                    sample(fams, "portcullis_scan_latency_seconds",
                           "portcullis_scan_latency_seconds_count", child=name) < CLEAN[name] +
                    EICAR[name] or
                    sample(fams, "portcullis_store_files", child=name, kind="quarantine") <
                    EICAR[name]):
                return None
    except (KeyError, AssertionError):
        return None
    return fams


# -- tests --------------------------------------------------------------------------------------

def test_metrics_format_and_per_child_values(cluster, viewer, sent):
    """Issue 6 point 3, R7.5, R5.12: /metrics answers text/plain; version=0.0.4 that a strict
    parser of the exposition format accepts (every sample's family has a TYPE, histogram buckets
    cumulative and ascending with +Inf equal to _count); once the Health carrying them arrived,
    each child's counters grew by exactly what was sent to it (relayed = clean, quarantined =
    EICAR, viruses = EICAR), its scan latency histogram counted every message, both children
    are up with config lag 0, the quarantine bytes are reported against a quota, and the fleet
    families are the sums of the per-child ones."""
    base = sent["base"]
    fams = wait_until(lambda: _arrived(cluster, viewer, base), ARRIVE_S,
                      "/metrics to show the messages sent to each child")
    headers, text = _metrics(cluster, viewer)
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    fams = parse_exposition(text)
    hist = check_histograms(fams)
    assert "portcullis_scan_latency_seconds" in hist
    for name, f in fams.items():
        assert name.startswith("portcullis_"), name
        assert f["type"] is not None and f["help"], name
        if f["type"] == "counter":
            assert name.endswith("_total"), name
            assert "resets" in f["help"] or "Resets" in f["help"], (name, f["help"])

    for name in cluster.children:
        assert _delta(fams, base, "portcullis_messages_total", child=name,
                      outcome="relayed") == CLEAN[name]
        assert _delta(fams, base, "portcullis_messages_total", child=name,
                      outcome="quarantined") == EICAR[name]
        for outcome in ("deleted", "tempfailed", "rejected"):
            assert _delta(fams, base, "portcullis_messages_total", child=name,
                          outcome=outcome) == 0
        assert _delta(fams, base, "portcullis_viruses_found_total", child=name) == EICAR[name]
        g = hist["portcullis_scan_latency_seconds"][(("child", name),)]
        assert g["count"] == CLEAN[name] + EICAR[name]      # nothing else reached this child
        assert 0 <= g["sum"] < 60 * g["count"]
        assert sample(fams, "portcullis_child_up", child=name) == 1
        assert sample(fams, "portcullis_child_config_version_lag", child=name) == 0
        info = [lab for n, lab, v in fams["portcullis_child_info"]["samples"]
                if lab["child"] == name]
        assert len(info) == 1 and info[0]["scan_method"] == "conventional", info
        assert info[0]["state"] == "up" and info[0]["software_version"], info
        assert sample(fams, "portcullis_store_bytes", child=name, kind="quarantine") > 0
        assert sample(fams, "portcullis_store_quota_bytes", child=name, kind="quarantine") > 0
        assert sample(fams, "portcullis_store_files", child=name, kind="quarantine") == \
            EICAR[name]
        spool = sample(fams, "portcullis_spool_records", child=name)
        assert spool == int(spool), spool   # a count of records, exposed as such
        assert sample(fams, "portcullis_child_last_seen_age_seconds", child=name) < 30

    def per_child_sum(family, **labels):
        return sum(v for n, lab, v in fams[family]["samples"]
                   if n == family and all(lab.get(k) == v2 for k, v2 in labels.items()))
    for outcome in ("relayed", "quarantined", "deleted", "tempfailed", "rejected"):
        assert sample(fams, "portcullis_fleet_messages_total", outcome=outcome) == \
            per_child_sum("portcullis_messages_total", outcome=outcome)
    assert sample(fams, "portcullis_fleet_viruses_found_total") == \
        per_child_sum("portcullis_viruses_found_total")
    assert sample(fams, "portcullis_fleet_children", state="up") == 2
    assert sample(fams, "portcullis_fleet_children", state="down") == 0
    fleet = hist["portcullis_fleet_scan_latency_seconds"][()]
    assert fleet["count"] == sum(hist["portcullis_scan_latency_seconds"][(("child", n),)]["count"]
                                 for n in cluster.children)
    assert sample(fams, "portcullis_fleet_store_bytes", kind="quarantine") == \
        per_child_sum("portcullis_store_bytes", kind="quarantine")
    assert sample(fams, "portcullis_config_version") == cluster.status()["config_version"]


def test_metrics_needs_a_credential(cluster, viewer):
    """Issue 6 point 3 (every route authenticated, issue 6 point 1): /metrics without a
    credential, or with a token nobody issued, is 401 and gives away no metric; the viewer's
    bearer token — what a Prometheus scrape config carries — is enough."""
    for token in (None, "0" * 64, viewer + "x"):
        status, _h, body = _get(cluster, "/metrics", token)
        assert status == 401, (token, status)
        assert b"portcullis_" not in body
    assert _get(cluster, "/metrics", viewer)[0] == 200


def test_status_agrees_with_the_cli(cluster, viewer, sent):
    """R7.5: GET /api/v1/status is the same document as `portcullis status --json` — every
    child's state, scan method, configuration version, pattern versions, rates, verdict
    counters, quarantine/archive usage against quota (R5.12), reputation-service states, spool —
    with the cluster totals, which add up the children's counters."""
    wait_until(lambda: _arrived(cluster, viewer, sent["base"]), ARRIVE_S,
               "the messages sent to reach the children's health")
    api = _get_json(cluster, viewer, "/api/v1/status")
    cli = cluster.status()
    assert set(api) == set(cli) >= {"config_version", "children", "store_totals", "totals"}
    assert api["config_version"] == cli["config_version"]
    assert [c["name"] for c in api["children"]] == [c["name"] for c in cli["children"]]
    stable = ("state", "enrolment", "config_version", "config_current", "config_error",
              "address", "software_version", "key_fingerprint")
    hstable = ("state", "scan_service", "scan_method", "smart_scan_state", "ers_state",
               "mta_state", "patterns", "update_state")
    counters = ("messages_relayed", "messages_quarantined", "messages_deleted",
                "messages_tempfailed", "messages_rejected", "viruses_found", "scan_exceptions")
    for a, c in zip(api["children"], cli["children"]):
        assert set(a) == set(c), (a.keys(), c.keys())
        assert {k: a.get(k) for k in stable} == {k: c.get(k) for k in stable}
        assert set(a["health"]) == set(c["health"])
        assert {k: a["health"][k] for k in hstable} == {k: c["health"][k] for k in hstable}
        # nothing is being sent now: the counters are still
        assert {k: a["health"]["stats"][k] for k in counters} == \
            {k: c["health"]["stats"][k] for k in counters}
        assert {s["kind"] for s in a["health"]["stores"]} == {"quarantine", "archive"}
        # the summary: the latency histogram is on the child's own health route
        assert "scan_ms" not in a["health"]["stats"] and "scan_ms" not in c["health"]["stats"]
    tot = api["totals"]
    assert tot["children"] == 2 and tot["children_up"] == 2 and tot["children_down"] == 0
    for k in counters:
        assert tot[k] == sum(c["health"]["stats"][k] for c in api["children"]), k
        assert tot[k] == cli["totals"][k]
    assert api["store_totals"]["quarantine"]["files"] == cli["store_totals"]["quarantine"][
        "files"] == sum(EICAR.values())
    # the plain CLI shows the same totals line
    text = cluster.cli_ok("status")
    assert re.search(rf"children\s+2 up, 0 down, 0 pending; \d+ msgs/min; relayed "
                     rf"{tot['messages_relayed']}, quarantined {tot['messages_quarantined']}",
                     text), text


def _log_rows(cluster, msg_ids):
    return cluster.pg.query(
        "SELECT msg_id, child, action, extract(epoch FROM received_at)::float8 "
        "FROM message_log WHERE msg_id = ANY(%s)", (msg_ids,))


def test_timeseries_counts_messages_in_their_minute(cluster, viewer, sent):
    """Issue 6 point 2 (charts of throughput and verdicts over time), R7.5: the time series
    has contiguous 60 s buckets ending at now, every key in every point, and counts each
    message sent in the bucket of the minute it was received — by child, by action (delivered,
    quarantined) and by verdict (clean, virus); bad parameters are 400 with a message."""
    msgs = sent["msgs"]
    ids = [m[2] for m in msgs]
    rows = wait_until(lambda: (lambda r: r if r and len(r) == len(ids) else None)(
        _log_rows(cluster, ids)), ARRIVE_S, "the tracking records of the messages sent")
    sent_at = {m[2]: m[3] for m in msgs}
    kind = {m[2]: m[1] for m in msgs}
    want = {}
    for msg_id, child, action, received in rows:
        assert abs(received - sent_at[msg_id]) < 10, (msg_id, received, sent_at[msg_id])
        t = int(received // 60) * 60
        w = want.setdefault(t, {"total": 0, "child": {}, "action": {}, "verdict": {}})
        w["total"] += 1
        w["child"][child] = w["child"].get(child, 0) + 1
        w["action"][action] = w["action"].get(action, 0) + 1
        v = "virus" if kind[msg_id] == "eicar" else "clean"
        w["verdict"][v] = w["verdict"].get(v, 0) + 1
        assert action == ("quarantined" if kind[msg_id] == "eicar" else "delivered")

    ts = _get_json(cluster, viewer, "/api/v1/stats/timeseries?minutes=30")
    assert ts["step_s"] == 60 and ts["minutes"] == 30 and len(ts["points"]) == 30
    pts = ts["points"]
    assert [p["t"] for p in pts] == list(range(ts["from"], ts["to"], 60))
    assert ts["to"] - 60 <= time.time() + 5 < ts["to"] + 60
    assert set(ts["children"]) >= {"child1", "child2"}
    assert {"delivered", "quarantined", "deleted", "tempfailed", "rejected"} <= set(ts["actions"])
    assert set(ts["verdicts"]) == {"clean", "virus", "spam", "exception", "none"}
    for p in pts:
        assert set(p["by_child"]) == set(ts["children"])
        assert set(p["by_action"]) == set(ts["actions"])
        assert set(p["by_verdict"]) == set(ts["verdicts"])
        assert sum(p["by_action"].values()) == sum(p["by_verdict"].values()) == \
            sum(p["by_child"].values()) == p["total"]
    # the module's only mail is what the fixture sent: each bucket holds exactly that
    by_t = {p["t"]: p for p in pts}
    assert set(want) <= set(by_t), (sorted(want), ts["from"], ts["to"])
    for p in pts:
        w = want.get(p["t"], {"total": 0, "child": {}, "action": {}, "verdict": {}})
        assert p["total"] == w["total"], (p, w)
        assert {k: v for k, v in p["by_child"].items() if v} == w["child"], (p, w)
        assert {k: v for k, v in p["by_action"].items() if v} == w["action"], (p, w)
        assert {k: v for k, v in p["by_verdict"].items() if v} == w["verdict"], (p, w)
    assert sum(p["total"] for p in pts) == len(msgs)

    coarse = _get_json(cluster, viewer, "/api/v1/stats/timeseries?minutes=120&step=3600")
    assert coarse["step_s"] == 3600 and len(coarse["points"]) == 2
    assert sum(p["total"] for p in coarse["points"]) == len(msgs)
    assert len(_get_json(cluster, viewer, "/api/v1/stats/timeseries")["points"]) == 60

    for q in ("minutes=0", "minutes=1441", "minutes=ten", "step=90", "step=30", "step=7200"):
        status, _h, body = _get(cluster, "/api/v1/stats/timeseries?" + q, viewer)
        assert status == 400, (q, status, body)
        assert json.loads(body)["error"], q
    assert _get(cluster, "/api/v1/stats/timeseries")[0] == 401
    assert _get(cluster, "/api/v1/status")[0] == 401


def _sim_children(cluster, prefix, k, seconds=3):
    """k simulated children (tests/fleet_sim, the real protocol) that link, apply the
    configuration, send Health and go silent when it exits."""
    key = open(os.path.join(cluster.parent.state_dir, "parent.pub")).read().strip()
    cp = subprocess.run([SIM, "--endpoint", cluster.parent.cluster_endpoint, "--server-key", key,
                         "--dsn", cluster.pg.dsn, "-k", str(k), "--seconds", str(seconds),
                         "--prefix", prefix], capture_output=True, text=True,
                        timeout=seconds + 120)
    assert cp.returncode == 0, cp.stderr
    return sorted(f"{prefix}-{i:05d}" for i in range(k))  # fleet_sim's names


def test_r10_children_filtered_paged_health_on_its_route(cluster, viewer, sent):
    """Issue 12 point 3 (R7.5, R10.1): the children list pages in name order (limit, after →
    next) with every child once, counts what matches, filters by state, name and lagging; the
    totals stay the whole fleet's; a child's whole Health (with the latency histogram the
    summary leaves out) is on GET /api/v1/children/{name}/health; every query field has its
    limit, answered 400 one past it."""
    names = _sim_children(cluster, "pg", 23)
    seen, after, pages = [], None, 0
    while True:
        q = "/api/v1/children?name=pg-&limit=5" + (f"&after={after}" if after else "")
        page = _get_json(cluster, viewer, q)
        assert page["matched"] == 23 and len(page["children"]) <= 5, page["matched"]
        seen += [c["name"] for c in page["children"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert seen == names and pages == 5, (pages, seen)
    total = cluster.pg.query("SELECT count(*) FROM children")[0][0]
    assert page["totals"]["children"] == total, page["totals"]

    down = wait_until(lambda: (lambda p: p if p["matched"] == 23 else None)(_get_json(
        cluster, viewer, "/api/v1/status?state=down&name=pg-&limit=1000")), 30,
        "the simulated children to be down")
    assert [c["name"] for c in down["children"]] == names
    up = _get_json(cluster, viewer, "/api/v1/status?state=up")
    assert [c["name"] for c in up["children"]] == ["child1", "child2"], up["children"]
    assert up["totals"]["children_up"] == 2 and up["totals"]["children_down"] == 23
    assert _get_json(cluster, viewer, "/api/v1/children?state=pending")["matched"] == 0

    # a change the silent children never apply: exactly they lag, by one version
    version = set_setting(cluster, "smtp.command_timeout_s", 295)
    cluster.wait_children_current(version, 30)
    lag = _get_json(cluster, viewer, "/api/v1/children?lagging=true&limit=1000")
    assert [c["name"] for c in lag["children"]] == names and lag["matched"] == 23
    assert all(c["config_lag"] >= 1 and not c["config_current"] for c in lag["children"])
    assert _get_json(cluster, viewer, "/api/v1/children?lagging=true&state=up")["matched"] == 0

    full = _get_json(cluster, viewer, "/api/v1/children/child1/health")
    assert full["name"] == "child1" and full["state"] == "up" and full["last_health_at"]
    assert set(full["health"]["stats"]["scan_ms"]) == {"buckets", "sum_ms"}
    summary = _get_json(cluster, viewer, "/api/v1/children?name=child1")["children"][0]["health"]
    assert set(full["health"]) == set(summary)
    assert set(full["health"]["stats"]) - set(summary["stats"]) == {"scan_ms"}
    assert _get(cluster, "/api/v1/children/nosuchchild/health", viewer)[0] == 404
    cli = json.loads(cluster.cli_ok("child", "health", "child1"))
    assert cli["name"] == "child1" and set(cli["health"]) == set(full["health"])
    assert cluster.cli("child", "health", "nosuchchild")[0] != 0

    for path in ("state=sideways", "limit=0", "limit=1001", "lagging=yes", "name=" + "n" * 65,
                 "after=" + "a" * 65):
        status, _h, body = _get(cluster, "/api/v1/children?" + path, viewer)
        assert status == 400, (path, status, body)
    for path in ("limit=1", "limit=1000", "name=" + "n" * 64, "after=" + "a" * 64,
                 "lagging=false"):
        assert _get(cluster, "/api/v1/children?" + path, viewer)[0] == 200, path
    for n in names:
        cluster.cli_ok("child", "remove", n)


def test_config_lag_when_a_child_misses_a_change(cluster, viewer, sent):
    """Issue 6 point 3: the configuration version lag is 0 for every child once settled; a
    child that is stopped while a setting changes is shown down with a lag > 0 (cluster version
    minus its applied version) while the running child stays at 0; restarted, it catches up
    and its lag returns to 0."""
    version = set_setting(cluster, "smtp.command_timeout_s", 290)
    fams = wait_until(lambda: (lambda f: f if all(
        sample(f, "portcullis_child_config_version_lag", child=n) == 0
        for n in cluster.children) else None)(parse_exposition(_metrics(cluster, viewer)[1])),
        ARRIVE_S, "every child's config lag to be 0")
    assert sample(fams, "portcullis_config_version") == version

    c2 = cluster.children["child2"]
    c2.stop()
    cluster.wait_child_state("child2", "down", 30)
    cluster.cli_ok("settings", "set", "smtp.command_timeout_s", "280")
    newv = cluster.status()["config_version"]
    cluster.wait_children_current(newv, 15, names=["child1"])

    def lagging():
        f = parse_exposition(_metrics(cluster, viewer)[1])
        return f if sample(f, "portcullis_child_config_version_lag", child="child2") > 0 \
            else None
    fams = wait_until(lagging, ARRIVE_S, "child2's config lag to be > 0")
    assert sample(fams, "portcullis_child_config_version_lag", child="child2") == newv - version
    assert sample(fams, "portcullis_child_config_version_lag", child="child1") == 0
    assert sample(fams, "portcullis_child_up", child="child2") == 0
    assert sample(fams, "portcullis_fleet_children", state="down") == 1
    assert sample(fams, "portcullis_config_version") == newv

    c2.start()
    cluster.wait_children_current(newv, 30)
    wait_until(lambda: sample(parse_exposition(_metrics(cluster, viewer)[1]),
                              "portcullis_child_config_version_lag", child="child2") == 0,
               ARRIVE_S, "child2's config lag to return to 0")


def test_strict_parser_rejects_what_it_must():
    """The test's own exposition parser fails on the mistakes it is there to catch (so the
    tests above can fail): a sample without TYPE, a non-cumulative histogram, +Inf unequal to
    _count, a bad escape."""
    ok = ('# HELP a_total x\n# TYPE a_total counter\na_total{child="a\\"b\\\\c\\nd"} 3\n'
          '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.5\nh_count 2\n')
    fams = parse_exposition(ok)
    assert fams["a_total"]["samples"][0][1]["child"] == 'a"b\\c\nd'
    check_histograms(fams)
    for bad in ("x 1\n", '# TYPE a gauge\na{child="\\q"} 1\n',
                "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n",
                "# TYPE a gauge\na 1\na 2\n", "# random comment\n"):
        with pytest.raises(ExpositionError):
            parse_exposition(bad)
    with pytest.raises(AssertionError):
        check_histograms(parse_exposition(
            '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n'))
    with pytest.raises(AssertionError):
        check_histograms(parse_exposition(
            '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'))
