"""Hostile-MIME corpus for the scan service (issue 3): messages a real mail stream carries
sooner or later — broken or missing boundaries, absurd nesting, encodings that do not decode,
oversize headers and lines, NUL bytes, lying charsets, archive bombs — each with the class it
must end in:

  delivered    the scan service parses what it can and the message reaches the downstream MTA
  quarantined  a scan exception (the kind is given) or a virus, quarantined by the default
               policy (R5.1) — never passed unseen, never a crash
  refused      a 5xx from the scan service with a clear reply (the regex is given)

The limits assumed are the defaults (mime.max_depth 30, mime.max_parts 1000, mime.max_headers
1000, mime.max_header_length 65536, smtp.max_line_length 65536, av.max_scan_size 100 MB,
av.max_files 10000, av.max_recursion 16) except smtp.max_message_size, which the hostile test
sets to MAX_MESSAGE_SIZE (the downstream Postfix takes 10 240 000 bytes at most).

Every message carries X-Test-Token first, so a delivered copy names itself whatever else in
its headers is broken; `intact` says whether the body digest header can be checked too."""

import base64
import io
import zipfile

from harness import DIGEST_HEADER, TOKEN_HEADER, body_digest, new_token
import signatures

MAX_MESSAGE_SIZE = 8_000_000
DEFAULT_MAX_LINE = 65536

SENDER = "hostile@origin.test"


class Case:
    def __init__(self, name, expect, reason, build, postfix=False, intact=True):
        self.name = name
        self.expect = expect        # "delivered" | "quarantined" | "refused"
        self.reason = reason        # exception kind (or a tuple: any of them) / "virus" /
                                    # reply regex / None
        self._build = build         # (token, rcpt) -> bytes
        self.postfix = postfix      # also sent through the upstream Postfix
        self.intact = intact        # body digest checkable on the delivered copy

    def message(self, rcpt, prefix="h"):
        token = new_token(f"{prefix}-{self.name}")
        return token, self._build(token, rcpt)

    def __repr__(self):
        return f"Case({self.name}: {self.expect} {self.reason or ''})"


# -- building blocks -------------------------------------------------------------------------

def _hdrs(token, rcpt, body, ctype=None, extra=b"", subject=None, mime=True, cte=None):
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"   # SMTP adds it anyway; the digest must cover what arrives
    h = (f"{TOKEN_HEADER}: {token}\r\n{DIGEST_HEADER}: {body_digest(body)}\r\n"
         f"From: <{SENDER}>\r\nTo: <{rcpt}>\r\n"
         f"Message-ID: <{token}@origin.test>\r\n").encode()
    h += (subject if subject is not None else f"Subject: hostile {token}".encode()) + b"\r\n"
    if mime:
        h += b"MIME-Version: 1.0\r\n"
    if ctype is not None:
        h += b"Content-Type: " + (ctype if isinstance(ctype, bytes) else ctype.encode()) + b"\r\n"
    if cte is not None:
        h += b"Content-Transfer-Encoding: " + cte.encode() + b"\r\n"
    return h + extra + b"\r\n" + body


def _b64(data, width=76):
    s = base64.b64encode(data)
    return b"\r\n".join(s[i:i + width] for i in range(0, len(s), width)) + b"\r\n"


def _part(ctype, body, cte=None, disp=None):
    h = b"Content-Type: " + ctype.encode() + b"\r\n"
    if cte:
        h += b"Content-Transfer-Encoding: " + cte.encode() + b"\r\n"
    if disp:
        h += b"Content-Disposition: " + (disp if isinstance(disp, bytes) else disp.encode()) + b"\r\n"
    return h + b"\r\n" + body


def _multipart(parts, boundary, close=True, preamble=b"preamble\r\n"):
    b = boundary.encode()
    out = preamble
    for p in parts:
        out += b"--" + b + b"\r\n" + p + (b"" if p.endswith(b"\r\n") else b"\r\n")
    if close:
        out += b"--" + b + b"--\r\n"
    return out


def _text(t):
    return t.encode() if isinstance(t, str) else t


def _zip(members):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members.items():
            z.writestr(n, d)
    return b.getvalue()


def _attach(token, rcpt, name, data, ctype="application/octet-stream"):
    body = _multipart([_part("text/plain; charset=us-ascii", f"token {token}\r\n".encode(), "7bit"),
                       _part(f"{ctype}; name=\"{name}\"", _b64(data), "base64",
                             f"attachment; filename=\"{name}\"")], f"=_a_{token}")
    return _hdrs(token, rcpt, body, f"multipart/mixed; boundary=\"=_a_{token}\"")


def _simple(ctype, body, cte=None, extra=b"", subject=None, mime=True):
    return lambda t, r: _hdrs(t, r, _text(body) if not callable(body) else body(t), ctype,
                              extra=extra, subject=subject, mime=mime, cte=cte)


# -- the corpus ------------------------------------------------------------------------------

def _nested(depth, leaf=b"leaf text\r\n"):
    """depth levels of multipart/mixed, each with one child."""
    body = _part("text/plain", leaf, "7bit")
    for i in range(depth, 0, -1):
        bnd = f"n{i:05d}"  # fixed width: no boundary a prefix of another (mime_ambiguous)
        body = (f"Content-Type: multipart/mixed; boundary=\"{bnd}\"\r\n\r\n").encode() + \
            _multipart([body], bnd, preamble=b"")
    return body


def _nested_rfc822(depth):
    body = b"Subject: innermost\r\n\r\ninnermost body\r\n"
    for i in range(depth):
        body = b"Content-Type: message/rfc822\r\n\r\n" + f"Subject: level {i}\r\n".encode() + \
            b"MIME-Version: 1.0\r\n" + body
    return body


def _as_message(entity):
    """(token, rcpt) -> message whose top-level entity is entity ("Content-Type: …" header
    lines, blank line, body): the nesting starts at the message itself."""
    head, body = entity.split(b"\r\n\r\n", 1)
    ctype = head.split(b":", 1)[1].strip()
    return lambda t, r: _hdrs(t, r, body, ctype)


def _many_parts(n):
    parts = [_part("text/plain", f"part {i}\r\n".encode()) for i in range(n)]
    return _multipart(parts, "many")


def _zip_bomb():
    """5 members of 30 MB of zeros: ~150 KB zipped; each member is over av.max_file_size
    (25 MB) and together they are over av.max_scan_size (100 MB)."""
    b = io.BytesIO()
    zeros = bytes(30 << 20)
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(5):
            z.writestr(f"zeros{i}.bin", zeros)
    return b.getvalue()


def _deep_zip(levels=20):
    d = b"hello, nested world\n"
    for i in range(levels):
        d = _zip({f"level{i}.zip" if i else "a.txt": d})
    return d


def _encrypted_zip():
    from scanning import zip_bytes
    return zip_bytes({"readme.txt": b"nothing to see here\n"}, password="secret")


def build_corpus():
    E = signatures.EICAR
    text_part = _part("text/plain; charset=us-ascii", b"hello\r\n", "7bit")
    cases = [
        # --- boundaries: a structure parsers read differently is held as mime_ambiguous
        # (issue 11 point 5); an unusual but unambiguous one is delivered ------------------
        Case("missing_boundary_param", "quarantined", "mime_ambiguous",
             _simple("multipart/mixed", b"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n"),
             postfix=True),
        Case("boundary_never_used", "quarantined", "mime_ambiguous",
             _simple('multipart/mixed; boundary="declared"', b"no delimiter at all\r\n")),
        Case("duplicate_boundary_param", "quarantined", "mime_ambiguous",
             _simple('multipart/mixed; boundary="aa"; boundary="bb"',
                     _multipart([text_part], "aa") + _multipart([text_part], "bb"))),
        Case("same_boundary_nested", "quarantined", "mime_ambiguous",
             _simple('multipart/mixed; boundary="same"',
                     _multipart([b'Content-Type: multipart/alternative; boundary="same"\r\n\r\n'
                                 + _multipart([text_part, text_part], "same")], "same"))),
        Case("boundary_in_preamble", "delivered", None,
             _simple('multipart/mixed; boundary="pre"',
                     _multipart([text_part], "pre",
                                preamble=b"the preamble mentions --pre and\r\n--pre-not-quite\r\n"
                                         b"--pre--trailing\r\n"))),
        Case("unterminated_multipart", "quarantined", "mime_ambiguous",
             _simple('multipart/mixed; boundary="open"',
                     _multipart([text_part, text_part], "open", close=False)), postfix=True),
        Case("empty_boundary", "quarantined", "mime_ambiguous",
             _simple('multipart/mixed; boundary=""', b"--\r\n" + text_part + b"\r\n----\r\n")),
        Case("boundary_300_chars", "quarantined", "mime_ambiguous",
             _simple(f'multipart/mixed; boundary="{"b" * 300}"',
                     _multipart([text_part], "b" * 300))),
        Case("multipart_no_parts", "delivered", None,
             _simple('multipart/mixed; boundary="none"', b"--none--\r\n")),
        # 10, not 25: ClamAV counts MIME levels in av.max_recursion (16) too, so a message
        # nested 17..30 deep is an av_limits exception although mime.max_depth is 30
        Case("nested_10_levels", "delivered", None,
             _as_message(_nested(10))),
        # --- structure beyond the limits ----------------------------------------------------
        Case("nested_1000_levels", "quarantined", "mime_depth",
             _as_message(_nested(1000))),
        # over mime.max_depth and, with 5000 containers, over mime.max_parts too: either kind
        Case("nested_5000_levels", "quarantined", ("mime_depth", "mime_parts"),
             _as_message(_nested(5000))),
        Case("rfc822_nested_200", "quarantined", "mime_depth",
             _as_message(_nested_rfc822(200))),
        Case("parts_500", "delivered", None,
             _simple('multipart/mixed; boundary="many"', _many_parts(500))),
        Case("parts_10000", "quarantined", "mime_parts",
             _simple('multipart/mixed; boundary="many"', _many_parts(10000)), postfix=True),
        # --- transfer encodings -------------------------------------------------------------
        Case("base64_invalid_chars", "delivered", None,
             _simple("application/octet-stream", b"SGVsbG8g!!!@@@###$$$ d29ybGQ=\r\n~~~~\r\n",
                     cte="base64"), postfix=True),
        Case("base64_truncated", "delivered", None,
             _simple("application/octet-stream", b"SGVsbG8gd29ybG\r\n", cte="base64")),
        Case("base64_no_padding", "delivered", None,
             _simple("application/octet-stream", b"SGVsbG8gd29ybGQ\r\nSGk\r\n", cte="base64")),
        Case("base64_data_after_padding", "delivered", None,
             _simple("text/plain", b"SGk=\r\nSGVsbG8=garbage====\r\n=\r\n", cte="base64")),
        Case("base64_on_multipart", "quarantined", "mime_ambiguous",
             _simple('multipart/mixed; boundary="m64"',
                     _multipart([text_part], "m64"), cte="base64")),
        Case("qp_bad_escape", "delivered", None,
             _simple("text/plain; charset=utf-8", b"bad =ZZ escape =G1 and =\r\n=4", cte="quoted-printable")),
        Case("qp_soft_break_at_end", "delivered", None,
             _simple("text/plain", b"soft break at the very end=\r\n=", cte="quoted-printable")),
        Case("qp_8bit_and_long", "delivered", None,
             _simple("text/plain; charset=iso-8859-1", b"caf\xe9 " + b"=3D" * 300 + b"\r\n",
                     cte="quoted-printable")),
        Case("unknown_cte", "delivered", None,
             _simple("text/plain", b"x-foo encoded?\r\n", cte="x-totally-unknown")),
        # --- headers ------------------------------------------------------------------------
        Case("header_line_1mb_unfolded", "refused", r"(?i)\bline\b",
             _simple("text/plain", b"body\r\n", extra=b"X-Huge: " + b"h" * (1 << 20) + b"\r\n")),
        Case("header_1mb_folded", "quarantined", "mime_header_length",
             _simple("text/plain", b"body\r\n",
                     extra=b"X-Huge: " + b"\r\n ".join([b"f" * 990] * 1060) + b"\r\n")),
        Case("headers_100000", "quarantined", "mime_headers",
             _simple("text/plain", b"body\r\n",
                     extra=b"".join(b"X-H%d: v\r\n" % i for i in range(100000)))),
        Case("nul_in_header", "delivered", None,
             _simple("text/plain", b"body\r\n", extra=b"X-Nul: a\x00b\x00c\r\n")),
        Case("nul_in_body", "delivered", None,
             _simple("text/plain", b"before\x00after\r\n\x00\x00\x00\r\nend\r\n")),
        Case("header_without_colon", "delivered", None,
             _simple("text/plain", b"body\r\n", extra=b"This line has no colon\r\nX-After: 1\r\n"),
             intact=False),   # Postfix takes the colon-less line as the start of the body
        Case("headers_only_no_body", "delivered", None,
             lambda t, r: _hdrs(t, r, b"", "text/plain")[:-2], intact=False),
        Case("empty_body", "delivered", None, _simple("text/plain", b"")),
        # --- charsets and RFC 2047 ----------------------------------------------------------
        Case("8bit_undeclared", "delivered", None,
             _simple(None, "Grüße, naïve café — 日本語\r\n".encode(), mime=False), postfix=True),
        Case("8bit_raw_in_subject", "delivered", None,
             _simple("text/plain", b"body\r\n", subject="Subject: Grüße 日本語 raw".encode())),
        Case("utf8_declared_latin1_bytes", "delivered", None,
             _simple("text/plain; charset=utf-8", b"caf\xe9 na\xefve \xff\xfe\r\n", cte="8bit")),
        Case("unknown_charset", "delivered", None,
             _simple("text/plain; charset=x-no-such-charset-zz", b"caf\xe9\r\n", cte="8bit")),
        Case("rfc2047_garbage", "delivered", None,
             _simple("text/plain", b"body\r\n",
                     subject=(b"Subject: =?utf-8?B?####?= =?bogus-cs?Q?abc?= =?utf-8?q?unterminated"
                              b" =?utf-8?Q?" + b"=FF" * 300 + b"?= =??= =?x?y?z?="))),
        Case("rfc2047_in_filename", "delivered", None,
             _simple('multipart/mixed; boundary="fn"',
                     _multipart([_part("application/octet-stream", _b64(b"data"), "base64",
                                       'attachment; filename="=?utf-8?B?!!!?= x.exe"')], "fn"))),
        # --- content types and dispositions -------------------------------------------------
        Case("content_type_no_subtype", "delivered", None, _simple("text", b"body\r\n")),
        Case("content_type_garbage", "delivered", None, _simple(";;;==;\"", b"body\r\n")),
        Case("filename_10k", "delivered", None,
             lambda t, r: _attach(t, r, "n" * 10000 + ".txt", b"tiny")),
        Case("rfc2231_500_continuations", "delivered", None,
             _simple('multipart/mixed; boundary="c"',
                     _multipart([_part("application/octet-stream", _b64(b"data"), "base64",
                                       "attachment; " + "; ".join(
                                           f"filename*{i}*=utf-8''%ZZ{i}" for i in range(500)))],
                                "c"))),
        Case("type_mismatch_exe_as_png", "delivered", None,
             lambda t, r: _attach(t, r, "picture.png", b"MZ\x90\x00" + bytes(500), "image/png")),
        # --- archives -----------------------------------------------------------------------
        Case("zip_bomb", "quarantined", "av_limits",
             lambda t, r: _attach(t, r, "bomb.zip", _zip_bomb(), "application/zip"), postfix=True),
        Case("zip_nested_20", "quarantined", "av_limits",
             lambda t, r: _attach(t, r, "deep.zip", _deep_zip(20), "application/zip")),
        Case("encrypted_zip", "quarantined", "av_encrypted",
             lambda t, r: _attach(t, r, "secret.zip", _encrypted_zip(), "application/zip"),
             postfix=True),
        # --- viruses hidden in hostile structure --------------------------------------------
        Case("eicar_in_unterminated_multipart", "quarantined", "virus",
             _simple('multipart/mixed; boundary="v"',
                     _multipart([text_part, _part("application/octet-stream", _b64(E), "base64",
                                                  'attachment; filename="e.com"')], "v",
                                close=False))),
        Case("eicar_base64_no_padding", "quarantined", "virus",
             _simple("application/octet-stream", base64.b64encode(E).rstrip(b"=") + b"\r\n",
                     cte="base64")),
        Case("eicar_in_rfc822_attachment", "quarantined", "virus",
             _simple('multipart/mixed; boundary="r"',
                     _multipart([_part("message/rfc822",
                                       b"Subject: inner\r\nMIME-Version: 1.0\r\n"
                                       b"Content-Type: application/octet-stream\r\n"
                                       b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(E))],
                                "r")), postfix=True),
        # --- SMTP limits: refused with a clear reply ----------------------------------------
        Case("body_line_100k", "refused", r"(?i)\bline\b",
             _simple("text/plain", b"x" * 100_000 + b"\r\n")),
        Case("over_max_message_size", "refused", r"(?i)\bsize\b",
             _simple("text/plain", (b"y" * 998 + b"\r\n") * (MAX_MESSAGE_SIZE // 1000 + 1000)),
             postfix=True),
    ]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


if __name__ == "__main__":  # lists the corpus with sizes
    for c in build_corpus():
        tok, m = c.message("user@child1.test")
        print(f"{c.name:36} {c.expect:12} {str(c.reason):22} {len(m):>9} postfix={c.postfix}")
