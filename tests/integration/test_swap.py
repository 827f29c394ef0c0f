"""Signature updates are hot swaps, not restarts (R0.4, R1.4 Beyond): while 500 messages flow
through the upstream Postfix and a child, the child's signature directory is replaced five
times with larger and different sets, and not one message is deferred. One cluster for the
module (one child)."""

import json
import threading
import time

import pytest

import signatures
from harness import account, make_message, new_token, wait_until
from scanning import (QUARANTINED_RE, SENDER, attachment_message, postfix_deliveries,
                      scan_cluster, scan_pids, set_setting, stored_files, token_of,
                      wait_signatures_loaded)

DOMAIN = "child1.test"
N_MESSAGES = 500
EICAR_EVERY = 100              # 1 % infected
SESSION = 10                   # messages per upstream SMTP session
RATE = 50.0                    # messages/s into the upstream: the flow lasts ~10 s
SWAPS = [(20_000, 11), (40_000, 12), (60_000, 13), (80_000, 14), (100_000, 15)]  # (n, seed)


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = scan_cluster(module_dir, pg, n_children=1, n_random=1000)
    try:
        set_setting(c, "cluster.health_interval_s", 1)
    except BaseException:
        c.stop()
        raise
    yield c
    c.stop()


def _find(obj, key):
    """Every value of key anywhere in a JSON document."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                out.append(v)
            out.extend(_find(v, key))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(_find(v, key))
    return out


def test_r0_signature_swaps_under_load_defer_nothing(cluster):
    """R0.4/R1.4: 500 messages (1 % EICAR) are sent into the upstream Postfix for child1.test
    at 50 messages/s while child1's signature directory is replaced 5 times (20k → 100k
    random signatures, a different seed each time, EICAR kept; files written atomically):
    replacement k starts once k/6 of the mail went through the child, and each is loaded
    (`signatures loaded … swaps=k`) while mail still flows. Zero 4xx: the upstream log has
    no status=deferred, its queue is empty at the end, the child logs no tempfail, the scan
    service keeps its pid. Accounting: every clean message is delivered once intact, every
    EICAR message is quarantined (`quarantined as` reply, one file each), none lost; health
    reports engine_swaps >= 5."""
    child = cluster.children["child1"]
    up, down = cluster.upstream, cluster.downstream
    sig_dir = child.conf["signature_dir"]
    qdir = child.conf["quarantine_dir"]
    pids = scan_pids(child)
    assert pids
    mark = child.proc.log_mark()
    up_mark = up.log_mark()
    before = down.delivered_count()
    q_before = len(stored_files(qdir))
    swaps0 = int(wait_signatures_loaded(child, 0, 5).group("swaps"))

    clean, infected, items = [], [], []
    for i in range(N_MESSAGES):
        rcpt = f"swap{i}@{DOMAIN}"
        if i % EICAR_EVERY == EICAR_EVERY // 2:
            tok = new_token(f"s-eicar-{i:03d}")
            infected.append(tok)
            msg = attachment_message(tok, rcpt, [("eicar.com", signatures.EICAR)])
        else:
            tok = new_token(f"s-{i:03d}")
            clean.append(tok)
            msg = make_message(tok, SENDER, rcpt, kind="8bit" if i % 7 == 0 else "plain")
        items.append((msg, SENDER, [rcpt]))

    # The sender paces the upstream intake at RATE messages/s (a load generator's schedule,
    # not a wait for a condition), so the mail flows through the child for about 10 s; swap k
    # starts once k/6 of the clean mail went through, so each new engine is built and put in
    # force while mail is being scanned.
    state = {"qids": [], "error": None}

    def sender():
        t0 = time.monotonic()
        try:
            for s0 in range(0, N_MESSAGES, SESSION):
                delay = t0 + s0 / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                state["qids"].extend(up.send_many(items[s0:s0 + SESSION]))
        except Exception as e:  # reported by the main thread
            state["error"] = e

    def through():
        return down.delivered_count() - before

    t = threading.Thread(target=sender, name="swap-sender", daemon=True)
    t.start()
    loaded = []
    try:
        for k, (n, seed) in enumerate(SWAPS, 1):
            goal = k * len(clean) // (len(SWAPS) + 1)
            wait_until(lambda: through() >= goal or state["error"], 60,
                       f"{goal} messages through child1")
            at_start = through()
            m0 = child.proc.log_mark()
            signatures.replace_random(sig_dir, n, seed)
            m = wait_signatures_loaded(child, swaps0 + k, 30, since=m0)
            loaded.append((k, int(m.group("sigs")), int(m.group("ms")), at_start, through()))
            assert int(m.group("sigs")) >= n, m.group(0)
    finally:
        t.join(120)
    assert not t.is_alive(), "the sender thread did not finish"
    assert state["error"] is None, f"upstream refused a message: {state['error']}"
    for k, sigs, ms, at_start, at_load in loaded:
        print(f"R0.4: swap {k}: sigs={sigs} load_ms={ms} clean messages through the child: "
              f"{at_start} at the write, {at_load} when loaded (of {len(clean)})")
    # every new engine was in force while mail was still flowing through the child
    late = [x for x in loaded if x[4] >= len(clean)]
    assert not late, f"swaps loaded after the flow had ended: {late}"

    qids = state["qids"]
    assert len(qids) == N_MESSAGES and all(qids)
    tok_of_qid = {q: token_of(msg) for q, (msg, _s, _r) in zip(qids, items)}

    def all_final():
        d = postfix_deliveries(up, up_mark)
        return d if all(q in d for q in qids) else None
    d = wait_until(all_final, 90, f"{N_MESSAGES} deliveries logged by the upstream Postfix")
    up.wait_queue_empty(30)

    log = up.log_since(up_mark)
    assert "status=deferred" not in log, \
        "deferred upstream:\n" + "\n".join(l for l in log.splitlines() if "status=deferred" in l)[:3000]
    child_log = child.proc.log_since(mark)
    assert "result=tempfail" not in child_log, \
        "\n".join(l for l in child_log.splitlines() if "tempfail" in l)[:3000]
    assert scan_pids(child) == pids, "scan service restarted during the swaps"

    quarantined = set()
    for q in qids:
        statuses = d[q]
        assert [s for s, _ in statuses] == ["sent"], (tok_of_qid[q], statuses)
        if QUARANTINED_RE.search(statuses[0][1]):
            quarantined.add(tok_of_qid[q])
    assert quarantined == set(infected), (sorted(quarantined ^ set(infected)))

    delivered = down.wait_delivered(before + len(clean), 60)
    summary = account(clean, delivered)
    assert not set(infected) & {x.token for x in delivered}
    assert len(stored_files(qdir)) - q_before == len(infected)
    assert summary["delivered"] + len(quarantined) == N_MESSAGES
    print(f"R0.4: sent={N_MESSAGES} delivered={summary['delivered']} "
          f"quarantined={len(quarantined)} deferred=0 swaps={len(SWAPS)}")

    def swaps_reported():
        st = json.loads(cluster.cli_ok("status", "--json"))
        vals = [v for v in _find(st, "engine_swaps") if isinstance(v, int)]
        return vals if vals and max(vals) >= swaps0 + len(SWAPS) else None
    wait_until(swaps_reported, 15, "health to report engine_swaps >= 5")
