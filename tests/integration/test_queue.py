"""The outbound queue against the real server: the queue worker sends
what a submission queued (to a sink on localhost, found through a fake
DNS server), and `tegami queue list|hold|release|flush|delete` work on
entries whose destination is unreachable."""
import glob
import os
import re
import smtplib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fakedns import FakeDNS  # noqa: E402
from tegami_server import BINARY, free_port  # noqa: E402
from mimeutil import leaves  # noqa: E402

SINK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "e2e", "smtp_sink.py")
MSG = (b"From: alice@example.test\r\nTo: friend@far.test\r\n"
       b"Subject: outbound\r\nMessage-ID: <q1@example.test>\r\n"
       b"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\nHello.\r\n")


@pytest.fixture
def dns():
    d = FakeDNS()
    yield d
    d.close()


def submit(srv, rcpts):
    with smtplib.SMTP("127.0.0.1", srv.ports["SUBMISSION"], timeout=30) as s:
        s.starttls(context=srv.ssl_context())
        s.login("alice@example.test", "alicepw")
        s.sendmail("alice@example.test", rcpts, MSG)


def cli(srv, *args, check=True):
    r = subprocess.run([BINARY] + list(args), env=srv.env, capture_output=True,
                       text=True, timeout=30)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def wait_for(pred, timeout=15, what=""):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_sink(out, *flags):
    port = free_port()
    p = subprocess.Popen(["/usr/bin/python3", SINK, "127.0.0.1", str(port), str(out)]
                         + list(flags), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "ready"
    return p, port


def test_queue_sends_to_sink(make_server, dns, tmp_path):
    out = tmp_path / "sink"
    out.mkdir()
    sink, port = start_sink(out)
    try:
        srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                               "TEGAMI_SMTP_PORT": str(port)})
        submit(srv, ["friend@far.test", "other@far.test"])
        wait_for(lambda: glob.glob(str(out / "*.eml")), what="the sink")
        eml = sorted(glob.glob(str(out / "*.eml")))[0]
        env = open(eml.replace(".eml", ".env")).read().split()
        assert env == ["alice@example.test", "friend@far.test", "other@far.test"]
        assert open(eml, "rb").read().endswith(MSG)
        wait_for(lambda: srv.queue_entries() == [], what="the entry to go")
        # the next message to the same destination goes over the same
        # connection (kept open a few seconds)
        submit(srv, ["friend@far.test"])
        wait_for(lambda: len(glob.glob(str(out / "*.eml"))) == 2, what="the 2nd message")
        wait_for(lambda: srv.queue_entries() == [], what="the entry to go")
        log = srv.log_text()
        assert "event=connection_reused relay=mx.far.test[127.0.0.1]" in log, log[-3000:]
        assert log.count("cmd=greeting code=220") == 1, log[-3000:]
        assert re.search(r"msgid=\w+ from=<alice@example.test> to=<friend@far.test> "
                         r"status=sent relay=mx.far.test\[127.0.0.1\]:%d delay=\d+s "
                         r"dsn=2.0.0 reply=\"250" % port, log), log[-3000:]
    finally:
        sink.terminate()
        sink.wait()


def test_queue_list_before_first_start_creates_nothing(make_server):
    """`queue list` only reads: run (as root, in CI) before the daemon has
    made its queue, it must not leave root-owned directories the workers,
    running as the mail user, cannot write."""
    srv = make_server(start=False)
    r = cli(srv, "queue", "list")
    assert r.stdout == "Mail queue is empty\n", r.stdout
    assert not os.path.exists(os.path.join(srv.state_dir, "tegami", "queue"))
    srv.start()
    submit(srv, ["alice@example.test"])
    srv.wait_log("to=<alice@example.test> status=delivered")
    assert cli(srv, "queue", "list").stdout == "Mail queue is empty\n"


def test_queue_commands_on_unreachable_destination(make_server, dns):
    closed = free_port()
    srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                           "TEGAMI_SMTP_PORT": str(closed),
                           "TEGAMI_QUEUE_RETRY_FIRST": "600"})
    assert "Mail queue is empty" in cli(srv, "queue", "list").stdout
    submit(srv, ["friend@far.test"])
    srv.wait_log("status=deferred")
    [qid] = srv.queue_entries()
    listing = cli(srv, "queue", "list").stdout
    # postqueue -p's shape: column heads, an entry, a summary
    assert listing.startswith("-Queue ID-"), listing
    assert re.search(qid + r"  +\d+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  <alice@example.test>",
                     listing), listing
    assert re.search(r"\n-- \d+ Kbytes in 1 Request\. \(! = held\)\n$", listing), listing
    assert "<friend@far.test> pending attempts=1 next=" in listing, listing
    assert "mx.far.test" in listing or "connect" in listing, listing

    cli(srv, "queue", "hold", qid)
    assert f"{qid}!" in cli(srv, "queue", "list").stdout
    cli(srv, "queue", "flush")
    time.sleep(0.5)
    assert "attempts=1 " in cli(srv, "queue", "list").stdout   # held: not tried
    cli(srv, "queue", "release", qid)
    assert f"{qid}!" not in cli(srv, "queue", "list").stdout
    mark = srv.log_text().count("status=deferred")
    cli(srv, "queue", "flush")
    wait_for(lambda: srv.log_text().count("status=deferred") > mark, what="a retry")
    wait_for(lambda: "attempts=2 " in cli(srv, "queue", "list").stdout, what="attempts=2")

    r = cli(srv, "queue", "delete", "0" * 24, check=False)
    assert r.returncode != 0 and "no such entry" in r.stderr
    r = cli(srv, "queue", "hold", "nonsense", check=False)
    assert r.returncode != 0 and "not a queue id" in r.stderr
    cli(srv, "queue", "delete", qid)
    assert srv.queue_entries() == []
    assert "Mail queue is empty" in cli(srv, "queue", "list").stdout


def test_queue_survives_kill_and_delivers_after_restart(make_server, dns, tmp_path):
    """kill -9 of the server with a deferred entry: the entry is still
    there after the restart and is sent (at least once, never lost)."""
    out = tmp_path / "sink"
    out.mkdir()
    port = free_port()
    srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                           "TEGAMI_SMTP_PORT": str(port),
                           "TEGAMI_QUEUE_RETRY_FIRST": "1"})
    submit(srv, ["friend@far.test"])
    srv.wait_log("status=deferred")
    [qid] = srv.queue_entries()
    pids = srv.worker_pids("smtp") + srv.worker_pids("queue")
    srv.kill()
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    assert srv.queue_entries() == [qid]
    sink = subprocess.Popen(["/usr/bin/python3", SINK, "127.0.0.1", str(port), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sink.stdout.readline().strip() == "ready"
        srv.start()
        wait_for(lambda: glob.glob(str(out / "*.eml")), what="the sink")
        wait_for(lambda: srv.queue_entries() == [], what="the entry to go")
        [eml] = glob.glob(str(out / "*.eml"))
        assert open(eml, "rb").read().endswith(MSG)
    finally:
        sink.terminate()
        sink.wait()


def put_entry(srv, sender, rcpts, msg):
    """Writes a queue entry as the smtp worker would (spool.h format)."""
    import secrets
    qid = "%08x" % int(time.time()) + secrets.token_hex(8)
    q = os.path.join(srv.state_dir, "tegami", "queue")
    wait_for(lambda: os.path.isdir(os.path.join(q, "env")), what="the spool")
    st = os.stat(q)
    env = ["tegami-queue 1", f"id {qid}", f"created {int(time.time())}",
           f"from {sender or '-'}", "auth -", "body 7bit", "smtputf8 0",
           f"size {len(msg)}", "envid -", "ret -", "hold 0"]
    env += [f"rcpt addr={r} state=pending attempts=0 next=0 notify=- orcpt=- reply=-"
            for r in rcpts]
    for sub, data in (("msg", msg), ("tmp", ("\n".join(env) + "\n").encode())):
        p = os.path.join(q, sub, qid + (".env" if sub == "tmp" else ""))
        with open(p, "wb") as f:
            f.write(data)
        os.chown(p, st.st_uid, st.st_gid)
        os.chmod(p, 0o600)
    os.rename(os.path.join(q, "tmp", qid + ".env"), os.path.join(q, "env", qid))
    return qid


def test_remote_bounce_is_queued_and_sent_from_null_sender(make_server, dns, tmp_path):
    """A recipient refused with 550 by the remote side: the DSN for a
    sender that is not local is queued and sent like any mail, from <>;
    a refused DSN (null sender) is not bounced again."""
    out = tmp_path / "sink"
    out.mkdir()
    sink, port = start_sink(out)
    try:
        srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                               "TEGAMI_SMTP_PORT": str(port)})
        orig = (b"From: someone@far.test\r\nTo: unknown@far.test\r\n"
                b"Subject: will bounce\r\n\r\nbody\r\n")
        qid = put_entry(srv, "someone@far.test", ["unknown@far.test", "ok@far.test"], orig)
        wait_for(lambda: len(glob.glob(str(out / "*.eml"))) == 2, what="message + DSN")
        wait_for(lambda: srv.queue_entries() == [], what="the queue to empty")
        envs = sorted(open(p).read().split("\n")[:2] for p in glob.glob(str(out / "*.env")))
        assert ["", "someone@far.test"] in envs, envs           # the DSN, from <>
        assert ["someone@far.test", "ok@far.test"] in envs, envs
        dsn = [open(p.replace(".env", ".eml"), "rb").read()
               for p in glob.glob(str(out / "*.env")) if open(p).read().startswith("\n")][0]
        assert b"multipart/report" in dsn and b"Status: 5.1.1" in dsn
        assert b"Subject: will bounce" in dsn
        log = srv.log_text()
        assert f"msgid={qid} event=bounce_queued rcpts=1 to=<someone@far.test> dsnid=" in log
        # a null-sender message refused: no bounce of the bounce
        put_entry(srv, "", ["unknown@far.test"], orig)
        wait_for(lambda: srv.queue_entries() == [], what="the queue to empty")
        time.sleep(0.5)
        assert len(glob.glob(str(out / "*.eml"))) == 2
        assert srv.log_text().count("event=bounce_queued") == 1
    finally:
        sink.terminate()
        sink.wait()


def test_delay_warning_sent_once_to_local_sender(make_server, dns):
    """A recipient deferred for longer than TEGAMI_QUEUE_DELAY_WARNING:
    the sender gets one warning (Action: delayed) in her Maildir, from <>,
    and the message stays queued and keeps being retried."""
    closed = free_port()
    srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                           "TEGAMI_SMTP_PORT": str(closed),
                           "TEGAMI_QUEUE_RETRY_FIRST": "1",
                           "TEGAMI_QUEUE_DELAY_WARNING": "2"})
    submit(srv, ["friend@far.test"])
    srv.wait_log("status=deferred")
    [qid] = srv.queue_entries()
    [warning] = srv.wait_messages("alice@example.test", 1, timeout=15)
    assert warning.startswith(b"Return-Path: <>\n"), warning[:200]
    assert b"Subject: Delayed Mail (still being retried)" in warning
    assert b"Action: delayed" in warning and b"Status: 4." in warning
    assert b"Final-Recipient: rfc822; friend@far.test" in warning
    assert b"Subject: outbound" in warning          # the original header
    srv.wait_log(f"msgid={qid} event=delay_warning_sent rcpts=1 to=<alice@example.test> "
                 "delivered=local")
    env = open(os.path.join(srv.state_dir, "tegami", "queue", "env", qid)).read()
    assert "\nwarned 1\n" in env, env
    # more retries, still queued, no second warning
    mark = srv.log_text().count("status=deferred")
    wait_for(lambda: srv.log_text().count("status=deferred") >= mark + 2,
             timeout=20, what="two more retries")
    assert srv.queue_entries() == [qid]
    assert len(srv.messages("alice@example.test")) == 1
    assert srv.log_text().count("event=delay_warning_sent") == 1
    cli(srv, "queue", "delete", qid)


def test_no_delay_warning_for_null_sender(make_server, dns):
    closed = free_port()
    srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                           "TEGAMI_SMTP_PORT": str(closed),
                           "TEGAMI_QUEUE_RETRY_FIRST": "1",
                           "TEGAMI_QUEUE_DELAY_WARNING": "1"})
    orig = b"From: x@far.test\r\nTo: friend@far.test\r\nSubject: n\r\n\r\nbody\r\n"
    put_entry(srv, "", ["friend@far.test"], orig)
    wait_for(lambda: srv.log_text().count("status=deferred") >= 3, timeout=20,
             what="three attempts")
    assert "event=delay_warning_sent" not in srv.log_text()
    assert "warned" not in open(os.path.join(
        srv.state_dir, "tegami", "queue", "env", srv.queue_entries()[0])).read()


def test_relay_host_given_as_address(make_server, tmp_path):
    """DEFAULT_RELAY_HOST=[127.0.0.1]:port goes to that address, no DNS."""
    out = tmp_path / "sink"
    out.mkdir()
    sink, port = start_sink(out)
    try:
        srv = make_server(env={"DEFAULT_RELAY_HOST": f"[127.0.0.1]:{port}"})
        submit(srv, ["friend@far.test"])
        wait_for(lambda: glob.glob(str(out / "*.eml")), what="the sink")
        wait_for(lambda: srv.queue_entries() == [], what="the entry to go")
        srv.wait_log(f"relay=127.0.0.1[127.0.0.1]:{port}")
    finally:
        sink.terminate()
        sink.wait()


def test_entries_held_back_by_the_destination_limit_go_when_a_slot_frees(
        make_server, dns, tmp_path):
    """With one connection allowed per destination, 30 queued messages
    go one after another over that connection as soon as the previous one
    is done. (An entry held back by the limit used to wait for the next
    one-second scan, so this took 30 seconds.)"""
    out = tmp_path / "sink"
    out.mkdir()
    sink, port = start_sink(out)
    try:
        srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                               "TEGAMI_SMTP_PORT": str(port),
                               "TEGAMI_QUEUE_DOMAIN_CONCURRENCY": "1"})
        msg = b"From: someone@far.test\r\nTo: friend@far.test\r\nSubject: n\r\n\r\nbody\r\n"
        for _ in range(30):
            put_entry(srv, "someone@far.test", ["friend@far.test"], msg)
        wait_for(lambda: len(glob.glob(str(out / "*.eml"))) == 30, timeout=12,
                 what="30 messages at the sink")
        wait_for(lambda: srv.queue_entries() == [], what="the queue to empty")
        log = srv.log_text()
        assert log.count("status=sent") == 30
        assert log.count("cmd=greeting code=220") == 1, log[-3000:]
    finally:
        sink.terminate()
        sink.wait()


# ---------------------------------------------------------------- 8-bit data

EIGHT = ("From: alice@example.test\r\nTo: friend@far.test\r\nSubject: 8-bit\r\n"
         "Message-ID: <8bit.1@example.test>\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\n"
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n"
         "\r\nThis is MIME.\r\n"
         "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: 8bit\r\n\r\n"
         "Grüße aus Köln = 100 % ☺\r\n"
         "--b1\r\nContent-Type: message/rfc822\r\n\r\n"
         "From: x@far.test\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n\r\nÉté\r\n"
         "--b1--\r\n").encode()


def received(out, n=1):
    wait_for(lambda: len(glob.glob(str(out / "*.eml"))) >= n, what="the sink")
    emls = sorted(glob.glob(str(out / "*.eml")))
    return [(open(e, "rb").read(), open(e.replace(".eml", ".mail")).read())
            for e in emls]


def submit_raw(srv, msg, rcpts=("friend@far.test",), options=()):
    with smtplib.SMTP("127.0.0.1", srv.ports["SUBMISSION"], timeout=30) as s:
        s.starttls(context=srv.ssl_context())
        s.login("alice@example.test", "alicepw")
        s.sendmail("alice@example.test", list(rcpts), msg, mail_options=list(options))


def test_8bit_message_converted_for_a_peer_without_8bitmime(make_server, dns, tmp_path):
    """RFC 6152: a peer without 8BITMIME gets the 7-bit form (quoted-
    printable text, message/rfc822 walked into, the tree kept), decided by
    the bytes, not by what the client declared."""
    out = tmp_path / "sink"
    out.mkdir()
    sink, port = start_sink(out, "--no-8bitmime")
    try:
        srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                               "TEGAMI_SMTP_PORT": str(port)})
        submit_raw(srv, EIGHT, options=["BODY=8BITMIME"])
        submit_raw(srv, EIGHT.replace(b"Subject: 8-bit", b"Subject: undeclared"))
        got = received(out, 2)
        for data, mail in got:
            assert max(data) < 0x80, data[-800:]
            assert "BODY=" not in mail, mail
            assert b"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe" in data
            assert b"\r\nThis is MIME.\r\n--b1\r\n" in data
            assert leaves(data) == leaves(EIGHT)
        wait_for(lambda: srv.queue_entries() == [], what="the queue to empty")
        assert srv.log_text().count("event=sending_7bit_form") == 2
    finally:
        sink.terminate()
        sink.wait()


def test_unsigned_8bit_message_goes_as_it_is_to_a_peer_with_8bitmime(
        make_server, dns, tmp_path):
    out = tmp_path / "sink"
    out.mkdir()
    sink, port = start_sink(out)
    try:
        srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                               "TEGAMI_SMTP_PORT": str(port)})
        submit_raw(srv, EIGHT, options=["BODY=8BITMIME"])
        [(data, mail)] = received(out)
        assert data.endswith(EIGHT)             # not converted: nobody signed it
        assert "BODY=8BITMIME" in mail
    finally:
        sink.terminate()
        sink.wait()


def dkim_dnsfunc(srv, domain):
    """DNS answers for dkimpy from the .txt files `tegami config dkim` wrote."""
    records = {}
    kdir = os.path.join(srv.config_dir, "opendkim", "keys", domain)
    for name in os.listdir(kdir):
        if name.endswith(".txt"):
            text = open(os.path.join(kdir, name)).read()
            value = "".join(re.findall(r'"([^"]*)"', text))
            records[f"{name[:-4]}._domainkey.{domain}.".encode()] = value.encode()

    def dnsfunc(qname, timeout=5):
        return records.get(qname if qname.endswith(b".") else qname + b".")
    return dnsfunc


def test_signed_8bit_message_is_signed_and_sent_in_its_7bit_form(make_server, dns, tmp_path):
    """What tegami signs goes out 7-bit to every peer (RFC 6376 §5.3), so no
    later conversion can break the signatures; dkimpy verifies both."""
    dkim = pytest.importorskip("dkim")
    out = tmp_path / "sink"
    out.mkdir()
    sink, port = start_sink(out)
    try:
        srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                               "TEGAMI_SMTP_PORT": str(port)}, start=False)
        cli(srv, "config", "dkim", "keytype", "ed25519", "domain", "example.test")
        srv.start()
        submit_raw(srv, EIGHT, options=["BODY=8BITMIME"])
        [(data, mail)] = received(out)
        assert max(data) < 0x80
        assert "BODY=" not in mail                 # 7-bit now: no BODY=8BITMIME
        assert data.count(b"DKIM-Signature:") == 2
        assert leaves(data) == leaves(EIGHT)
        d = dkim.DKIM(data)
        dnsfunc = dkim_dnsfunc(srv, "example.test")
        assert [d.verify(idx=i, dnsfunc=dnsfunc) for i in range(2)] == [True, True]
        srv.wait_log("form=7bit")
    finally:
        sink.terminate()
        sink.wait()


def test_8bit_header_bounces_with_5_6_3_for_a_7bit_peer(make_server, dns, tmp_path):
    """8-bit bytes in a header without SMTPUTF8 have no 7-bit form: a peer
    without 8BITMIME means a DSN (5.6.3), nothing sent there."""
    out = tmp_path / "sink"
    out.mkdir()
    sink, port = start_sink(out, "--no-8bitmime")
    try:
        srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                               "TEGAMI_SMTP_PORT": str(port)})
        submit_raw(srv, EIGHT.replace(b"Subject: 8-bit", "Subject: Grüße".encode()),
                   options=["BODY=8BITMIME"])
        [dsn] = srv.wait_messages("alice@example.test", 1, timeout=15)
        assert b"Status: 5.6.3" in dsn, dsn[:3000]
        assert b"does not offer 8BITMIME" in dsn
        assert b"header" in dsn
        assert glob.glob(str(out / "*.eml")) == []
        srv.wait_log("status=bounced")
    finally:
        sink.terminate()
        sink.wait()


def test_smtputf8_asked_only_when_the_message_needs_it(make_server, dns, tmp_path):
    """SMTPUTF8 declared, but addresses and header are ASCII: it goes to a
    server without SMTPUTF8 (UTF-8 only in the body is 8BITMIME's). UTF-8 in
    the Subject does need it: 5.6.7, DSN to the sender."""
    out = tmp_path / "sink"
    out.mkdir()
    sink, port = start_sink(out)
    try:
        srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                               "TEGAMI_SMTP_PORT": str(port)})
        submit_raw(srv, EIGHT, options=["SMTPUTF8", "BODY=8BITMIME"])
        [(data, mail)] = received(out)
        assert data.endswith(EIGHT)
        assert "SMTPUTF8" not in mail and "BODY=8BITMIME" in mail
        submit_raw(srv, EIGHT.replace(b"Subject: 8-bit", "Subject: Grüße".encode()),
                   options=["SMTPUTF8", "BODY=8BITMIME"])
        [dsn] = srv.wait_messages("alice@example.test", 1, timeout=15)
        assert b"Status: 5.6.7" in dsn and b"SMTPUTF8" in dsn, dsn[:3000]
        assert len(glob.glob(str(out / "*.eml"))) == 1
    finally:
        sink.terminate()
        sink.wait()


# ---------------------------------------------------------------- submission clean-up

BARE = b"From: alice@example.test\r\nTo: friend@far.test\r\nSubject: bare\r\n\r\nNo id, no date.\r\n"


def test_submission_gets_message_id_and_date(make_server, dns, tmp_path):
    """An authenticated submission without Message-ID and Date gets both
    (the server's host name in the id), in the local copy and in the one
    sent on: the same fields, added once, before signing."""
    out = tmp_path / "sink"
    out.mkdir()
    sink, port = start_sink(out)
    try:
        srv = make_server(env={"TEGAMI_DNS_SERVERS": f"127.0.0.1@{dns.port}",
                               "TEGAMI_SMTP_PORT": str(port)},
                          accounts=(("alice@example.test", "alicepw"),
                                    ("bob@example.test", "bobpw")))
        submit_raw(srv, BARE, rcpts=("friend@far.test", "bob@example.test"))
        [(sent, _)] = received(out)
        [local] = srv.wait_messages("bob@example.test", 1)
        head = sent.split(b"\r\n\r\n", 1)[0]
        mid = re.search(rb"\r\nMessage-ID: <([0-9a-f]{24})@mail\.example\.test>", head)
        assert mid, head
        date = re.search(rb"\r\nDate: ([A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
                         rb"\d\d:\d\d:\d\d [+-]\d{4})", head)
        assert date, head
        import email.utils
        assert abs(email.utils.parsedate_to_datetime(date.group(1).decode()).timestamp()
                   - time.time()) < 120
        assert head.count(b"Message-ID:") == 1 and head.count(b"Date:") == 1
        # the local copy has the same two fields (LF line ends in Maildir)
        assert mid.group(0).replace(b"\r\n", b"\n") in local
        assert date.group(0).replace(b"\r\n", b"\n") in local
        srv.wait_log(mid.group(1).decode())
    finally:
        sink.terminate()
        sink.wait()


def test_mail_from_other_servers_is_not_completed(make_server):
    """Port 25: mail from another server is stored as it came, without a
    Message-ID or Date of ours."""
    srv = make_server()
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=30) as s:
        s.sendmail("someone@far.test", ["alice@example.test"],
                   BARE.replace(b"From: alice@example.test", b"From: someone@far.test"))
    [got] = srv.wait_messages("alice@example.test", 1)
    assert b"Message-ID" not in got and b"\nDate:" not in got, got
