"""Private Postfix test instances on 127.0.0.1 (never the system instance): the upstream MTA
with per-domain after-queue content filters (FILTER in an access map) and the downstream
reinjection MTA delivering into one Maildir; queue inspection, flush and SMTP submission."""

import json
import os
import pwd
import re
import signal
import smtplib

from messages import Delivered
from procs import (LOOPBACK, MASTER_CF_DIST, POSTFIX, POSTMAP, POSTQUEUE, HarnessError, Proc,
                   free_port, make_dir, make_traversable, pid_alive, run, tail, wait_for_port,
                   wait_port_closed, wait_until)

def _master_cf_base():
    """Debian's master.cf without the port-25 listener, without pipe(8) services for
    software that is not installed, with chroot off (a test instance has no chroot jail)."""
    with open(MASTER_CF_DIST) as f:
        lines = f.read().splitlines()
    drop_services = {"maildrop", "uucp", "ifmail", "bsmtp", "scalemail-backend", "mailman"}
    out = []
    skipping = False
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():          # continuation of the previous entry
            if not skipping:
                out.append(line)
            continue
        f = line.split()
        skipping = f[0] in drop_services or (f[0] == "smtp" and f[1] == "inet")
        if skipping:
            continue
        if len(f) >= 8:
            f[4] = "n"                 # chroot column
            line = "{:<10} {:<5} {:<7} {:<7} {:<7} {:<7} {:<7} {}".format(*f[:7], " ".join(f[7:]))
        out.append(line)
    if not any(l.split()[0] == "postlog" for l in out if l and not l[0].isspace()):
        out.append("postlog   unix-dgram n  -       n       -       1       postlogd")
    return out


class PostfixInstance:
    """A private Postfix instance (own config, queue and data directories) on 127.0.0.1.

    role "downstream": the reinjection MTA; delivers every recipient in DOMAINS into one
    Maildir (virtual(8), uid nobody). role "upstream": relays DOMAINS from 127.0.0.0/8 and
    hands each domain's mail to an after-queue content filter given in filters
    (domain -> "host:port")."""

    DOMAINS = ("child1.test", "child2.test", "sink.test")
    MAILDIR_USER = "nobody"

    def __init__(self, base_dir, name, role, filters=None, port=None, extra_main=None):
        if role not in ("upstream", "downstream"):
            raise ValueError(role)
        self.name = name
        self.role = role
        self.filters = dict(filters or {})
        self.port = port or free_port()
        self.extra_main = dict(extra_main or {})
        self.dir = make_dir(os.path.join(base_dir, name), 0o755)
        make_traversable(self.dir)
        self.conf_dir = make_dir(os.path.join(self.dir, "etc"), 0o755)
        self.queue_dir = make_dir(os.path.join(self.dir, "queue"), 0o755)
        self.data_dir = make_dir(os.path.join(self.dir, "data"), 0o700, owner="postfix")
        self.log_path = os.path.join(self.dir, "postfix.log")
        self.mail_base = os.path.join(self.dir, "mail")
        self.maildir = os.path.join(self.mail_base, "Maildir")
        self.proc = None
        self._write_config()

    # -- configuration --------------------------------------------------------------------
    def _main_cf(self):
        m = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "myhostname": f"{self.name}.portcullis.test",
            "mydomain": "portcullis.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": LOOPBACK,
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "default_transport": "error:5.7.1 test instance: no delivery outside the box",
            # error(8) under another name: smtpd accepts (the FILTER decides), a message that
            # no FILTER caught bounces instead of leaving the box
            "relay_transport": "nofilter:5.7.1 test instance: no content filter matched",
            "local_transport": "error:5.7.1 test instance: no local delivery",
            "transport_maps": f"hash:{self.conf_dir}/transport",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "relayhost": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "maillog_file": "/dev/stdout",
            "smtputf8_enable": "no",
            "delay_warning_time": "0",
            "maximal_queue_lifetime": "1h",
            "bounce_queue_lifetime": "1h",
            # retries happen when a test flushes; the scheduler itself retries rarely
            "queue_run_delay": "300s",
            "minimal_backoff_time": "300s",
            "maximal_backoff_time": "600s",
            "smtpd_banner": "$myhostname ESMTP test instance",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "message_size_limit": "10240000",
            "smtp_connect_timeout": "5s",
            "smtp_helo_timeout": "30s",
            "smtp_data_done_timeout": "120s",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
        }
        if self.role == "downstream":
            pw = pwd.getpwnam(self.MAILDIR_USER)
            m.update({
                "virtual_mailbox_domains": " ".join(self.DOMAINS),
                "virtual_mailbox_base": self.mail_base,
                "virtual_mailbox_maps": "static:Maildir/",
                "virtual_uid_maps": f"static:{pw.pw_uid}",
                "virtual_gid_maps": f"static:{pw.pw_gid}",
                "virtual_minimum_uid": "100",
                "virtual_transport": "virtual",
                "virtual_destination_concurrency_limit": "20",
                "smtpd_authorized_xforward_hosts": "127.0.0.0/8",
                "smtpd_relay_restrictions": "permit_mynetworks, reject",
                "smtpd_recipient_restrictions": "permit_mynetworks, reject",
            })
        else:
            m.update({
                "relay_domains": " ".join(self.DOMAINS),
                "smtpd_relay_restrictions": "permit_mynetworks, reject",
                "smtpd_recipient_restrictions":
                    f"check_recipient_access hash:{self.conf_dir}/filters, permit_mynetworks, reject",
            })
        m.update(self.extra_main)
        return m

    def _filter_transports(self):
        """[(transport name, domain, "host:port")] in a stable order."""
        return [(f"scan{i + 1}", dom, self.filters[dom]) for i, dom in enumerate(sorted(self.filters))]

    def _write_config(self):
        with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
            for k, v in self._main_cf().items():
                f.write(f"{k} = {v}\n")
        lines = _master_cf_base()
        lines.append(f"{LOOPBACK}:{self.port} inet n - n - - smtpd")
        lines.append("nofilter unix - - n - - error")
        if self.role == "upstream":
            for tname, _dom, _hp in self._filter_transports():
                lines.append(f"{tname} unix - - n - 10 smtp")
                lines.append("  -o syslog_name=postfix-$service_name")
                lines.append("  -o smtp_send_xforward_command=yes")
                lines.append("  -o disable_mime_output_conversion=yes")
                lines.append("  -o smtp_connect_timeout=5s")
        with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
            f.write("\n".join(lines) + "\n")
        # Bounces go to senders in origin.test: discarded, so they never sit in a queue.
        with open(os.path.join(self.conf_dir, "transport"), "w") as f:
            f.write("origin.test discard:test bounce sink\n")
        self._postmap("transport")
        if self.role == "upstream":
            with open(os.path.join(self.conf_dir, "filters"), "w") as f:
                for tname, dom, hp in self._filter_transports():
                    host, port = hp.rsplit(":", 1)
                    f.write(f"{dom} FILTER {tname}:[{host}]:{port}\n")
            self._postmap("filters")
        if self.role == "downstream":
            make_dir(self.mail_base, 0o755, owner=self.MAILDIR_USER)
            make_dir(self.maildir, 0o700, owner=self.MAILDIR_USER)
            for sub in ("new", "cur", "tmp"):
                make_dir(os.path.join(self.maildir, sub), 0o700, owner=self.MAILDIR_USER)

    def _postmap(self, name):
        run([POSTMAP, "-c", self.conf_dir, f"hash:{self.conf_dir}/{name}"])

    def set_filters(self, filters):
        """Re-points the upstream's content filters (domain -> "host:port"); reloads if running."""
        self.filters = dict(filters)
        self._write_config()
        if self.running():
            run([POSTFIX, "-c", self.conf_dir, "reload"])

    def check(self):
        """`postfix check` for this instance (run as root)."""
        return run([POSTFIX, "-c", self.conf_dir, "check"])

    # -- lifecycle ----------------------------------------------------------------------------
    def running(self):
        return self.proc is not None and self.proc.running()

    def start(self, timeout=30):
        self.proc = Proc(f"postfix-{self.name}", [POSTFIX, "-c", self.conf_dir, "start-fg"],
                         self.log_path)
        self.proc.start()
        wait_until(lambda: self._master_pid() is not None or not self.proc.running(), timeout,
                   f"postfix {self.name} master pid file")
        if not self.proc.running():
            raise HarnessError(f"postfix {self.name} failed to start (rc={self.proc.returncode()});"
                               f" log:\n{tail(self.log_path, 60)}")
        wait_for_port(LOOPBACK, self.port, timeout, f"postfix {self.name} smtpd on port {self.port}")
        return self

    def _master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def stop(self, timeout=30):
        if self.proc is None:
            return
        if self.proc.running():
            run([POSTFIX, "-c", self.conf_dir, "stop"], check=False, timeout=timeout)
            try:
                wait_until(lambda: not self.proc.running(), timeout, f"postfix {self.name} to stop")
            except HarnessError:
                pass
        self.proc.stop()
        # a master that outlived its start-fg parent (it runs in its own session)
        pid = self._master_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        wait_port_closed(LOOPBACK, self.port, timeout, f"postfix {self.name} port {self.port} to close")

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        return self.proc.log_mark() if self.proc else 0

    def log_since(self, mark):
        return self.proc.log_since(mark) if self.proc else ""

    def wait_for_log(self, regex, timeout, since=0):
        return self.proc.wait_for_log(regex, timeout, since=since)

    # -- queue ----------------------------------------------------------------------------------
    def queue(self):
        """The queue as `postqueue -j` objects (queue_name, queue_id, recipients with
        address and delay_reason, ...)."""
        cp = run([POSTQUEUE, "-c", self.conf_dir, "-j"], timeout=30)
        out = []
        for line in cp.stdout.splitlines():
            line = line.strip()
            if line:
                out.append(json.loads(line))
        return out

    def flush(self):
        run([POSTQUEUE, "-c", self.conf_dir, "-f"], timeout=30)

    def wait_queue_empty(self, timeout):
        wait_until(lambda: not self.queue(), timeout, f"postfix {self.name} queue to be empty")

    # -- SMTP -----------------------------------------------------------------------------------
    def smtp(self, timeout=30):
        s = smtplib.SMTP(LOOPBACK, self.port, local_hostname="client.portcullis.test",
                         timeout=timeout)
        s.ehlo()
        return s

    @staticmethod
    def send_on(s, msg_bytes, sender, rcpts):
        """One transaction on an open smtplib session; returns the queue id."""
        opts = ["BODY=8BITMIME"] if "8BITMIME".lower() in s.esmtp_features else []
        code, resp = s.mail(sender, opts)
        if code != 250:
            raise HarnessError(f"MAIL FROM refused: {code} {resp!r}")
        for r in rcpts:
            code, resp = s.rcpt(r)
            if code not in (250, 251):
                s.rset()
                raise HarnessError(f"RCPT TO {r} refused: {code} {resp!r}")
        code, resp = s.data(msg_bytes)
        if code != 250:
            raise HarnessError(f"DATA refused: {code} {resp!r}")
        m = re.search(rb"queued as ([0-9A-Za-z]+)", resp)
        return m.group(1).decode() if m else None

    def send(self, msg_bytes, sender, rcpts):
        """Sends one message to this instance's smtpd; returns the Postfix queue id."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        with self.smtp() as s:
            return self.send_on(s, msg_bytes, sender, rcpts)

    def send_many(self, items):
        """items: [(msg_bytes, sender, rcpts)], sent over one SMTP session; returns queue ids."""
        ids = []
        with self.smtp() as s:
            for msg_bytes, sender, rcpts in items:
                ids.append(self.send_on(s, msg_bytes, sender,
                                        [rcpts] if isinstance(rcpts, str) else rcpts))
        return ids

    # -- Maildir (downstream) -------------------------------------------------------------------
    def delivered(self):
        """Every message in the Maildir (new and cur) as Delivered objects (raw + parsed)."""
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir, sub)
            for fn in sorted(os.listdir(d)):
                p = os.path.join(d, fn)
                try:
                    with open(p, "rb") as f:
                        out.append(Delivered(p, f.read()))
                except FileNotFoundError:
                    continue
        return out

    def delivered_count(self):
        return sum(len(os.listdir(os.path.join(self.maildir, s))) for s in ("new", "cur"))

    def wait_delivered(self, n, timeout):
        """Waits until at least n messages are in the Maildir; returns delivered()."""
        wait_until(lambda: self.delivered_count() >= n, timeout,
                   f"{n} messages in {self.name}'s Maildir (have {self.delivered_count()})")
        return self.delivered()
