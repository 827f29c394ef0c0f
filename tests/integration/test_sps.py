"""The smart-protection look-up service (R2.1): `portcullis sps import` of a large digest list,
POST /v1/lookup verdicts in request order, 400s for bad bodies, keep-alive, /v1/health, two
`--sps-only` replicas on one database, 503 while the database is down and recovery after it.
Every request is HTTPS with a child's credential (R8.7): the module enrols a child row with a
key made here and works its credential out from the keys; requests without it are refused.
Prints the import time and look-up round-trip percentiles (issue 4 point 8)."""

import hashlib
import http.client
import json
import os
import random
import threading
import time

import pytest

from harness import LOOPBACK, Parent, Proc, bin_path, free_port, parse_conf, run, wait_until, \
    write_conf
from lookups import LookupClient, enrol_fake_child, token

N_IMPORT = 1_000_000
BATCH_MAX = 1000
IMPORT_BOUND_S = 60      # generous for the shared test machines; the measured time is printed


def digest(i):
    return hashlib.sha256(b"sps-known-%d" % i).hexdigest()


def unknown(i):
    return hashlib.sha256(b"sps-unknown-%d" % i).hexdigest()


def threat(i):
    return f"Test.Malware.{i}"


def _conf_with_sps(conf_path, port):
    with open(conf_path) as f:
        conf = parse_conf(f.read())
    conf["sps_listen"] = f"{LOOPBACK}:{port}"
    write_conf(conf_path, conf)


CHILD = "sps-test-child"
CREDENTIAL = {}      # the module's child credential, set by the parent fixture


def Sps(port, credential=None):
    """One HTTPS connection (keep-alive) to a look-up service, with the module's child
    credential."""
    return LookupClient(port, credential or CREDENTIAL["child"])


def _fresh(port, method, path, body=None):
    c = Sps(port)
    try:
        return c.request(method, path, body)
    finally:
        c.close()


@pytest.fixture(scope="module")
def parent(module_dir, pg):
    pg.reset_database()
    p = Parent(module_dir, pg.dsn)
    p.sps_port = free_port()
    _conf_with_sps(p.conf_path, p.sps_port)
    mark = p.proc.log_mark()
    p.start()
    p.proc.wait_for_log(r"sps ready listen=\S+ pin=\S+", 10, since=mark)
    CREDENTIAL["child"] = enrol_fake_child(pg, CHILD)
    yield p
    p.stop()


def _cli(parent, *args, timeout=300):
    r = run([bin_path("portcullis"), "-c", parent.conf_path] + [str(a) for a in args],
            timeout=timeout, check=False)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture(scope="module")
def imported(parent, module_dir):
    """Imports N_IMPORT generated digests once for the module; returns the CLI's output."""
    path = os.path.join(module_dir, "digests.txt")
    with open(path, "w") as f:
        f.write("# generated digests\n\n")
        f.writelines(f"{digest(i)} {threat(i)}\n" for i in range(N_IMPORT))
    t0 = time.monotonic()
    rc, out, err = _cli(parent, "sps", "import", path)
    secs = time.monotonic() - t0
    assert rc == 0, err
    print(f"\nsps import of {N_IMPORT} digests: {secs:.2f} s wall ({out.strip()})")
    assert f"read {N_IMPORT}, new {N_IMPORT}, updated 0" in out, out
    assert secs < IMPORT_BOUND_S
    return out


def test_r2_1_lookup_batch_verdicts_in_order(parent, imported):
    """R2.1: after importing 1,000,000 digests, a batch of 1000 mixing known (some in upper
    case) and unknown digests gets one verdict per digest in the request's order: known ones
    malicious with their threat name, unknown ones unknown with an empty name."""
    rnd = random.Random(4)
    batch, want = [], []
    for k in range(BATCH_MAX):
        if k % 3 == 0:
            d, v = unknown(k), ("unknown", "")
        else:
            i = rnd.randrange(N_IMPORT)
            d, v = digest(i), ("malicious", threat(i))
        want.append((d, v))
        batch.append(d.upper() if k % 7 == 0 else d)
    c = Sps(parent.sps_port)
    status, body = c.lookup(batch)
    c.close()
    assert status == 200, body
    got = body["verdicts"]
    assert len(got) == BATCH_MAX
    for (d, (verdict, name)), g in zip(want, got):
        assert g == {"sha256": d, "verdict": verdict, "name": name}


def test_r2_1_health(parent, imported):
    """R2.1: GET /v1/health answers 200 with status ok and the number of digests known."""
    def ok():
        s, b = _fresh(parent.sps_port, "GET", "/v1/health")
        return s == 200 and b == {"status": "ok", "hashes": N_IMPORT}
    wait_until(ok, 15, "health to count the imported digests")


def test_r2_1_bad_requests(parent):
    """R2.1: the service refuses what is not a look-up, with a clear JSON error: bad JSON, a
    wrong shape, 1001 digests, a bad digest → 400; another path → 404; another method → 405;
    a body over 128 KiB → 413. The 400s keep the connection usable."""
    c = Sps(parent.sps_port)
    cases = [
        ("{not json", "not valid JSON"),
        (json.dumps({"digests": [digest(0)]}), "must be an object"),
        (json.dumps({"sha256": []}), "1 to 1000"),
        (json.dumps({"sha256": [digest(i) for i in range(BATCH_MAX + 1)]}), "1 to 1000"),
        (json.dumps({"sha256": [digest(0), digest(1)[:-1]]}), "sha256[1] is not"),
        (json.dumps({"sha256": [digest(0)[:-1] + "g"]}), "sha256[0] is not"),
    ]
    for body, message in cases:
        status, reply = c.request("POST", "/v1/lookup", body)
        assert status == 400, (body[:80], status, reply)
        assert message in reply["error"], reply
    status, reply = c.lookup([digest(1)])          # same connection, still serving
    assert status == 200 and reply["verdicts"][0]["verdict"] in ("malicious", "unknown")
    assert c.request("GET", "/v1/nothing")[0] == 404
    assert c.request("POST", "/v1/health", {})[0] == 405
    assert c.request("GET", "/v1/lookup")[0] == 405
    assert c.request("PUT", "/v1/lookup", {"sha256": [digest(0)]})[0] == 405
    c.close()

    big = json.dumps({"sha256": [digest(0)] * 1000}) + " " * (128 * 1024)
    try:
        status, _ = _fresh(parent.sps_port, "POST", "/v1/lookup", big)
    except (ConnectionResetError, BrokenPipeError):
        status = 413   # the server answered 413 and closed before the client finished sending
    assert status == 413


def test_r2_1_keep_alive(parent, imported):
    """R2.1: one HTTP/1.1 connection serves many look-ups (a child keeps its connection)."""
    c = Sps(parent.sps_port)
    c.lookup([digest(0)])
    sock = c.conn.sock
    for i in range(200):
        status, body = c.lookup([digest(i), unknown(i)])
        assert status == 200
        assert [v["verdict"] for v in body["verdicts"]] == ["malicious", "unknown"]
        assert body["verdicts"][0]["name"] == threat(i)
        assert c.conn.sock is sock, "the service closed a keep-alive connection"
    c.close()


def _percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def _measure(port, size, rounds, results, rnd):
    c = Sps(port)
    for _ in range(rounds):
        batch = [digest(rnd.randrange(N_IMPORT)) if k % 2 else unknown(rnd.randrange(10**9))
                 for k in range(size)]
        body = json.dumps({"sha256": batch})
        t0 = time.perf_counter()
        c.conn.request("POST", "/v1/lookup", body=body,
                       headers={"Content-Type": "application/json",
                                "Authorization": f"Bearer {c.credential}"})
        r = c.conn.getresponse()
        r.read()
        results.append((time.perf_counter() - t0) * 1000.0)
        assert r.status == 200
    c.close()


def test_r2_1_lookup_latency(parent, imported):
    """Issue 4 point 8: look-up round trips (client-side, keep-alive, half known digests,
    against 1,000,000 stored) for batches of 10 and 1000 digests, from 1 client and from 10
    concurrent clients; printed as p50/p99. Bounds are loose (shared machines): p99 of a
    10-digest look-up from one client under 100 ms."""
    report = []
    for size, rounds in ((10, 500), (1000, 100)):
        for clients in (1, 10):
            results = []
            threads = [threading.Thread(target=_measure,
                                        args=(parent.sps_port, size, rounds // clients * 2
                                              if clients > 1 else rounds, results,
                                              random.Random(size * 100 + k)))
                       for k in range(clients)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            secs = time.monotonic() - t0
            p50, p99 = _percentile(results, 50), _percentile(results, 99)
            report.append(f"batch={size:4d} clients={clients:2d} n={len(results):4d} "
                          f"p50={p50:7.2f} ms p99={p99:7.2f} ms "
                          f"rate={len(results) / secs:7.0f} req/s")
            if size == 10 and clients == 1:
                assert p99 < 100, report[-1]
    print("\nsps look-up round trips:\n  " + "\n  ".join(report))


def _replica(module_dir, parent, name):
    with open(parent.conf_path) as f:
        conf = parse_conf(f.read())
    port = free_port()
    conf["sps_listen"] = f"{LOOPBACK}:{port}"
    path = os.path.join(module_dir, f"{name}.conf")
    write_conf(path, conf)
    proc = Proc(name, [bin_path("portcullis-parent"), "--sps-only", "-c", path],
                os.path.join(module_dir, f"{name}.log"))
    proc.start()
    proc.wait_for_log(r"sps ready listen=\S+ pin=", 15)
    proc.sps_port = port
    return proc


@pytest.fixture(scope="module")
def replicas(module_dir, parent):
    procs = []
    try:
        for name in ("sps-replica1", "sps-replica2"):
            procs.append(_replica(module_dir, parent, name))
        yield procs
    finally:
        for p in procs:
            p.stop()


def test_r2_1_two_replicas_one_database(parent, imported, replicas):
    """R2.1: two `portcullis-parent --sps-only` processes on the parent's database both serve
    look-ups (known and unknown digests) and health, and neither runs the cluster."""
    for r in replicas:
        c = Sps(r.sps_port)
        status, body = c.lookup([digest(5), unknown(5), digest(N_IMPORT - 1)])
        assert status == 200, body
        assert [(v["verdict"], v["name"]) for v in body["verdicts"]] == \
            [("malicious", threat(5)), ("unknown", ""), ("malicious", threat(N_IMPORT - 1))]
        assert c.health() == (200, {"status": "ok", "hashes": N_IMPORT})
        c.close()
        assert "parent ready" not in r.log_text()


def test_r2_1_import_malformed_refused_then_update(parent, imported, module_dir):
    """R2.1 (import): a file with one malformed line is refused as a whole, naming the line,
    and nothing changes; a good file adds new digests and renames known ones, and the counts
    say so."""
    bad = os.path.join(module_dir, "bad.txt")
    with open(bad, "w") as f:
        f.write(f"{unknown(1)} New.One\n# comment\n{digest(1)} Renamed\n{digest(2)[:-1]} Short\n")
    rc, out, err = _cli(parent, "sps", "import", bad)
    assert rc == 2 and f"{bad}:4:" in err and "nothing imported" in err, (rc, out, err)
    c = Sps(parent.sps_port)
    assert c.lookup([unknown(1), digest(1)])[1]["verdicts"] == [
        {"sha256": unknown(1), "verdict": "unknown", "name": ""},
        {"sha256": digest(1), "verdict": "malicious", "name": threat(1)}]

    good = os.path.join(module_dir, "good.txt")
    with open(good, "w") as f:
        f.write(f"{unknown(1).upper()}\tNew One\n\n{digest(1)}  Renamed\n{digest(2)} {threat(2)}\n"
                f"{digest(3)} First\n{digest(3)} Last\n")
    rc, out, err = _cli(parent, "sps", "import", good)
    assert rc == 0, err
    assert "read 5, new 1, updated 2, unchanged 1" in out, out
    assert [(v["verdict"], v["name"]) for v in c.lookup([unknown(1), digest(1), digest(3)])[1]
            ["verdicts"]] == [("malicious", "New One"), ("malicious", "Renamed"),
                              ("malicious", "Last")]
    c.close()
    rc, out, err = _cli(parent, "sps", "stats")
    assert rc == 0 and f"hashes {N_IMPORT + 1}" in out, (out, err)


def test_r2_1_database_outage_503_and_recovery(pg, parent, imported, replicas):
    """R2.1: while PostgreSQL is stopped, look-ups and health answer 503 {"status": "database
    unavailable"} (in the parent's thread and in the replicas); after it returns they answer
    200 again by themselves, on the same client connection."""
    ports = [parent.sps_port] + [r.sps_port for r in replicas]
    clients = [Sps(p) for p in ports]
    for c in clients:
        assert c.lookup([digest(7)])[0] == 200
    pg.stop()
    try:
        for c in clients:
            assert c.lookup([digest(7)]) == (503, {"status": "database unavailable"})
            assert c.health() == (503, {"status": "database unavailable"})
    finally:
        pg.start(reset=False)
    t0 = time.monotonic()
    for c in clients:
        wait_until(lambda: c.health()[0] == 200, 40, "the look-up service to reconnect")
        status, body = c.lookup([digest(7)])
        assert status == 200 and body["verdicts"][0]["name"] == threat(7)
    print(f"\nsps recovered {time.monotonic() - t0:.1f} s after PostgreSQL returned")
    for c in clients:
        c.close()


def _tls_pin(pg):
    return pg.query("SELECT tls_pin FROM update_server WHERE id = 1")[0][0]


def test_r8_7_lookups_need_a_child_credential(pg, parent, imported, replicas):
    """R8.7: the look-up service answers only HTTPS requests carrying an enrolled child's
    credential. With none, a malformed one, another child's token under this name, a token
    made with another look-up key, an unknown name or a child still pending: 401 with
    WWW-Authenticate on every route, nothing looked up. Plain HTTP gets no answer. The parent's
    own listener, sps_listen and both replicas present the parent's pinned key."""
    pin = _tls_pin(pg)
    ports = [parent.sps_port, parent.https_port] + [r.sps_port for r in replicas]
    good = CREDENTIAL["child"]
    name, tok = good.split(":")
    other = enrol_fake_child(pg, "sps-other-child")
    pg.query("INSERT INTO children (name, public_key, enrolment) VALUES ('sps-pending', %s, "
             "'pending')", ("Q" * 40,))
    child_pub = pg.query("SELECT public_key FROM children WHERE name = %s", (name,))[0][0]
    from zmq.utils import z85
    # the child's key with a secret that is not the look-up key: what another parent would make
    foreign = f"{name}:{token(os.urandom(32), z85.decode(child_pub.encode()), name)}"
    assert foreign.split(":")[1] != tok
    bad = [None, "", "junk", f"{name}:{tok[:-1]}", f"{name}:{'0' * 64}",
           f"{name}:{other.split(':')[1]}",            # another child's token under this name
           foreign,                                      # not derived from our look-up key
           f"nobody:{tok}", f"sps-pending:{tok}"]
    for port in ports:
        for cred in bad:
            c = LookupClient(port, pin=pin)
            if cred is not None:
                c.credential = cred
            for method, path, body in (("POST", "/v1/lookup", {"sha256": [digest(0)]}),
                                       ("GET", "/v1/health", None),
                                       ("POST", "/v1/rate", {"urls": ["http://a.test/"]})):
                status, reply = c.request(method, path, body)
                assert status == 401, (port, cred, path, status, reply)
                assert "credential" in reply["error"]
            c.close()
        c = LookupClient(port, good, pin=pin)
        status, body = c.lookup([digest(0)])
        assert status == 200 and body["verdicts"][0]["name"] == threat(0), (port, body)
        c.close()
        o = LookupClient(port, other)
        assert o.lookup([digest(0)])[0] == 200      # the other child, with its own
        o.close()
    # the refusals are logged without the credential itself
    assert tok not in parent.proc.log_text()
    assert "lookup refused" in parent.proc.log_text()
    # plain HTTP on the TLS port: no answer
    plain = http.client.HTTPConnection(LOOPBACK, parent.sps_port, timeout=5)
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        plain.request("GET", "/v1/health", headers={"Authorization": f"Bearer {good}"})
        plain.getresponse()
    plain.close()
