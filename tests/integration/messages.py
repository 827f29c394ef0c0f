"""Test messages that account for themselves: each carries a unique token and the SHA-256 of
its body in headers, so a delivered copy proves by itself that it arrived intact; account()
checks a set of sent tokens against what was delivered (lost, duplicated, corrupt)."""

import email
import email.utils
import hashlib
import uuid

from procs import HarnessError

TOKEN_HEADER = "X-Test-Token"
DIGEST_HEADER = "X-Test-Body-SHA256"


def _crlf(text_or_bytes):
    b = text_or_bytes.encode("utf-8") if isinstance(text_or_bytes, str) else text_or_bytes
    b = b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return b


def body_digest(body):
    """SHA-256 of a body with line ends normalised to LF (SMTP uses CRLF, Maildir uses LF)."""
    return hashlib.sha256(body.replace(b"\r\n", b"\n")).hexdigest()


def new_token(prefix):
    return f"{prefix}-{uuid.uuid4().hex}"


def make_message(token, sender, rcpt, body=None, kind="plain", size=None):
    """An RFC 5322 message (CRLF line ends) carrying token and the SHA-256 of its body.

    kind: "plain" (ASCII text), "8bit" (UTF-8 body sent as 8BITMIME), "dots" (lines that
    start with '.', including one that is only '.', to exercise dot-stuffing both ways),
    "large" (ASCII text of about size bytes)."""
    if body is None:
        if kind == "8bit":
            body = (f"token {token}\n"
                    "Grüße aus Köln — 8-bit body: äöü ß € 日本語のテキスト\n"
                    "second line with Latin-1 range é è à ç\n")
        elif kind == "dots":
            body = (f"token {token}\n"
                    ".\n"
                    "..two dots\n"
                    ".leading dot line\n"
                    "middle line\n"
                    ". space after dot\n"
                    "...\n"
                    "last line\n")
        elif kind == "large":
            size = size or 300 * 1024
            line = "large body line 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
            n = size // len(line) + 1
            body = f"token {token}\n" + "".join(f"{i:06d} {line}" for i in range(n))
        else:
            body = f"token {token}\nThis is test message {token}.\nSecond line.\n"
    body_b = _crlf(body)
    if not body_b.endswith(b"\r\n"):
        body_b += b"\r\n"
    cte = "8bit" if kind == "8bit" else "7bit"
    headers = (f"From: <{sender}>\r\n"
               f"To: <{rcpt}>\r\n"
               f"Subject: test {token}\r\n"
               f"Message-ID: <{token}@origin.test>\r\n"
               f"Date: {email.utils.formatdate(localtime=False)}\r\n"
               f"MIME-Version: 1.0\r\n"
               f"Content-Type: text/plain; charset=utf-8\r\n"
               f"Content-Transfer-Encoding: {cte}\r\n"
               f"{TOKEN_HEADER}: {token}\r\n"
               f"{DIGEST_HEADER}: {body_digest(body_b)}\r\n"
               "\r\n").encode("ascii")
    return headers + body_b


def split_message(raw):
    """(header bytes, body bytes) of a raw message with LF or CRLF line ends."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            return raw[:i], raw[i + len(sep):]
    return raw, b""


class Delivered:
    """One delivered message: its file, raw bytes and parsed form."""

    def __init__(self, path, raw):
        self.path = path
        self.raw = raw
        self.msg = email.message_from_bytes(raw)
        self.token = (self.msg.get(TOKEN_HEADER) or "").strip()
        self.claimed_digest = (self.msg.get(DIGEST_HEADER) or "").strip()
        self.body = split_message(raw)[1]

    def body_intact(self):
        return bool(self.claimed_digest) and body_digest(self.body) == self.claimed_digest

    def __getitem__(self, name):
        return self.msg[name]


def account(sent_tokens, delivered):
    """Checks that every token in sent_tokens was delivered exactly once with its body intact.
    Returns a dict summary; raises HarnessError listing lost, duplicated and corrupt ones."""
    sent = set(sent_tokens)
    counts = {}
    corrupt = []
    for d in delivered:
        if d.token in sent:
            counts[d.token] = counts.get(d.token, 0) + 1
            if not d.body_intact():
                corrupt.append(d.token)
    lost = sorted(sent - set(counts))
    dup = sorted(t for t, c in counts.items() if c > 1)
    summary = {"sent": len(sent), "delivered": sum(counts.values()), "lost": lost,
               "duplicated": dup, "corrupt": corrupt}
    if lost or dup or corrupt:
        raise HarnessError(f"message accounting failed: sent={len(sent)} "
                           f"delivered={summary['delivered']} lost={len(lost)} {lost[:5]} "
                           f"duplicated={len(dup)} {dup[:5]} corrupt={len(corrupt)} {corrupt[:5]}")
    return summary
