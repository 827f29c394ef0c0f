"""The hostile-MIME corpus (corpus.py, 51 messages) against a child's scan service: it never
crashes, never hangs, and every message ends in its expected class — delivered, quarantined
as a scan exception (or virus), or refused with a clear 5xx — with nothing lost (R1.2, R5.1).
Each message goes straight to the child's SMTP port, and a subset also through the upstream
Postfix. One cluster for the module (one child with EICAR + clamav-testfiles signatures);
smtp.max_message_size is lowered to corpus.MAX_MESSAGE_SIZE so that "too big" stays under
what the downstream Postfix takes."""

import re

import pytest

import corpus
from harness import Delivered, wait_until
from scanning import (QUARANTINED_RE, RULE_EXCEPTIONS, RULE_VIRUSES, find_stored,
                      postfix_deliveries, read_file, scan_cluster, scan_pids, send_direct,
                      set_setting, stored_files, token_of, wait_log_records,
                      wait_quarantine_entries)

DOMAIN = "child1.test"
REPLY_BOUND_S = 30.0     # a final reply to any message within this (no hangs)
INDEX_BOUND_S = 60


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = scan_cluster(module_dir, pg, n_children=1)
    try:
        set_setting(c, "smtp.max_message_size", corpus.MAX_MESSAGE_SIZE)
    except BaseException:
        c.stop()
        raise
    yield c
    c.stop()


@pytest.fixture(scope="module")
def cases():
    return corpus.build_corpus()


def _verdict_kinds(verdicts):
    out = set()
    for v in verdicts or []:
        out.update(x for x in (v.get("result"), v.get("detail")) if x)
    return out


def _expect_rule(case):
    return RULE_VIRUSES if case.reason == "virus" else RULE_EXCEPTIONS


def _check_quarantine_entry(case, e, problems):
    kinds = _verdict_kinds(e.get("verdicts"))
    if case.reason == "virus":
        if "virus" not in kinds:
            problems.append(f"{case.name}: quarantine entry without a virus verdict: {e}")
    elif not kinds & set(case.reason if isinstance(case.reason, tuple) else (case.reason,)):
        problems.append(f"{case.name}: quarantine entry lacks exception {case.reason}: "
                        f"{e.get('verdicts')}")
    if e.get("rule") != _expect_rule(case):
        problems.append(f"{case.name}: rule {e.get('rule')!r}, expected {_expect_rule(case)!r}")


def _alive(child, pids_before, mark):
    assert child.proc.running(), "child manager exited"
    assert scan_pids(child) == pids_before, \
        f"scan service pid changed: {pids_before} -> {scan_pids(child)} (it crashed/restarted)"
    log = child.proc.log_since(mark)
    assert "scan service stopped" not in log, \
        "manager logged 'scan service stopped':\n" + "\n".join(
            l for l in log.splitlines() if "scan service" in l)


def test_corpus_is_big_enough(cases):
    """The corpus has at least 40 messages and all three classes."""
    assert len(cases) >= 40
    assert {c.expect for c in cases} == {"delivered", "quarantined", "refused"}


def test_r1_hostile_corpus_direct(cluster, cases):
    """R1.2/R5.1: each corpus message sent straight to child1's SMTP port gets its final reply
    within 30 s and ends in its class: delivered (reaches the sink, body intact), quarantined
    (`250 … quarantined as <file_id>`, the file exists, `quarantine list` shows the expected
    exception kind or virus and rule "Scan exceptions"/"Viruses", tracked as quarantined) or
    refused (5xx with a reply naming the limit). The scan service keeps the same pid
    throughout and the manager never logs "scan service stopped". Accounting: every message
    is in exactly one of sink / quarantine / refused, none lost."""
    child = cluster.children["child1"]
    down = cluster.downstream
    pids = scan_pids(child)
    assert pids, "no scan service process"
    mark = child.proc.log_mark()
    qdir = child.conf["quarantine_dir"]
    files_before = set(stored_files(qdir))
    before = down.delivered_count()

    results = []     # (case, token, message, reply)
    for i, case in enumerate(cases):
        tok, msg = case.message(f"hostile{i}@{DOMAIN}", prefix="d")
        rep = send_direct(child.smtp_port, msg, rcpts=(f"hostile{i}@{DOMAIN}",),
                          timeout=REPLY_BOUND_S + 5)
        results.append((case, tok, msg, rep))
        print(f"hostile: {case.name:36} expect {case.expect:11} got {rep}")
        _alive(child, pids, mark)

    problems = []
    for case, tok, _msg, rep in results:
        if rep.elapsed > REPLY_BOUND_S:
            problems.append(f"{case.name}: reply after {rep.elapsed:.1f}s")
        if rep.cls != case.expect:
            problems.append(f"{case.name}: expected {case.expect} ({case.reason}), got {rep}")
        elif case.expect == "refused":
            if not (500 <= rep.code < 600 and re.search(case.reason, rep.text)):
                problems.append(f"{case.name}: refusal unclear: {rep}")

    # delivered ones reach the sink (exactly once, intact where checkable)
    want = {tok: case for case, tok, _m, rep in results if rep.cls == "delivered"}
    got = {}
    if want:
        def arrived():
            for d in down.delivered():
                if d.token in want:
                    got.setdefault(d.token, set()).add(d.path)
            return len(got) >= len(want)
        try:
            wait_until(arrived, 60, f"{len(want)} delivered corpus messages in the sink")
        except AssertionError:
            problems.append(f"delivered but not in the sink: "
                            f"{sorted(want[t].name for t in set(want) - set(got))}")
        for t, paths in got.items():
            if len(paths) != 1:
                problems.append(f"{want[t].name}: delivered {len(paths)} times")
            elif want[t].intact:
                d = Delivered(next(iter(paths)), read_file(next(iter(paths))))
                if not d.body_intact():
                    problems.append(f"{want[t].name}: delivered body differs")

    # quarantined ones: file, index entry with the expected kind, tracking record
    quarantined = {rep.file_id: (case, tok, rep) for case, tok, _m, rep in results
                   if rep.cls == "quarantined"}
    for fid, (case, tok, rep) in quarantined.items():
        paths = find_stored(qdir, fid)
        if len(paths) != 1 or token_of(read_file(paths[0])) != tok:
            problems.append(f"{case.name}: quarantine file {fid}: {paths}")
    if quarantined:
        entries = wait_quarantine_entries(cluster, list(quarantined), INDEX_BOUND_S)
        for fid, (case, _tok, _rep) in quarantined.items():
            if case.expect == "quarantined":
                _check_quarantine_entry(case, entries[fid], problems)
        recs = wait_log_records(cluster, [r.msg_id for _c, _t, r in quarantined.values()],
                                INDEX_BOUND_S)
        for fid, (case, _tok, rep) in quarantined.items():
            if recs[rep.msg_id].get("action") != "quarantined":
                problems.append(f"{case.name}: tracking record {recs[rep.msg_id]}")

    # accounting: nothing else appeared in the quarantine, and no message is unaccounted for
    new_files = set(stored_files(qdir)) - files_before
    if len(new_files) != len(quarantined):
        problems.append(f"{len(new_files)} new quarantine files for {len(quarantined)} replies")
    refused = [c.name for c, _t, _m, r in results if r.cls == "refused"]
    in_sink = {d.token for d in down.delivered()}
    leaked = [c.name for c, t, _m, r in results if r.cls != "delivered" and t in in_sink]
    if leaked:
        problems.append(f"in the sink although not delivered by the child: {leaked}")
    lost = [c.name for c, _t, _m, r in results if r.cls in ("dropped", "tempfail")]
    print(f"hostile: sent={len(results)} delivered={len(got)} quarantined={len(quarantined)} "
          f"refused={len(refused)} dropped/tempfailed={lost}")
    if lost:
        problems.append(f"no final 2xx/5xx for: {lost}")
    assert len(got) + len(quarantined) + len(refused) + len(lost) == len(results) or problems
    assert down.delivered_count() - before == len(got), "extra messages reached the sink"
    _alive(child, pids, mark)
    assert not problems, "hostile corpus:\n" + "\n".join(problems)


def test_r1_hostile_subset_through_postfix(cluster, cases):
    """R1.2/R5.1: the corpus subset marked postfix=True, sent into the upstream Postfix for
    child1.test, ends in its class as the upstream sees it: delivered (status=sent with the
    downstream's reply, in the sink), quarantined (status=sent with `quarantined as`), refused
    (status=bounced — for the oversize message Postfix bounces on the child's SIZE itself);
    nothing is deferred, the upstream queue empties, the scan service keeps its pid."""
    child = cluster.children["child1"]
    up, down = cluster.upstream, cluster.downstream
    pids = scan_pids(child)
    mark = child.proc.log_mark()
    subset = [c for c in cases if c.postfix]
    assert len(subset) >= 8

    up_mark = up.log_mark()
    sent = {}
    for i, case in enumerate(subset):
        rcpt = f"pf{i}@{DOMAIN}"
        tok, msg = case.message(rcpt, prefix="p")
        qid = up.send(msg, "hostile@origin.test", [rcpt])
        sent[qid] = (case, tok)

    def final():
        d = postfix_deliveries(up, up_mark)
        bounced = re.findall(r" ([0-9A-F]{6,}): to=<[^>]*>,.*status=bounced \((.*)\)$",
                             up.log_since(up_mark), re.M)
        for q, text in bounced:
            d.setdefault(q, []).append(("bounced", text))
        return d if all(q in d and any(s in ("sent", "bounced") for s, _ in d[q])
                        for q in sent) else None
    d = wait_until(final, 120, f"{len(sent)} corpus messages with a final upstream status")

    problems = []
    for q, (case, tok) in sent.items():
        statuses = d[q]
        if any(s == "deferred" for s, _ in statuses):
            problems.append(f"{case.name}: deferred upstream: {statuses}")
        s, text = [x for x in statuses if x[0] in ("sent", "bounced")][-1]
        got = ("refused" if s == "bounced" else
               "quarantined" if QUARANTINED_RE.search(text) else "delivered")
        if got != case.expect:
            problems.append(f"{case.name}: expected {case.expect}, upstream: {s} ({text})")
    want = {tok for _q, (case, tok) in sent.items() if case.expect == "delivered"}
    try:
        wait_until(lambda: want <= {x.token for x in down.delivered()}, 60,
                   f"{len(want)} delivered subset messages in the sink")
    except AssertionError as e:
        problems.append(str(e))
    up.wait_queue_empty(60)
    _alive(child, pids, mark)
    assert not problems, "hostile corpus via Postfix:\n" + "\n".join(problems)
