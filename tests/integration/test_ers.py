"""Email reputation (R3.1): DNS block-list look-ups of the client address XFORWARD gives, against
a real DNS server (unbound on a loopback port, tests/integration/dns.py). One cluster for the
module: PostgreSQL, parent, one child whose child.conf points dns_server at unbound, the
downstream Postfix; messages go straight to the child's scan service with an XFORWARD ADDR of
our choosing. The tests run in order: refusal of a bad zones value, listings, outage, recovery."""

import os
import smtplib
import time

import pytest

import signatures
from dns import UnboundServer, reverse_ipv4
from harness import LOOPBACK, Cluster, make_dir, make_message, new_token, wait_until
from scanning import (SENDER, QUARANTINED_RE, log_query, scan_dirs, set_setting,
                      wait_signatures_loaded)

ZONE = "bl.test"
SPAM_CLIENT = "192.0.2.10"      # 127.0.0.2 in the zone: "spam"
EXPLOIT_CLIENT = "192.0.2.11"   # 127.0.0.4: "exploit"
CLEAN_CLIENT = "192.0.2.20"     # not in the zone (NXDOMAIN)
ZONES = f"{ZONE}=127.0.0.2:spam,127.0.0.4:exploit"
CHECK_INTERVAL_S = 2
TIMEOUT_MS = 1000
HEALTH_INTERVAL_S = 1           # status shows a child's ers_state this often
STATE_BOUND_S = CHECK_INTERVAL_S + TIMEOUT_MS / 1000 + HEALTH_INTERVAL_S + 3  # + scheduling
RULE = "ERS spam"
RCPT = "user@child1.test"


@pytest.fixture(scope="module")
def dns(module_dir):
    srv = UnboundServer(module_dir, ZONE, {
        f"{reverse_ipv4(SPAM_CLIENT)}.{ZONE}": "127.0.0.2",
        f"{reverse_ipv4(EXPLOIT_CLIENT)}.{ZONE}": "127.0.0.4",
    }).start()
    yield srv
    srv.proc.stop()


@pytest.fixture(scope="module")
def cluster(module_dir, pg, dns):
    base = os.path.join(module_dir, "cluster")

    def conf(name):
        dirs = scan_dirs(base, name)
        make_dir(dirs["signature_dir"], 0o755)
        signatures.write_standard_set(dirs["signature_dir"], 0)
        return dict(dirs, dns_server=dns.server)

    c = Cluster(base, pg, n_children=1, upstream=False, child_conf=conf).start()
    try:
        child = c.children["child1"]
        wait_signatures_loaded(child, 0, 60, since=child.mark)
    except BaseException:
        c.stop()
        raise
    yield c
    c.stop()


def _send(cluster, client_addr, token):
    """One message straight to child1's scan service with XFORWARD ADDR=client_addr; returns
    (code, reply text, seconds)."""
    port = cluster.children["child1"].smtp_port
    msg = make_message(token, SENDER, RCPT)
    t0 = time.monotonic()
    with smtplib.SMTP(LOOPBACK, port, local_hostname="mx.portcullis.test", timeout=30) as s:
        s.ehlo()
        assert s.has_extn("xforward"), "the scan service does not offer XFORWARD"
        code, resp = s.docmd("XFORWARD", f"ADDR={client_addr} NAME=client.example")
        assert code == 250, (code, resp)
        code, resp = s.mail(SENDER)
        assert code == 250, (code, resp)
        code, resp = s.rcpt(RCPT)
        assert code in (250, 251), (code, resp)
        code, resp = s.data(msg)
        s.quit()
    return code, resp.decode("utf-8", "replace"), time.monotonic() - t0


def _ers_verdict(cluster, token, timeout=60):
    """The ers verdict of the tracking record of the message carrying token (its subject),
    once the parent has it."""
    def got():
        for r in log_query(cluster):
            if token in (r.get("subject") or ""):
                v = [v for v in r.get("verdicts") or [] if v.get("engine") == "ers"]
                return v[0] if v else {"result": "(no ers verdict)", "record": r}
        return None
    return wait_until(got, timeout, f"the tracking record of {token}")


def _ers_state(cluster):
    c = cluster.child_status("child1") or {}
    for d in (c, c.get("health") or {}):
        if "ers_state" in d:
            return d["ers_state"]
    return None


def _wait_state(cluster, state, timeout):
    return wait_until(lambda: _ers_state(cluster) == state, timeout,
                      f"child1's ers_state to be {state!r} in `portcullis status --json`")


def test_r3_1_malformed_zones_refused(cluster):
    """R3.1: a malformed ers.zones value is refused by `portcullis settings set` with the
    format in the message, and nothing changes; a well-formed one is accepted."""
    v = cluster.status()["config_version"]
    for bad in (f"{ZONE}=127.0.0.2", f"{ZONE}=127.0.0.300:spam", "bad zone=any:listed",
                f"{ZONE}=any:spam list", f"{ZONE}"):
        rc, out, err = cluster.cli("settings", "set", "ers.zones", bad)
        assert rc != 0, f"ers.zones={bad!r} accepted: {out}"
        text = out + err
        assert "ers.zones" in text and "ZONE=CODE:LISTING" in text, text
    assert cluster.status()["config_version"] == v
    assert _ers_state(cluster) == "off"


def test_r3_1_listed_client_matches_policy(cluster, dns):
    """R3.1: with ers.enabled and a zone, a client listed as spam gets the policy rule
    `--if ers_listed=spam --then quarantine` (verdict ers listed bl.test:spam); a client listed
    as exploit is not quarantined by that rule but has its verdict; a clean client's message is
    delivered (verdict ers not_listed). ers_state is "ok"."""
    cluster.cli_ok("settings", "set", "cluster.health_interval_s", str(HEALTH_INTERVAL_S))
    cluster.cli_ok("settings", "set", "ers.zones", ZONES)
    cluster.cli_ok("settings", "set", "ers.check_interval_s", str(CHECK_INTERVAL_S))
    cluster.cli_ok("settings", "set", "ers.timeout_ms", str(TIMEOUT_MS))
    cluster.cli_ok("policy", "add", RULE, "--if", "ers_listed=spam", "--then", "quarantine")
    set_setting(cluster, "ers.enabled", "true")
    _wait_state(cluster, "ok", 30)

    tok = new_token("ers")
    code, text, _ = _send(cluster, SPAM_CLIENT, tok)
    assert code == 250 and QUARANTINED_RE.search(f"{code} {text}"), (code, text)
    v = _ers_verdict(cluster, tok)
    assert v.get("result") == "listed" and v.get("detail") == f"{ZONE}:spam", v

    tok = new_token("ers")
    code, text, _ = _send(cluster, EXPLOIT_CLIENT, tok)
    assert code == 250 and not QUARANTINED_RE.search(text), (code, text)
    v = _ers_verdict(cluster, tok)
    assert v.get("result") == "listed" and v.get("detail") == f"{ZONE}:exploit", v

    tok = new_token("ers")
    code, text, _ = _send(cluster, CLEAN_CLIENT, tok)
    assert code == 250 and not QUARANTINED_RE.search(text), (code, text)
    v = _ers_verdict(cluster, tok)
    assert v.get("result") == "not_listed", v


def test_r3_1_dns_down_mail_flows_then_recovers(cluster, dns):
    """R3.1: with the DNS server stopped, mail still flows: a listed client's message is
    delivered (no 4xx, not quarantined) with verdict ers skipped, within the look-up timeout
    (DNS never stalls the SMTP port); ers_state goes "failing" in status. After the DNS server
    comes back, ers_state returns to "ok" by itself within the check interval and listings
    match again."""
    dns.stop()
    tok = new_token("ers")
    code, text, secs = _send(cluster, SPAM_CLIENT, tok)
    assert code == 250 and not QUARANTINED_RE.search(text), (code, text)
    assert secs < TIMEOUT_MS / 1000 + 5, f"DNS outage stalled the transaction {secs:.1f}s"
    v = _ers_verdict(cluster, tok)
    assert v.get("result") == "skipped", v
    _wait_state(cluster, "failing", STATE_BOUND_S)

    tok = new_token("ers")
    code, text, secs = _send(cluster, SPAM_CLIENT, tok)   # failing: skipped at once
    assert code == 250 and not QUARANTINED_RE.search(text), (code, text)
    v = _ers_verdict(cluster, tok)
    assert v.get("result") == "skipped", v

    dns.start()
    t0 = time.monotonic()
    _wait_state(cluster, "ok", STATE_BOUND_S)
    print(f"R3.1: ers_state ok {time.monotonic() - t0:.1f}s after the DNS server came back")
    tok = new_token("ers")
    code, text, _ = _send(cluster, SPAM_CLIENT, tok)
    assert code == 250 and QUARANTINED_RE.search(f"{code} {text}"), (code, text)
    v = _ers_verdict(cluster, tok)
    assert v.get("result") == "listed", v
