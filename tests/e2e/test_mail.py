"""Mail between two real tegami hosts on the bed (see e2e_mail.py): A's
queue worker finds B by MX through nsd, signs with A's DKIM keys, sends
over STARTTLS; B delivers to its Maildir. Also: B down -> A keeps the
message queued and sends it once B is back; unknown user on B -> the DSN
lands in the sender's Maildir on A."""
import os
import re
import subprocess
import time

import pytest

from e2e_mail import MailHost
from mimeutil import leaves  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
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


EIGHT = ("From: Alice <alice@a.test>\r\nTo: <bob@b.test>\r\nSubject: 8-bit\r\n"
         "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <8bit.e2e@a.test>\r\n"
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
         "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln, ☺\r\n.dot line\r\n"
         "--b1\r\nContent-Type: message/rfc822\r\n\r\n"
         "From: x@b.test\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n\r\nÉté\r\n"
         "--b1--\r\n").encode()


def test_8bit_message_through_a_peer_without_8bitmime(bed, hosts, tmp_path):
    """B replaced by a 7-bit SMTP server (no 8BITMIME) on its MX address:
    A sends the 7-bit form of an 8-bit message (quoted-printable, the
    nested message converted too), and both DKIM signatures verify in B's
    namespace against the bed's DNS."""
    a, b = hosts
    b.stop()
    out = tmp_path / "sink7"
    out.mkdir()
    sink = subprocess.Popen(["ip", "netns", "exec", bed.ns("b"), "/usr/bin/python3",
                             os.path.join(HERE, "smtp_sink.py"), b.addr, "25", str(out),
                             "--no-8bitmime"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sink.stdout.readline().strip() == "ready", sink.stderr.read()
        a.submit("alice@a.test", PW, "alice@a.test", "bob@b.test", EIGHT)
        end = time.time() + 20
        while not list(out.glob("*.eml")) and time.time() < end:
            time.sleep(0.1)
        [eml] = list(out.glob("*.eml"))
        data = eml.read_bytes()
        assert max(data) < 0x80, data[-1000:]
        assert "BODY=" not in eml.with_suffix(".mail").read_text()
        assert b"Content-Transfer-Encoding: quoted-printable" in data
        assert leaves(data) == leaves(EIGHT)
        dkim_verify_each(bed, data)
    finally:
        sink.terminate()
        sink.wait()
        b.start()


def test_missing_message_id_and_date_added_signed_and_verified(bed, hosts):
    """A submission without Message-ID and Date: A adds both before it
    signs (both are in h=), and B gets a message whose signatures verify."""
    a, b = hosts
    n = len(b.messages("bob@b.test"))
    a.submit("alice@a.test", PW, "alice@a.test", "bob@b.test",
             b"From: Alice <alice@a.test>\r\nTo: <bob@b.test>\r\nSubject: bare\r\n"
             b"\r\nNo id, no date.\r\n")
    got = b.wait_messages("bob@b.test", n + 1)[-1]
    assert b"Subject: bare" in got
    assert re.search(rb"\nMessage-ID: <[0-9a-f]{24}@mx\.a\.test>\n", got), got[:2000]
    assert re.search(rb"\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\n", got)
    signed = re.findall(rb"; h=([^;]+);", re.sub(rb"\n\s+", b" ", got))
    assert len(signed) == 2 and all(b"message-id" in h and b"date" in h for h in signed), signed
    dkim_verify_each(bed, crlf(got))


def test_null_mx_nxdomain_bounce_and_a_dns_failure_defers(bed, hosts):
    """Through nsd: a null MX (RFC 7505) bounces with 5.1.10, a name that
    does not exist with 5.1.2 (one DSN for both); a domain the name server
    will not answer for is a temporary DNS error: the recipient waits."""
    a, b = hosts
    n = len(a.messages("alice@a.test"))
    a.submit("alice@a.test", PW, "alice@a.test",
             "x@nomail.b.test,y@nothere.b.test,z@unserved.test", message("dns cases"))
    dsn = a.wait_messages("alice@a.test", n + 1)[-1]
    flat = dsn.replace(b"; ", b";")
    assert b"Final-Recipient: rfc822;x@nomail.b.test\nAction: failed\nStatus: 5.1.10\n" in flat
    assert b"null MX" in dsn
    assert b"Final-Recipient: rfc822;y@nothere.b.test\nAction: failed\nStatus: 5.1.2\n" in flat
    assert b"z@unserved.test" not in dsn
    log = a.log_text()
    assert "to=<z@unserved.test> status=deferred" in log and "dsn=4.4.3" in log, log[-3000:]
    [qid] = a.queue_entries()
    listing = a.cli(["queue", "list"]).stdout
    # retries come every second here (TEGAMI_QUEUE_RETRY_FIRST=1): by the
    # time of the listing there may have been more than one attempt
    assert re.search(r"<z@unserved\.test> pending attempts=[1-9]", listing), listing
    assert "<x@nomail.b.test>" in listing and "bounced" in listing, listing
    a.cli(["queue", "delete", qid])
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
