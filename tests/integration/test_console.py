"""Browser tests of the web console (issue 6 points 2 and 4): playwright-core drives Debian's
chromium headless (tests/browser/console.js) against a parent serving web/ on its HTTPS
listener, with two children and the upstream Postfix. The script does what an operator does
in the browser and asserts what the page shows; these tests start it, check its exit code and
check the effects outside the browser (the CLI's status, the downstream Maildir). Screenshots
of the dashboard and the quarantine page go to build/screenshots/ (PORTCULLIS_SCREENSHOTS
overrides)."""

import json
import os
import re
import shutil
import subprocess
import uuid

import pytest

import signatures
from apiclient import Api, make_user
from cluster import BIN_DIR
from harness import wait_until
from messages import make_message
from scanning import (SENDER, attachment_message, scan_cluster, send_direct, set_setting,
                      wait_log_records, wait_quarantine_entries)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BROWSER_DIR = os.path.join(REPO, "tests", "browser")
SCRIPT = os.path.join(BROWSER_DIR, "console.js")
SCREENSHOTS = os.environ.get("PORTCULLIS_SCREENSHOTS",
                             os.path.join(REPO, "build", "screenshots"))
CHROMIUM = os.environ.get("PORTCULLIS_CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node") or "/usr/bin/node"
SCRIPT_TIMEOUT_S = 240     # the whole node run; each page condition waits at most WAIT_MS
WAIT_MS = 60000            # a setting reaches both children within a few health intervals
INDEX_S = 60
SETTING = "ers.check_interval_s"   # 1..3600 seconds; every child applies it
CHILDREN = ("child1", "child2")
CLEAN_PER_CHILD = 3
HEALTH_S = 2


def _missing():
    """What the browser tests need and this machine lacks (deploy/install-deps.sh and
    deploy/build-web.sh provide it all), or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} (apt-get install chromium)"
    if not os.path.exists(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        return "tests/browser/node_modules/playwright-core (deploy/build-web.sh)"
    if not os.path.exists(os.path.join(REPO, "web", "vendor", "chart.umd.js")):
        return "web/vendor/chart.umd.js (deploy/build-web.sh)"
    return None


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    missing = _missing()
    # tests/run.sh installs and builds all of these: a missing piece is a failure, not a skip
    assert missing is None, f"the browser tests need {missing}"
    c = scan_cluster(module_dir, pg, n_children=2)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def users(cluster):
    """{role: (name, password)}: one console user per role, made with `portcullis user add`."""
    return {role: (f"console-{role}", make_user(cluster, f"console-{role}", role))
            for role in ("admin", "operator", "viewer")}


@pytest.fixture(scope="module")
def traffic(cluster):
    """Mail through both children before the dashboard is looked at, so its counters and
    charts have something to show: CLEAN_PER_CHILD clean messages and one EICAR each, straight
    to the scan services; waits until the parent has every tracking record. Returns the count."""
    # health reports every HEALTH_S, so the dashboard's counters catch up quickly
    set_setting(cluster, "cluster.health_interval_s", HEALTH_S)
    msg_ids = []
    for name, child in cluster.children.items():
        rcpt = f"user@{name}.test"
        for i in range(CLEAN_PER_CHILD):
            tok = f"console-clean-{name}-{i}-{uuid.uuid4().hex[:6]}"
            rep = send_direct(child.smtp_port, make_message(tok, SENDER, rcpt), rcpts=(rcpt,))
            assert rep.cls == "delivered", rep
            msg_ids.append(rep.msg_id)
        tok = f"console-virus-{name}-{uuid.uuid4().hex[:6]}"
        msg = attachment_message(tok, rcpt, [("eicar.com", signatures.EICAR)], sender=SENDER)
        rep = send_direct(child.smtp_port, msg, rcpts=(rcpt,))
        assert rep.cls == "quarantined", rep
        msg_ids.append(rep.msg_id)
    wait_log_records(cluster, msg_ids, INDEX_S)
    return len(msg_ids)


def run_console(cluster, user, scenarios, **env):
    """Runs console.js SCENARIOS as user (name, password); returns {scenario: result} after
    asserting it exited 0. The script's own message says what the page showed on failure."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    for name in scenarios:   # a failure's picture from an earlier run would mislead
        stale = os.path.join(SCREENSHOTS, f"failure-{name}.png")
        if os.path.exists(stale):
            os.unlink(stale)
    full = dict(os.environ,
                PORTCULLIS_URL=f"https://127.0.0.1:{cluster.parent.https_port}/",
                PORTCULLIS_USER=user[0], PORTCULLIS_PASSWORD=user[1],
                PORTCULLIS_SCREENSHOTS=SCREENSHOTS, PORTCULLIS_CHROMIUM=CHROMIUM,
                PORTCULLIS_WAIT_MS=str(WAIT_MS), CHILDREN=",".join(CHILDREN),
                **{k: str(v) for k, v in env.items()})
    cp = subprocess.run([NODE, SCRIPT, *scenarios], cwd=BROWSER_DIR, env=full,
                        capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S)
    assert cp.returncode == 0, (f"console.js {' '.join(scenarios)} exited {cp.returncode}:\n"
                                f"{cp.stderr}\n{cp.stdout}")
    out = {}
    for line in cp.stdout.splitlines():
        if line.startswith("RESULT "):
            _, name, data = line.split(" ", 2)
            out[name] = json.loads(data)
    assert set(out) == set(scenarios), cp.stdout
    return out


def _setting_value(cluster):
    out = cluster.cli_json("settings", "get", SETTING)
    return next(x["value"] for x in out["settings"] if x["key"] == SETTING)


def test_console_served_with_csp(cluster):
    """Issue 6 point 2: the parent serves the console's files itself (no internet): index.html
    with a Content-Security-Policy that forbids inline scripts, app.js, style.css and the chart
    library copied from npm; a path outside web_root is not served."""
    api = Api(cluster.parent)
    status, body, headers = api.request("GET", "/")
    assert status == 200 and b"app.js" in body, (status, body[:200])
    csp = headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "unsafe-eval" not in csp, csp
    assert "script-src" not in csp or "unsafe-inline" not in csp.split("script-src")[1], csp
    assert b"<script>" not in body and b"onclick=" not in body   # nothing inline
    scripts = re.findall(rb'<script src="([^"]+)"', body)
    assert b"vendor/chart.umd.js" in scripts and b"app.js" in scripts, scripts
    for src in scripts:
        status, js, headers = api.request("GET", "/" + src.decode())
        assert status == 200 and headers["content-type"].startswith("text/javascript"), src
        assert b"use strict" in js or src.startswith(b"vendor/"), src
    status, css, headers = api.request("GET", "/style.css")
    assert status == 200 and b"--accent" in css
    status, chart, _ = api.request("GET", "/vendor/chart.umd.js")
    assert status == 200 and b"Chart" in chart
    for bad in ("/../README.md", "/%2e%2e/README.md", "/vendor/../../README.md"):
        status, body, _ = api.request("GET", bad)
        assert status in (400, 403, 404), (bad, status)
        with open(os.path.join(REPO, "README.md"), "rb") as f:
            assert f.read(200) not in body, bad   # the file outside web_root never served


def test_dashboard_two_children_up(cluster, users, traffic):
    """Issue 6 point 4 (R7.5, R5.12): an operator logs in and the fleet dashboard shows both
    children up, with scan method, configuration version, quarantine/archive usage bars, and
    the throughput chart counting the messages just sent; the screenshot is saved."""
    r = run_console(cluster, users["operator"], ["dashboard"],
                    EXPECT_MESSAGES=traffic, EXPECT_QUARANTINED=len(CHILDREN))["dashboard"]
    assert r["chart_total"] >= traffic and r["quarantined"] >= len(CHILDREN)
    assert r["role"] == "operator"
    assert [c["name"] for c in r["children"]] == list(CHILDREN)
    assert all(c["state"] == "up" for c in r["children"])
    st = cluster.status()
    for c in r["children"]:
        assert int(c["config"]) == cluster.child_status(c["name"], st)["config_version"]
    assert os.path.getsize(os.path.join(SCREENSHOTS, "dashboard.png")) > 10000


def test_r10_dashboard_pages_a_large_fleet(cluster, users):
    """Issue 12 point 3 (R7.5): with 150 more children (tests/fleet_sim, the real protocol)
    the dashboard shows 100 rows, Next shows the other 52, Previous returns, the name filter
    finds one child; the totals card counts the whole fleet."""
    key = open(os.path.join(cluster.parent.state_dir, "parent.pub")).read().strip()
    sim = os.path.join(os.path.dirname(BIN_DIR), "tests", "fleet_sim")
    cp = subprocess.run([sim, "--endpoint", cluster.parent.cluster_endpoint, "--server-key", key,
                         "--dsn", cluster.pg.dsn, "-k", "150", "--seconds", "2", "--prefix", "fp"],
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    try:
        r = run_console(cluster, users["viewer"], ["fleetpages"],
                        EXPECT_FLEET=152)["fleetpages"]
        assert r["first"] == 100 and r["second"] == 52 and r["next_disabled_on_last"], r
        assert r["filtered"] == ["child1"], r
        assert r["totals_up"].endswith("/ 152"), r
    finally:
        cluster.pg.query("DELETE FROM children WHERE name LIKE 'fp-%'")


def test_setting_change_applied_by_both_children(cluster, users):
    """Issue 6 point 4 (R6): an admin changes a setting on the settings page; the page names
    the new configuration version and the dashboard shows both children applying it; the
    CLI agrees (value and every child current)."""
    before = cluster.status()["config_version"]
    r = run_console(cluster, users["admin"], ["setting"], SETTING_KEY=SETTING,
                    SETTING_VALUE="123")["setting"]
    assert r["config_version"] > before
    assert "3,600" in r["range"] or "3600" in r["range"], r["range"]
    assert _setting_value(cluster) == 123
    st = cluster.status()
    for name in CHILDREN:
        assert cluster.child_status(name, st)["config_version"] >= r["config_version"]


def test_out_of_range_setting_refused_inline(cluster, users):
    """Issue 6 point 4 (R6): an out-of-range value is refused by the parent and the refusal is
    shown beside the field; nothing changed (same configuration version and value)."""
    before = cluster.status()["config_version"]
    value_before = _setting_value(cluster)
    r = run_console(cluster, users["admin"], ["refusal"], SETTING_KEY=SETTING,
                    BAD_VALUE="99999", EXPECT_ERROR="3600")["refusal"]
    assert "'99999' is not valid" in r["error"] and "1 to 3600" in r["error"], r["error"]
    assert cluster.status()["config_version"] == before
    assert _setting_value(cluster) == value_before


def _quarantine_eicar(cluster, child, token, rcpt, sender):
    msg = attachment_message(token, rcpt, [("eicar.com", signatures.EICAR)], sender=sender)
    rep = send_direct(cluster.children[child].smtp_port, msg, sender=sender, rcpts=(rcpt,))
    assert rep.cls == "quarantined", rep
    return rep


def test_quarantined_eicar_found_and_released(cluster, users):
    """Issue 6 point 4 (R5.4): an EICAR message quarantined on child2 is found on the
    quarantine page by its subject; an operator shows its headers, downloads it (the same
    size as stored) and releases it from there: the downstream MTA receives it for the
    original recipient, intact, and the index says released. A second one, on child1, is
    deleted from the page (two clicks) and the index says deleted. The screenshot of the
    quarantine page is saved."""
    token = f"console-{uuid.uuid4().hex[:10]}"
    gone = f"console-del-{uuid.uuid4().hex[:10]}"
    rcpt = "user@child2.test"
    sender = "console@origin.test"
    rep = _quarantine_eicar(cluster, "child2", token, rcpt, sender)
    rep_del = _quarantine_eicar(cluster, "child1", gone, "user@child1.test", sender)
    wait_quarantine_entries(cluster, [rep.file_id, rep_del.file_id], INDEX_S)
    size = cluster.pg.query("SELECT size FROM stored_messages WHERE file_id = %s",
                            (rep.file_id,))[0][0]

    r = run_console(cluster, users["operator"], ["quarantine"], SUBJECT=token,
                    DELETE_SUBJECT=gone)["quarantine"]
    assert r["file_id"] == rep.file_id
    assert r["downloaded"] == size, (r["downloaded"], size)
    assert r["download_name"].endswith(".eml"), r["download_name"]
    rows = cluster.pg.query("SELECT state, removed_reason FROM stored_messages "
                            "WHERE file_id = %s", (rep_del.file_id,))
    assert rows == [("removed", "deleted")], rows
    d = wait_until(lambda: next((x for x in cluster.downstream.delivered()
                                 if x.token == token), None),
                   30, f"released message {token} in the downstream Maildir")
    assert d.body_intact()
    assert rcpt in (d["Delivered-To"] or "")
    rows = cluster.pg.query("SELECT state, removed_reason FROM stored_messages "
                            "WHERE file_id = %s", (rep.file_id,))
    assert rows == [("removed", "released")], rows
    assert os.path.getsize(os.path.join(SCREENSHOTS, "quarantine.png")) > 10000


def test_every_page_renders(cluster, users):
    """Issue 6 point 2: as an admin, every console page — children, policy rules, settings,
    areas, quarantine and archive search, the three logs and notifications, updates, the MTA
    retry timetable, users and tokens, the dashboard — loads its data from the API and shows
    it, with no error and no script error on the page."""
    r = run_console(cluster, users["admin"], ["pages"])["pages"]
    assert r["rows"]["children"] == len(CHILDREN)
    assert r["rows"]["users"] >= 3   # the three console users (and the admin's tokens table)


def test_viewer_sees_no_change_buttons(cluster, users):
    """Issue 6 point 2 (roles): a viewer's console disables every change it cannot make, and
    the API refuses such a change from the console's session with 403."""
    r = run_console(cluster, users["viewer"], ["viewer"], SETTING_KEY=SETTING)["viewer"]
    assert r["role"] == "viewer" and r["forbidden"] == 403


def test_children_page_approve_enrol_remove(cluster, users):
    """Issue 6 point 2 (R7.1): on the children page an admin approves a pending child and sees
    it come up, makes an enrolment token for a new child (the child.conf lines with the token
    are shown) and removes the approved child again; the CLI's child list agrees. Last in the
    file: it adds (and stops) child3."""
    child = cluster.add_child("child3", token=False)
    wait_until(lambda: (cluster.child_status("child3") or {}).get("enrolment") == "pending",
               30, "child3 to be pending")
    try:
        r = run_console(cluster, users["admin"], ["children"], APPROVE="child3",
                        APPROVE_FP=child.fingerprint(), ENROL="child4")["children"]
    finally:
        cluster.children.pop("child3").stop()
    assert r["removed"] == "child3" and r["conf_lines"] >= 5
    names = [c["name"] for c in cluster.child_list()]
    assert "child3" not in names and "child4" not in names, names
    # the token shown on the page is stored (hashed) for child4, waiting to be used
    assert cluster.pg.query("SELECT count(*) FROM enrol_tokens WHERE child_name = %s",
                            ("child4",)) == [(1,)]
