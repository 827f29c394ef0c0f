"""Settings on the parent: validation (R6.1), a change becoming a new configuration version
that every child acknowledges quickly (R6.2) and that the scan service applies without a
restart (R0.4)."""

import re
import smtplib
import time

import pytest

from harness import Cluster, account, make_message, new_token, wait_until

SENDER = "sender@origin.test"
PUSH_BOUND_S = 2.0   # a settings change must be running on every child within this time


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = Cluster(module_dir, pg, n_children=2).start()
    yield c
    c.stop()


def _get(cluster, name):
    return cluster.cli_ok("settings", "get", name)


def test_r6_out_of_range_value_refused(cluster):
    """R6.1: `settings set smart_scan.query_timeout_ms 60001` is refused (non-zero exit, a
    message naming the setting and its range 1..60000) and nothing changes: the value and
    the configuration version stay as they were."""
    v0 = cluster.status()["config_version"]
    before = _get(cluster, "smart_scan.query_timeout_ms")
    assert "1500" in before

    rc, out, err = cluster.cli("settings", "set", "smart_scan.query_timeout_ms", "60001")
    assert rc != 0, f"out-of-range value accepted: {out!r} {err!r}"
    assert "smart_scan.query_timeout_ms" in err, err
    assert "60000" in err and re.search(r"(?<![\d.])1(?![\d.])", err), \
        f"message does not give the range 1..60000: {err!r}"

    assert _get(cluster, "smart_scan.query_timeout_ms") == before
    assert cluster.status()["config_version"] == v0


def test_r6_change_pushed_and_applied_live(cluster):
    """R6.2 (and R0.4): `settings set smtp.max_message_size 200000` creates a new configuration
    version that both children report running (config_current true) within 2 s of the set;
    `settings get` shows the value; the scan services apply it without a restart (same pids):
    a 300 KB message sent through the upstream is bounced by Postfix (the child's 552, or
    Postfix's own bounce because the child now advertises SIZE 200000), a 300 KB DATA sent
    straight to each child without SIZE gets 552 from the child, and small messages are
    delivered."""
    up, down = cluster.upstream, cluster.downstream
    st0 = cluster.status()
    v0 = st0["config_version"]
    cluster.wait_children_current(v0, 10)
    scan_pids = {n: c.proc.scan_services() for n, c in cluster.children.items()}
    assert all(scan_pids.values()), f"no scan service process under a child manager: {scan_pids}"

    t0 = time.monotonic()
    cluster.cli_ok("settings", "set", "smtp.max_message_size", "200000")

    def all_current():
        st = cluster.status()
        v = st.get("config_version")
        if not isinstance(v, int) or v <= v0:
            return None
        for n in cluster.children:
            c = cluster.child_status(n, st)
            if not c or c.get("config_version") != v or c.get("config_current") is not True:
                return None
        return st

    st1 = wait_until(all_current, 10, "both children to run the new config version")
    elapsed = time.monotonic() - t0
    print(f"R6.2: both children running config_version {st1['config_version']} "
          f"{elapsed:.3f}s after the set")
    assert elapsed < PUSH_BOUND_S, f"children took {elapsed:.2f}s to apply the change"
    assert "200000" in _get(cluster, "smtp.max_message_size")
    assert st1["config_version"] > v0

    # the new limit is in force in the running scan services
    before = down.delivered_count()
    mark = up.log_mark()
    small, large_ids = [], {}
    for dom in ("child1.test", "child2.test"):
        tok = new_token(f"c-large-{dom.split('.')[0]}")
        big = make_message(tok, SENDER, f"big@{dom}", kind="large", size=300 * 1024)
        assert len(big) > 300 * 1024
        large_ids[up.send(big, SENDER, [f"big@{dom}"])] = tok
        tok = new_token(f"c-small-{dom.split('.')[0]}")
        small.append(tok)
        up.send(make_message(tok, SENDER, f"small@{dom}"), SENDER, [f"small@{dom}"])

    delivered = down.wait_delivered(before + 2, 60)
    account(small, delivered)

    def bounced():
        log = up.log_since(mark)
        lines = {}
        for qid in large_ids:
            m = re.search(r"(?m)^.*\b" + qid + r": to=<big@.*status=bounced.*$", log)
            if not m:
                return None
            lines[qid] = m.group(0)
        return lines

    lines = wait_until(bounced, 60, "both 300 KB messages to be bounced upstream")
    for qid, line in lines.items():
        print(f"R6.2: oversize message bounced: {line.split(': ', 1)[-1]}")
        assert re.search(r"said: 552[ -]", line) or "exceeds size limit 200000" in line, line
    # and the scan service enforces it itself: a client that ignores SIZE gets 552 at DATA
    for n, child in cluster.children.items():
        with smtplib.SMTP("127.0.0.1", child.smtp_port, timeout=30) as s:
            s.ehlo("client.portcullis.test")
            assert s.esmtp_features.get("size") == "200000", (n, s.esmtp_features)
            assert s.mail(SENDER)[0] == 250
            assert s.rcpt(f"direct@{n}.test")[0] == 250
            tok = new_token(f"c-direct-{n}")
            large_ids[f"direct-{n}"] = tok
            code, resp = s.data(make_message(tok, SENDER, f"direct@{n}.test", kind="large",
                                             size=300 * 1024))
            print(f"R6.2: {n} answered a 300 KB DATA with {code} {resp.decode(errors='replace')}")
            assert code == 552, (n, code, resp)
    large_tokens = set(large_ids.values())
    assert not [d for d in down.delivered() if d.token in large_tokens], "oversize message delivered"
    up.wait_queue_empty(30)

    for n, pids in scan_pids.items():
        now = cluster.children[n].proc.scan_services()
        assert set(pids) <= set(now), \
            f"{n}: scan service restarted to apply the setting (pids {pids} -> {now})"
