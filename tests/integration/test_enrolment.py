"""Who may talk to the parent: CURVE with enrolled keys only (R0.2), and enrolment by
administrator approval (R7.1)."""

import re
import time

import pytest
import zmq

from harness import Cluster, entry_is, wait_until

REFUSAL_BOUND_S = 5.0
PENDING_WINDOW_S = 3.0   # how long a pending child is watched to make sure it never shows up


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = Cluster(module_dir, pg, n_children=1, upstream=False, wait_scan=False).start()
    yield c
    c.stop()


def test_r0_unknown_curve_key_refused(cluster):
    """R0.2/R7.1: a CURVE client with a fresh random keypair that knows the parent's public key
    connects to cluster_listen and sends a frame: the parent logs a refusal naming the
    client's address 127.0.0.1 within 5 s, the CURVE handshake never succeeds and nothing is
    answered."""
    parent = cluster.parent
    pub, sec = zmq.curve_keypair()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.curve_publickey = pub
    sock.curve_secretkey = sec
    sock.curve_serverkey = cluster.curve_server_key()
    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED
                                      | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                      | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                      | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    mark = parent.proc.log_mark()
    try:
        sock.connect(parent.cluster_endpoint)
        t0 = time.monotonic()
        try:
            sock.send(b"hello from an unenrolled key", zmq.NOBLOCK)
        except zmq.Again:
            pass  # not connected, so nothing was queued: the handshake is what is refused
        m = parent.proc.wait_for_log(r"(?m)^(?=.*refused)(?=.*127\.0\.0\.1).*$", REFUSAL_BOUND_S,
                                     since=mark)
        assert time.monotonic() - t0 < REFUSAL_BOUND_S
        assert "refused" in m.group(0)

        # watch the client for a bounded time: no reply, no successful handshake
        events = []
        deadline = time.monotonic() + 2.0
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        answered = False
        for _ in range(1000):  # bounded; ends at the deadline
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready = dict(poller.poll(timeout=max(1, int(left * 1000))))
            if sock in ready:
                answered = True
                break
            if monitor in ready:
                from zmq.utils.monitor import recv_monitor_message
                events.append(recv_monitor_message(monitor)["event"])
        assert not answered, "the parent answered an unenrolled client"
        assert zmq.EVENT_HANDSHAKE_SUCCEEDED not in events, "CURVE handshake succeeded"
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        ctx.term()


def _list_entry(cluster, name):
    for e in cluster.child_list():
        if e.get("name") == name:
            return e
    return None


def test_r7_child_without_token_pending_until_approved(cluster):
    """R7.1: a child started without enroll_token shows "pending" in `child list --json` and
    in status and never "up"; after `portcullis child approve NAME` it becomes "up" and runs
    the current configuration version."""
    child = cluster.add_child("child3", token=False)

    entry = wait_until(lambda: (lambda e: e if e and entry_is(e, "pending") else None)(
        _list_entry(cluster, "child3")), 20, "child3 to be listed as pending")
    assert not entry_is(entry, "up"), entry
    st = wait_until(lambda: cluster.child_status("child3"), 10, "child3 in status")
    assert st.get("enrolment") == "pending", st
    assert st.get("state") != "up", st

    deadline = time.monotonic() + PENDING_WINDOW_S
    seen = []
    for _ in range(200):  # bounded; ends at the deadline
        if time.monotonic() >= deadline:
            break
        c = cluster.child_status("child3")
        seen.append(c.get("state") if c else None)
        assert c is not None and c.get("state") != "up", f"unapproved child3 shown up: {c}"
        time.sleep(0.1)  # observation interval of a window that must stay negative
    assert seen and child.proc.running()
    assert not re.search(r"link up", child.proc.log_since(child.mark))

    cluster.cli_ok("child", "approve", "child3", "--fingerprint", child.fingerprint())
    c = cluster.wait_child_state("child3", "up", 30)
    assert c.get("enrolment") == "enrolled", c
    version = cluster.status()["config_version"]
    cluster.wait_children_current(version, 15, names=["child3"])
    child.wait_link(15)
    assert entry_is(_list_entry(cluster, "child3"), "enrolled") or \
        entry_is(_list_entry(cluster, "child3"), "up")
