#!/usr/bin/env python3
"""Searches at 10 million rows (issue 12 point 5, R10.3): a real PostgreSQL (the integration
harness, in /tmp) and a real parent; ROWS tracking records in message_log (31 daily
partitions) and STORED rows in stored_messages, generated inside PostgreSQL (INSERT … SELECT
over generate_series, in chunks, through every index of the schema); then the console's
searches, each through the parent's HTTPS API as the console sends them, for several values
each (a hot one, middling ones, rare ones, drawn from the data): p50 and p95 per search, and
the plan PostgreSQL chose (auto_explain, EXPLAIN ANALYZE of the very statements the parent
ran). Prints Markdown for docs/BENCHMARKS.md; never fails on a number.
  usage: tests/bench/search_bench.sh [BUILD=build] [--rows N] [--stored N] [--keep DIR]"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import cluster  # noqa: E402
from apiclient import Api, make_token, make_user  # noqa: E402
from harness import Parent, PostgresServer, wait_until  # noqa: E402

DAYS = 31
CHUNK = 500_000
SENDERS = 200_000      # distinct sender addresses, skewed: a few send much of the mail
RECIPIENTS = 50_000    # distinct recipient addresses, skewed likewise
CHILDREN = 50
VALUES_PER_SEARCH = 12  # values each search is timed with
ROUNDS = 3              # every value this many times (the first of all is a warm-up)

# Subjects: words from a small vocabulary (so that "contains" finds common and rare words),
# one in 2,000 with a rare token. Server-side: the arrays are parameters of the INSERT.
WORDS = ("invoice payment order shipping delivery account update security notice meeting "
         "report quarterly annual review project status request approval urgent reminder "
         "newsletter offer discount sale free winner prize password reset confirm verify "
         "document contract agreement proposal budget forecast schedule agenda minutes "
         "welcome thanks question support ticket issue problem error alert warning").split()


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True, help="the build's bin directory")
    p.add_argument("--rows", type=int, default=10_000_000, help="tracking records")
    p.add_argument("--stored", type=int, default=2_000_000, help="stored-message rows")
    p.add_argument("--keep", help="reuse (or leave) the database in this directory")
    return p.parse_args()


class Shim:
    """What apiclient's make_user / make_token want of a cluster: the parent and its CLI."""

    def __init__(self, parent):
        self.parent = parent

    def cli_ok(self, *args):
        import subprocess
        cp = subprocess.run([cluster.bin_path("portcullis"), "-c", self.parent.conf_path] +
                            [str(a) for a in args], capture_output=True, text=True, timeout=60)
        if cp.returncode != 0:
            raise RuntimeError(f"portcullis {args}: {cp.stderr}")
        return cp.stdout


def _drop_indexes(pg, table):
    """Drops table's indexes that no constraint needs; returns their definitions."""
    rows = pg.sql("SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
                  "FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT EXISTS "
                  "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
                  (table,), dbname="portcullis")
    for name, _ in rows:
        pg.sql(f"DROP INDEX {name}", dbname="portcullis")
    return [d for _, d in rows]


def _create_indexes(pg, defs):
    for d in defs:
        pg.sql("SET maintenance_work_mem = '1GB'; " + d, dbname="portcullis")


def _fill(pg, table, sql, want):
    """Adds rows to table by sql in chunks until it holds want; its secondary indexes (the
    schema's own definitions, read back from PostgreSQL) are dropped for the load and built
    again after it: a bulk build, as a restore does."""
    done = pg.sql(f"SELECT count(*) FROM {table}", dbname="portcullis")[0][0]
    if done >= want:
        print(f"# {table} has {done} rows already", file=sys.stderr)
        return
    t0, have = time.monotonic(), done
    defs = _drop_indexes(pg, table)
    while done < want:
        n = min(CHUNK, want - done)
        pg.sql(sql, {"words": list(WORDS), "n": n, "offset": done}, dbname="portcullis")
        done += n
        print(f"# {table} {done} rows, {time.monotonic() - t0:.0f} s", file=sys.stderr)
    _create_indexes(pg, defs)
    pg.sql(f"VACUUM (ANALYZE) {table}", dbname="portcullis")
    print(f"# loaded {want - have} rows into {table} with its indexes in "
          f"{time.monotonic() - t0:.0f} s", file=sys.stderr)


def load(pg, rows, stored):
    """Fills message_log (its day partitions first) and stored_messages."""
    pg.sql(f"SELECT message_log_partition((current_date - d)::date) "
           f"FROM generate_series(0, {DAYS}) d", dbname="portcullis")
    _fill(pg, "message_log", TRACKING_SQL, rows)
    _fill(pg, "stored_messages", STORED_SQL, stored)


# Shared expressions (psycopg2 parameters words, n, offset): a skewed pick (power law) of the
# sender and recipient numbers, a subject of 3-7 vocabulary words (one in 2,000 with a rare
# token zqN), and draws for the verdict, action and kind.
_SOURCE = f"""
    SELECT g AS n,
           now() - random() * interval '{DAYS} days' AS at,
           (power(random(), 3) * {SENDERS})::int AS s,
           (power(random(), 3) * {RECIPIENTS})::int AS r1,
           (random() * {RECIPIENTS})::int AS r2,
           random() AS v, random() AS a, random() AS k,
           (SELECT string_agg(w[1 + (random() * (array_length(w, 1) - 1))::int + 0 * i], ' ')
              FROM generate_series(1, 3 + (g %% 5)) i) ||
             CASE WHEN g %% 2000 = 0 THEN ' zq' || (g %% 977) ELSE '' END AS subj
      FROM (SELECT %(words)s::text[] AS w) words,
           generate_series(%(offset)s::bigint + 1, %(offset)s::bigint + %(n)s::bigint) g
"""

TRACKING_SQL = f"""
INSERT INTO message_log (received_at, child_id, child, spool_epoch, seq, msg_id, message_id,
    sender, recipients, client_addr, size, verdicts, rule, action, subject, reply)
SELECT at, 1 + n %% {CHILDREN}, 'child-' || (1 + n %% {CHILDREN}), 'bench', n,
       md5(n::text), '<' || n || '@bench.test>',
       'sender' || s || '@example' || (s %% 97) || '.test',
       CASE WHEN n %% 4 = 0 THEN ARRAY['user' || r1 || '@corp.test', 'user' || r2 || '@corp.test']
            ELSE ARRAY['user' || r1 || '@corp.test'] END,
       '192.0.2.' || (n %% 250), 1000 + (n %% 50000),
       CASE WHEN v < 0.01 THEN '[{{"engine":"av","result":"virus","detail":"Eicar-Test-Signature"}}]'::jsonb
            WHEN v < 0.06 THEN '[{{"engine":"spam","result":"spam","detail":"score 9.1"}}]'::jsonb
            ELSE '[{{"engine":"av","result":"clean","detail":""}}]'::jsonb END,
       CASE WHEN v < 0.06 THEN 'quarantine-bad' ELSE '' END,
       CASE WHEN v < 0.06 THEN 'quarantined' WHEN a < 0.02 THEN 'deleted'
            WHEN a < 0.03 THEN 'tempfailed' WHEN a < 0.04 THEN 'rejected' ELSE 'delivered' END,
       subj, '250 2.0.0 Ok'
  FROM ({_SOURCE}) src
"""

STORED_SQL = f"""
INSERT INTO stored_messages (child_id, child, area, kind, file_id, bucket, size, received_at,
    sender, recipients, subject, verdicts, rule, msg_id, spool_epoch, seq)
SELECT 1 + n %% {CHILDREN}, 'child-' || (1 + n %% {CHILDREN}),
       CASE WHEN k < 0.7 THEN (ARRAY['virus', 'spam', 'policy'])[1 + (n %% 3)] ELSE 'all' END,
       CASE WHEN k < 0.7 THEN 'quarantine' ELSE 'archive' END,
       md5(n::text), to_char(at, 'YYYYMMDDHH24'), 1000 + (n %% 50000), at,
       'sender' || s || '@example' || (s %% 97) || '.test',
       ARRAY['user' || r1 || '@corp.test'],
       subj,
       CASE WHEN v < 0.2 THEN '[{{"engine":"av","result":"virus","detail":"Eicar-Test-Signature"}}]'::jsonb
            ELSE '[{{"engine":"spam","result":"spam","detail":"score 9.1"}}]'::jsonb END,
       CASE WHEN v < 0.2 THEN 'virus-rule' ELSE 'spam-rule' END,
       md5(n::text), 'bench', n
  FROM ({_SOURCE}) src
"""


def pick_values(pg):
    """Search values drawn from the data: for each kind, a hot one, middling ones, rare ones."""
    q = lambda sql: [r[0] for r in pg.sql(sql, dbname="portcullis")]  # noqa: E731
    senders = q("SELECT 'sender' || s || '@example' || (s % 97) || '.test' FROM (VALUES (0), "
                "(1), (7), (40), (300), (2000), (9000), (30000), (70000), (120000), (160000), "
                "(199000)) v(s)")
    rcpts = q("SELECT 'user' || r || '@corp.test' FROM (VALUES (0), (1), (5), (30), (200), "
              "(1000), (4000), (9000), (20000), (33000), (45000), (49900)) v(r)")
    words = ["invoice", "password", "quarterly", "urgent", "meeting", "prize", "zq12", "zq500",
             "zq976", "paym", "rt qu", "nomatchatall"]
    return senders[:VALUES_PER_SEARCH], rcpts[:VALUES_PER_SEARCH], words[:VALUES_PER_SEARCH]


def searches(senders, rcpts, words):
    """(name, list of API paths): what the console asks for."""
    T, S = "/api/v1/logs/tracking?since=31d&", "/api/v1/stored/quarantine?since=31d&"
    e = urllib.parse.quote
    return [
        ("tracking: last 24 h, first page", ["/api/v1/logs/tracking?"] * VALUES_PER_SEARCH),
        ("tracking: sender (31 days)", [T + "sender=" + e(s) for s in senders]),
        ("tracking: recipient (31 days)", [T + "recipient=" + e(r) for r in rcpts]),
        ("tracking: verdict virus (31 days)", [T + "verdict=virus"] * VALUES_PER_SEARCH),
        ("tracking: action deleted (31 days)", [T + "action=deleted"] * VALUES_PER_SEARCH),
        ("tracking: one hour, a week ago",
         [f"/api/v1/logs/tracking?since={7 * 24 + i}h&until={7 * 24 + i - 1}h"
          for i in range(VALUES_PER_SEARCH)]),
        ("tracking: sender + recipient", [T + "sender=" + e(s) + "&recipient=" + e(r)
                                          for s, r in zip(senders, rcpts)]),
        ("quarantine: newest page", ["/api/v1/stored/quarantine?"] * VALUES_PER_SEARCH),
        ("quarantine: subject contains", [S + "subject=" + e(w) for w in words]),
        ("quarantine: sender", [S + "sender=" + e(s) for s in senders]),
        ("quarantine: recipient", [S + "recipient=" + e(r) for r in rcpts]),
        ("quarantine: verdict virus", [S + "verdict=virus"] * VALUES_PER_SEARCH),
    ]


def time_search(api, path, pages=1):
    """ms of one search (and, with pages > 1, of following its `next` that many pages)."""
    out, url = [], path
    for _ in range(pages):
        t0 = time.perf_counter()
        status, body, _ = api.request("GET", url)
        out.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise RuntimeError(f"GET {url}: {status} {body}")
        nxt = body.get("next")
        if not nxt:
            break
        url = path + ("" if path.endswith("?") else "&") + "after=" + urllib.parse.quote(nxt)
    return out, body


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def explain(pg, parent, api, plan_paths):
    """The plan of each search's statement, from auto_explain in the server log."""
    log = pg.log_path
    pg.sql("ALTER DATABASE portcullis SET session_preload_libraries = 'auto_explain'")
    pg.sql("ALTER DATABASE portcullis SET auto_explain.log_min_duration = 0")
    pg.sql("ALTER DATABASE portcullis SET auto_explain.log_analyze = on")
    pg.sql("ALTER DATABASE portcullis SET auto_explain.log_buffers = on")
    plans = {}
    try:
        parent.stop()
        parent.start()
        for name, path in plan_paths:
            start = os.path.getsize(log)
            api.request("GET", path)

            def logged():
                """The search's plan once the server has written it (after the statement)."""
                with open(log, errors="replace") as f:
                    f.seek(start)
                    text = f.read()
                found = re.findall(r"plan:\n(.*?)(?=\n\d{4}-\d\d-\d\d |\Z)", text, re.S)
                found = [p for p in found if "message_log" in p or "stored_messages" in p]
                return found[-1] if found else None
            try:
                plans[name] = wait_until(logged, 10, f"the plan of {name!r}")
            except Exception:
                plans[name] = "(no plan logged)"
    finally:
        pg.sql("ALTER DATABASE portcullis RESET ALL")
        parent.stop()
        parent.start()
    return plans


def main():
    args = parse_args()
    cluster.BIN_DIR = os.path.abspath(args.bin)
    run_dir = args.keep or tempfile.mkdtemp(prefix="portcullis-search-", dir="/tmp")
    os.makedirs(run_dir, exist_ok=True)
    os.chmod(run_dir, 0o755)
    pg = PostgresServer(run_dir)
    fresh = not os.path.exists(os.path.join(run_dir, "postgres", "data", "PG_VERSION"))
    pg.start(reset=fresh)
    parent = Parent(os.path.join(run_dir, "parent"), pg.dsn)
    try:
        parent.start(timeout=120)  # applies the migrations
        load(pg, args.rows, args.stored)
        shim = Shim(parent)
        try:
            make_user(shim, "bench", "viewer", "bench-password-1")
        except AssertionError:
            pass  # made in an earlier run on this database
        api = Api(parent, token=make_token(shim, "bench"))
        senders, rcpts, words = pick_values(pg)
        rows = []
        plan_paths = []
        for name, paths in searches(senders, rcpts, words):
            times, hits = [], []
            time_search(api, paths[0])  # warm-up
            for _ in range(ROUNDS):
                for p in paths:
                    ms, body = time_search(api, p)
                    times += ms
                    items = body.get("records", body.get("messages", []))
                    hits.append(len(items))
            rows.append((name, statistics.median(times), pct(times, 95), max(times),
                         min(hits), max(hits)))
            plan_paths.append((name, paths[len(paths) // 2]))
            print(f"# {name}: p50 {rows[-1][1]:.1f} p95 {rows[-1][2]:.1f} ms", file=sys.stderr)
        # keyset paging: 10 pages of 100 down the whole 31 days of virus verdicts and of a
        # hot sender
        pages = []
        for name, path in (("tracking: verdict virus, pages 1-10",
                            "/api/v1/logs/tracking?since=31d&verdict=virus"),
                           ("tracking: hot sender, pages 1-10",
                            "/api/v1/logs/tracking?since=31d&sender=" +
                            urllib.parse.quote(senders[0])),
                           ("quarantine: newest, pages 1-10", "/api/v1/stored/quarantine?")):
            times = []
            for _ in range(ROUNDS):
                ms, _ = time_search(api, path, pages=10)
                times += ms
            pages.append((name, statistics.median(times), pct(times, 95), max(times)))
            print(f"# {name}: p50 {pages[-1][1]:.1f} p95 {pages[-1][2]:.1f} ms", file=sys.stderr)
        counts = pg.sql("SELECT (SELECT count(*) FROM message_log), "
                        "(SELECT count(*) FROM stored_messages), "
                        "pg_size_pretty(pg_total_relation_size('stored_messages')), "
                        "(SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) "
                        "   FROM pg_inherits WHERE inhparent = 'message_log'::regclass)",
                        dbname="portcullis")[0]
        plans = explain(pg, parent, api, plan_paths)
    finally:
        parent.stop()
        pg.stop()
    print(f"{counts[0]:,} tracking records ({counts[3]} with indexes), {counts[1]:,} stored "
          f"messages ({counts[2]}); each search {ROUNDS} × {VALUES_PER_SEARCH} values through "
          "`GET` on the parent's HTTPS API (a new TLS connection each, as measured from the "
          "client), first page of 100:\n")
    print("| search | p50 | p95 | max | rows on the page (min–max) |")
    print("|---|---|---|---|---|")
    for name, p50, p95, mx, lo, hi in rows:
        print(f"| {name} | {p50:.1f} ms | {p95:.1f} ms | {mx:.1f} ms | {lo}–{hi} |")
    print("\nKeyset paging (`after` = the previous page's `next`), each page timed:\n")
    print("| search | p50 | p95 | max |")
    print("|---|---|---|---|")
    for name, p50, p95, mx in pages:
        print(f"| {name} | {p50:.1f} ms | {p95:.1f} ms | {mx:.1f} ms |")
    print("\nPlans (auto_explain: EXPLAIN ANALYZE of the parent's own statement for one value):\n")
    for name, plan in plans.items():
        lines = [ln[1:] if ln.startswith("\t") else ln for ln in plan.splitlines()
                 if ln.strip() and "Query Text:" not in ln]
        print(f"- {name}:\n\n```\n" + "\n".join(lines[:40]) + "\n```\n")
    if not args.keep:
        print(f"# run directory {run_dir} (remove it when done)", file=sys.stderr)


if __name__ == "__main__":
    main()
