"""Child health as the parent sees it: missed reports mark a child down, its return marks it up
(R7.2). Destructive (SIGKILL of a child manager), so it has its own cluster."""

import time

import pytest

from harness import LOOPBACK, Cluster, pid_alive, wait_port_closed, wait_until

DOWN_BOUND_S = 30.0


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = Cluster(module_dir, pg, n_children=2, upstream=False).start()
    try:
        for n in c.children:
            c.wait_child_state(n, "up", 15)
    except BaseException:
        c.stop()
        raise
    yield c
    c.stop()


def test_r7_killed_child_down_then_up_after_restart(cluster):
    """R7.2: a child whose manager is killed with SIGKILL (its scan service follows by
    PDEATHSIG) is shown "down" within 30 s with the default settings (the parent judges
    liveness by 2 s heartbeats: 3 missed are 6 s), the other child stays "up"; restarted with the same state dir (same key, no new
    enrolment) it is shown "up" again with the current configuration version."""
    c1 = cluster.children["child1"]
    key_before = c1.public_key_file()
    assert key_before, "child1 wrote no state_dir/child.pub"
    scan_pids = c1.proc.scan_services()

    t0 = time.monotonic()
    c1.kill9()
    wait_port_closed(LOOPBACK, c1.smtp_port, 5, "child1's scan service to die with its manager")
    # the port closes first; the process itself ends a moment later (PDEATHSIG → SIGTERM)
    wait_until(lambda: not [p for p in scan_pids if pid_alive(p)], 10,
               "child1's scan service process to exit after its manager was killed")

    st = cluster.wait_child_state("child1", "down", DOWN_BOUND_S + 5)
    elapsed = time.monotonic() - t0
    print(f"R7.2: child1 shown down {elapsed:.2f}s after SIGKILL")
    assert elapsed < DOWN_BOUND_S, f"child1 shown down only after {elapsed:.1f}s"
    assert cluster.child_status("child2").get("state") == "up"
    assert st.get("enrolment") == "enrolled"

    c1.start()
    up = cluster.wait_child_state("child1", "up", 30)
    assert c1.public_key_file() == key_before, "restarted child made a new key"
    version = cluster.status()["config_version"]
    cluster.wait_children_current(version, 15, names=["child1"])
    assert up.get("enrolment") == "enrolled"
