"""A real DNS server for the email-reputation tests (R3.1): unbound in the foreground as root,
on 127.0.0.1 and a free port, answering a static block-list zone from local-data only (no
recursion to the outside). Start, stop and restart on the same port (a DNS outage and its end),
readiness by a real UDP query, never by a sleep."""

import os
import random
import socket
import struct

from procs import LOOPBACK, HarnessError, Proc, free_port, make_dir, wait_until

UNBOUND = "/usr/sbin/unbound"


def reverse_ipv4(addr):
    return ".".join(reversed(addr.split(".")))


def query_a(port, name, timeout=0.5):
    """One A query to 127.0.0.1:port; returns (rcode, [addresses]) or None without an answer."""
    qid = random.randrange(1 << 16)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    q += struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(q, (LOOPBACK, port))
            data, _ = s.recvfrom(4096)
        except OSError:
            return None
    rid, flags, _qd, an = struct.unpack(">HHHH", data[:8])
    if rid != qid:
        return None
    # skip the question, then read the answers (names are compressed pointers or labels)
    off = 12
    while data[off] != 0:
        off += data[off] + 1
    off += 5
    addrs = []
    for _ in range(an):
        if data[off] & 0xC0 == 0xC0:
            off += 2
        else:
            while data[off] != 0:
                off += data[off] + 1
            off += 1
        rtype, _cls, _ttl, rdlen = struct.unpack(">HHIH", data[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            addrs.append(socket.inet_ntoa(data[off:off + 4]))
        off += rdlen
    return flags & 0xF, addrs


class UnboundServer:
    """unbound serving zone (static) with A records {name: address}; 2.0.0.127.<zone> answers
    127.0.0.2 as block lists do by convention."""

    def __init__(self, base_dir, zone, records, port=None):
        self.dir = make_dir(os.path.join(base_dir, "unbound"), 0o755)
        self.zone = zone.rstrip(".")
        self.port = port or free_port()
        self.conf_path = os.path.join(self.dir, "unbound.conf")
        recs = dict(records)
        recs.setdefault(f"2.0.0.127.{self.zone}", "127.0.0.2")
        lines = [
            "server:",
            f"    interface: {LOOPBACK}",
            f"    port: {self.port}",
            "    do-daemonize: no",
            '    chroot: ""',
            '    username: ""',
            f'    directory: "{self.dir}"',
            f'    pidfile: "{os.path.join(self.dir, "unbound.pid")}"',
            "    use-syslog: no",
            '    logfile: ""',
            "    verbosity: 1",
            "    do-ip6: no",
            '    module-config: "iterator"',
            "    access-control: 127.0.0.0/8 allow",
            f'    local-zone: "{self.zone}." static',
            f'    local-data: "{self.zone}. SOA ns.{self.zone}. root.{self.zone}. 1 3600 600 86400 60"',
        ]
        lines += [f'    local-data: "{name}. A {addr}"' for name, addr in sorted(recs.items())]
        lines += ["remote-control:", "    control-enable: no", ""]
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines))
        self.proc = Proc("unbound", [UNBOUND, "-d", "-c", self.conf_path],
                         os.path.join(self.dir, "unbound.log"))

    @property
    def server(self):
        """The child.conf dns_server value."""
        return f"{LOOPBACK}:{self.port}"

    def start(self, timeout=15):
        self.proc.start()

        def answers():
            if not self.proc.running():
                raise HarnessError(f"unbound exited:\n{self.proc.log_text()[-2000:]}")
            r = query_a(self.port, f"2.0.0.127.{self.zone}")
            return r is not None and r[1] == ["127.0.0.2"]
        wait_until(answers, timeout, f"unbound on {self.server} to answer 2.0.0.127.{self.zone}")
        return self

    def stop(self):
        self.proc.stop()
        wait_until(lambda: query_a(self.port, f"2.0.0.127.{self.zone}", 0.2) is None, 10,
                   f"unbound on {self.server} to stop answering")

    def restart(self):
        self.stop()
        return self.start()
