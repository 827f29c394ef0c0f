"""Integration-test harness: real PostgreSQL, real Postfix instances and the real Portcullis
binaries on loopback, each process logging to a file in the run directory. This module is the
one the tests import; the pieces live beside it:

  procs.py     polling with deadlines, ports, directories, Proc (process + log file)
  pgserver.py  PostgresServer (initdb/pg_ctl as postgres, 127.0.0.1, free port)
  messages.py  self-accounting test messages (token + body SHA-256), account()
  mta.py       PostfixInstance (upstream with per-domain FILTER, downstream Maildir sink)
  cluster.py   Parent, Child, Cluster (the Portcullis processes and the admin CLI)
"""

from cluster import Child, Cluster, Parent, bin_path, curve_key, entry_is, parse_conf, write_conf
from messages import (DIGEST_HEADER, TOKEN_HEADER, Delivered, account, body_digest, make_message,
                      new_token, split_message)
from mta import PostfixInstance
from pgserver import PostgresServer
from procs import (ACTIVE_LOGS, BIN_DIR, LOOPBACK, POLL_S, REPO, STOP_GRACE_S, HarnessError, Proc,
                   forget_logs, free_port, make_dir, make_traversable, pid_alive, port_open, run,
                   tail, wait_for_port, wait_port_closed, wait_until)

__all__ = [
    "ACTIVE_LOGS", "BIN_DIR", "DIGEST_HEADER", "LOOPBACK", "POLL_S", "REPO", "STOP_GRACE_S",
    "TOKEN_HEADER", "Child", "Cluster", "Delivered", "HarnessError", "Parent", "PostfixInstance",
    "PostgresServer", "Proc", "account", "bin_path", "body_digest", "curve_key", "entry_is",
    "forget_logs", "free_port", "make_dir", "make_message", "make_traversable", "new_token",
    "parse_conf", "pid_alive", "port_open", "run", "split_message", "tail", "wait_for_port",
    "wait_port_closed", "wait_until", "write_conf",
]
