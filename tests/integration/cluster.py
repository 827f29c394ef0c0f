"""The Portcullis processes under test: parent, children and the admin CLI, and Cluster, which
starts a whole cluster (database reset, downstream Postfix, parent, token-enrolled children,
upstream Postfix filtering through them) and stops everything it started."""

import hashlib
import json
import os
import re
import shlex
import subprocess
import uuid

from zmq.utils import z85

import signatures
from mta import PostfixInstance
from procs import (BIN_DIR, LOOPBACK, HarnessError, Proc, forget_logs,
                   free_port, make_dir, make_traversable, wait_for_port, wait_until)

WEB_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "web"))

def bin_path(name):
    return os.path.join(BIN_DIR, name)


def write_conf(path, values):
    """Writes a key = value file; values with spaces or quotes are double-quoted."""
    with open(path, "w") as f:
        for k, v in values.items():
            v = str(v)
            if re.search(r'[\s"#=]', v) or v == "":
                v = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            f.write(f"{k} = {v}\n")


def parse_conf(text):
    """Parses key = value lines (as printed by `portcullis child enroll-token`)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        k, v = k.strip(), v.strip()
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[k] = v
    return out


class Parent:
    def __init__(self, base_dir, dsn):
        # 0711: the parent drops to its user (R8.1) and must reach state_dir inside
        self.dir = make_dir(os.path.join(base_dir, "parent"), 0o711)
        self.state_dir = make_dir(os.path.join(self.dir, "state"), 0o700)
        self.conf_path = os.path.join(self.dir, "parent.conf")
        self.cluster_port = free_port()
        self.enrol_port = free_port()
        self.https_port = free_port()
        write_conf(self.conf_path, {
            "db": dsn,
            "cluster_listen": f"tcp://{LOOPBACK}:{self.cluster_port}",
            "enrol_listen": f"tcp://{LOOPBACK}:{self.enrol_port}",
            # its own port: the default 0.0.0.0:7713 would be fought over by every test parent
            "https_listen": f"{LOOPBACK}:{self.https_port}",
            "state_dir": self.state_dir,
            "log_level": "info",
            # the console from the source tree (helper D's web/); missing: API only
            "web_root": WEB_ROOT,
        })
        self.proc = Proc("parent", [bin_path("portcullis-parent"), "-c", self.conf_path],
                         os.path.join(self.dir, "parent.log"))

    @property
    def cluster_endpoint(self):
        return f"tcp://{LOOPBACK}:{self.cluster_port}"

    @property
    def enrol_endpoint(self):
        return f"tcp://{LOOPBACK}:{self.enrol_port}"

    def start(self, timeout=30):
        mark = self.proc.log_mark()
        self.proc.start()
        self.proc.wait_for_log(r"parent ready", timeout, since=mark)
        return self

    def stop(self):
        self.proc.stop()


class Child:
    def __init__(self, base_dir, name, parent, downstream_port, enroll=None, extra_conf=None):
        self.name = name
        # the manager's own (R8.1): it swaps signature directories inside it on updates
        self.dir = make_dir(os.path.join(base_dir, name), 0o750, owner="portcullis")
        self.state_dir = make_dir(os.path.join(self.dir, "state"), 0o700)
        self.conf_path = os.path.join(self.dir, "child.conf")
        self.smtp_port = free_port()
        self.downstream_port = downstream_port
        self.parent = parent
        conf = dict(enroll or {})
        conf.update({
            "name": name,
            "parent_cluster": parent.cluster_endpoint,
            "parent_enrol": parent.enrol_endpoint,
            "state_dir": self.state_dir,
            "smtp_listen": f"{LOOPBACK}:{self.smtp_port}",
            "downstream": f"{LOOPBACK}:{downstream_port}",
            "log_level": "info",
        })
        conf.update(extra_conf or {})   # e.g. signature_dir, quarantine_dir, archive_dir
        if "signature_dir" not in conf:
            # A child without signatures makes every scan an av_error exception (quarantined):
            # by default each child gets the test set (EICAR + clamav-testfiles).
            conf["signature_dir"] = make_dir(os.path.join(self.dir, "sigs"), 0o755)
            signatures.write_standard_set(conf["signature_dir"])
        if "parent_public_key" not in conf:
            raise HarnessError(f"{name}: no parent_public_key for child.conf")
        self.conf = conf
        write_conf(self.conf_path, conf)
        self.proc = Proc(name, [bin_path("portcullis-child"), "-c", self.conf_path],
                         os.path.join(self.dir, "child.log"))
        self.mark = 0

    @property
    def smtp_address(self):
        return f"{LOOPBACK}:{self.smtp_port}"

    def start(self, wait_scan=True, wait_link=True, timeout=30):
        """Starts the child manager; waits for its scan service (`scan service ready`, port
        open) and for its link to the parent (`link up`) unless told not to."""
        self.mark = self.proc.log_mark()
        self.proc.start()
        if wait_scan:
            self.proc.wait_for_log(r"scan service ready listen=", timeout, since=self.mark)
            wait_for_port(LOOPBACK, self.smtp_port, timeout, f"{self.name} scan service port")
        if wait_link:
            self.wait_link(timeout)
        return self

    def wait_link(self, timeout):
        return self.proc.wait_for_log(r"link up", timeout, since=self.mark)

    def public_key_file(self):
        """Contents of state_dir/child.pub (bytes), or None if the child has not written it."""
        try:
            with open(os.path.join(self.state_dir, "child.pub"), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def fingerprint(self):
        """The fingerprint of this child's key, worked out here from child.pub (R8.3: SHA-256
        of the raw key, first 16 bytes, hex in groups of four)."""
        pub = self.public_key_file()
        if pub is None:
            raise HarnessError(f"{self.name}: no child.pub yet")
        return key_fingerprint(pub.decode().strip())

    def stop(self):
        self.proc.stop()

    def kill9(self):
        return self.proc.kill9()


class Cluster:
    """PostgreSQL (shared, given), the downstream Postfix, the parent, children child1..childN
    enrolled by token, and the upstream Postfix whose filter for childK.test is childK."""

    def __init__(self, base_dir, pg, n_children=2, upstream=True, wait_scan=True,
                 child_conf=None):
        self.base = make_dir(base_dir, 0o755)
        make_traversable(self.base)
        forget_logs()
        self.pg = pg
        self.n_children = n_children
        self.want_upstream = upstream
        self.wait_scan = wait_scan   # False: tests about the link only, not the mail path
        # child_conf(name) -> extra child.conf keys for that child (signature_dir, …)
        self.child_conf = child_conf
        self.downstream = None
        self.upstream = None
        self.parent = None
        self.children = {}

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self):
        try:
            self.pg.reset_database()
            self.downstream = PostfixInstance(self.base, "downstream", "downstream").start()
            self.parent = Parent(self.base, self.pg.dsn).start()
            # R1.5: a child flushes its upstream queue after every scan service start; the
            # default adapter `postfix` is the machine's own Postfix, never to be touched by
            # tests: none until this cluster's upstream exists, then that instance (R8.2).
            self.cli_ok("settings", "set", "mta.adapter", "none")
            for i in range(1, self.n_children + 1):
                self.add_child(f"child{i}")
            if self.want_upstream:
                filters = {f"{name}.test": c.smtp_address for name, c in self.children.items()}
                self.upstream = PostfixInstance(self.base, "upstream", "upstream",
                                                filters=filters).start()
                self.cli_ok("settings", "set", "mta.adapter", self.upstream_adapter())
        except BaseException:
            try:
                self.stop()
            except HarnessError:
                pass
            raise
        return self

    def stop(self):
        """Stops everything this cluster started, children first, then parent, then Postfix."""
        errors = []
        for obj in list(self.children.values()) + [self.parent, self.upstream, self.downstream]:
            if obj is None:
                continue
            try:
                obj.stop()
            except Exception as e:  # keep stopping the rest
                errors.append(f"{type(obj).__name__}: {e}")
        if errors:
            raise HarnessError("errors while stopping the cluster: " + "; ".join(errors))

    def processes(self):
        return [p for p in [self.parent] + list(self.children.values()) if p is not None]

    def upstream_adapter(self):
        """The mta.adapter that points children at this cluster's upstream instance (its
        queue flush, postconf and reload), never at the machine's /etc/postfix."""
        return f"postfix:{self.upstream.conf_dir}"

    # -- children -------------------------------------------------------------------------------
    def enroll_token(self, name):
        rc, out, err = self.cli("child", "enroll-token", name)
        if rc != 0:
            raise HarnessError(f"child enroll-token {name} failed rc={rc}: {err}")
        conf = parse_conf(out)
        for k in ("enroll_token", "parent_public_key"):
            if not conf.get(k):
                raise HarnessError(f"child enroll-token {name} printed no {k}:\n{out}")
        return conf

    def parent_public_key(self):
        """The parent's public key as given to the children in child.conf."""
        for c in self.children.values():
            return c.conf["parent_public_key"]
        return self.enroll_token("keyprobe-" + uuid.uuid4().hex[:8])["parent_public_key"]

    def add_child(self, name, token=True, start=True):
        """Creates (and starts) a child. token=True: enrolled by a one-time token, started and
        waited for until its scan service is ready and its link is up. token=False: no
        enroll_token in its child.conf, so it stays pending until `portcullis child approve
        NAME`; it is only started (the caller waits for what it expects)."""
        if token:
            enroll = self.enroll_token(name)
        else:
            enroll = {"parent_public_key": self.parent_public_key()}
        extra = self.child_conf(name) if self.child_conf else None
        child = Child(self.base, name, self.parent, self.downstream.port, enroll=enroll,
                      extra_conf=extra)
        self.children[name] = child
        if start:
            if token:
                child.start(wait_scan=self.wait_scan)
            else:
                child.start(wait_scan=False, wait_link=False)
        return child

    # -- CLI and status -------------------------------------------------------------------------
    def cli(self, *args, timeout=30):
        """Runs `portcullis -c parent.conf ARGS`; returns (rc, stdout, stderr)."""
        argv = [bin_path("portcullis"), "-c", self.parent.conf_path] + [str(a) for a in args]
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return cp.returncode, cp.stdout, cp.stderr

    def cli_ok(self, *args, timeout=30):
        rc, out, err = self.cli(*args, timeout=timeout)
        if rc != 0:
            raise HarnessError(f"portcullis {shlex.join(map(str, args))} failed rc={rc}\n"
                               f"stdout:\n{out}\nstderr:\n{err}")
        return out

    def cli_json(self, *args, timeout=30):
        """`portcullis ARGS --json`, parsed."""
        return json.loads(self.cli_ok(*args, "--json", timeout=timeout))

    def status(self):
        out = self.cli_ok("status", "--json")
        try:
            return json.loads(out)
        except ValueError as e:
            raise HarnessError(f"status --json printed invalid JSON ({e}):\n{out}")

    def child_status(self, name, status=None):
        st = status if status is not None else self.status()
        for c in st.get("children", []):
            if c.get("name") == name:
                return c
        return None

    def child_list(self):
        out = self.cli_ok("child", "list", "--json")
        data = json.loads(out)
        if isinstance(data, dict):
            data = data.get("children", [])
        return data

    def wait_child_state(self, name, state, timeout):
        """Polls status until child name has state; returns its status entry."""
        return wait_until(lambda: (lambda c: c if c and c.get("state") == state else None)(
            self.child_status(name)), timeout, f"{name} to be {state!r} in portcullis status")

    def wait_children_current(self, version, timeout, names=None):
        names = names or list(self.children)

        def ok():
            st = self.status()
            for n in names:
                c = self.child_status(n, st)
                if not c or c.get("config_version") != version or c.get("config_current") is not True:
                    return None
            return st
        return wait_until(ok, timeout, f"{names} to run config_version {version}")

    def curve_server_key(self):
        """The parent's public key in a form pyzmq takes (Z85 text or 32 raw bytes)."""
        return curve_key(self.parent_public_key())

    def log_paths(self):
        out = {}
        for p in self.processes():
            out[p.proc.name] = p.proc.log_path
        for pf in (self.upstream, self.downstream):
            if pf is not None:
                out[f"postfix-{pf.name}"] = pf.log_path
        out["postgres"] = self.pg.log_path
        return out


def key_fingerprint(z85_key):
    h = hashlib.sha256(z85.decode(z85_key.encode())).hexdigest()[:32]
    return ":".join(h[i:i + 4] for i in range(0, 32, 4))


def curve_key(text):
    """A CURVE key from config text: Z85 (40 chars), hex (64) or base64 (44) -> pyzmq form."""
    import base64
    t = text.strip()
    if len(t) == 40:
        return t.encode("ascii")
    if len(t) == 64 and re.fullmatch(r"[0-9a-fA-F]+", t):
        return bytes.fromhex(t)
    raw = base64.b64decode(t)
    if len(raw) != 32:
        raise HarnessError(f"cannot read CURVE key {t!r}")
    return raw


def entry_is(entry, value, fields=("state", "enrolment", "status")):
    """True if any of the usual state fields of a child list/status entry equals value."""
    return any(entry.get(f) == value for f in fields)
