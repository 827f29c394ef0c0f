"""The REST API's door (issue 6 points 1 and 4): every route of `portcullis-parent --routes` is
described in docs/api/openapi.yaml with the same role and the other way round; the role matrix
over every route (no credential, a garbage or an expired token → 401; a role below the route's →
403; at or above → past the door); the console's log-in with its session cookie, the CSRF header
on changes, log-out; the failed-log-in rate limit; disabled users; argon2id hashes; bad bodies on
users and tokens refused with a message and nothing changed; audit rows; the console's static
files and the request limits. One cluster with one child for the module."""

import hashlib
import os
import socket
import ssl
import subprocess

import pytest
import yaml

from apiclient import (ROLE_RANK, ROLES, Api, api_for, make_token, make_user, route_paths,
                       routes, tls_context, token_for)
from cluster import WEB_ROOT, Cluster, bin_path, parse_conf, write_conf
from harness import wait_until

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OPENAPI = os.path.join(REPO, "docs", "api", "openapi.yaml")
HTTP_METHODS = ("get", "post", "put", "delete", "patch")
SEPARATE = {("POST", "/api/v1/login"), ("POST", "/api/v1/logout")}  # tested on their own
LOGIN_FAILURES_MAX = 5          # api_auth.h API_LOGIN_FAILURES_MAX
LOGIN_WINDOW_S = 300            # api_auth.h API_LOGIN_WINDOW_S
BODY_MAX = 256 * 1024           # api.h API_BODY_MAX
QUERY_MAX = 32                  # api.h API_QUERY_MAX
SESSION_TTL_S = 8 * 3600        # admin_users.h ADMIN_SESSION_TTL_S
API_WORKERS = 4                 # api.h API_WORKERS
QUEUE_MAX_JOBS = 64             # api.h API_QUEUE_MAX


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = Cluster(module_dir, pg, n_children=1, upstream=False, wait_scan=False).start()
    yield c
    c.stop()


def _audit(cluster, action, target=None):
    """[(actor, target, result, detail)] of audit_log rows with action (and target)."""
    rows = cluster.pg.query("SELECT actor, target, result, detail FROM audit_log "
                            "WHERE action = %s ORDER BY id", (action,))
    return [r for r in rows if target is None or r[1] == target]


def _user_row(cluster, name):
    return cluster.pg.query("SELECT role, pw_hash, disabled FROM users WHERE name = %s", (name,))


def _credentials(cluster):
    return cluster.pg.query("SELECT id, user_id, kind, label, expires_at FROM api_credentials "
                            "ORDER BY id")


# --- the routes and their description ------------------------------------------------------------

def test_routes_match_openapi():
    """issue 6 point 1: docs/api/openapi.yaml describes exactly the routes the parent serves
    (`portcullis-parent --routes`), each operation with the same x-portcullis-role, a summary
    and responses."""
    served = {(m, p): r for m, p, r in routes()}
    with open(OPENAPI) as f:
        doc = yaml.safe_load(f)
    documented, problems = {}, []
    for path, item in (doc.get("paths") or {}).items():
        for method in HTTP_METHODS:
            op = (item or {}).get(method)
            if op is None:
                continue
            documented[(method.upper(), path)] = op.get("x-portcullis-role")
            for field in ("summary", "responses", "x-portcullis-role"):
                if not op.get(field):
                    problems.append(f"{method.upper()} {path}: no {field}")
    undocumented = sorted(set(served) - set(documented))
    unserved = sorted(set(documented) - set(served))
    wrong_role = sorted(f"{m} {p}: served {served[(m, p)]}, documented {documented[(m, p)]}"
                        for (m, p) in set(served) & set(documented)
                        if served[(m, p)] != documented[(m, p)])
    assert not undocumented, f"routes missing from openapi.yaml: {undocumented}"
    assert not unserved, f"openapi.yaml paths the parent does not serve: {unserved}"
    assert not wrong_role, f"roles differ: {wrong_role}"
    assert not problems, f"incomplete operations: {problems}"


def test_routes_listing_needs_no_config():
    """issue 6 point 1: `portcullis-parent --routes` prints METHOD PATTERN ROLE lines without a
    configuration (the docs check above relies on it); every role is a known one."""
    rs = routes()
    assert ("POST", "/api/v1/login", "none") in rs
    assert ("GET", "/api/v1/me", "viewer") in rs
    assert all(r in ROLE_RANK and m in ("GET", "POST", "PUT", "DELETE") for m, _p, r in rs), rs
    assert len(set((m, p) for m, p, _r in rs)) == len(rs), "a route is listed twice"


# --- the role matrix ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def expired_token(cluster):
    """An admin's token that worked, then expired honestly (its expires_at moved into the past
    in the database)."""
    admin = api_for(cluster, "admin")
    tok = admin.ok("POST", "/api/v1/tokens", {"label": "soon expired", "ttl_hours": 1})
    assert Api(cluster.parent, token=tok["token"]).ok("GET", "/api/v1/me")["role"] == "admin"
    cluster.pg.query("UPDATE api_credentials SET expires_at = now() - interval '1 second' "
                     "WHERE id = %s", (tok["id"],))
    return tok["token"]


def test_role_matrix(cluster, expired_token):
    """issue 6 point 4 (R6): every route (placeholder path parameters, body {}) answers 401
    without a credential, with a garbage token and with an expired token; 403 to each role
    below the route's; and neither 401 nor 403 to each role at or above it."""
    tokens = {role: token_for(cluster, role) for role in ROLES}
    garbage = [("none", None), ("garbage", "0" * 64), ("not hex", "not-a-token"),
               ("expired", expired_token)]
    failures = []
    for method, pattern, role in routes():
        if (method, pattern) in SEPARATE:
            continue
        path = route_paths(pattern)
        body = {} if method in ("POST", "PUT") else None
        for what, tok in garbage:
            status, out, rh = Api(cluster.parent, token=tok).request(method, path, body)
            if status != 401 or "error" not in out or rh.get("www-authenticate") != "Bearer":
                failures.append(f"{method} {path} {what}: {status} {out!r}")
        for r in ROLES:
            status, out, _ = Api(cluster.parent, token=tokens[r]).request(method, path, body)
            if ROLE_RANK[r] < ROLE_RANK[role]:
                if status != 403 or role not in out.get("error", ""):
                    failures.append(f"{method} {path} as {r}: {status} {out!r}, want 403")
            elif status in (401, 403):
                failures.append(f"{method} {path} as {r}: {status} {out!r}, want past the door")
    assert not failures, "\n".join(failures)


def test_session_cookie_login_csrf_logout(cluster):
    """issue 6 point 1: POST /login sets an HttpOnly, Secure, SameSite=Strict session cookie
    that authenticates; a change with the cookie but without X-Requested-With is refused (403
    naming the header); log-out ends the session (then 401) and clears the cookie; log-out with a
    bearer token is refused (400); the audit log has the log-in."""
    pw = make_user(cluster, "cookie-op", "operator")
    console = Api(cluster.parent)
    status, out, rh = console.login("cookie-op", pw)
    assert status == 200, out
    assert out["user"] == "cookie-op" and out["role"] == "operator" and out["expires_at"]
    cookie = rh["set-cookie"]
    for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/", f"Max-Age={SESSION_TTL_S}"):
        assert attr in cookie, cookie
    assert rh.get("cache-control") == "no-store"
    me = console.ok("GET", "/api/v1/me")
    assert me["user"] == "cookie-op" and me["role"] == "operator" and me["auth"] == "session"

    before = len(_credentials(cluster))
    status, out, _ = console.request("POST", "/api/v1/tokens", {"label": "x"},
                                     headers={"X-Requested-With": None})
    assert status == 403 and "X-Requested-With" in out["error"], out
    assert len(_credentials(cluster)) == before
    tok = console.ok("POST", "/api/v1/tokens", {"label": "from the console"})
    assert len(tok["token"]) == 64 and tok["role"] == "operator"

    status, out, _ = Api(cluster.parent, token=tok["token"]).request("POST", "/api/v1/logout")
    assert status == 400 and "DELETE /api/v1/tokens/{id}" in out["error"], out

    status, out, rh = console.request("POST", "/api/v1/logout")
    assert status == 200, out
    assert "Max-Age=0" in rh["set-cookie"]
    status, out, rh = console.request("GET", "/api/v1/me")
    assert status == 401 and rh.get("www-authenticate") == "Bearer", out
    assert Api(cluster.parent, token=tok["token"]).ok("GET", "/api/v1/me")["user"] == "cookie-op"
    assert ("cookie-op", "cookie-op", "ok", "") in _audit(cluster, "login", "cookie-op")


def test_login_rate_limit(cluster):
    """issue 6 point 1: 5 wrong passwords for a user from one address → 429 with Retry-After,
    and then even the right password is refused; another user from the same address logs in;
    failed and successful log-ins are audited."""
    pw = make_user(cluster, "target-user", "viewer")
    other_pw = make_user(cluster, "bystander", "viewer")
    for i in range(LOGIN_FAILURES_MAX):
        status, out, _ = Api(cluster.parent).login("target-user", f"wrong-password-{i}")
        assert status == 401 and "wrong user name or password" in out["error"], (i, out)
    status, out, rh = Api(cluster.parent).login("target-user", "wrong-again-password")
    assert status == 429, out
    assert 0 < int(rh["retry-after"]) <= LOGIN_WINDOW_S
    status, out, rh = Api(cluster.parent).login("target-user", pw)
    assert status == 429 and "try again" in out["error"], out
    assert int(rh["retry-after"]) > 0
    status, out, _ = Api(cluster.parent).login("bystander", other_pw)
    assert status == 200, out
    failed = [r for r in _audit(cluster, "login", "target-user") if r[2] == "failed"]
    assert len(failed) >= LOGIN_FAILURES_MAX + 2, failed
    assert all(pw not in (r[3] or "") for r in failed)
    assert ("bystander", "bystander", "ok", "") in _audit(cluster, "login", "bystander")


def test_disabled_user_and_hashes(cluster):
    """issue 6 point 1: a disabled user's token stops working and their log-in is refused (401);
    passwords are stored as argon2id hashes only."""
    pw = make_user(cluster, "leaver", "operator")
    tok = make_token(cluster, "leaver")
    assert Api(cluster.parent, token=tok).ok("GET", "/api/v1/me")["user"] == "leaver"
    cluster.cli_ok("user", "disable", "leaver")
    status, out, _ = Api(cluster.parent, token=tok).request("GET", "/api/v1/me")
    assert status == 401, out
    status, out, _ = Api(cluster.parent).login("leaver", pw)
    assert status == 401, out
    rows = cluster.pg.query("SELECT name, pw_hash FROM users")
    assert rows and all(h.startswith("$argon2id$") for _n, h in rows), rows
    assert all(pw not in h for _n, h in rows)


# --- users and tokens ----------------------------------------------------------------------------

def test_users_crud_and_audit(cluster):
    """issue 6 point 1: an admin adds, changes (role, password, disabled) and removes a user
    through the API; each change is audited with the admin as actor; the new password works and
    the old one does not."""
    admin = api_for(cluster, "admin")
    out = admin.ok("POST", "/api/v1/users", {"name": "api-made", "role": "viewer",
                                              "password": "first-password-1"})
    assert out == {"user": "api-made", "role": "viewer"}
    names = {u["name"]: u for u in admin.get("/api/v1/users")["users"]}
    assert names["api-made"]["role"] == "viewer"
    out = admin.ok("PUT", "/api/v1/users/api-made", {"role": "operator",
                                                      "password": "second-password-2"})
    assert out["role"] == "operator" and out["password_changed"] is True
    assert _user_row(cluster, "api-made")[0][0] == "operator"
    assert Api(cluster.parent).login("api-made", "first-password-1")[0] == 401
    assert Api(cluster.parent).login("api-made", "second-password-2")[0] == 200
    assert admin.ok("PUT", "/api/v1/users/api-made", {"disabled": True})["disabled"] is True
    assert _user_row(cluster, "api-made")[0][2] is True
    assert admin.ok("DELETE", "/api/v1/users/api-made") == {"removed": "api-made"}
    assert not _user_row(cluster, "api-made")
    status, out, _ = admin.request("DELETE", "/api/v1/users/api-made")
    assert status == 404 and "api-made" in out["error"], out
    for action in ("user add", "user change", "user remove"):
        rows = _audit(cluster, action, "api-made")
        assert rows and rows[0][0] == "admin-user" and rows[0][2] == "ok", (action, rows)
    assert all("second-password-2" not in r[3] for r in _audit(cluster, "user change"))


BAD_USER_BODIES = [
    ({}, "name"),
    ({"name": "x1", "role": "viewer"}, "password"),
    ({"name": 5, "role": "viewer", "password": "long-enough-pw"}, "name"),
    ({"name": "bad name!", "role": "viewer", "password": "long-enough-pw"}, "name"),
    ({"name": "x2", "role": "king", "password": "long-enough-pw"}, "role"),
    ({"name": "x3", "role": "viewer", "password": "short"}, "password"),
    ({"name": "x4", "role": "viewer", "password": "long-enough-pw", "extra": 1}, "extra"),
]


@pytest.mark.parametrize("body,word", BAD_USER_BODIES)
def test_bad_user_bodies(cluster, body, word):
    """issue 6 point 4: a bad body on POST /users → 400 with a message naming the problem, and
    no user made."""
    admin = api_for(cluster, "admin")
    before = cluster.pg.query("SELECT name, role FROM users ORDER BY name")
    status, out, _ = admin.request("POST", "/api/v1/users", body)
    assert status == 400 and word in out["error"], out
    assert cluster.pg.query("SELECT name, role FROM users ORDER BY name") == before


@pytest.mark.parametrize("body,word", [
    ({}, "nothing to change"),
    ({"role": "king"}, "role"),
    ({"disabled": "yes"}, "disabled"),
    ({"password": "short"}, "password"),
    ({"password": 12345678901}, "password"),
    ({"name": "renamed"}, "name"),
])
def test_bad_user_change_bodies(cluster, body, word):
    """issue 6 point 4: a bad body on PUT /users/{name} → 400 with a message, the user
    unchanged."""
    admin = api_for(cluster, "admin")
    token_for(cluster, "viewer")
    before = _user_row(cluster, "viewer-user")
    status, out, _ = admin.request("PUT", "/api/v1/users/viewer-user", body)
    assert status == 400 and word in out["error"], out
    assert _user_row(cluster, "viewer-user") == before


@pytest.mark.parametrize("body,word", [
    ({"ttl_hours": 0}, "ttl_hours"),
    ({"ttl_hours": "12"}, "ttl_hours"),
    ({"ttl_hours": 10 ** 9}, "ttl_hours"),
    ({"label": 7}, "label"),
    ({"label": "x" * 101}, "label"),
    ({"owner": "admin-user"}, "owner"),
])
def test_bad_token_bodies(cluster, body, word):
    """issue 6 point 4: a bad body on POST /tokens → 400 with a message, no credential made."""
    viewer = api_for(cluster, "viewer")
    before = _credentials(cluster)
    status, out, _ = viewer.request("POST", "/api/v1/tokens", body)
    assert status == 400 and word in out["error"], out
    assert _credentials(cluster) == before


def test_bodies_must_be_json_objects(cluster):
    """issue 6 point 4: a body that is not JSON → 400, a JSON array → 400, JSON sent without
    Content-Type application/json → 415; each with a message, nothing made."""
    admin = api_for(cluster, "admin")
    before = _credentials(cluster)
    ct = {"Content-Type": "application/json"}
    status, out, _ = admin.request("POST", "/api/v1/tokens", raw_body=b"{not json", headers=ct)
    assert status == 400 and "not valid JSON" in out["error"], out
    status, out, _ = admin.request("POST", "/api/v1/tokens", raw_body=b"[1, 2]", headers=ct)
    assert status == 400 and "JSON object" in out["error"], out
    status, out, _ = admin.request("POST", "/api/v1/tokens", raw_body=b'{"label": "x"}',
                                   headers={"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in out["error"], out
    assert _credentials(cluster) == before


def test_tokens_own_and_all(cluster):
    """issue 6 point 1: a user lists and revokes their own tokens only (someone else's is 404);
    all=1 lists everyone's for an admin and is 403 for others; the revocation is audited and
    the revoked token answers 401."""
    viewer, admin = api_for(cluster, "viewer"), api_for(cluster, "admin")
    mine = viewer.ok("POST", "/api/v1/tokens", {"label": "mine", "ttl_hours": 2})
    other = admin.ok("POST", "/api/v1/tokens", {"label": "admin's"})
    # only hashes are stored: the secret's SHA-256 is there, the secret itself nowhere
    stored = {bytes(h) for (h,) in cluster.pg.query("SELECT token_hash FROM api_credentials")}
    assert hashlib.sha256(mine["token"].encode()).digest() in stored
    assert mine["token"].encode() not in stored
    listed = viewer.get("/api/v1/tokens")["tokens"]
    assert {t["user"] for t in listed} == {"viewer-user"}
    assert mine["id"] in {t["id"] for t in listed}
    status, out, _ = viewer.request("GET", "/api/v1/tokens?all=1")
    assert status == 403 and "admin" in out["error"], out
    everyone = {t["user"] for t in admin.get("/api/v1/tokens?all=1")["tokens"]}
    assert {"viewer-user", "admin-user"} <= everyone
    status, out, _ = viewer.request("DELETE", f"/api/v1/tokens/{other['id']}")
    assert status == 404, out
    status, out, _ = viewer.request("DELETE", "/api/v1/tokens/not-a-number")
    assert status == 400, out
    assert viewer.ok("DELETE", f"/api/v1/tokens/{mine['id']}") == {"revoked": mine["id"]}
    assert Api(cluster.parent, token=mine["token"]).request("GET", "/api/v1/me")[0] == 401
    assert admin.ok("DELETE", f"/api/v1/tokens/{other['id']}") == {"revoked": other["id"]}
    rows = _audit(cluster, "token revoke", f"token {mine['id']}")
    assert rows and rows[-1][0] == "viewer-user" and rows[-1][2] == "ok", rows
    made = _audit(cluster, "token create", f"token {mine['id']} of viewer-user")
    assert made and mine["token"] not in made[0][3], made


# --- the server's edges --------------------------------------------------------------------------

def test_unknown_routes_methods_and_limits(cluster):
    """issue 6 point 1: an unknown API path → 404 {"error": "no such route"}; a known path with
    another method → 405 with Allow; more than 32 query fields → 400; a body over 256 KiB →
    413; JSON replies say Cache-Control no-store and nosniff."""
    viewer = api_for(cluster, "viewer")
    status, out, _ = viewer.request("GET", "/api/v1/no-such-thing")
    assert status == 404 and out == {"error": "no such route"}
    status, out, rh = viewer.request("PATCH", "/api/v1/me")
    assert status == 405 and "GET" in rh["allow"], (out, rh)
    status, out, rh = viewer.request("GET", "/api/v1/me")
    assert status == 200 and rh["cache-control"] == "no-store"
    assert rh["x-content-type-options"] == "nosniff"
    assert rh["content-type"].startswith("application/json")
    q = "&".join(f"f{i}=1" for i in range(QUERY_MAX))
    assert viewer.request("GET", f"/api/v1/tokens?{q}")[0] == 200
    q += "&one=more"
    status, out, _ = viewer.request("GET", f"/api/v1/tokens?{q}")
    assert status == 400 and "query" in out["error"], out
    big = {"label": "x" * BODY_MAX}
    status, out, _ = viewer.request("POST", "/api/v1/tokens", big)
    assert status == 413, out


def test_static_files(cluster):
    """issue 6 point 2: GET / serves the console's index.html from web_root with nosniff and a
    Content-Security-Policy; paths that climb out of it, dotfiles, encoded dots and unknown
    types are 404."""
    api = Api(cluster.parent)
    with open(os.path.join(WEB_ROOT, "index.html"), "rb") as f:
        index = f.read()
    status, out, rh = api.request("GET", "/")
    assert status == 200 and out == index
    assert rh["content-type"].startswith("text/html")
    assert rh["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in rh["content-security-policy"]
    assert rh["cache-control"] == "no-cache"
    for path in ("/../etc/passwd", "/../../../../etc/passwd", "/%2e%2e/etc/passwd",
                 "/.git/config", "/a/../index.html", "/index.html%00.js", "/no-such-file.js",
                 "/etc/passwd"):
        status, out, _ = api.request("GET", path)
        assert status in (400, 404), (path, status, out)
        assert b"root:" not in (out if isinstance(out, bytes) else repr(out).encode())


def _open_request(parent, token, path="/api/v1/me"):
    """A TLS connection with one request sent and its answer not read (non-blocking)."""
    sock = socket.create_connection(("127.0.0.1", parent.https_port), timeout=10)
    tls = tls_context(parent).wrap_socket(sock)
    tls.sendall(f"GET {path} HTTP/1.1\r\nHost: parent\r\n"
                f"Authorization: Bearer {token}\r\n\r\n".encode())
    tls.setblocking(False)
    return tls


def _answered(tls):
    """The bytes answered so far on tls (b"" when none yet)."""
    try:
        return tls.recv(65536)
    except (ssl.SSLWantReadError, BlockingIOError):
        return b""


def test_queue_bounded_and_hang_ups(cluster, pg):
    """issue 6 point 1: with every worker stuck (the credentials table locked), 64 requests
    wait in the queue and the rest are answered 503 with Retry-After at once; clients that hang
    up while waiting are dropped without harm, and the API answers normally afterwards."""
    import psycopg2
    token = token_for(cluster, "viewer")
    lock = psycopg2.connect(pg.admin_dsn("portcullis"), connect_timeout=10)
    socks = []
    try:
        with lock.cursor() as cur:
            cur.execute("LOCK TABLE api_credentials IN ACCESS EXCLUSIVE MODE")
        socks = [_open_request(cluster.parent, token) for _ in range(API_WORKERS)]
        wait_until(lambda: pg.query("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                    "'portcullis' AND wait_event_type = 'Lock'")[0][0]
                   >= API_WORKERS, 30, "every API worker to wait for the lock")
        extra = 20
        socks += [_open_request(cluster.parent, token) for _ in range(QUEUE_MAX_JOBS + extra)]
        answers = {}

        def busy_answers():
            for i, t in enumerate(socks):
                if i not in answers:
                    got = _answered(t)
                    if got:
                        answers[i] = got
            return len(answers) >= extra

        wait_until(busy_answers, 30, f"{extra} requests past the queue to be refused")
        assert len(answers) == extra, len(answers)
        for got in answers.values():
            head = got.decode("latin-1")
            assert head.startswith("HTTP/1.1 503") and "Retry-After:" in head, head[:300]
    finally:
        for t in socks:
            t.close()
        lock.rollback()
        lock.close()
    viewer = api_for(cluster, "viewer")
    wait_until(lambda: viewer.request("GET", "/api/v1/me")[0] == 200, 60,
               "the API to answer after the hang-ups")
    assert cluster.parent.proc.running()


# --- the database away, the administrator's certificate (these restart things: last) ------------

def test_database_away_answers_503_then_recovers(cluster, pg):
    """issue 6 point 1: while PostgreSQL is down the API answers 503 "database unavailable"
    with Retry-After (never a hang or a crash); once it is back, the workers reconnect and the
    same request succeeds."""
    viewer = api_for(cluster, "viewer")
    assert viewer.ok("GET", "/api/v1/me")["user"] == "viewer-user"
    pg.stop()
    try:
        for _ in range(8):  # every worker notices, whichever takes the request
            status, out, rh = viewer.request("GET", "/api/v1/me")
            assert status == 503 and out["error"] == "database unavailable", out
            assert int(rh["retry-after"]) > 0
    finally:
        pg.start(reset=False)
    wait_until(lambda: viewer.request("GET", "/api/v1/me")[0] == 200, 90,
               "the API to answer again after the database came back")
    for _ in range(8):
        assert viewer.ok("GET", "/api/v1/me")["user"] == "viewer-user"


def _openssl_pair(d, name):
    key, crt = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", f"/CN={name}"], check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return crt, key


def _run_parent_expecting_refusal(cluster, conf):
    write_conf(cluster.parent.conf_path, conf)
    cp = subprocess.run([bin_path("portcullis-parent"), "-c", cluster.parent.conf_path],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode != 0, cp.stderr
    return cp.stderr


def test_given_certificate_and_key(cluster, module_dir):
    """issue 6 point 1: parent.conf https_cert and https_key: the parent serves that certificate
    (a client trusting only it connects); one without the other, or a key readable by others,
    stops the start with a clear message."""
    with open(cluster.parent.conf_path) as f:
        original = parse_conf(f.read())
    d = os.path.join(module_dir, "given-cert")
    os.makedirs(d, exist_ok=True)
    crt, key = _openssl_pair(d, "parent-given")
    cluster.parent.stop()
    try:
        err = _run_parent_expecting_refusal(cluster, {**original, "https_cert": crt})
        assert "https_cert and https_key go together" in err, err
        os.chmod(key, 0o640)
        err = _run_parent_expecting_refusal(cluster, {**original, "https_cert": crt,
                                                      "https_key": key})
        assert "chmod 600" in err, err
        os.chmod(key, 0o600)
        write_conf(cluster.parent.conf_path, {**original, "https_cert": crt, "https_key": key})
        cluster.parent.start()
        api = Api(cluster.parent, token=token_for(cluster, "viewer"))
        api.ctx = ssl.create_default_context(cafile=crt)
        api.ctx.check_hostname = False
        assert api.ok("GET", "/api/v1/me")["user"] == "viewer-user"
        with pytest.raises(ssl.SSLError):
            api_for(cluster, "viewer").request("GET", "/api/v1/me")  # trusts the old self-signed
    finally:
        cluster.parent.stop()
        write_conf(cluster.parent.conf_path, original)
        cluster.parent.start()
    assert api_for(cluster, "viewer").ok("GET", "/api/v1/me")["user"] == "viewer-user"
