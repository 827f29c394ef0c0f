"""Web reputation (R3.2): the URLs of a message rated by the block-lists that `portcullis wrs
import` fills (pushed to the children in the configuration) and by an external rating service.
The real service is a third-party internet service that cannot exist here: a small HTTP server
in this file speaks its protocol (POST {"urls": [...]} → {"ratings": [{"url", "level",
"category"}]}) over a real loopback socket. The children never talk to it: they ask the
parent's look-up service (POST /v1/rate over HTTPS with their credential, R8.7), which asks
wrs.service_url for them. One cluster for the module (PostgreSQL, parent, one
child, no upstream MTA: messages go straight to the scan service); the tests run in order:
import, lists, service, service stopped, service hung, service back."""

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import LOOPBACK, free_port, make_message, new_token, wait_until
from scanning import (SENDER, log_query, scan_cluster, send_direct, set_setting,
                      wait_config_current)

RCPT = "user@child1.test"
RULE = "Bad links"
TIMEOUT_MS = 1000
WRS_ENTRIES_MAX = 10000        # WIRE_WRS_MAX: entries the lists hold
MARGIN_S = 3.0                 # scan, policy and scheduling on top of wrs.timeout_ms
LISTED_URL = "http://bad.test/x"
LISTED_DOMAIN_URL = "https://login.phish.test/account"
CLEAN_URL = "http://clean.test/page"
SERVICE_BAD_URL = "http://rated-by-service.test/dl"


class RatingService:
    """The rating service's protocol on a loopback port. `hang` makes it accept the request and
    never answer until released; stop() closes the port (connections refused); start() binds
    the same port again."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}/v1/rate"
        self.ratings = {SERVICE_BAD_URL: (90, "malware")}
        self.hang = threading.Event()
        self.release = threading.Event()
        self.requests = []
        self.headers = []
        self.conns = []
        self.server = None
        self.thread = None

    def start(self):
        svc = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                svc.conns.append(self.connection)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                svc.requests.append(body)
                svc.headers.append(dict(self.headers))
                if svc.hang.is_set():
                    svc.release.wait(30)
                    self.close_connection = True
                    return
                out = {"ratings": [{"url": u, "level": svc.ratings[u][0],
                                    "category": svc.ratings[u][1]}
                                   for u in body.get("urls", []) if u in svc.ratings]}
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        for c in self.conns:  # kept-alive connections too: a stopped service answers nothing
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conns = []


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = scan_cluster(module_dir, pg, n_children=1, upstream=False)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def service():
    s = RatingService().start()
    yield s
    s.stop()


def _send(cluster, token, url):
    msg = make_message(token, SENDER, RCPT, body=f"token {token}\nplease visit {url} today\n")
    return send_direct(cluster.children["child1"].smtp_port, msg)


def _wrs_verdicts(cluster, token, timeout=60):
    """The wrs verdicts of the tracking record of the message carrying token."""
    def got():
        for r in log_query(cluster):
            if token in (r.get("subject") or ""):
                return [v for v in r.get("verdicts") or [] if v.get("engine") == "wrs"]
        return None
    return wait_until(got, timeout, f"the tracking record of {token}")


def _results(verdicts):
    return {v.get("result"): v.get("detail") for v in verdicts}


def test_r3_2_import_refuses_malformed(cluster, module_dir):
    """R3.2: `wrs import` refuses a file with a malformed line, naming the line, and one with
    more entries than the lists hold (alone, or merged with those stored), and nothing changes;
    `--replace` replaces the set; a good file is stored with a new configuration version and
    `wrs list` shows it."""
    bad = os.path.join(module_dir, "bad.txt")
    with open(bad, "w") as f:
        f.write("# list\ndomain phish.test 80 phishing\nurl http://x.test/ 101 malware\n")
    v = cluster.status()["config_version"]
    rc, out, err = cluster.cli("wrs", "import", bad)
    assert rc != 0 and "bad.txt:3" in err and "level" in err, (rc, out, err)
    assert cluster.status()["config_version"] == v
    big = os.path.join(module_dir, "big.txt")
    with open(big, "w") as f:  # one past the limit the children are pushed
        f.writelines(f"domain d{i}.big.test 50 spam\n" for i in range(WRS_ENTRIES_MAX + 1))
    rc, out, err = cluster.cli("wrs", "import", big)
    assert rc != 0 and f"big.txt:{WRS_ENTRIES_MAX + 1}" in err, (rc, out, err)
    assert cluster.status()["config_version"] == v
    good = os.path.join(module_dir, "good.txt")
    with open(good, "w") as f:
        f.write("# web reputation test list\n"
                "domain phish.test 80 phishing\n"
                f"url {LISTED_URL} 100 malware\n"
                "domain ads.test 20 ads\n")
    fill = os.path.join(module_dir, "fill.txt")
    with open(fill, "w") as f:
        f.writelines(f"domain d{i}.fill.test 50 spam\n" for i in range(WRS_ENTRIES_MAX - 2))
    cluster.cli_ok("wrs", "import", fill, timeout=120)
    v = cluster.status()["config_version"]
    rc, out, err = cluster.cli("wrs", "import", good)  # merged: one past the limit in all
    assert rc != 0 and "at most" in err, (rc, out, err)
    assert cluster.status()["config_version"] == v
    assert json.loads(cluster.cli_ok("wrs", "list", "--json"))["count"] == WRS_ENTRIES_MAX - 2
    cluster.cli_ok("wrs", "import", "--replace", good)
    assert cluster.status()["config_version"] > v
    listed = json.loads(cluster.cli_ok("wrs", "list", "--json"))
    assert listed["count"] == 3, listed
    assert {(e["kind"], e["pattern"], e["level"]) for e in listed["entries"]} == {
        ("domain", "phish.test", 80), ("url", LISTED_URL, 100), ("domain", "ads.test", 20)}
    wait_config_current(cluster)


def test_r3_2_block_lists_quarantine(cluster):
    """R3.2: with the rule `--if web_reputation=70 --then quarantine` first, a message with a
    listed URL (exact, or under a listed domain) is quarantined (verdict wrs rated
    level:category:url); one with a clean URL, or a URL rated below 70, is delivered."""
    cluster.cli_ok("policy", "add", RULE, "--position", "1", "--if", "web_reputation=70",
                   "--then", "quarantine")
    wait_config_current(cluster)
    tok = new_token("wrs-url")
    r = _send(cluster, tok, LISTED_URL)
    assert r.code == 250 and r.quarantined, r
    assert _results(_wrs_verdicts(cluster, tok)) == {"rated": f"100:malware:{LISTED_URL}"}
    tok = new_token("wrs-domain")
    r = _send(cluster, tok, LISTED_DOMAIN_URL)
    assert r.code == 250 and r.quarantined, r
    assert _results(_wrs_verdicts(cluster, tok)) == {
        "rated": f"80:phishing:{LISTED_DOMAIN_URL}"}
    tok = new_token("wrs-low")
    r = _send(cluster, tok, "http://www.ads.test/banner")
    assert r.code == 250 and not r.quarantined, r
    assert "rated" in _results(_wrs_verdicts(cluster, tok))
    tok = new_token("wrs-clean")
    r = _send(cluster, tok, CLEAN_URL)
    assert r.code == 250 and not r.quarantined, r
    assert _results(_wrs_verdicts(cluster, tok)) == {"clean": ""}


def test_r3_2_rating_service(cluster, service):
    """R3.2, R8.7: with wrs.url the parent's look-up service and wrs.service_url the rating
    service, a URL the service rates 90 is quarantined by the rule; the service was asked with
    the message's URLs by the parent, without the child's credential; a clean URL is still
    delivered."""
    set_setting(cluster, "wrs.timeout_ms", TIMEOUT_MS)
    set_setting(cluster, "wrs.service_url", service.url)
    set_setting(cluster, "wrs.url", f"https://{LOOPBACK}:{cluster.parent.https_port}/v1/rate")
    tok = new_token("wrs-svc")
    r = _send(cluster, tok, SERVICE_BAD_URL)
    assert r.code == 250 and r.quarantined, r
    assert _results(_wrs_verdicts(cluster, tok)) == {"rated": f"90:malware:{SERVICE_BAD_URL}"}
    assert any(SERVICE_BAD_URL in q.get("urls", []) for q in service.requests)
    assert service.headers and not any("Authorization" in h for h in service.headers)
    tok = new_token("wrs-svc-clean")
    r = _send(cluster, tok, CLEAN_URL)
    assert r.code == 250 and not r.quarantined, r
    assert _results(_wrs_verdicts(cluster, tok)) == {"clean": ""}


def test_r3_2_service_stopped_skips(cluster, service):
    """R3.2: with the service stopped, a URL only it would rate is delivered (no 4xx), with
    verdict wrs skipped naming the reason; the block-lists still apply."""
    service.stop()
    tok = new_token("wrs-stopped")
    r = _send(cluster, tok, SERVICE_BAD_URL)
    assert r.code == 250 and not r.quarantined, r
    res = _results(_wrs_verdicts(cluster, tok))
    assert set(res) == {"skipped"} and "rating service" in res["skipped"], res
    tok = new_token("wrs-stopped-listed")
    r = _send(cluster, tok, LISTED_URL)
    assert r.code == 250 and r.quarantined, r
    assert "skipped" in _results(_wrs_verdicts(cluster, tok))


def test_r3_2_service_hung_bounded(cluster, service):
    """R3.2: with the service accepting and never answering, the message is delivered within
    wrs.timeout_ms plus a margin, verdict wrs skipped, no 4xx."""
    service.hang.set()
    service.release.clear()
    service.start()
    try:
        tok = new_token("wrs-hung")
        r = _send(cluster, tok, SERVICE_BAD_URL)
        assert r.code == 250 and not r.quarantined, r
        assert r.elapsed < TIMEOUT_MS / 1000 + MARGIN_S, r
        assert r.elapsed >= TIMEOUT_MS / 1000 * 0.9, r  # it did wait for the service
        res = _results(_wrs_verdicts(cluster, tok))
        assert set(res) == {"skipped"}, res
    finally:
        service.hang.clear()
        service.release.set()


def test_r3_2_service_back_applies_again(cluster, service):
    """R3.2: once the service answers again, its ratings apply with nothing done: the URL it
    rates is quarantined again."""
    def quarantined():
        tok = new_token("wrs-back")
        r = _send(cluster, tok, SERVICE_BAD_URL)
        assert r.code == 250, r
        return (tok, r) if r.quarantined else None
    tok, _ = wait_until(quarantined, 30, "the service's rating to apply again")
    assert _results(_wrs_verdicts(cluster, tok)) == {"rated": f"90:malware:{SERVICE_BAD_URL}"}
