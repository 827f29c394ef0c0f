"""Administrator notification mail (R2.4 "the switch raises a system event and an admin
notification", R5.11): queued with the event, sent by the parent through a real Postfix over
SMTP (libcurl), retried when the mail server cannot be reached, and shown by `notify list`."""

import email
import email.policy
import json

import pytest

from harness import Cluster, free_port, wait_until

ADMIN = "postmaster@sink.test"


@pytest.fixture(scope="module")
def cluster(module_dir, pg):
    c = Cluster(module_dir, pg, n_children=1, upstream=False).start()
    try:
        c.wait_child_state("child1", "up", 15)
    except BaseException:
        c.stop()
        raise
    yield c
    c.stop()


def notifications(cluster):
    return json.loads(cluster.cli_ok("notify", "list", "--limit", "100", "--json"))


def notification(cluster, nid):
    return next(n for n in notifications(cluster) if n["id"] == nid)


def queue_test(cluster):
    out = cluster.cli_ok("notify", "test")
    return int(out.split()[2])


def mails_with_subject(cluster, subject):
    out = []
    for d in cluster.downstream.delivered():
        m = email.message_from_bytes(d.raw, policy=email.policy.default)
        if m["Subject"] == subject:
            out.append(m)
    return out


def point_at_downstream(cluster):
    cluster.cli_ok("settings", "set", "notify.smtp_url",
                   f"smtp://127.0.0.1:{cluster.downstream.port}")
    cluster.cli_ok("settings", "set", "notify.admin_address", ADMIN)


def test_r5_11_no_address_means_no_mail_and_says_why(cluster):
    """With notify.admin_address empty (the default) a notification is not mailed: its row says
    skipped and why, so an administrator sees that mail is not configured."""
    nid = queue_test(cluster)
    wait_until(lambda: notification(cluster, nid)["state"] != "pending", 20,
               "the notifier to take the test notification")
    n = notification(cluster, nid)
    assert n["state"] == "skipped", n
    assert "notify.admin_address is empty" in n["last_error"]


def test_r5_11_bad_addresses_refused(cluster):
    """R6.1: notification settings are validated; a bad value changes nothing."""
    for key, value in (("notify.admin_address", "not an address"),
                       ("notify.admin_address", "a@b.test, <evil>@x.test"),
                       ("notify.from", "nobody"),
                       ("notify.smtp_url", "http://127.0.0.1:25")):
        rc, out, err = cluster.cli("settings", "set", key, value)
        assert rc == 2, (key, value, out, err)
        assert key in err, err


def test_r5_11_test_mail_reaches_the_administrator(cluster):
    """The mail goes through a real Postfix to the administrator's mailbox, marked as an
    automatic message (RFC 3834) so that it is never answered."""
    point_at_downstream(cluster)
    nid = queue_test(cluster)
    wait_until(lambda: mails_with_subject(cluster, "Portcullis test notification"), 30,
               "the test notification in the administrator's mailbox")
    m = mails_with_subject(cluster, "Portcullis test notification")[0]
    assert m["Auto-Submitted"] == "auto-generated"
    assert ADMIN in m["To"]
    assert "notification mail works" in m.get_content()
    wait_until(lambda: notification(cluster, nid)["state"] == "sent", 10, "state sent")
    assert notification(cluster, nid)["recipients"] == ADMIN


def test_r5_11_unreachable_mail_server_retried_until_it_works(cluster):
    """A mail server that cannot be reached leaves the notification pending with the error;
    once the administrator mends notify.smtp_url it is sent at once (no waiting for the
    backoff) — nothing is lost in between."""
    dead = free_port()
    cluster.cli_ok("settings", "set", "notify.smtp_url", f"smtp://127.0.0.1:{dead}")
    nid = queue_test(cluster)
    wait_until(lambda: notification(cluster, nid)["attempts"] >= 1, 30, "a failed attempt")
    n = notification(cluster, nid)
    assert n["state"] == "pending", n
    assert n["last_error"], n
    before = len(mails_with_subject(cluster, "Portcullis test notification"))
    point_at_downstream(cluster)
    wait_until(lambda: notification(cluster, nid)["state"] == "sent", 30,
               "the pending notification to be sent after the fix")
    assert notification(cluster, nid)["attempts"] >= 2
    wait_until(lambda: len(mails_with_subject(cluster, "Portcullis test notification")) > before,
               30, "the retried mail in the mailbox")


def test_r7_2_child_down_notifies_the_administrator(cluster):
    """R7.2 "missing 3 intervals marks it down and raises an event" — and a mail, since nobody
    watches a console at night."""
    point_at_downstream(cluster)
    cluster.children["child1"].stop()
    cluster.wait_child_state("child1", "down", 30)
    wait_until(lambda: mails_with_subject(cluster, "Portcullis: child child1 is down"), 30,
               "the child-down mail")
    m = mails_with_subject(cluster, "Portcullis: child child1 is down")[0]
    assert "child child1 down" in m.get_content()
    assert "Child:  child1" in m.get_content()
    cluster.children["child1"].start()
    cluster.wait_child_state("child1", "up", 30)
