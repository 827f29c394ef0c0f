"""Upstream MTA retry settings on the parent: the R4.2 check and the R4.3 timetable as
`portcullis mta timetable` prints it."""

import json

import pytest

from harness import Cluster


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = Cluster(module_dir, pg, n_children=1, upstream=False).start()
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
