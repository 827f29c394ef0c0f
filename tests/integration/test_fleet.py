"""A parent that holds a fleet (R10.1, R10.2), with simulated children: tests/fleet_sim (the
bench's simulator, tests/bench/fleet_sim.c) speaks the real protocol — CURVE, Hello,
ConfigApplied, heartbeats, Health, ReportBatches paced by ReportAcks — from one process, so a
test can have many children. One parent and database for the module."""

import os
import re
import subprocess

import pytest

from harness import Parent, wait_until
from cluster import BIN_DIR

SIM = os.path.join(os.path.dirname(BIN_DIR), "tests", "fleet_sim")


@pytest.fixture(scope="module")
def parent(module_dir, pg):
    pg.reset_database()
    p = Parent(module_dir, pg.dsn)
    p.start()
    yield p
    p.stop()


def _sim(parent, pg, k, seconds, prefix, reports=False, storm_at=None):
    key = open(os.path.join(parent.state_dir, "parent.pub")).read().strip()
    cmd = [SIM, "--endpoint", parent.cluster_endpoint, "--server-key", key, "--dsn", pg.dsn,
           "-k", str(k), "--seconds", str(seconds), "--prefix", prefix]
    if reports:
        cmd += ["--reports", "--batch", "50"]
    if storm_at is not None:
        cmd += ["--enrol-endpoint", parent.enrol_endpoint, "--storm-at", str(storm_at)]
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    assert cp.returncode == 0, cp.stderr
    return dict(kv.split("=", 1) for kv in cp.stdout.split())


def test_r10_1_reports_acknowledged_after_commit_none_twice(parent, pg):
    """R10.1: 20 children reporting as fast as acknowledgements allow: every child links and
    applies the configuration, none loses its link, every acknowledged record is in
    message_log (acknowledged ≤ stored) and none is stored twice; the loop answered every
    Hello with the snapshot."""
    r = _sim(parent, pg, 20, 6, "ackt", reports=True)
    assert r["configs"] == "20", r
    assert r["links_dropped"] == "0", r
    assert int(r["acked_records"]) > 0, r
    assert int(r["acked_records"]) <= int(r["rows"]), r
    assert r["rows"] == r["distinct"], r
    rows = pg.query("SELECT count(*) FROM children WHERE name LIKE 'ackt-%' "
                    "AND applied_config_version IS NOT NULL AND last_health IS NOT NULL")
    assert rows[0][0] == 20, rows
    # their links end with the simulator: the down event of that storm is written before the
    # next test makes its own
    wait_until(lambda: pg.query("SELECT 1 FROM events WHERE message LIKE "
                                "'20 children down at once:%'"), 30, "the 20 children's down event")


def test_r10_2_many_children_down_one_event_one_mail(parent, pg):
    """R10.2: twelve children that fall silent at once (the simulator exits; the parent sees
    them go over about two seconds, as their heartbeats were spread) become one "12 children
    down at once" event naming them and one notification mail, not twelve; the state of each
    is still recorded (connected = false)."""
    before = pg.query("SELECT count(*) FROM notifications")[0][0]
    mark = parent.proc.log_mark()
    _sim(parent, pg, 12, 3, "storm")
    wait_until(lambda: pg.query("SELECT count(*) FROM children WHERE name LIKE 'storm-%' "
                                "AND NOT connected")[0][0] == 12, 30,
               "the twelve children marked down")
    parent.proc.wait_for_log(r"child down name=storm-00011", 5, since=mark)
    ev = wait_until(lambda: pg.query("SELECT severity, message FROM events WHERE message LIKE "
                                     "'%children down at once%storm-%'") or None, 10,
                    "the aggregated down event")
    assert len(ev) == 1 and ev[0][0] == "warning", ev
    assert ev[0][1].startswith("12 children down at once:"), ev
    assert all(f"storm-{i:05d}" in ev[0][1] for i in range(12)), ev
    assert not pg.query("SELECT 1 FROM events WHERE message LIKE 'child storm-%down%'")
    notes = pg.query("SELECT subject FROM notifications ORDER BY id")[before:]
    assert [n[0] for n in notes if "down" in n[0]] == ["Portcullis: 12 children are down"], notes


def test_r10_1_removed_child_holds_up_no_state_write(parent, pg):
    """R10.1: a child removed while its up event still waits for the event window is
    recorded without it; the writer goes on, so the state of the other children is still
    written (the full suite once found every later write held behind such an event)."""
    import threading
    from harness import bin_path, run
    done = {}
    t = threading.Thread(target=lambda: done.update(r=_sim(parent, pg, 2, 10, "gone")))
    t.start()
    wait_until(lambda: pg.query("SELECT count(*) FROM children WHERE name LIKE 'gone-%' "
                                "AND connected")[0][0] == 2, 20, "both children up")
    r = run([bin_path("portcullis"), "-c", parent.conf_path, "child", "remove", "gone-00000"],
            timeout=30, check=False)
    assert r.returncode == 0, r.stderr
    t.join(60)
    assert done["r"]["configs"] == "2", done
    wait_until(lambda: pg.query("SELECT 1 FROM events WHERE message LIKE "
                                "'%gone-00000 up from%' AND child_id IS NULL"), 20,
               "the removed child's up event, recorded without it")
    wait_until(lambda: pg.query("SELECT 1 FROM children WHERE name = 'gone-00001' "
                                "AND NOT connected"), 30,
               "the other child's state still written after the removal")


def test_r10_2_reconnect_storm_settles_without_drops(parent, pg):
    """R10.2: 150 children enrol with one-time tokens through the enrolment socket (each
    answered, none refused), link and take the configuration; 4 s in, all of them lose their
    link at the same moment and come back as real children do (a wait from the upper half of
    the backoff, an enrolment request — answered from the parent's keys — a new link, Hello):
    every one is linked again within 10 s and no link drops afterwards. Their 150 downs and
    150 ups are one event each, not 300."""
    r = _sim(parent, pg, 150, 14, "relink", storm_at=4)
    assert r["enrolled"] == "150" and r["enrol_refused"] == "0", r
    assert r["configs"] == "150", r
    assert r["storm_back"] == "150", r
    assert 0 < int(r["storm_settle_ms"]) <= 10000, r
    assert r["storm_links_dropped"] == "0" and r["links_dropped"] == "0", r
    assert pg.query("SELECT count(*) FROM children WHERE name LIKE 'relink-%' "
                    "AND enrolment = 'enrolled'")[0][0] == 150
    wait_until(lambda: pg.query("SELECT 1 FROM events WHERE message LIKE "
                                "'150 children down at once:%relink-%'"), 30,
               "the storm's down event")
    events = pg.query("SELECT message FROM events WHERE message LIKE '%relink-%'")
    assert not [e for e in events if re.match(r"child relink-\d+ (up|down)", e[0])], events
    assert len([e for e in events if "enrolled with a one-time token" in e[0]]) == 150
