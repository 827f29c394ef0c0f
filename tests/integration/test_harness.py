"""Harness self-check: no Portcullis binary involved. Proves that the Postfix test instances
(upstream with a per-domain after-queue FILTER, downstream reinjection + Maildir) and the
PostgreSQL test server work, so that a failure in the cluster tests is Portcullis's own."""

import harness
from harness import PostfixInstance, account, make_message, new_token


def test_postfix_filter_path_delivers_intact(module_dir):
    """harness self-check: an upstream whose FILTER for sink.test points straight at the
    downstream's reinjection port delivers 50 messages (plain, 8-bit, dot-leading lines) with
    bodies intact, exactly once each, and leaves its queue empty."""
    down = PostfixInstance(module_dir, "downstream", "downstream")
    up = PostfixInstance(module_dir, "upstream", "upstream",
                         filters={"sink.test": f"127.0.0.1:{down.port}"})
    try:
        down.check()
        up.check()
        down.start()
        up.start()
        kinds = ["8bit", "dots"] + ["plain"] * 48
        tokens, items = [], []
        for i, kind in enumerate(kinds):
            tok = new_token(f"self{i:02d}")
            rcpt = f"user{i}@sink.test"
            tokens.append(tok)
            items.append((make_message(tok, "sender@origin.test", rcpt, kind=kind),
                          "sender@origin.test", [rcpt]))
        ids = up.send_many(items)
        assert all(ids), f"upstream did not report queue ids: {ids}"
        delivered = down.wait_delivered(len(tokens), 60)
        summary = account(tokens, delivered)
        assert summary["delivered"] == 50
        up.wait_queue_empty(30)
        down.wait_queue_empty(30)
        # the filter transport was really used, with the downstream's reply
        log = up.log_text()
        assert "postfix-scan1/smtp" in log and "status=sent" in log
        eight = [d for d in delivered if d.token == tokens[0]][0]
        assert "Grüße".encode() in eight.body
        dots = [d for d in delivered if d.token == tokens[1]][0]
        assert b"\n.\n..two dots\n.leading dot line\n" in dots.body
    finally:
        up.stop()
        down.stop()


def test_postgres_server(pg):
    """harness self-check: the PostgreSQL test server accepts the portcullis role on loopback
    and reset_database() leaves an empty database."""
    import psycopg2
    pg.reset_database()
    conn = psycopg2.connect(pg.dsn, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, current_database(), inet_server_addr()::text")
            user, db, addr = cur.fetchone()
            cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            ntables = cur.fetchone()[0]
    finally:
        conn.close()
    assert (user, db) == ("portcullis", "portcullis")
    assert addr.startswith("127.0.0.1")
    assert ntables == 0
    assert harness.port_open("127.0.0.1", pg.port)
