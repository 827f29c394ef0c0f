"""A small client of the parent's REST API for the integration tests (issue 6).

    api = Api(cluster.parent, token=token_for(cluster, "admin"))
    status, body, headers = api.request("GET", "/api/v1/children")
    body = api.ok("PUT", "/api/v1/settings/scan.max_size", {"value": 1000})   # asserts 200

    console = Api(cluster.parent)
    console.login("alice", "a-long-password")  # keeps the session cookie; sends
                                               # X-Requested-With: portcullis on changes

request() answers (status, body, headers): body is the parsed JSON when the reply is JSON,
else the raw bytes; headers is a dict with lower-case names. The connection trusts only the
parent's own certificate (<state_dir>/https.crt, self-signed), without checking the host name.
make_user() and token_for() make users and tokens through the CLI (`portcullis user …`).
"""

import http.client
import json
import os
import ssl
import subprocess
import uuid

from cluster import bin_path

SESSION_COOKIE = "portcullis_session"
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "portcullis"
DEFAULT_TIMEOUT = 30
ROLES = ("viewer", "operator", "admin")
ROLE_RANK = {"none": 0, "viewer": 1, "operator": 2, "admin": 3}


def tls_context(parent):
    """An SSL context trusting exactly the parent's self-signed certificate."""
    ctx = ssl.create_default_context(cafile=os.path.join(parent.state_dir, "https.crt"))
    ctx.check_hostname = False
    return ctx


class Api:
    """One client: a bearer token, a console session (cookie), or neither."""

    def __init__(self, parent, token=None, session=None, timeout=DEFAULT_TIMEOUT):
        self.parent = parent
        self.token = token
        self.session = session      # the portcullis_session cookie's value after login()
        self.timeout = timeout
        self.ctx = tls_context(parent)

    def request(self, method, path, body=None, headers=None, raw_body=None):
        """One request on a fresh connection. body: a dict sent as JSON (Content-Type
        application/json); raw_body: bytes sent as they are (with whatever headers say).
        Returns (status, parsed JSON or bytes, {lower-case header: value})."""
        hdrs = {}
        if self.token is not None:
            hdrs["Authorization"] = f"Bearer {self.token}"
        if self.session is not None:
            hdrs["Cookie"] = f"{SESSION_COOKIE}={self.session}"
            if method not in ("GET", "HEAD"):
                hdrs[CSRF_HEADER] = CSRF_VALUE
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        hdrs = {k: v for k, v in hdrs.items() if v is not None}  # headers={"X": None} drops X
        conn = http.client.HTTPSConnection("127.0.0.1", self.parent.https_port,
                                           context=self.ctx, timeout=self.timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            rh = {k.lower(): v for k, v in resp.getheaders()}
            status = resp.status
        finally:
            conn.close()
        parsed = raw
        if rh.get("content-type", "").startswith("application/json"):
            try:
                parsed = json.loads(raw.decode() or "null")
            except ValueError:
                parsed = raw
        return status, parsed, rh

    def ok(self, method, path, body=None, headers=None):
        """request() that must answer 200; returns the body."""
        status, out, _ = self.request(method, path, body, headers)
        assert status == 200, f"{method} {path} -> {status}: {out!r}"
        return out

    def get(self, path):
        return self.ok("GET", path)

    def login(self, user, password):
        """POST /api/v1/login; keeps the session cookie. Returns (status, body, headers)."""
        status, out, rh = self.request("POST", "/api/v1/login",
                                       {"user": user, "password": password})
        if status == 200:
            cookie = rh.get("set-cookie", "")
            first = cookie.split(";", 1)[0]
            name, _, value = first.partition("=")
            assert name.strip() == SESSION_COOKIE and value, f"no session cookie: {cookie!r}"
            self.session = value
            self.token = None
        return status, out, rh


def make_user(cluster, name, role, password=None):
    """Adds user name with role through `portcullis user add NAME --role R` (password on
    standard input); returns the password (a fresh one unless given)."""
    password = password or ("pw-" + uuid.uuid4().hex)
    cp = subprocess.run([bin_path("portcullis"), "-c", cluster.parent.conf_path, "user", "add",
                         name, "--role", role], input=password + "\n", capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 0, f"user add {name} failed rc={cp.returncode}: {cp.stderr}"
    return password


def make_token(cluster, name, *args):
    """A bearer token for user name from `portcullis user token NAME [ARGS]` (stdout)."""
    out = cluster.cli_ok("user", "token", name, *args).strip()
    assert len(out) == 64, f"user token printed {out!r}"
    return out


def token_for(cluster, role):
    """A bearer token of user "<role>-user" (made once per cluster) with that role; cached on
    the cluster object, so every caller in a module shares it."""
    cache = cluster.__dict__.setdefault("_api_tokens", {})
    if role not in cache:
        name = f"{role}-user"
        users = cluster.__dict__.setdefault("_api_users", {})
        if name not in users:
            users[name] = make_user(cluster, name, role)
        cache[role] = make_token(cluster, name)
    return cache[role]


def password_for(cluster, role):
    """The password of "<role>-user" (made by token_for / this function once per cluster)."""
    token_for(cluster, role)
    return cluster.__dict__["_api_users"][f"{role}-user"]


def api_for(cluster, role):
    """An Api with a bearer token of the role."""
    return Api(cluster.parent, token=token_for(cluster, role))


def route_paths(pattern, placeholders=None):
    """A concrete path for a route pattern: {id}-like segments → "999999999", others →
    "no-such-<name>" (or placeholders[name])."""
    out = []
    for seg in pattern.split("/"):
        if seg.startswith("{") and seg.endswith("}"):
            name = seg[1:-1]
            if placeholders and name in placeholders:
                seg = placeholders[name]
            elif name == "id" or name.endswith("_id"):
                seg = "999999999"
            else:
                seg = f"no-such-{name}"
        out.append(seg)
    return "/".join(out)


def routes():
    """[(method, pattern, role)] from `portcullis-parent --routes`."""
    cp = subprocess.run([bin_path("portcullis-parent"), "--routes"], capture_output=True,
                        text=True, timeout=30)
    assert cp.returncode == 0, cp.stderr
    return [tuple(line.split()) for line in cp.stdout.splitlines() if line.strip()]
