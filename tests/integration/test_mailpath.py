"""Mail path through real children: upstream Postfix -> child scan service -> downstream Postfix
-> Maildir, with full message accounting (R1.1, R1.2, R1.3). One cluster for the module; the
test that stops the downstream MTA runs last."""

import re

import pytest

from harness import Cluster, account, make_message, new_token, wait_until

SENDER = "sender@origin.test"
# a child's own 4xx reply as Postfix records it in delay_reason ("host ... said: 451 4.4.1 ...")
CHILD_4XX = re.compile(r"said: 4\d\d[ -]")


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = Cluster(module_dir, pg, n_children=2).start()
    yield c
    c.stop()


def _relay_of(cluster, domain):
    """The "relay=..." text Postfix logs for a delivery to the child serving domain."""
    child = cluster.children[domain.split(".")[0]]
    return f"relay=127.0.0.1[127.0.0.1]:{child.smtp_port}"


def test_r1_200_messages_reach_sink_intact(cluster):
    """R1.1/R1.2: 200 messages sent into the upstream Postfix, 100 per child domain, go through
    the child serving their domain (after-queue content filter) and reach the downstream's
    Maildir exactly once each with bodies intact (token + SHA-256 of the body per message,
    including an 8-bit body and bodies with lines starting with '.'); the upstream queue is
    empty at the end."""
    up, down = cluster.upstream, cluster.downstream
    tokens, items, by_domain = [], [], {}
    for dom in ("child1.test", "child2.test"):
        for i in range(100):
            kind = {0: "8bit", 1: "dots", 2: "dots"}.get(i, "plain")
            tok = new_token(f"a-{dom.split('.')[0]}-{i:03d}")
            rcpt = f"user{i}@{dom}"
            tokens.append(tok)
            by_domain.setdefault(dom, []).append(tok)
            items.append((make_message(tok, SENDER, rcpt, kind=kind), SENDER, [rcpt]))
    before = down.delivered_count()
    ids = up.send_many(items)
    assert len(ids) == 200 and all(ids), "upstream did not queue every message"

    delivered = down.wait_delivered(before + 200, 120)
    summary = account(tokens, delivered)
    assert summary["delivered"] == 200

    up.wait_queue_empty(30)
    down.wait_queue_empty(30)

    # each domain's mail went through its own child, and only through it
    log = up.log_text()
    for dom in ("child1.test", "child2.test"):
        sent_via_child = re.findall(
            r"to=<user\d+@" + re.escape(dom) + r">, " + re.escape(_relay_of(cluster, dom))
            + r".*status=sent", log)
        assert len(sent_via_child) == 100, (dom, len(sent_via_child))

    mine = {d.token: d for d in delivered if d.token in set(tokens)}
    eight = mine[by_domain["child1.test"][0]]
    assert "Grüße aus Köln".encode() in eight.body and "日本語".encode() in eight.body
    for dom in ("child1.test", "child2.test"):
        dots = mine[by_domain[dom][1]]
        assert b"\n.\n..two dots\n.leading dot line\nmiddle line\n. space after dot\n...\n" \
            in dots.body.replace(b"\r\n", b"\n")


def test_r1_downstream_down_defers_then_flush_delivers(cluster):
    """R1.2/R1.3: with the downstream MTA stopped, the child answers 4xx, so all 20 messages
    stay deferred in the upstream queue (the child's 4xx reply in delay_reason) and none is
    delivered; after the downstream starts and the upstream queue is flushed, all 20 are
    delivered exactly once with bodies intact and the queue is empty (sent = delivered,
    nothing lost or duplicated)."""
    up, down = cluster.upstream, cluster.downstream
    before = down.delivered_count()
    down.stop()
    try:
        tokens, items = [], []
        for dom in ("child1.test", "child2.test"):
            for i in range(10):
                tok = new_token(f"b-{dom.split('.')[0]}-{i:02d}")
                rcpt = f"defer{i}@{dom}"
                tokens.append(tok)
                items.append((make_message(tok, SENDER, rcpt), SENDER, [rcpt]))
        ids = set(up.send_many(items))
        assert len(ids) == 20 and None not in ids

        def all_deferred_by_child():
            q = {e["queue_id"]: e for e in up.queue()}
            if not ids <= set(q):
                return None
            for qid in ids:
                e = q[qid]
                if e["queue_name"] != "deferred":
                    return None
                if not all(CHILD_4XX.search(r.get("delay_reason", "")) for r in e["recipients"]):
                    return None
            return q

        q = wait_until(all_deferred_by_child, 60,
                       "all 20 messages deferred upstream with the child's 4xx reply")
        reasons = sorted({r["delay_reason"] for qid in ids for r in q[qid]["recipients"]})
        assert all(CHILD_4XX.search(r) for r in reasons), reasons
        assert down.delivered_count() == before, "a message was delivered while downstream was down"
    finally:
        down.start()

    up.flush()
    delivered = down.wait_delivered(before + 20, 90)
    summary = account(tokens, delivered)
    assert summary == {"sent": 20, "delivered": 20, "lost": [], "duplicated": [], "corrupt": []}
    up.wait_queue_empty(30)
    assert down.delivered_count() == before + 20
