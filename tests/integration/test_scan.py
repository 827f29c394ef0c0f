"""Viruses found by the child's ClamAV engine through the real mail path, quarantined by the
default policy, indexed on the parent and tracked (R5.1, R5.6, R7.3, R1.2); an archive rule
delivers and keeps a copy (R5.1, R5.6). One cluster for the module: PostgreSQL, parent, one
child with a signature directory (EICAR + clamav-testfiles), upstream and downstream Postfix.
The archive test changes the policy, so it runs last."""

import os
import stat

import pytest

import signatures
from harness import account, make_dir, make_message, new_token, wait_until
from scanning import (SENDER, attachment_message, find_stored, log_query, postfix_deliveries,
                      read_file, same_content, scan_cluster, stored_files,
                      token_of, wait_config_current, wait_log_records, wait_quarantine_entries,
                      zip_bytes, QUARANTINED_RE, RULE_EXCEPTIONS, RULE_VIRUSES)

DOMAIN = "child1.test"
INDEX_BOUND_S = 60   # quarantine index and tracking records reach the parent within this


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = scan_cluster(module_dir, pg, n_children=1)
    yield c
    c.stop()


def _child(cluster):
    return cluster.children["child1"]


def _virus_cases(sig_dir):
    """[(label, attachment name, bytes, expected virus base name)]: EICAR plain, zipped, zip in
    zip, and every clamav-testfiles file that `clamscan -d sig_dir` detects."""
    e = signatures.EICAR
    z1 = zip_bytes({"eicar.com": e})
    z2 = zip_bytes({"inner.zip": z1})
    cases = [("eicar-plain", "eicar.com", e, signatures.EICAR_NAME),
             ("eicar-zip", "eicar.zip", z1, signatures.EICAR_NAME),
             ("eicar-zip-in-zip", "outer.zip", z2, signatures.EICAR_NAME)]
    files = signatures.testfiles()
    found = signatures.clamscan_detects(sig_dir, files)
    assert found, f"clamscan detects none of {len(files)} clamav-testfiles with {sig_dir}"
    for path in files:
        if path in found:
            with open(path, "rb") as f:
                cases.append((f"tf-{os.path.basename(path)}", os.path.basename(path), f.read(),
                              signatures.CLAMEXE_NAME))
    return cases, len(files), len(found)


def _oracle(sig_dir, msgs, work_dir):
    """{label: name clamscan reports} for each whole message (label -> bytes), scanned as the
    scan service scans it (signatures.CHILD_SCAN_ARGS); absent: clamscan found nothing."""
    make_dir(work_dir, 0o755)
    paths = {}
    for label, msg in msgs.items():
        p = os.path.join(work_dir, label + ".eml")
        with open(p, "wb") as f:
            f.write(msg)
        paths[p] = label
    found = signatures.clamscan_detects(sig_dir, list(paths), signatures.CHILD_SCAN_ARGS)
    return {paths[p]: name for p, name in found.items()}


def _rule(expect):
    return RULE_EXCEPTIONS if expect in ("av_limits", "av_encrypted") else RULE_VIRUSES


def _has_verdict(verdicts, expect):
    """expect: a virus base name (an av verdict "virus" naming it) or an exception kind."""
    if expect in ("av_limits", "av_encrypted"):
        return any(v.get("result") == "exception" and v.get("detail") == expect
                   for v in verdicts or [])
    return any(v.get("result") == "virus" and signatures.virus_name_matches(v.get("detail", ""),
                                                                             expect)
               for v in verdicts or [])


def test_r5_viruses_quarantined_clean_delivered(cluster, module_dir):
    """R5.1/R5.6/R7.3/R1.2: through the upstream Postfix → child1, messages carrying EICAR
    (plain attachment, zipped, zip in zip) and every clamav-testfiles file ClamAV detects with
    our signatures are answered `250 2.0.0 Ok: quarantined as <file_id> id=<msg id>` (Postfix
    logs status=sent with that reply); each file_id exists once under the child's quarantine
    dir, mode 0600, holding the original message; `quarantine list --json` lists it in area
    "Default quarantine", rule "Viruses", with an av verdict naming the virus; `log query
    --json` has its tracking record with action "quarantined". Where ClamAV itself (clamscan on
    the whole message with the child's options) reports a limit heuristic first (e.g.
    clam_cache_emax.tgz: MaxRecursion), the message is quarantined by "Scan exceptions" with
    the av_limits exception instead — never delivered. Clean messages of the same run
    (plain, 8-bit, clean zip and binary attachments) are delivered to the sink intact and
    tracked as delivered. Accounting: sent = delivered + quarantined, none lost or doubled,
    the upstream queue is empty."""
    child = _child(cluster)
    up, down = cluster.upstream, cluster.downstream
    qdir = child.conf["quarantine_dir"]
    cases, n_files, n_found = _virus_cases(child.conf["signature_dir"])
    print(f"R5.1: clamav-testfiles detected by clamscan with our signatures: {n_found}/{n_files}")

    items, virus, clean = [], {}, {}
    for i, (label, name, data, vname) in enumerate(cases):
        tok = new_token(f"v-{label}")
        rcpt = f"virus{i}@{DOMAIN}"
        msg = attachment_message(tok, rcpt, [(name, data)])
        virus[tok] = (label, vname, msg)
        items.append((msg, SENDER, [rcpt]))
    # what ClamAV itself reports for each whole message with the child's options: our virus
    # name (rule "Viruses"), or a heuristic for a limit it hit first (rule "Scan exceptions")
    oracle = _oracle(child.conf["signature_dir"], {v[0]: v[2] for v in virus.values()},
                     os.path.join(module_dir, "oracle"))
    missed = sorted(set(v[0] for v in virus.values()) - set(oracle))
    assert not missed, f"clamscan finds nothing in these messages: {missed}"
    for tok, (label, vname, msg) in list(virus.items()):
        kind = signatures.exception_kind(oracle[label])
        if kind:
            print(f"R5.1: {label}: ClamAV reports {oracle[label]} → scan exception {kind}")
            virus[tok] = (label, kind, msg)
    clean_specs = [("plain", None), ("8bit", None), ("dots", None),
                   ("zip", ("docs.zip", zip_bytes({"a.txt": b"harmless\n" * 100}))),
                   ("bin", ("data.bin", bytes(range(256)) * 64))]
    for i in range(10):
        kind, att = clean_specs[i % len(clean_specs)]
        tok = new_token(f"c-{kind}-{i}")
        rcpt = f"clean{i}@{DOMAIN}"
        msg = (attachment_message(tok, rcpt, [att]) if att
               else make_message(tok, SENDER, rcpt, kind=kind))
        clean[tok] = msg
        items.append((msg, SENDER, [rcpt]))

    up_mark = up.log_mark()
    before = down.delivered_count()
    qids = up.send_many(items)
    assert len(qids) == len(items) and all(qids)
    tok_of_qid = {q: token_of(msg) for q, (msg, _s, _r) in zip(qids, items)}

    # every message has a final status at the upstream: sent (to the sink or into quarantine)
    def all_final():
        d = postfix_deliveries(up, up_mark)
        return d if all(q in d and any(s == "sent" for s, _ in d[q]) for q in qids) else None
    deliveries = wait_until(all_final, 180, f"{len(qids)} messages sent by the upstream Postfix")
    assert not any(s != "sent" for q in qids for s, _ in deliveries[q]), \
        {q: deliveries[q] for q in qids if any(s != "sent" for s, _ in deliveries[q])}

    quarantined = {}          # token -> (file_id, msg_id)
    for q in qids:
        tok = tok_of_qid[q]
        reply = [r for s, r in deliveries[q] if s == "sent"][-1]
        m = QUARANTINED_RE.search(reply)
        if tok in virus:
            assert m, f"{virus[tok][0]}: not quarantined, upstream got {reply!r}"
            quarantined[tok] = (m.group("file_id"), m.group("msg_id"))
        else:
            assert not m, f"clean message {tok} quarantined: {reply!r}"

    # clean ones reach the sink intact; no virus message does
    delivered = down.wait_delivered(before + len(clean), 60)
    summary = account(list(clean), delivered)
    assert summary["delivered"] == len(clean)
    leaked = [d.token for d in delivered if d.token in virus]
    assert not leaked, f"infected messages delivered: {leaked}"
    up.wait_queue_empty(30)

    # the files: one per quarantined message, 0600, original content
    for tok, (fid, _mid) in quarantined.items():
        paths = find_stored(qdir, fid)
        assert len(paths) == 1, f"{virus[tok][0]}: file {fid} found {len(paths)} times in {qdir}"
        st = os.stat(paths[0])
        # R8.1: the scan service's file, readable by its manager (group portcullis) only
        assert stat.S_IMODE(st.st_mode) == 0o640, f"{paths[0]} mode {oct(st.st_mode)}"
        raw = read_file(paths[0])
        assert token_of(raw) == tok
        assert same_content(raw, virus[tok][2]), f"{virus[tok][0]}: stored copy differs"
    assert len(stored_files(qdir)) == len(quarantined), "quarantine has files nobody was told of"

    # the parent's index of quarantined messages
    entries = wait_quarantine_entries(cluster, [f for f, _ in quarantined.values()], INDEX_BOUND_S)
    for tok, (fid, mid) in quarantined.items():
        e = entries[fid]
        label, vname, _msg = virus[tok]
        assert e.get("area") == "Default quarantine", (label, e)
        assert e.get("rule") == _rule(vname), (label, e)
        assert e.get("child") == "child1", (label, e)
        assert e.get("kind", "quarantine") == "quarantine", (label, e)
        assert e.get("msg_id") == mid, (label, e)
        assert e.get("sender") == SENDER, (label, e)
        assert _has_verdict(e.get("verdicts"), vname), (label, e.get("verdicts"))

    # tracking records (R7.3): one per message, the virus ones quarantined
    recs = wait_log_records(cluster, [m for _, m in quarantined.values()], INDEX_BOUND_S)
    for tok, (fid, mid) in quarantined.items():
        r = recs[mid]
        label, vname, _msg = virus[tok]
        assert r.get("action") == "quarantined", (label, r)
        assert r.get("rule") == _rule(vname), (label, r)
        assert r.get("quarantine_area") == "Default quarantine", (label, r)
        assert r.get("sender") == SENDER, (label, r)
        assert _has_verdict(r.get("verdicts"), vname), (label, r.get("verdicts"))
        assert r.get("message_id", "").strip("<>") == f"{tok}@origin.test", (label, r)
        for k in ("size", "received_at", "ms_scan"):
            assert k in r, (label, k, r)

    def clean_tracked():
        m = {r.get("message_id", "").strip("<>"): r for r in log_query(cluster)}
        return m if all(f"{t}@origin.test" in m for t in clean) else None
    by_mid = wait_until(clean_tracked, INDEX_BOUND_S, "tracking records of the clean messages")
    for t in clean:
        r = by_mid[f"{t}@origin.test"]
        assert r.get("action") == "delivered", r
        assert not any(v.get("result") == "virus" for v in r.get("verdicts") or []), r

    # accounting: sent = delivered + quarantined, nothing else
    assert len(clean) + len(quarantined) == len(items)
    print(f"R5.1: sent={len(items)} delivered={len(clean)} quarantined={len(quarantined)}")


def test_r5_quarantine_search_by_virus(cluster):
    """R5.4 (as far as issue 3 goes): `log query --json --action quarantined` returns only
    quarantined records, and `--verdict virus` only records with a virus verdict."""
    recs = log_query(cluster, "--action", "quarantined")
    assert recs and all(r.get("action") == "quarantined" for r in recs), recs[:3]
    recs = log_query(cluster, "--verdict", "virus")
    assert recs and all(any(v.get("result") == "virus" for v in r.get("verdicts") or [])
                        for r in recs), recs[:3]


def test_r5_archive_rule_delivers_and_keeps_copy(cluster):
    """R5.1/R5.6: after `area add "Mail archive" --kind archive` and `policy add "Archive all"
    --position 1 --if sender=.* --then archive="Mail archive"` (applied live, R0.4), clean
    messages are delivered intact AND a copy of each lies in the child's archive dir (mode
    0600, original content), and its tracking record names the archive area; an EICAR message
    is still quarantined by "Viruses" (archiving does not decide a message's fate)."""
    child = _child(cluster)
    up, down = cluster.upstream, cluster.downstream
    adir = child.conf["archive_dir"]
    cluster.cli_ok("area", "add", "Mail archive", "--kind", "archive")
    cluster.cli_ok("policy", "add", "Archive all", "--position", "1", "--if", "sender=.*",
                   "--then", "archive=Mail archive")
    wait_config_current(cluster, 15)

    tokens, items = [], []
    for i in range(5):
        tok = new_token(f"arch-{i}")
        rcpt = f"arch{i}@{DOMAIN}"
        tokens.append(tok)
        items.append((make_message(tok, SENDER, rcpt), SENDER, [rcpt]))
    vtok = new_token("arch-eicar")
    vmsg = attachment_message(vtok, f"archv@{DOMAIN}", [("eicar.com", signatures.EICAR)])
    items.append((vmsg, SENDER, [f"archv@{DOMAIN}"]))

    up_mark = up.log_mark()
    before = down.delivered_count()
    qids = up.send_many(items)
    delivered = down.wait_delivered(before + len(tokens), 60)
    account(tokens, delivered)
    up.wait_queue_empty(60)

    def archived():
        files = {token_of(read_file(p)): p for p in stored_files(adir)}
        return files if all(t in files for t in tokens) else None
    files = wait_until(archived, 30, f"{len(tokens)} archive copies in {adir}")
    msgs = {token_of(m): m for m, _s, _r in items}
    for t in tokens:
        p = files[t]
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o640, p  # R8.1: group portcullis reads
        assert same_content(read_file(p), msgs[t]), p

    reply = [r for s, r in postfix_deliveries(up, up_mark).get(qids[-1], []) if s == "sent"]
    assert reply and QUARANTINED_RE.search(reply[-1]), f"EICAR with archive rule: {reply}"

    def tracked():
        m = {r.get("message_id", "").strip("<>"): r for r in log_query(cluster)}
        return m if all(f"{t}@origin.test" in m for t in tokens) else None
    recs = wait_until(tracked, INDEX_BOUND_S, "tracking records of the archived messages")
    for t in tokens:
        r = recs[f"{t}@origin.test"]
        assert r.get("action") == "delivered", r
        assert "Mail archive" in (r.get("archived_to") or []), r
        assert r.get("rule") in ("Archive all", ""), r
