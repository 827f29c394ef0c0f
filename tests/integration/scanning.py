"""Helpers for the scanning tests (issue 3): a cluster whose children have a signature
directory written before they start, quarantine and archive directories of their own, the
replies the scan service gives (delivered / quarantined / deleted / 4xx / 5xx), stored files,
the admin CLI's quarantine list and log query, and messages with attachments that account for
themselves (token + body digest, like messages.make_message)."""

import base64
import email.utils
import glob
import json
import os
import re
import smtplib
import socket
import time
import uuid

import signatures
from harness import (DIGEST_HEADER, LOOPBACK, TOKEN_HEADER, Cluster, HarnessError, body_digest,
                     make_dir, wait_until)

SENDER = "sender@origin.test"
# The default policy's rules (R5.1), as the parent creates them
RULE_VIRUSES = "Viruses"
RULE_EXCEPTIONS = "Scan exceptions"

# Replies of the scan service (interface of issue 3)
QUARANTINED_RE = re.compile(r"250 2\.0\.0 Ok: quarantined as (?P<file_id>[0-9A-Za-z_-]+) "
                            r"id=(?P<msg_id>[0-9A-Za-z]+)")
DELETED_RE = re.compile(r"250 2\.0\.0 Ok: deleted by policy rule (?P<rule>.+?) "
                        r"id=(?P<msg_id>[0-9A-Za-z]+)")
LOADED_RE = (r"signatures loaded sigs=(?P<sigs>\d+) dir=(?P<dir>\S+) ms=(?P<ms>\d+) "
             r"swaps=(?P<swaps>\d+)")


# -- cluster ------------------------------------------------------------------------------------

def scan_dirs(base, name):
    d = os.path.join(base, name)
    return {"signature_dir": os.path.join(d, "sigs"),
            "quarantine_dir": os.path.join(d, "quarantine"),
            "archive_dir": os.path.join(d, "archive")}


def scan_cluster(module_dir, pg, n_children=1, upstream=True, n_random=0, write_sigs=True):
    """A started Cluster whose children have signature_dir (EICAR + clamav-testfiles, plus
    n_random random signatures, written before the child starts: a child without signatures
    turns every scan into av_error), quarantine_dir and archive_dir under the child's dir.
    Waits for each child's first `signatures loaded` line."""
    base = os.path.join(module_dir, "cluster")

    def conf(name):
        dirs = scan_dirs(base, name)
        make_dir(dirs["signature_dir"], 0o755)
        if write_sigs:
            signatures.write_standard_set(dirs["signature_dir"], n_random)
        return dirs

    c = Cluster(base, pg, n_children=n_children, upstream=upstream, child_conf=conf).start()
    try:
        if write_sigs:
            for child in c.children.values():
                wait_signatures_loaded(child, 0, 60, since=child.mark)
    except BaseException:
        c.stop()
        raise
    return c


def store_owned(path):
    """Gives path what the scan service gives what it stores (R8.1): its user, the group
    portcullis, so that the manager may purge and release it."""
    import grp
    import pwd
    os.chown(path, pwd.getpwnam("portcullis-scan").pw_uid, grp.getgrnam("portcullis").gr_gid)
    os.chmod(path, 0o770 if os.path.isdir(path) else 0o640)


def child_dirs(child):
    return {k: child.conf[k] for k in ("signature_dir", "quarantine_dir", "archive_dir")}


def scan_pids(child):
    """Pids of the scan service (the child manager's children)."""
    return child.proc.scan_services()


def wait_signatures_loaded(child, swaps, timeout, since=0):
    """Waits for `signatures loaded … swaps=N` with N >= swaps after offset since; returns the
    match (sigs, dir, ms, swaps)."""
    rx = re.compile(LOADED_RE)

    def found():
        for m in rx.finditer(child.proc.log_since(since)):
            if int(m.group("swaps")) >= swaps:
                return m
        if not child.proc.running():
            raise HarnessError(f"{child.name} exited while waiting for signatures")
        return None
    return wait_until(found, timeout, f"{child.name} to log 'signatures loaded … swaps>={swaps}'")


def set_setting(cluster, key, value, timeout=15):
    """settings set, then waits until every child runs the new configuration version."""
    cluster.cli_ok("settings", "set", key, str(value))
    v = cluster.status()["config_version"]
    cluster.wait_children_current(v, timeout)
    return v


def wait_config_current(cluster, timeout=15):
    v = cluster.status()["config_version"]
    cluster.wait_children_current(v, timeout)
    return v


# -- replies ------------------------------------------------------------------------------------

class Reply:
    """The final reply to one SMTP transaction and what it says about the message's fate."""

    def __init__(self, code, text, elapsed, stage="DATA"):
        self.code = code
        self.text = text
        self.elapsed = elapsed
        self.stage = stage
        line = f"{code} {text}"
        self.quarantined = QUARANTINED_RE.search(line)
        self.deleted = DELETED_RE.search(line)

    @property
    def cls(self):
        if self.code is None:
            return "dropped"
        if 200 <= self.code < 300:
            if self.quarantined:
                return "quarantined"
            if self.deleted:
                return "deleted"
            return "delivered"
        if 400 <= self.code < 500:
            return "tempfail"
        return "refused"

    @property
    def file_id(self):
        return self.quarantined.group("file_id") if self.quarantined else None

    @property
    def msg_id(self):
        m = re.search(r"\bid=([0-9A-Za-z]+)", self.text)
        return m.group(1) if m else None

    def __repr__(self):
        return f"Reply({self.code} {self.text[:160]!r} in {self.elapsed:.2f}s at {self.stage})"


def send_direct(port, msg, sender=SENDER, rcpts=("user@child1.test",), timeout=30):
    """One transaction straight to a scan service on 127.0.0.1:port (smtplib, BODY=8BITMIME
    when offered, no SIZE parameter so the scan service's own limits are what decide). Returns
    a Reply; a connection the server dropped is a Reply with code None."""
    t0 = time.monotonic()
    stage = "connect"
    try:
        with smtplib.SMTP(LOOPBACK, port, local_hostname="client.portcullis.test",
                          timeout=timeout) as s:
            stage = "EHLO"
            s.ehlo()
            opts = ["BODY=8BITMIME"] if s.has_extn("8bitmime") else []
            stage = "MAIL"
            code, resp = s.mail(sender, opts)
            if code != 250:
                return Reply(code, resp.decode("utf-8", "replace"), time.monotonic() - t0, stage)
            for r in rcpts:
                stage = "RCPT"
                code, resp = s.rcpt(r)
                if code not in (250, 251):
                    return Reply(code, resp.decode("utf-8", "replace"), time.monotonic() - t0,
                                 stage)
            stage = "DATA"
            code, resp = s.data(msg)
            rep = Reply(code, resp.decode("utf-8", "replace"), time.monotonic() - t0, stage)
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                pass
            return rep
    except smtplib.SMTPServerDisconnected as e:
        return Reply(None, f"disconnected: {e}", time.monotonic() - t0, stage)
    except (socket.timeout, TimeoutError) as e:
        return Reply(None, f"timeout: {e}", time.monotonic() - t0, stage)
    except smtplib.SMTPResponseException as e:
        return Reply(e.smtp_code, e.smtp_error.decode("utf-8", "replace"),
                     time.monotonic() - t0, stage)
    except OSError as e:
        return Reply(None, f"socket error: {e}", time.monotonic() - t0, stage)


def postfix_deliveries(upstream, since=0):
    """{queue id: [(status, reply text)]} from the upstream Postfix log after offset since,
    for deliveries to the content filters (relay=127.0.0.1[…])."""
    out = {}
    rx = re.compile(r" ([0-9A-F]{6,}): to=<[^>]*>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+,.*?"
                    r"status=(\w+) \((.*)\)$", re.M)
    for m in rx.finditer(upstream.log_since(since)):
        out.setdefault(m.group(1), []).append((m.group(2), m.group(3)))
    return out


# -- stored files -------------------------------------------------------------------------------

def find_stored(base_dir, file_id):
    """Paths of <base_dir>/<area-dir>/<YYYYMMDDHH>/<file_id>.eml (normally exactly one)."""
    return glob.glob(os.path.join(glob.escape(base_dir), "*", "*", f"{file_id}.eml"))


def quarantined_file(cluster, name, file_id):
    """The path of a quarantined file on child name, None when it is not there."""
    paths = find_stored(cluster.children[name].conf["quarantine_dir"], file_id)
    return paths[0] if paths else None


def stored_row(cluster, file_id):
    """(id, state, removed_reason) of the parent's index row of file_id, None without one."""
    rows = cluster.pg.query("SELECT id, state, removed_reason FROM stored_messages "
                            "WHERE file_id = %s", (file_id,))
    return rows[0] if rows else None


def audit_rows(cluster, action, file_id):
    """(actor, result, detail) of the audit rows of action whose target names file_id."""
    return cluster.pg.query("SELECT actor, result, detail FROM audit_log WHERE action = %s "
                            "AND target LIKE %s ORDER BY id", (action, f"%{file_id}%"))


def stored_files(base_dir):
    return sorted(glob.glob(os.path.join(glob.escape(base_dir), "*", "*", "*.eml")))


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def token_of(raw):
    m = re.search(rb"^" + TOKEN_HEADER.encode() + rb":\s*(\S+)", raw, re.M | re.I)
    return m.group(1).decode() if m else None


def same_content(stored, sent):
    """True if the stored file holds the sent message: every header line and the whole body
    (line ends normalised; the MTAs and the scan service may add trace headers on top)."""
    norm_s = stored.replace(b"\r\n", b"\n")
    norm_m = sent.replace(b"\r\n", b"\n")
    hdr, _, body = norm_m.partition(b"\n\n")
    shdr, _, sbody = norm_s.partition(b"\n\n")
    if sbody != body:
        return False
    lines = shdr.split(b"\n")
    return all(l in lines for l in hdr.split(b"\n") if l and not l[:1].isspace())


# -- admin CLI ----------------------------------------------------------------------------------

def _json(cluster, args):
    out = cluster.cli_ok(*args)
    try:
        return json.loads(out)
    except ValueError as e:
        raise HarnessError(f"portcullis {' '.join(args)} printed invalid JSON ({e}):\n{out[:2000]}")


def quarantine_list(cluster, *filters):
    data = _json(cluster, ["quarantine", "list", "--json", "--limit", "1000", *filters])
    return data.get("messages", [])


def log_query(cluster, *filters):
    data = _json(cluster, ["log", "query", "--json", "--since", "1h", "--limit", "1000",
                           *filters])
    return data.get("records", [])


def quarantine_eicar_each(cluster, per_child, tag, timeout=60):
    """per_child EICAR messages quarantined on each child, sent straight to its scan service:
    {file_id: {child, token, rcpt, sender, msg_id}}; waits until the parent indexed them all."""
    sender = f"{tag}-{uuid.uuid4().hex[:8]}@origin.test"
    out = {}
    for name, child in cluster.children.items():
        for i in range(per_child):
            tok = f"{tag}-{name}-{i}-{uuid.uuid4().hex[:6]}"
            rcpt = f"user{i}@{name}.test"
            msg = attachment_message(tok, rcpt, [("eicar.com", signatures.EICAR)], sender=sender)
            rep = send_direct(child.smtp_port, msg, sender=sender, rcpts=(rcpt,))
            assert rep.cls == "quarantined", rep
            out[rep.file_id] = {"child": name, "token": tok, "rcpt": rcpt, "sender": sender,
                                "msg_id": rep.msg_id}
    wait_quarantine_entries(cluster, list(out), timeout)
    return out


def wait_quarantine_entries(cluster, file_ids, timeout=30):
    """Polls `quarantine list --json` until every file_id is listed; returns {file_id: entry}."""
    want = set(file_ids)

    def got():
        entries = {e.get("file_id"): e for e in quarantine_list(cluster)}
        return entries if want <= set(entries) else None
    return wait_until(got, timeout, f"{len(want)} file ids in `quarantine list --json`")


def wait_log_records(cluster, keys, timeout=30, key="msg_id"):
    """Polls `log query --json` until a record exists for every key; returns {key: record}."""
    want = set(keys)

    def got():
        recs = {r.get(key): r for r in log_query(cluster)}
        return recs if want <= set(recs) else None
    return wait_until(got, timeout, f"{len(want)} tracking records in `log query --json`")


# -- messages -----------------------------------------------------------------------------------

def _b64(data):
    s = base64.b64encode(data).decode("ascii")
    return "\r\n".join(s[i:i + 76] for i in range(0, len(s), 76))


def attachment_message(token, rcpt, attachments, sender=SENDER, text=None):
    """multipart/mixed: a text part, then each (filename, bytes[, content type]) base64."""
    boundary = f"=_b_{token}"
    parts = [("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
              + (text or f"token {token}\r\nsee the attachment\r\n"))]
    for a in attachments:
        name, data = a[0], a[1]
        ctype = a[2] if len(a) > 2 else "application/octet-stream"
        parts.append(f"Content-Type: {ctype}; name=\"{name}\"\r\n"
                     f"Content-Transfer-Encoding: base64\r\n"
                     f"Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n"
                     + _b64(data) + "\r\n")
    body = ("This is a multi-part message in MIME format.\r\n"
            + "".join(f"--{boundary}\r\n{p}" for p in parts) + f"--{boundary}--\r\n").encode()
    return with_headers(token, rcpt, body, sender,
                        f"multipart/mixed; boundary=\"{boundary}\"")


def with_headers(token, rcpt, body, sender=SENDER, content_type="text/plain; charset=utf-8",
                 extra=b"", subject=None):
    """The usual self-accounting headers on top of body (bytes, CRLF)."""
    hdr = (f"{TOKEN_HEADER}: {token}\r\n"
           f"{DIGEST_HEADER}: {body_digest(body)}\r\n"
           f"From: <{sender}>\r\n"
           f"To: <{rcpt}>\r\n"
           f"Subject: {subject if subject is not None else 'test ' + token}\r\n"
           f"Message-ID: <{token}@origin.test>\r\n"
           f"Date: {email.utils.formatdate(localtime=False)}\r\n"
           f"MIME-Version: 1.0\r\n"
           f"Content-Type: {content_type}\r\n").encode()
    return hdr + extra + b"\r\n" + body


def zip_bytes(members, password=None):
    """A zip of {name: bytes} (deflated), via python's zipfile; password: via `zip -P`."""
    import io
    import zipfile
    if password is None:
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
            for n, d in members.items():
                z.writestr(n, d)
        return b.getvalue()
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as td:
        for n, d in members.items():
            with open(os.path.join(td, n), "wb") as f:
                f.write(d)
        out = os.path.join(td, "out.zip")
        subprocess.run(["/usr/bin/zip", "-q", "-P", password, out, *members], cwd=td,
                       check=True, timeout=60)
        with open(out, "rb") as f:
            return f.read()


def scan_log_lines(child, since=0):
    """The scan service's per-message lines (`id=… result=…`) after offset since."""
    return re.findall(r"^.*\bid=[0-9A-Za-z]+\b.*\bresult=\S+.*$", child.proc.log_since(since),
                      re.M)
