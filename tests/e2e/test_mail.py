"""Mail between two real tegami hosts on the bed (see e2e_mail.py): A's
queue worker finds B by MX through nsd, signs with A's DKIM keys, sends
over STARTTLS; B delivers to its Maildir. Also: B down -> A keeps the
message queued and sends it once B is back; unknown user on B -> the DSN
lands in the sender's Maildir on A."""
import os
import subprocess
import time

import pytest

from e2e_mail import MailHost

PW = "secret-pw-1"


@pytest.fixture(scope="module")
def hosts(bed, tmp_path_factory):
    ca_dir = str(tmp_path_factory.mktemp("ca"))
    a = MailHost(bed, "a", ca_dir)
    b = MailHost(bed, "b", ca_dir)
    try:
        a.add_account("alice@a.test", PW)
        b.add_account("bob@b.test", PW)
        a.start()
        b.start()
        yield a, b
        for h in (a, b):
            h.stop()
            h.check_log()
    finally:
        a.close()
        b.close()


def message(subject, to="bob@b.test"):
    return (f"From: Alice <alice@a.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.time()}@a.test>\r\n"
            f"\r\nHello Bob,\r\n.dot line\r\nbye\r\n").encode()


def fields_and_body(msg):
    head, body = msg.split(b"\r\n\r\n", 1)
    fields, cur = [], None
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and cur is not None:
            cur.append(line)
        else:
            cur = [line]
            fields.append(cur)
    return fields, body


def dkim_verify_each(bed, msg):
    """dkimverify checks the first signature: check each one on top."""
    fields, body = fields_and_body(msg)
    sigs = [f for f in fields if f[0].startswith(b"DKIM-Signature:")]
    rest = [f for f in fields if not f[0].startswith(b"DKIM-Signature:")]
    assert len(sigs) == 2, msg[:3000]
    for sig in sigs:
        one = b"\r\n".join(b"\r\n".join(f) for f in [sig] + rest) + b"\r\n\r\n" + body
        v = subprocess.run(["ip", "netns", "exec", bed.ns("b"), "/usr/bin/python3",
                            "/usr/bin/dkimverify"], input=one, capture_output=True,
                           timeout=30)
        assert v.returncode == 0 and b"signature ok" in v.stdout, \
            (v.stdout + v.stderr).decode()


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_a_to_b_signed(bed, hosts):
    a, b = hosts
    n = len(b.messages("bob@b.test"))
    a.submit("alice@a.test", PW, "alice@a.test", "bob@b.test", message("first"))
    got = b.wait_messages("bob@b.test", n + 1)[-1]
    assert b"Subject: first" in got
    assert b"\n.dot line\n" in got
    dkim_verify_each(bed, crlf(got))
    assert "status=sent" in a.log_text()
    assert "relay=mx.b.test[10.77.0.12]:25" in a.log_text()
    end = time.time() + 5
    while a.queue_entries() and time.time() < end:
        time.sleep(0.1)
    assert a.queue_entries() == []


def test_b_down_then_back(bed, hosts):
    a, b = hosts
    n = len(b.messages("bob@b.test"))
    b.stop()
    a.submit("alice@a.test", PW, "alice@a.test", "bob@b.test", message("while down"))
    end = time.time() + 10
    while "status=deferred" not in a.log_text() and time.time() < end:
        time.sleep(0.1)
    assert "status=deferred" in a.log_text()
    ids = a.queue_entries()
    assert len(ids) == 1
    listing = a.cli(["queue", "list"]).stdout
    assert ids[0] in listing and "<bob@b.test> pending" in listing, listing
    assert "<alice@a.test>" in listing
    b.start()
    a.cli(["queue", "flush"])
    got = b.wait_messages("bob@b.test", n + 1)[-1]
    assert b"Subject: while down" in got
    end = time.time() + 5
    while a.queue_entries() and time.time() < end:
        time.sleep(0.1)
    assert a.queue_entries() == []
    assert "Mail queue is empty" in a.cli(["queue", "list"]).stdout


def test_unknown_user_bounces_to_sender(bed, hosts):
    a, b = hosts
    n = len(a.messages("alice@a.test"))
    a.submit("alice@a.test", PW, "alice@a.test", "nobody@b.test",
             message("to nobody", to="nobody@b.test"))
    dsn = a.wait_messages("alice@a.test", n + 1)[-1]
    assert b"Content-Type: multipart/report" in dsn
    assert b"report-type=delivery-status" in dsn
    assert b"Status: 5.1.1" in dsn
    assert b"Final-Recipient: rfc822;nobody@b.test" in dsn.replace(b"; ", b";")
    assert b"Subject: to nobody" in dsn        # the original header, quoted
    assert dsn.startswith(b"Return-Path: <>\n") and b"MAILER-DAEMON@" in dsn
    assert "status=bounced" in a.log_text()
    end = time.time() + 5
    while a.queue_entries() and time.time() < end:
        time.sleep(0.1)
    assert a.queue_entries() == []


def test_relay_host_with_auth_through_b(bed, hosts, tmp_path_factory):
    """DEFAULT_RELAY_HOST=[mx.b.test]:587 with RELAY_USER/RELAY_PASSWORD:
    A hands everything to B's submission port, AUTH over STARTTLS. (Runs
    last: it replaces A with a relaying instance.)"""
    a, b = hosts
    a.stop()
    ca_dir = os.path.dirname(a.ca)
    relay = MailHost(bed, "a", ca_dir, env={
        "DEFAULT_RELAY_HOST": "[mx.b.test]:587",
        "RELAY_USER": "bob@b.test",
        "RELAY_PASSWORD": PW,
    })
    try:
        relay.add_account("alice@a.test", PW)
        relay.start()
        n = len(b.messages("bob@b.test"))
        relay.submit("alice@a.test", PW, "alice@a.test", "bob@b.test",
                     message("via relay"))
        got = b.wait_messages("bob@b.test", n + 1)[-1]
        assert b"Subject: via relay" in got
        log = relay.log_text()
        assert "status=sent relay=mx.b.test[10.77.0.12]:587" in log, log[-3000:]
        assert PW not in log
        # B saw an authenticated, encrypted submission
        assert b"ESMTPSA" in got
        relay.stop()
        relay.check_log()
    finally:
        relay.close()
