"""PostgreSQL 15 test server: initdb and pg_ctl as the OS user postgres into a directory of
the run, listening on 127.0.0.1 and a free port only, with role and database portcullis."""

import os
import signal

from procs import (ACTIVE_LOGS, LOOPBACK, PG_BIN, RUNUSER, make_dir, make_traversable, free_port,
                   run, wait_for_port)

class PostgresServer:
    """A PostgreSQL 15 cluster in DIR/pgdata, run by the OS user postgres, listening on
    127.0.0.1:port only, with role and database 'portcullis'."""

    USER = "postgres"

    def __init__(self, base_dir, port=None):
        self.base = make_dir(os.path.join(base_dir, "postgres"), 0o755, owner=self.USER)
        make_traversable(self.base)
        self.data = os.path.join(self.base, "pgdata")
        self.sock_dir = make_dir(os.path.join(self.base, "sock"), 0o755, owner=self.USER)
        self.log_path = os.path.join(self.base, "postgres.log")
        self.port = port or free_port()
        self.running = False

    @property
    def dsn(self):
        return f"host={LOOPBACK} port={self.port} dbname=portcullis user=portcullis"

    def admin_dsn(self, dbname="postgres"):
        return f"host={LOOPBACK} port={self.port} dbname={dbname} user=postgres"

    def _as_pg(self, argv, timeout=120):
        return run([RUNUSER, "-u", self.USER, "--"] + argv, timeout=timeout)

    def start(self, reset=True):
        """Starts the server; reset=False keeps database portcullis as it was (a restart after
        stop(), for outage tests)."""
        if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            self._as_pg([f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "-E", "UTF8",
                         "--no-locale", "--auth-host=trust", "--auth-local=trust", "--no-sync"])
        opts = (f"-p {self.port} -c listen_addresses={LOOPBACK} "
                f"-c unix_socket_directories={self.sock_dir} -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off")
        self._as_pg([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", self.log_path, "-o", opts,
                     "-w", "-t", "60", "start"])
        self.running = True
        ACTIVE_LOGS["postgres"] = self.log_path
        wait_for_port(LOOPBACK, self.port, 30, "PostgreSQL to listen")
        if reset:
            self.reset_database()
        return self

    def sql(self, statement, params=None, dbname="postgres", autocommit=True):
        import psycopg2
        conn = psycopg2.connect(self.admin_dsn(dbname), connect_timeout=10)
        try:
            conn.autocommit = autocommit
            with conn.cursor() as cur:
                cur.execute(statement, params)
                rows = cur.fetchall() if cur.description else None
            if not autocommit:
                conn.commit()
            return rows
        finally:
            conn.close()

    def reset_database(self):
        """Drops and re-creates database portcullis (owned by role portcullis): a clean start
        for each test module. Nothing may be connected to it (stop the parent first)."""
        if not self.sql("SELECT 1 FROM pg_roles WHERE rolname = 'portcullis'"):
            self.sql("CREATE ROLE portcullis LOGIN")
        self.sql("DROP DATABASE IF EXISTS portcullis WITH (FORCE)")
        self.sql("CREATE DATABASE portcullis OWNER portcullis")

    def query(self, statement, params=None):
        """Runs a statement in database portcullis as the superuser; returns rows or None."""
        return self.sql(statement, params, dbname="portcullis")

    def stop(self):
        if not self.running:
            return
        cp = run([RUNUSER, "-u", self.USER, "--", f"{PG_BIN}/pg_ctl", "-D", self.data, "-m",
                  "fast", "-w", "-t", "30", "stop"], check=False, timeout=60)
        if cp.returncode != 0:
            pidfile = os.path.join(self.data, "postmaster.pid")
            try:
                with open(pidfile) as f:
                    pid = int(f.readline())
                os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        self.running = False
