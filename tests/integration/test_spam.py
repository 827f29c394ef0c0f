"""Anti-spam (R5.1) and smart scan's light pattern (R2.1) through the real scan service: one
cluster for the module (PostgreSQL, parent, one child whose child.conf points dns_server at a
real unbound serving a block-list zone, and light_signature_dir at a directory of our own),
messages sent straight to the child's scan service, with XFORWARD ADDR where the client address
matters. The default rules of 007_spam.sql and the default policy rule "Spam" are what is
tested first; the tests then change settings and run in order."""

import binascii
import json
import os
import re
import smtplib
import threading

import pytest

import signatures
from dns import UnboundServer, reverse_ipv4
from harness import LOOPBACK, Cluster, make_dir, make_message, new_token, wait_until
from scanning import (SENDER, attachment_message, log_query, scan_dirs, send_direct,
                      set_setting, wait_config_current, wait_signatures_loaded)
from test_smartscan import Sps

RCPT = "user@child1.test"
ZONE = "bl.test"
SPAM_CLIENT = "192.0.2.10"      # 127.0.0.2 in the zone: listing "spam"
CLEAN_CLIENT = "192.0.2.20"     # not in the zone
ZONES = f"{ZONE}=127.0.0.2:spam"
LISTED_URL = "http://login.phish.example.test/account"
DEFAULT_SPAM_RULES = ["caps_subject", "spam_phrases", "money_phrases", "missing_date",
                      "missing_message_id", "ers_spam", "bad_urls", "gtube"]
LIGHT_PAYLOAD = b"portcullis light-pattern test payload: locally known bad content\r\n"
LIGHT_NAME = "Portcullis.Test.Light"


@pytest.fixture(scope="module")
def dns(module_dir):
    srv = UnboundServer(module_dir, ZONE, {
        f"{reverse_ipv4(SPAM_CLIENT)}.{ZONE}": "127.0.0.2"}).start()
    yield srv
    srv.proc.stop()


@pytest.fixture(scope="module")
def light_dir(module_dir):
    return make_dir(os.path.join(module_dir, "light"), 0o755)  # empty at start


@pytest.fixture(scope="module")
def cluster(module_dir, pg, dns, light_dir):
    base = os.path.join(module_dir, "cluster")

    def conf(name):
        dirs = scan_dirs(base, name)
        make_dir(dirs["signature_dir"], 0o755)
        signatures.write_standard_set(dirs["signature_dir"], 0)
        return dict(dirs, dns_server=dns.server, light_signature_dir=light_dir)

    c = Cluster(base, pg, n_children=1, upstream=False, child_conf=conf).start()
    try:
        child = c.children["child1"]
        wait_signatures_loaded(child, 0, 60, since=child.mark)
    except BaseException:
        c.stop()
        raise
    yield c
    c.stop()


def _raw(token, subject, body, date=True, message_id=True):
    """A text/plain message; the token is in the subject (upper-cased) and the body."""
    h = [f"From: <{SENDER}>", f"To: <{RCPT}>", f"Subject: {subject} {token.upper()}"]
    if date:
        h.append("Date: Tue, 24 Nov 2026 10:00:00 +0000")
    if message_id:
        h.append(f"Message-ID: <{token}@origin.test>")
    h += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    return ("\r\n".join(h) + "\r\n\r\n" + body + f"\r\ntoken {token}\r\n").encode()


def _send(cluster, msg, client_addr=None):
    """One message to child1's scan service, with XFORWARD ADDR when given; (code, text)."""
    if client_addr is None:
        r = send_direct(cluster.children["child1"].smtp_port, msg)
        return r.code, r.text
    with smtplib.SMTP(LOOPBACK, cluster.children["child1"].smtp_port,
                      local_hostname="mx.portcullis.test", timeout=30) as s:
        s.ehlo()
        code, resp = s.docmd("XFORWARD", f"ADDR={client_addr} NAME=client.example")
        assert code == 250, (code, resp)
        s.mail(SENDER)
        s.rcpt(RCPT)
        code, resp = s.data(msg)
        s.quit()
    return code, resp.decode("utf-8", "replace")


def _record(cluster, token, *filters, timeout=60):
    """The tracking record of the message whose subject carries token, once the parent has it."""
    def got():
        for r in log_query(cluster, *filters):
            if token.upper() in (r.get("subject") or "").upper():
                return r
        return None
    return wait_until(got, timeout, f"the tracking record of {token}")


def _verdict(rec, engine):
    v = [v for v in rec.get("verdicts") or [] if v.get("engine") == engine]
    return v[0] if v else None


def _spam(rec):
    """(score, [rule names]) from the record's spam verdict."""
    v = _verdict(rec, "spam")
    assert v is not None and v.get("result") == "score", rec
    m = re.fullmatch(r"(-?[0-9.e+]+) rules=(.*)", v.get("detail", ""))
    assert m, v
    return float(m.group(1)), [n for n in m.group(2).split(",") if n]


def test_r5_1_default_rules_quarantine_spam(cluster):
    """R5.1: the default anti-spam rules are seeded and listed; the default policy rule "Spam"
    (spam_score at or above 5 → quarantine to "Default quarantine") follows "Viruses" and "Scan
    exceptions". A spammy message (capitals in the subject, spam phrases, no Date, no
    Message-ID) is quarantined by "Spam", its score and matching rules in `log query --json`
    (verdict spam:score, which --verdict finds); a normal message is delivered with score 0."""
    rules = json.loads(cluster.cli_ok("spam", "list", "--json"))["rules"]
    assert [r["name"] for r in rules] == DEFAULT_SPAM_RULES
    assert all(r["enabled"] for r in rules)
    assert "caps_subject" in cluster.cli_ok("spam", "list")
    policy = json.loads(cluster.cli_ok("policy", "list", "--json"))["rules"]
    assert [r["name"] for r in policy] == ["Viruses", "Scan exceptions", "Spam"]
    assert policy[2]["conditions"] == [{"kind": "spam_score", "value": "5", "negate": False}]
    assert policy[2]["actions"] == [{"kind": "quarantine", "arg": "Default quarantine"}]
    wait_config_current(cluster)

    tok = new_token("spammy")
    code, text = _send(cluster, _raw(tok, "YOU HAVE WON", "Dear friend, you have won. Act now!",
                                     date=False, message_id=False))
    assert code == 250 and "quarantined" in text, (code, text)
    rec = _record(cluster, tok)
    assert rec["rule"] == "Spam" and rec["action"] == "quarantined", rec
    score, names = _spam(rec)
    assert score == 8.5, rec
    assert names == ["caps_subject", "spam_phrases", "missing_date", "missing_message_id"], rec
    assert _record(cluster, tok, "--verdict", "spam:score")["msg_id"] == rec["msg_id"]

    tok = new_token("normal")
    code, text = _send(cluster, _raw(tok, "Minutes of the meeting", "Hello Bob, see below."))
    assert code == 250 and "quarantined" not in text, (code, text)
    rec = _record(cluster, tok)
    assert rec["action"] == "delivered", rec
    assert _spam(rec) == (0.0, [])


def test_r5_1_spam_disabled_no_score(cluster):
    """R5.1: with spam.enabled=false no score is computed: the spammy message is delivered
    and has no spam verdict; back on, it is quarantined again."""
    set_setting(cluster, "spam.enabled", "false")
    tok = new_token("off")
    code, text = _send(cluster, _raw(tok, "YOU HAVE WON", "Act now!", date=False,
                                     message_id=False))
    assert code == 250 and "quarantined" not in text, (code, text)
    assert _verdict(_record(cluster, tok), "spam") is None
    set_setting(cluster, "spam.enabled", "true")
    tok = new_token("on")
    code, text = _send(cluster, _raw(tok, "YOU HAVE WON", "Act now!", date=False,
                                     message_id=False))
    assert code == 250 and "quarantined" in text, (code, text)


def test_r5_1_r3_1_ers_rule_contributes(cluster, dns):
    """R5.1, R3.1: the ers_listed spam rule ("ers_spam", 5) adds its score when the client
    address (XFORWARD) is listed "spam" in the real test zone — alone enough for "Spam" — and
    nothing for a clean client; with the DNS server stopped the look-up is skipped and adds
    nothing: the message is delivered, never deferred."""
    cluster.cli_ok("settings", "set", "cluster.health_interval_s", "1")
    cluster.cli_ok("settings", "set", "ers.zones", ZONES)
    cluster.cli_ok("settings", "set", "ers.timeout_ms", "1000")
    set_setting(cluster, "ers.enabled", "true")
    wait_until(lambda: _health(cluster).get("ers_state") == "ok", 30, "ers_state ok")
    body = "Hello Bob, the report you asked for."

    tok = new_token("ers-listed")
    code, text = _send(cluster, _raw(tok, "Report", body), SPAM_CLIENT)
    assert code == 250 and "quarantined" in text, (code, text)
    rec = _record(cluster, tok)
    assert rec["rule"] == "Spam" and _spam(rec) == (5.0, ["ers_spam"]), rec
    assert _verdict(rec, "ers")["result"] == "listed", rec

    tok = new_token("ers-clean")
    code, text = _send(cluster, _raw(tok, "Report", body), CLEAN_CLIENT)
    assert code == 250 and "quarantined" not in text, (code, text)
    assert _spam(_record(cluster, tok)) == (0.0, [])

    dns.stop()
    try:
        tok = new_token("ers-dns-down")
        code, text = _send(cluster, _raw(tok, "Report", body), SPAM_CLIENT)
        assert code == 250 and "quarantined" not in text, (code, text)
        rec = _record(cluster, tok)
        assert _verdict(rec, "ers")["result"] == "skipped", rec
        assert _spam(rec) == (0.0, []), rec
    finally:
        set_setting(cluster, "ers.enabled", "false")


def test_r5_1_r3_2_web_reputation_rule_contributes(cluster, module_dir):
    """R5.1, R3.2: the web_reputation spam rule ("bad_urls", 4 for a rating of 70 or more)
    adds its score for a URL listed by `portcullis wrs import`; 4 alone stays under the
    threshold (delivered), with capitals in the subject (2.5) it reaches it (quarantined)."""
    path = os.path.join(module_dir, "wrs.txt")
    with open(path, "w") as f:
        f.write(f"url {LISTED_URL} 90 phishing\n")
    cluster.cli_ok("wrs", "import", path)
    wait_config_current(cluster)

    tok = new_token("wrs")
    code, text = _send(cluster, _raw(tok, "Your account", f"Please log in at {LISTED_URL} today."))
    assert code == 250 and "quarantined" not in text, (code, text)
    assert _spam(_record(cluster, tok)) == (4.0, ["bad_urls"])

    tok = new_token("wrs-caps")
    code, text = _send(cluster, _raw(tok, "URGENT ACCOUNT", f"Please log in at {LISTED_URL}."))
    assert code == 250 and "quarantined" in text, (code, text)
    rec = _record(cluster, tok)
    assert rec["rule"] == "Spam" and _spam(rec) == (6.5, ["caps_subject", "bad_urls"]), rec


def test_r5_1_spam_cli_validates(cluster):
    """R5.1: `spam add` with a bad regex is refused (exit 2, the message names the rule and
    the problem) and nothing changes; a good rule is added at its position, new configuration
    version; disable, enable and remove work; an unknown kind, a bad score or a bad header
    name are refused; `policy add` accepts the spam_score condition and refuses a bad
    threshold."""
    before = cluster.cli_ok("spam", "list", "--json")
    v = cluster.status()["config_version"]
    rc, out, err = cluster.cli("spam", "add", "broken", "body_regex", "(unclosed", "2")
    assert rc == 2, (rc, out, err)
    assert 'spam rule "broken" (body_regex): bad regular expression at offset 9' in err, err
    for args, want in ((("odd", "sender", "x", "1"), 'unknown kind "sender"'),
                       (("big", "body_regex", "x", "101"), "out of range"),
                       (("words", "body_regex", "x", "two"), "not a score"),
                       (("miss", "header_missing", "Bad Name", "1"), "not a header name"),
                       (("caps_subject", "body_regex", "x", "1"), "already exists")):
        rc, out, err = cluster.cli("spam", "add", *args)
        assert rc == 2 and want in err, (args, rc, out, err)
    assert cluster.cli_ok("spam", "list", "--json") == before
    assert cluster.status()["config_version"] == v

    out = cluster.cli_ok("spam", "add", "lottery", "body_regex", r"\blottery\b", "1.25",
                         "--position", "2")
    assert "configuration version" in out
    assert cluster.status()["config_version"] > v
    rules = json.loads(cluster.cli_ok("spam", "list", "--json"))["rules"]
    assert [r["name"] for r in rules][:3] == ["caps_subject", "lottery", "spam_phrases"]
    assert [r["position"] for r in rules] == list(range(1, len(DEFAULT_SPAM_RULES) + 2))
    assert rules[1]["score"] == 1.25 and rules[1]["kind"] == "body_regex"
    cluster.cli_ok("spam", "disable", "lottery")
    assert not json.loads(cluster.cli_ok("spam", "list", "--json"))["rules"][1]["enabled"]
    cluster.cli_ok("spam", "enable", "lottery")
    cluster.cli_ok("spam", "remove", "lottery")
    assert [r["name"] for r in json.loads(cluster.cli_ok("spam", "list", "--json"))["rules"]] \
        == DEFAULT_SPAM_RULES
    rc, out, err = cluster.cli("spam", "remove", "lottery")
    assert rc == 2 and 'no spam rule is named "lottery"' in err, err

    rc, out, err = cluster.cli("policy", "add", "Very spammy", "--if", "spam_score=abc",
                               "--then", "delete")
    assert rc == 2 and "spam_score" in err and "is not a score" in err, err
    cluster.cli_ok("policy", "add", "Very spammy", "--position", "3", "--if",
                   "spam_score=12.5", "--then", "delete")
    cluster.cli_ok("policy", "remove", "Very spammy")
    wait_config_current(cluster)


def _health(cluster):
    return (cluster.child_status("child1") or {}).get("health") or {}


def test_r2_1_light_pattern_with_smart_scan(cluster, module_dir, light_dir):
    """R2.1: smart scan = light pattern + look-ups. With the light directory empty, smart scan
    runs on look-ups alone (said once in the log) and a message the service calls "unknown" is
    delivered. A light-pattern signature for it, written into the light directory while mail
    flows, is hot-reloaded (no message deferred or refused meanwhile) and from then on the
    message is quarantined by "Viruses" with verdict light:virus while the service still says
    unknown (smart:clean); Health shows the light pattern's version."""
    child = cluster.children["child1"]
    assert re.search(r"light pattern not loaded dir=\S+ reason=start: .*smart scan uses "
                     r"look-ups only", child.proc.log_since(0))
    sps = Sps(module_dir, cluster)
    sps.start()
    try:
        set_setting(cluster, "smart_scan.switch_to_conventional", "false")
        set_setting(cluster, "smart_scan.url", sps.url)
        set_setting(cluster, "smart_scan.enabled", "true")
        wait_until(lambda: _health(cluster).get("scan_method") == "smart", 30,
                   "Health scan_method smart")

        def bad(tok):
            return attachment_message(tok, RCPT, [("payload.bin", LIGHT_PAYLOAD)])

        tok = new_token("light-none")
        code, text = _send(cluster, bad(tok))
        assert code == 250 and "quarantined" not in text, (code, text)
        rec = _record(cluster, tok)
        assert _verdict(rec, "smart")["result"] == "clean" and _verdict(rec, "light") is None

        # mail flows while the light pattern is written and reloaded
        replies, stop = [], threading.Event()

        def flow():
            while not stop.is_set():
                r = send_direct(child.smtp_port, make_message(new_token("flow"), SENDER, RCPT))
                replies.append(r)
        t = threading.Thread(target=flow, daemon=True)
        mark = child.proc.log_mark()
        t.start()
        try:
            wait_until(lambda: len(replies) >= 3, 10, "mail flowing before the light pattern")
            sig = f"{LIGHT_NAME}:0:*:{binascii.hexlify(LIGHT_PAYLOAD[:40]).decode()}\n"
            signatures._write_atomic(light_dir, "portcullis-light.ndb", sig.encode())
            child.proc.wait_for_log(r"light pattern loaded sigs=1 ", 60, since=mark)
            after = len(replies)
            wait_until(lambda: len(replies) >= after + 3, 10, "mail flowing after the reload")
        finally:
            stop.set()
            t.join(60)
        assert replies and all(r.code == 250 and not r.quarantined for r in replies), replies

        tok = new_token("light-hit")
        code, text = _send(cluster, bad(tok))
        assert code == 250 and "quarantined" in text, (code, text)
        rec = _record(cluster, tok)
        assert rec["rule"] == "Viruses", rec
        light = _verdict(rec, "light")
        assert light["result"] == "virus" and signatures.virus_name_matches(
            light["detail"], LIGHT_NAME), rec
        assert _verdict(rec, "smart")["result"] == "clean", rec
        assert _verdict(rec, "av")["result"] == "skipped", rec
        wait_until(lambda: ((_health(cluster).get("patterns") or {}).get("light") or "")
                   .startswith("sigs=1 "), 30, "Health patterns light sigs=1")
    finally:
        set_setting(cluster, "smart_scan.enabled", "false")
        sps.stop()
