"""The children's look-ups (R8.7) as a test sees them: the credential worked out here, from the
keys, exactly as common/lookup_auth.c does (X25519 of one side's secret and the other's public
key, BLAKE2b-256 keyed with it over "portcullis-lookup-v1\\0" + the child's name), and an HTTPS
client for the look-up service (POST /v1/lookup, GET /v1/health, POST /v1/rate) that checks
the server's key pin as the children do."""

import base64
import hashlib
import http.client
import json
import os
import ssl

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from zmq.utils import z85

from cluster import LOOPBACK

CONTEXT = b"portcullis-lookup-v1\0"
_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def lookup_secret(pg):
    rows = pg.query("SELECT lookup_secret FROM update_server WHERE id = 1")
    assert rows and rows[0][0] is not None, "the parent made no look-up key"
    return bytes(rows[0][0])


def token(my_secret, peer_public, name):
    shared = X25519PrivateKey.from_private_bytes(my_secret).exchange(
        X25519PublicKey.from_public_bytes(peer_public))
    return hashlib.blake2b(CONTEXT + name.encode(), digest_size=32, key=shared).hexdigest()


def child_credential(pg, child):
    """The credential of a real child, from its own secret key file and the look-up key's
    public half (what the child's manager derives)."""
    with open(os.path.join(child.state_dir, "child.key")) as f:
        csk = z85.decode(f.read().strip().encode())
    lpk = X25519PrivateKey.from_private_bytes(lookup_secret(pg)).public_key().public_bytes(*_RAW)
    return f"{child.name}:{token(csk, lpk, child.name)}"


def enrol_fake_child(pg, name):
    """An enrolled child row with a key made here (no process): its credential, worked out
    from the server's side. For testing the look-up service without a running child."""
    sk = X25519PrivateKey.generate()
    pub = sk.public_key().public_bytes(*_RAW)
    pg.query("INSERT INTO children (name, public_key, enrolment, enrolled_at) "
             "VALUES (%s, %s, 'enrolled', now()) ON CONFLICT (name) DO UPDATE "
             "SET public_key = EXCLUDED.public_key, enrolment = 'enrolled'",
             (name, z85.encode(pub).decode()))
    return f"{name}:{token(lookup_secret(pg), pub, name)}"


def server_pin(host, port):
    """The pin ("sha256//BASE64") of the key the server at host:port presents."""
    from cryptography import x509
    pem = ssl.get_server_certificate((host, port)).encode()
    cert = x509.load_pem_x509_certificate(pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


class LookupClient:
    """One HTTPS connection (keep-alive) to a look-up service; credential None sends none.
    No CA: the children trust the pinned key, which `pin` checks when given."""

    def __init__(self, port, credential=None, host=LOOPBACK, pin=None, timeout=10):
        if pin is not None:
            got = server_pin(host, port)
            assert got == pin, f"look-up service key {got} is not the pinned {pin}"
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.port = port
        self.credential = credential
        self.conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)

    def request(self, method, path, body=None, headers=None):
        h = {"Content-Type": "application/json"} if body is not None else {}
        if self.credential is not None:
            h["Authorization"] = f"Bearer {self.credential}"
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data and
                          r.getheader("Content-Type", "").startswith("application/json") else data)

    def lookup(self, digests):
        return self.request("POST", "/v1/lookup", {"sha256": digests})

    def health(self):
        return self.request("GET", "/v1/health")

    def rate(self, urls):
        return self.request("POST", "/v1/rate", {"urls": urls})

    def close(self):
        self.conn.close()
