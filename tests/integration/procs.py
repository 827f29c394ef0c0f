"""Generic pieces of the integration harness: where the tools are, polling with deadlines,
ports, directories, and Proc, a long-running process logging to a file with readiness by log
line, SIGTERM-then-SIGKILL teardown and SIGKILL on demand. Nothing here sleeps in place of a
condition: every wait polls a predicate against a deadline and fails naming what it awaited."""

import os
import pwd
import re
import shlex
import signal
import socket
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.environ.get("PORTCULLIS_BIN", os.path.join(REPO, "build", "bin"))
PG_BIN = "/usr/lib/postgresql/15/bin"
POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
POSTMAP = "/usr/sbin/postmap"
RUNUSER = "/usr/sbin/runuser"
MASTER_CF_DIST = "/usr/share/postfix/master.cf.dist"

LOOPBACK = "127.0.0.1"
POLL_S = 0.05           # seconds between polls of a condition: short, but not a busy loop
STOP_GRACE_S = 10.0     # seconds between SIGTERM and SIGKILL at teardown
LOG_TAIL_LINES = 200    # lines of each log attached to a failure report

# Logs of the processes of the current test module (name -> path); conftest attaches them to
# a failing test's report. A new Cluster forgets the previous module's entries.
ACTIVE_LOGS = {}


def forget_logs(keep=("postgres",)):
    for k in list(ACTIVE_LOGS):
        if k not in keep:
            del ACTIVE_LOGS[k]


class HarnessError(AssertionError):
    """A condition the harness waited for did not happen (or a helper process failed)."""


# ----------------------------------------------------------------------------------------
# Generic helpers

_PORTS_GIVEN = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, and never one this process
    was given before: the kernel may hand out the same free port twice in a row, and two
    listeners of one parent configured with it collide."""
    for _ in range(1000):  # bounded; a few tries at most in practice
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1 that was not given out already")


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(pred, timeout, what):
    """Polls pred() until it returns a true value (which is returned) or timeout seconds pass;
    then raises HarnessError naming what was awaited and the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    # bounded in time by the deadline and in count (each round sleeps POLL_S at least)
    for _ in range(int(timeout / POLL_S) + 2):
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    raise HarnessError(f"timed out after {timeout:.1f}s waiting for {what} (last value: {last!r})")


def wait_for_port(host, port, timeout, what=None):
    wait_until(lambda: port_open(host, port), timeout, what or f"{host}:{port} to accept connections")


def wait_port_closed(host, port, timeout, what=None):
    wait_until(lambda: not port_open(host, port), timeout, what or f"{host}:{port} to close")


def run(argv, timeout=60, check=True, **kw):
    """Runs a short command; returns CompletedProcess (text). Raises with its output on failure."""
    cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and cp.returncode != 0:
        raise HarnessError(f"command failed rc={cp.returncode}: {shlex.join(argv)}\n"
                           f"stdout:\n{cp.stdout}\nstderr:\n{cp.stderr}")
    return cp


def tail(path, lines=LOG_TAIL_LINES):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def make_dir(path, mode=0o755, owner=None):
    """Creates path (and parents) with mode; owner is a user name to chown the leaf to."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    if owner is not None:
        pw = pwd.getpwnam(owner)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


def make_traversable(path):
    """Adds o+x to path and every parent, so that postfix, postgres and nobody can reach it."""
    p = os.path.abspath(path)
    for _ in range(64):  # bounded: deeper than any real path
        st = os.stat(p)
        if not st.st_mode & 0o001:
            os.chmod(p, st.st_mode | 0o011)
        parent = os.path.dirname(p)
        if parent == p:
            return
        p = parent


def _proc_stat(pid):
    """(ppid, pgrp) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    return int(rest[1]), int(rest[2])


def _all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def pid_alive(pid):
    st = _proc_stat(pid)
    if st is None:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().decode("ascii", "replace")
        return state[state.rfind(")") + 2] != "Z"
    except OSError:
        return False


# ----------------------------------------------------------------------------------------
# Processes

class Proc:
    """A long-running process whose stdout and stderr go to one log file.

    The process gets its own session (so Ctrl-C of pytest does not reach it and its
    descendants can be found by process group); teardown signals it by pid."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.popen = None

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def start(self):
        if self.running():
            raise HarnessError(f"{self.name} is already running (pid {self.pid})")
        with open(self.log_path, "ab") as log:
            log.write(f"==== start {time.strftime('%H:%M:%S')}: {shlex.join(self.argv)}\n".encode())
            log.flush()
            env = dict(os.environ)
            if self.env:
                env.update(self.env)
            try:
                self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, env=env, cwd=self.cwd,
                                              start_new_session=True)
            except OSError as e:
                raise HarnessError(f"cannot start {self.name}: {shlex.join(self.argv)}: {e}")
        ACTIVE_LOGS[self.name] = self.log_path
        return self

    def running(self):
        return self.popen is not None and self.popen.poll() is None

    def returncode(self):
        return self.popen.poll() if self.popen else None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_since(self, mark):
        """The log text after byte offset mark (from log_mark())."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(mark)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        """A byte offset into the log; wait_for_log(..., since=mark) only looks after it."""
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def wait_for_log(self, regex, timeout, since=0, must_run=True):
        """Polls the log until regex matches after offset since; returns the match. Fails at
        once (with the log) if the process exits first and must_run is set."""
        rx = re.compile(regex)

        def found():
            m = rx.search(self.log_since(since))
            if m:
                return m
            if must_run and not self.running():
                raise HarnessError(f"{self.name} exited (rc={self.returncode()}) before logging "
                                   f"/{regex}/; log tail:\n{tail(self.log_path, 40)}")
            return None

        try:
            return wait_until(found, timeout, f"{self.name} to log /{regex}/")
        except HarnessError as e:
            if "exited" in str(e):
                raise
            raise HarnessError(f"{e}\n{self.name} log tail:\n{tail(self.log_path, 40)}") from None

    def descendants(self):
        """Pids of live processes in this process's group other than itself (its children,
        e.g. the scan service forked by a child manager)."""
        if self.popen is None:
            return []
        out = []
        for pid in _all_pids():
            st = _proc_stat(pid)
            if st and st[1] == self.popen.pid and pid != self.popen.pid and pid_alive(pid):
                out.append(pid)
        return sorted(out)

    def children(self):
        """Pids of live direct children."""
        if self.popen is None:
            return []
        return sorted(p for p in _all_pids()
                      if (_proc_stat(p) or (0, 0))[0] == self.popen.pid and pid_alive(p))

    def descendants(self):
        """Pids of live descendants (children, their children, …)."""
        if self.popen is None:
            return []
        parent = {p: (_proc_stat(p) or (0, 0))[0] for p in _all_pids()}
        out = []
        for p in parent:
            q, hops = parent.get(p), 0
            while q and q != self.popen.pid and hops < 16:
                q, hops = parent.get(q), hops + 1
            if q == self.popen.pid and pid_alive(p):
                out.append(p)
        return sorted(out)

    def scan_services(self):
        """Pids of the descendants that run `portcullis-child scan …` (the scan service: a
        grandchild through the launcher when the manager dropped root, R8.1)."""
        out = []
        for pid in self.descendants():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if len(argv) > 1 and argv[1] == b"scan":
                out.append(pid)
        return out

    def _reap_group(self, members):
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self, grace=STOP_GRACE_S):
        """SIGTERM, then SIGKILL after grace seconds; also kills any process left in its group."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        left = self.descendants()
        if left:
            # give descendants a moment to follow their parent, then kill them by pid
            try:
                wait_until(lambda: not self.descendants(), 5, f"{self.name}'s children to exit")
            except HarnessError:
                self._reap_group(self.descendants())
        return self.popen.returncode

    def kill9(self):
        """SIGKILL of the process itself only (its descendants are left to their own fate)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)
        return self.popen.returncode if self.popen else None
