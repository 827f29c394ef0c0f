"""Upstream MTA retry settings on the parent: the R4.2 check and the R4.3 timetable as
`portcullis mta timetable` prints it, and a child applying them to its upstream Postfix with
postconf and reload (the commands are settings; here they name the test upstream instance)."""

import json

import pytest

from harness import Cluster, run, wait_until
from test_supervision import POSTCONF, system_events, system_postfix_snapshot


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = Cluster(module_dir, pg, n_children=1).start()
    yield c
    c.stop()


def test_r4_3_default_timetable_is_seed_003(cluster):
    """R4.1/R4.3: with the default mta.* settings and a failure at 9:15, the timetable is the
    model's: retries at 9:35, 10:05, 11:05, then hourly; the 26th attempt, at 10:05 the next
    day, is past the 1 d lifetime and bounces if it fails."""
    out = cluster.cli_ok("mta", "timetable")
    lines = out.splitlines()
    for expect in ("09:35        retry 1 ", "10:05        retry 2 ", "11:05        retry 3 ",
                   "12:05        retry 4 ", "day 2 09:05  retry 25 "):
        assert any(ln.startswith(expect) for ln in lines), (expect, out)
    last = [ln for ln in lines if "retry" in ln][-1]
    assert last.startswith("day 2 10:05  retry 26 ") and "bounced" in last, out

    data = json.loads(cluster.cli_ok("mta", "timetable", "--json"))
    at = [r["after_failure_s"] for r in data["retries"]]
    assert at[:4] == [20 * 60, 50 * 60, 110 * 60, 170 * 60]
    assert len(at) == 26 and data["retries"][-1]["bounce_if_failed"]
    assert not any(r["bounce_if_failed"] for r in data["retries"][:-1])


def test_r4_2_minimal_backoff_below_queue_run_delay_refused(cluster):
    """R4.2: minimal_backoff_time below queue_run_delay is refused with a message naming both,
    and nothing changes (no new configuration version)."""
    before = cluster.status()["config_version"]
    rc, _out, err = cluster.cli("settings", "set", "mta.minimal_backoff_time", "600")
    assert rc == 2, err
    assert "mta.minimal_backoff_time" in err and "mta.queue_run_delay" in err, err
    assert cluster.status()["config_version"] == before
    # the other order is fine: lower the queue run delay first, then the backoff
    cluster.cli_ok("settings", "set", "mta.queue_run_delay", "300")
    cluster.cli_ok("settings", "set", "mta.minimal_backoff_time", "600")
    data = json.loads(cluster.cli_ok("mta", "timetable", "--json", "--first-run-after", "1m"))
    assert [r["after_failure_s"] for r in data["retries"][:3]] == [11 * 60, 31 * 60, 71 * 60]
    rc, _out, err = cluster.cli("mta", "timetable", "--failure-at", "25:00")
    assert rc == 2 and "HH:MM" in err


def _mta_state(cluster):
    h = (cluster.child_status("child1") or {}).get("health") or {}
    return h.get("mta_state")


def test_r4_3_child_applies_settings_to_its_upstream(cluster):
    """R4.3: with mta.apply on and the commands pointing at the test upstream instance, a
    change of mta.queue_run_delay reaches its main.cf (`postconf -c DIR -h`) through the
    child's postconf + reload of mta.adapter postfix:DIR (R8.2); status shows mta_state "ok" and
    an event "MTA settings applied" is recorded. An adapter naming a directory without Postfix
    shows in mta_state and as an error event and `status` text; fixing it brings "ok" back;
    mta.apply off shows "off". The system
    Postfix's /etc/postfix is never touched."""
    etc = system_postfix_snapshot()
    up = cluster.upstream
    cluster.cli_ok("settings", "set", "cluster.health_interval_s", "1")
    cluster.cli_ok("settings", "set", "mta.adapter", cluster.upstream_adapter())
    cluster.cli_ok("settings", "set", "mta.apply", "true")
    # R4.2 holds: minimal_backoff_time (600 s after the test above) >= 420
    mark = up.log_mark()
    cluster.cli_ok("settings", "set", "mta.queue_run_delay", "420")

    def postconf(name):
        return run([POSTCONF, "-c", up.conf_dir, "-h", name]).stdout.strip()
    wait_until(lambda: postconf("queue_run_delay") == "420s", 30,
               "queue_run_delay = 420s in the upstream's main.cf")
    assert postconf("minimal_backoff_time") == "600s"
    assert postconf("bounce_queue_lifetime") == "0s"
    wait_until(lambda: _mta_state(cluster) == "ok", 30, "mta_state ok in status")
    up.wait_for_log(r"reload -- version", 30, since=mark)
    ev = wait_until(lambda: [e for e in system_events(cluster)
                             if "MTA settings applied: queue_run_delay=420s" in e["message"]],
                    30, "the event 'MTA settings applied'")
    assert ev[-1]["severity"] == "info"

    cluster.cli_ok("settings", "set", "mta.adapter", "postfix:/nonexistent/portcullis-test")
    state = wait_until(lambda: (lambda s: s if s and s.startswith("postconf failed")
                                else None)(_mta_state(cluster)), 30, "mta_state with the error")
    assert state.startswith("postconf failed: exit 1") and "/nonexistent/portcullis-test" in state
    wait_until(lambda: [e for e in system_events(cluster)
                        if e["severity"] == "error" and e["message"].startswith(
                            "MTA settings not applied: postconf failed: exit 1")],
               30, "an error event for the failed postconf")
    assert "! MTA settings: postconf failed: exit 1" in cluster.cli_ok("status")

    cluster.cli_ok("settings", "set", "mta.adapter", cluster.upstream_adapter())
    wait_until(lambda: _mta_state(cluster) == "ok", 30, "mta_state ok again")
    cluster.cli_ok("settings", "set", "mta.apply", "false")
    wait_until(lambda: _mta_state(cluster) == "off", 30, "mta_state off")
    assert system_postfix_snapshot() == etc, "the system Postfix configuration was changed"
