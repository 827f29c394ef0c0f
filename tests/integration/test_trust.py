"""Trust boundaries (issue 11, R8): each test performs one attack found in the review against a
real cluster on loopback (PostgreSQL, the parent, a child with its real scan service and
ClamAV, a downstream Postfix) and sees it refused with nothing lost. One cluster for the module;
every test leaves the settings as it found them."""

import os
import re
import socket
import time

import pytest

from harness import LOOPBACK, make_message, new_token, wait_until
from scanning import scan_cluster, set_setting

DOMAIN = "child1.test"
RCPT = f"user@{DOMAIN}"
SENDER = "sender@origin.test"


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = scan_cluster(module_dir, pg, n_children=1, upstream=False)
    yield c
    c.stop()


@pytest.fixture
def child(cluster):
    return cluster.children["child1"]


class Raw:
    """A raw SMTP client: bytes exactly as given, replies read line by line."""

    def __init__(self, port, timeout=20):
        self.s = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        self.s.sendall(data)

    def reply(self):
        """(code, text) of one reply; (None, why) when the server closed the connection."""
        lines = []
        while True:
            while b"\n" not in self.buf:
                try:
                    chunk = self.s.recv(65536)
                except OSError as e:
                    return None, f"error: {e}"
                if not chunk:
                    return None, "closed"
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode("utf-8", "replace")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), "\n".join(lines)

    def cmd(self, line):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def pending(self, wait=1.0):
        """Replies the server sent beyond those read (a desynchronised stream shows here)."""
        self.s.settimeout(wait)
        try:
            chunk = self.s.recv(65536)
        except (socket.timeout, TimeoutError):
            chunk = b""
        except OSError:
            chunk = b""
        return self.buf + chunk

    def close(self):
        self.s.close()


def _transaction(child, payload, xforward=None):
    """EHLO, [XFORWARD], MAIL, RCPT, DATA, payload (ends with the terminator); returns the raw
    client with the DATA reply read."""
    c = Raw(child.smtp_port)
    assert c.cmd("EHLO client.test")[0] == 250
    if xforward:
        assert c.cmd(xforward)[0] == 250
    assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
    assert c.cmd(f"RCPT TO:<{RCPT}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(payload)
    return c


def _delivered_with(cluster, text):
    return [d for d in cluster.downstream.delivered() if text.encode() in d.raw]


def _smuggling_payload(token, end_variant):
    head = make_message(token, SENDER, RCPT).rstrip(b"\r\n")
    smuggled = (f"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n"
                f"Subject: smuggled {token}\r\n\r\nsmuggled-{token}\r\n").encode()
    return head + end_variant + smuggled + b".\r\n"


SMUGGLE_ENDS = [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n"]


@pytest.mark.parametrize("end", SMUGGLE_ENDS, ids=["lf-dot-lf", "crlf-dot-lf", "lf-dot-crlf",
                                                   "cr-dot-crlf"])
def test_r8_5_smuggling_refused_by_default(cluster, child, end):
    """R8.5 (CVE-2023-51764 class): a bare-newline "end of data" followed by a second
    transaction is never taken as the end. With smtp.bare_newline = reject (the default) the
    whole message is refused with a 550 once its true CRLF.CRLF end arrives — one reply, the
    stream stays in step (the next command gets its own answer), and neither the message nor a
    smuggled one reaches the downstream."""
    token = new_token("smuggle")
    before = cluster.downstream.delivered_count()
    c = _transaction(child, _smuggling_payload(token, end))
    code, text = c.reply()
    assert code == 550 and "bare <CR> or <LF>" in text, (code, text)
    assert c.cmd("NOOP")[0] == 250, "stream out of step after the refused message"
    assert c.cmd("QUIT")[0] == 221
    assert c.pending(0.5) == b"", "extra replies: a smuggled transaction was answered"
    c.close()
    # a clean message sent after it arrives, so the downstream had time to show a smuggled one
    probe = new_token("probe")
    c = _transaction(child, make_message(probe, SENDER, RCPT) + b".\r\n")
    assert c.reply()[0] == 250
    c.close()
    wait_until(lambda: _delivered_with(cluster, probe), 30, "the probe message delivered")
    assert not _delivered_with(cluster, token), "a part of the refused message was delivered"
    assert cluster.downstream.delivered_count() == before + 1


def test_r8_5_smuggling_normalized_is_one_message(cluster, child):
    """R8.5: with smtp.bare_newline = normalize the bare line ends become CRLF and the message —
    smuggled commands included, as text — is delivered as one message; no second transaction
    exists and the downstream sees the lone dots stuffed."""
    set_setting(cluster, "smtp.bare_newline", "normalize")
    try:
        for end in SMUGGLE_ENDS:
            token = new_token("normal")
            c = _transaction(child, _smuggling_payload(token, end))
            code, text = c.reply()
            assert code == 250, (end, code, text)
            assert c.cmd("QUIT")[0] == 221
            assert c.pending(0.5) == b""
            c.close()
            got = wait_until(lambda: _delivered_with(cluster, token), 30, "the normalised message")
            assert len(got) == 1, f"{end!r}: {len(got)} deliveries"
            raw = got[0].raw
            assert f"smuggled-{token}".encode() in raw and b"MAIL FROM:<evil@attacker.test>" in raw
            assert b"\r" not in raw.replace(b"\r\n", b""), "a bare CR reached the downstream"
    finally:
        set_setting(cluster, "smtp.bare_newline", "reject")


def test_r8_5_bare_lf_in_command_disconnects(child):
    """R8.5: a command ended by a bare LF gets Postfix's 521 and the connection is closed."""
    c = Raw(child.smtp_port)
    c.send(b"EHLO client.test\n")
    code, text = c.reply()
    assert code == 521 and "bare" in text, (code, text)
    assert c.reply()[0] is None
    c.close()


def test_r8_5_xforward_only_from_listed_hosts(cluster, child):
    """R8.5: XFORWARD is offered to and honoured from smtp.xforward_hosts only: with a list that
    leaves out 127.0.0.1 the EHLO reply lacks it, XFORWARD gets 550 and the spoofed address
    appears nowhere (log line, tracking record); from a listed client a value that breaks the
    grammar is 501 and an address that fits it is used."""
    set_setting(cluster, "smtp.xforward_hosts", "192.0.2.0/24, 2001:db8::/32")
    try:
        c = Raw(child.smtp_port)
        code, text = c.cmd("EHLO client.test")
        assert code == 250 and "XFORWARD" not in text, text
        code, text = c.cmd("XFORWARD ADDR=203.0.113.66 NAME=spoofed.example")
        assert code == 550 and "insufficient authorization" in text, (code, text)
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert c.cmd(f"RCPT TO:<{RCPT}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        token = new_token("xf")
        c.send(make_message(token, SENDER, RCPT) + b".\r\n")
        code, text = c.reply()
        assert code == 250, text
        c.close()
        d = wait_until(lambda: _delivered_with(cluster, token), 30, "the message delivered")
        assert b"203.0.113.66" not in d[0].raw and b"spoofed.example" not in d[0].raw
        assert "client=203.0.113.66" not in child.proc.log_text()
    finally:
        set_setting(cluster, "smtp.xforward_hosts", "127.0.0.0/8 ::1")
    c = Raw(child.smtp_port)
    code, text = c.cmd("EHLO client.test")
    assert "XFORWARD" in text
    code, text = c.cmd("XFORWARD ADDR=not-an-address")
    assert code == 501 and "ADDR" in text, (code, text)
    assert c.cmd("XFORWARD ADDR=198.51.100.23 NAME=mx.origin.test PROTO=ESMTP")[0] == 250
    assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
    assert c.cmd(f"RCPT TO:<{RCPT}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    token = new_token("xf-ok")
    c.send(make_message(token, SENDER, RCPT) + b".\r\n")
    assert c.reply()[0] == 250
    c.close()
    wait_until(lambda: "client=198.51.100.23" in child.proc.log_text(), 10,
               "the listed client's XFORWARD address in the outcome line")


def test_r8_5_session_deadline(cluster, child):
    """R8.5: a client that keeps a session alive with a NOOP every second, inside every idle
    timeout, is still cut off at smtp.session_timeout_s with a 421."""
    set_setting(cluster, "smtp.session_timeout_s", 10)
    try:
        c = Raw(child.smtp_port)
        assert c.cmd("EHLO client.test")[0] == 250
        t0 = time.monotonic()
        code = 250
        while code == 250 and time.monotonic() - t0 < 30:
            code, text = c.cmd("NOOP")
            if code == 250:
                time.sleep(1)  # the attacker's trickle: the pacing is the attack, not a wait
        took = time.monotonic() - t0
        assert code == 421 and "time limit" in text, (code, text)
        assert 8 <= took <= 20, took
        c.close()
    finally:
        set_setting(cluster, "smtp.session_timeout_s", 3600)
