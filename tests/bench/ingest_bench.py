#!/usr/bin/env python3
"""What one PostgreSQL connection stores into message_log (issue 12, R10.2): the same 500-row
batches of tracking records by the parent's multi-row jsonb INSERT (its statement, read from
parent/cluster/ingest.c) and by COPY, into the real schema (a parent applies its migrations
first), one transaction per batch; then with the recipient GIN index function as it was
before migration 014, and with fewer indexes, to show what each costs. The batches are built
before the clock starts. Prints a Markdown table; never fails on a number.
  usage: /usr/bin/python3 tests/bench/ingest_bench.py [--bin build/bin] [--batches 60]"""

import argparse
import io
import json
import os
import re
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import cluster  # noqa: E402
from harness import Parent, PostgresServer  # noqa: E402

BATCH = 500
COLS = ("received_at, child_id, child, spool_epoch, seq, msg_id, message_id, queue_id, sender,"
        " recipients, client_addr, client_name, size, verdicts, rule, action, subject, reply,"
        " quarantine_area, archived_to, ms_receive, ms_scan, ms_deliver")
OLD_LOWER = ("CREATE OR REPLACE FUNCTION portcullis_lower_array(a text[]) RETURNS text[] "
             "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS "
             "$$ SELECT coalesce(array_agg(lower(x)), '{}') FROM unnest(a) AS x $$")
NEW_LOWER = ("CREATE OR REPLACE FUNCTION portcullis_lower_array(a text[]) RETURNS text[] "
             "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT lower(a::text)::text[] $$")


def insert_sql():
    """The parent's tracking INSERT, its $n turned into psycopg2's named parameters."""
    src = open(os.path.join(REPO, "parent", "cluster", "ingest.c")).read()
    body = re.search(r"static const char s_sql_tracking\[\] =\n(.*?);\n", src, re.S).group(1)
    sql = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))
    return (sql.replace("$1::bigint", "%(id)s::bigint").replace("$2", "%(child)s")
            .replace("$3", "%(epoch)s").replace("$4", "%(rows)s"))


def record(seq, now):
    return {"seq": seq, "received_ms": now, "msg_id": uuid.uuid4().hex[:16],
            "message_id": f"<{uuid.uuid4().hex}@example.org>", "queue_id": "4F1A2B3C",
            "sender": "alice@example.org", "recipients": ["Bob@example.net", "carol@example.net"],
            "client_addr": "192.0.2.10", "client_name": "mx.example.org", "size": 4321,
            "verdicts": [{"engine": "av", "result": "clean", "detail": ""}], "rule": "",
            "action": "delivered", "subject": "Quarterly report " + uuid.uuid4().hex[:8],
            "reply": "250 2.0.0 Ok: queued as 4F1A2B3C", "quarantine_area": "",
            "archived_to": [], "ms_receive": 3, "ms_scan": 5, "ms_deliver": 7}


def esc(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def arr(v):
    return "{" + ",".join('"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"' for x in v) + "}"


def copy_line(r, epoch):
    ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["received_ms"] // 1000)) + \
        ".%03d+00" % (r["received_ms"] % 1000)
    f = [ts, "1", "bench", epoch, str(r["seq"]), r["msg_id"], r["message_id"], r["queue_id"],
         r["sender"], arr(r["recipients"]), r["client_addr"], r["client_name"], str(r["size"]),
         json.dumps(r["verdicts"]), r["rule"], r["action"], r["subject"], r["reply"],
         r["quarantine_area"], arr(r["archived_to"]), str(r["ms_receive"]), str(r["ms_scan"]),
         str(r["ms_deliver"])]
    return "\t".join(esc(x) for x in f) + "\n"


def run(conn, mode, batches):
    cur = conn.cursor()
    epoch, now, seq, data = uuid.uuid4().hex[:16], int(time.time() * 1000), 0, []
    for _ in range(batches):
        rows = [record(seq + i + 1, now) for i in range(BATCH)]
        seq += BATCH
        data.append(json.dumps(rows) if mode == "INSERT" else
                    "".join(copy_line(r, epoch) for r in rows))
    sql = insert_sql()
    t0 = time.monotonic()
    for d in data:
        if mode == "INSERT":
            cur.execute(sql, {"id": 1, "child": "bench", "epoch": epoch, "rows": d})
        else:
            cur.copy_expert(f"COPY message_log ({COLS}) FROM STDIN", io.StringIO(d))
        conn.commit()
    return batches * BATCH / (time.monotonic() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "bin"))
    ap.add_argument("--batches", type=int, default=60)
    a = ap.parse_args()
    import psycopg2
    cluster.BIN_DIR = os.path.abspath(a.bin)
    run_dir = tempfile.mkdtemp(prefix="portcullis-ingest-", dir="/tmp")
    os.chmod(run_dir, 0o755)
    pg = PostgresServer(run_dir)
    pg.start()
    out = []
    try:
        p = Parent(os.path.join(run_dir, "p"), pg.dsn)
        p.start()
        p.stop()  # the schema, nothing else
        conn = psycopg2.connect(pg.dsn)
        cur = conn.cursor()
        cur.execute("SELECT message_log_partition(now()::date)")
        conn.commit()

        def phase(label, modes=("INSERT", "COPY", "INSERT", "COPY")):
            for m in modes:
                out.append((label, m, run(conn, m, a.batches)))
                print(f"# {out[-1]}", file=sys.stderr)

        cur.execute(OLD_LOWER)
        conn.commit()
        phase("all 8 indexes, the index function before migration 014")
        cur.execute(NEW_LOWER)
        conn.commit()
        phase("all 8 indexes (this schema)")
        for idx in ("message_log_recipients_idx", "message_log_verdicts_idx"):
            cur.execute(f"DROP INDEX {idx}")
        conn.commit()
        phase("without the two GIN indexes", ("COPY",))
        for idx in ("message_log_sender_idx", "message_log_action_idx", "message_log_child_idx",
                    "message_log_msg_id_idx"):
            cur.execute(f"DROP INDEX {idx}")
        conn.commit()
        phase("primary key and unique key only", ("COPY",))
        conn.close()
    finally:
        pg.stop()
    print(f"| message_log indexes | statement | rows/s ({a.batches} batches of {BATCH}) |")
    print("|---|---|---|")
    for label, m, rps in out:
        print(f"| {label} | {m} | {rps:,.0f} |")


if __name__ == "__main__":
    main()
