"""The SMTP spine against the real binary: ports, TLS, AUTH, relay rules,
limits, delivery into Maildir, live reloads, crashes and stops."""
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from tegami_server import HOST, make_ca

MSG = (b"From: alice@example.test\r\nTo: bob@example.test\r\n"
       b"Subject: hello\r\nMessage-ID: <1@example.test>\r\n\r\nHello Bob.\r\n")


def smtp(srv, port="SMTP", **kw):
    s = smtplib.SMTP("127.0.0.1", srv.ports[port], local_hostname="client.test",
                     timeout=30, **kw)
    return s


def submission(srv, user="alice@example.test", pw="alicepw", mech=None):
    s = smtp(srv, "SUBMISSION")
    s.starttls(context=srv.ssl_context())
    s.ehlo("client.test")
    if mech == "PLAIN":
        s.user, s.password = user, pw
        s.auth("PLAIN", s.auth_plain)
    elif mech == "LOGIN":
        s.user, s.password = user, pw
        s.auth("LOGIN", s.auth_login)
    else:
        s.login(user, pw)
    return s


def body_of(stored):
    """The message as sent: the stored file is LF, trace headers on top."""
    data = stored.replace(b"\n", b"\r\n")
    i = data.index(b"From: ")
    return data[i:]


class Raw:
    """A raw SMTP conversation over a socket (for pipelining, BDAT, bad input)."""

    def __init__(self, srv, port="SMTP"):
        self.sock = socket.create_connection(("127.0.0.1", srv.ports[port]), 10)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        """One whole (possibly multi-line) reply: (code, text)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; got " + repr(self.buf))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines).decode()

    def closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return True

    def close(self):
        self.sock.close()


def test_port25_delivers_to_local_account(server):
    with smtp(server) as s:
        s.ehlo("client.test")
        assert s.has_extn("pipelining") and s.has_extn("chunking")
        assert s.has_extn("smtputf8") and s.has_extn("8bitmime")
        assert s.has_extn("starttls") and not s.has_extn("auth")
        assert s.has_extn("size") and s.esmtp_features["size"] == "10240000"
        code, _ = s.mail("sender@remote.test")
        assert code == 250
        assert s.rcpt("bob@example.test")[0] == 250
        code, text = s.data(MSG)
        assert code == 250 and b"queued as" in text
    [stored] = server.wait_messages("bob@example.test", 1)
    assert body_of(stored) == MSG
    head = stored.split(b"\n\n")[0]
    assert head.startswith(b"Return-Path: <sender@remote.test>\n")
    assert b"Delivered-To: bob@example.test\n" in head
    assert b"Received: from client.test" in head and b"[127.0.0.1]" in head
    assert b"by mail.example.test" in head and b"with ESMTP " in head
    name = os.path.basename(server.message_files("bob@example.test")[0])
    vsize = len(stored.replace(b"\n", b"\r\n"))
    assert f",S={len(stored)}," in name and f",W={vsize}" in name
    log = server.log_text()
    assert "to=<bob@example.test> status=delivered relay=maildir" in log


def test_port25_refuses_relay_even_from_loopback(server):
    with smtp(server) as s:
        s.ehlo("client.test")
        s.mail("alice@example.test")
        code, text = s.rcpt("someone@elsewhere.test")
        assert code == 554 and b"5.7.1" in text and b"Relay access denied" in text
    assert server.queue_entries() == []


def test_unknown_user_is_refused_at_rcpt(server):
    with smtp(server) as s:
        s.ehlo("client.test")
        s.mail("x@remote.test")
        code, text = s.rcpt("nobody@example.test")
        assert code == 550 and b"5.1.1" in text


def test_submission_requires_starttls_then_auth(server):
    with smtp(server, "SUBMISSION") as s:
        s.ehlo("client.test")
        assert not s.has_extn("auth")
        code, text = s.mail("alice@example.test")
        assert code == 530 and b"5.7.0" in text
        s.starttls(context=server.ssl_context())
        s.ehlo("client.test")
        assert "PLAIN" in s.esmtp_features["auth"] and "LOGIN" in s.esmtp_features["auth"]
        assert not s.has_extn("starttls")
        code, text = s.mail("alice@example.test")
        assert code == 530 and b"Authentication required" in text


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_submission_auth_and_remote_recipient_is_queued(server, mech):
    with submission(server, mech=mech) as s:
        s.sendmail("alice@example.test", ["friend@elsewhere.test", "bob@example.test"], MSG)
    server.wait_messages("bob@example.test", 1)
    [entry] = server.queue_entries()
    env = open(os.path.join(server.state_dir, "tegami", "queue", "env", entry)).read()
    assert "friend@elsewhere.test" in env and "alice@example.test" in env
    msg = open(os.path.join(server.state_dir, "tegami", "queue", "msg", entry), "rb").read()
    # as sent, with the Date the submission lacked added at the end of
    # its header (test_queue.py has the details)
    head, body = MSG.split(b"\r\n\r\n", 1)
    assert re.search(re.escape(head) + rb"\r\nDate: [^\r\n]+\r\n\r\n" + re.escape(body)
                     + rb"$", msg), msg
    # an authenticated submission does not leak the client's address
    assert b"127.0.0.1" not in msg and b"with ESMTPSA" in msg
    assert "alicepw" not in server.log_text()


def test_wrong_password_is_refused(server):
    with smtp(server, "SUBMISSION") as s:
        s.starttls(context=server.ssl_context())
        s.ehlo("client.test")
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("alice@example.test", "wrong")
        assert e.value.smtp_code == 535
    assert "wrong" not in server.log_text().split("event=auth")[-1]


def test_port465_implicit_tls(server):
    ctx = server.ssl_context()
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["SUBMISSIONS"], context=ctx,
                          local_hostname="client.test") as s:
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        s.login("alice@example.test", "alicepw")
        s.sendmail("alice@example.test", ["bob@example.test"], MSG)
    [stored] = server.wait_messages("bob@example.test", 1)
    assert b"with ESMTPSA" in stored and b"TLSv1.3" in stored


def test_tls_minimum_is_1_2(server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        smtplib.SMTP_SSL("127.0.0.1", server.ports["SUBMISSIONS"], context=ctx, timeout=10)


def test_swaks_submission_and_relay_refusal(server):
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{server.ports['SUBMISSION']}",
                        "--tls", "--tls-ca-path", server.ca, "--tls-verify",
                        "--tls-sni", HOST, "--auth", "PLAIN",
                        "--auth-user", "alice@example.test", "--auth-password", "alicepw",
                        "--from", "alice@example.test", "--to", "bob@example.test",
                        "--helo", "client.test"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    server.wait_messages("bob@example.test", 1)
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{server.ports['SMTP']}",
                        "--from", "a@remote.test", "--to", "x@elsewhere.test",
                        "--helo", "client.test"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 24, r.stdout       # refused at RCPT
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{server.ports['SUBMISSION']}",
                        "--tls", "--auth", "LOGIN", "--auth-user", "alice@example.test",
                        "--auth-password", "nope", "--to", "bob@example.test",
                        "--helo", "client.test"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 28, r.stdout       # AUTH failed


def test_size_limit(make_server):
    srv = make_server(env={"POSTFIX_MESSAGE_SIZE_LIMIT": "20000"},
                      accounts=[("bob@example.test", "bobpw")])
    with smtp(srv) as s:
        s.ehlo("client.test")
        assert s.esmtp_features["size"] == "20000"
        code, text = s.mail("a@remote.test", ["SIZE=30000"])
        assert code == 552 and b"5.3.4" in text
        s.rset()
        s.mail("a@remote.test")
        s.rcpt("bob@example.test")
        code, text = s.data(MSG + b"x" * 30000 + b"\r\n")
        assert code == 552 and b"5.3.4" in text
        # the session goes on
        s.mail("a@remote.test")
        s.rcpt("bob@example.test")
        assert s.data(MSG)[0] == 250
    assert len(srv.wait_messages("bob@example.test", 1)) == 1


def test_pipelined_session(server):
    r = Raw(server)
    assert r.reply()[0] == 220
    r.send(b"EHLO client.test\r\n")
    assert r.reply()[0] == 250
    r.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
           b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    codes = [r.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 550, 250, 354]
    r.send(MSG + b".\r\nMAIL FROM:<b@remote.test>\r\nRCPT TO:<bob@example.test>\r\n"
           b"DATA\r\n")
    assert [r.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
    r.send(b"second\r\n..dot-stuffed\r\n.\r\nQUIT\r\n")
    assert [r.reply()[0] for _ in range(2)] == [250, 221]
    r.close()
    bob = server.wait_messages("bob@example.test", 2)
    assert server.wait_messages("alice@example.test", 1)
    assert any(m.endswith(b"second\n.dot-stuffed\n") for m in bob)
    # one file, two links: alice and bob share the first message
    a = server.message_files("alice@example.test")[0]
    inodes = {os.stat(f).st_ino for f in server.message_files("bob@example.test")}
    assert os.stat(a).st_ino in inodes


def test_bdat(server):
    r = Raw(server)
    r.reply()
    r.send(b"EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\n")
    assert [r.reply()[0] for _ in range(3)] == [250, 250, 250]
    part1, part2 = MSG[:30], MSG[30:]
    r.send(b"BDAT %d\r\n" % len(part1) + part1)
    assert r.reply()[0] == 250
    r.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
    code, text = r.reply()
    assert code == 250 and "queued as" in text
    r.close()
    [stored] = server.wait_messages("bob@example.test", 1)
    assert body_of(stored) == MSG


def test_bare_lf_in_data_is_refused(server):
    r = Raw(server)
    r.reply()
    r.send(b"EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert [r.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
    r.send(b"Subject: x\r\n\r\nsmuggle\n.\nMAIL FROM:<evil@x>\r\n.\r\n")
    code, text = r.reply()
    assert code == 550 and "5.5.2" in text
    r.send(b"NOOP\r\n")
    assert r.reply()[0] == 250
    r.close()
    time.sleep(0.3)
    assert server.messages("bob@example.test") == []


def test_utf8_and_8bit_message_arrives_byte_exact(server):
    msg = ("From: Jörg <jörg@example.test>\r\nTo: bob@example.test\r\n"
           "Subject: grüße ✉\r\n\r\n日本語のテキスト\r\nbytes: \xa0\r\n").encode("utf-8")
    msg += b"raw 8bit: \xff\xfe\r\n"
    with smtp(server) as s:
        s.ehlo("client.test")
        s.mail("jörg@remote.test", ["SMTPUTF8", "BODY=8BITMIME"])
        assert s.rcpt("bob@example.test")[0] == 250
        assert s.data(msg)[0] == 250
    [stored] = server.wait_messages("bob@example.test", 1)
    assert body_of(stored) == msg


def test_20mb_message_arrives_byte_exact(make_server):
    srv = make_server(env={"POSTFIX_MESSAGE_SIZE_LIMIT": "30000000"},
                      accounts=[("bob@example.test", "bobpw")])
    line = bytes(range(33, 127)) * 10
    body = b"".join(line[i % 900:] + b"\r\n" for i in range(42000))
    body += b".leading dot line\r\n" + b"x" * 998 + b"\r\n"
    msg = b"From: a@remote.test\r\nTo: bob@example.test\r\nSubject: big\r\n\r\n" + body
    assert len(msg) > 20_000_000
    with smtp(srv) as s:
        s.ehlo("client.test")
        s.mail("a@remote.test", [f"SIZE={len(msg)}"])
        s.rcpt("bob@example.test")
        assert s.data(msg)[0] == 250
    [stored] = srv.wait_messages("bob@example.test", 1, timeout=60)
    assert body_of(stored) == msg


def test_alias_catchall_and_subaddress(server):
    server.write_config("postfix-virtual.cf",
                        "# team\nteam@example.test alice@example.test,bob@example.test\n"
                        "@example.test alice@example.test\n"
                        "fwd@example.test friend@elsewhere.test\n")
    time.sleep(2.2)
    with smtp(server) as s:
        s.ehlo("client.test")
        s.mail("a@remote.test")
        assert s.rcpt("team@example.test")[0] == 250
        assert s.data(MSG)[0] == 250
        s.mail("a@remote.test")
        assert s.rcpt("whoever@example.test")[0] == 250      # catch-all
        assert s.rcpt("bob+lists@example.test")[0] == 250    # +tag
        assert s.rcpt("BOB@EXAMPLE.TEST")[0] == 250          # case
        assert s.data(MSG)[0] == 250
        s.mail("a@remote.test")
        assert s.rcpt("fwd@example.test")[0] == 250          # alias to outside
        assert s.data(MSG)[0] == 250
    # the catch-all did not take bob's own mail (docker-mailserver #3022)
    assert len(server.wait_messages("bob@example.test", 2)) == 2
    assert len(server.wait_messages("alice@example.test", 2)) == 2
    assert len(server.queue_entries()) == 1


def test_new_account_is_picked_up_live(server):
    with smtp(server) as s:
        s.ehlo("client.test")
        s.mail("a@remote.test")
        assert s.rcpt("carol@example.test")[0] == 550
    server.add_account("carol@example.test", "carolpw")
    t0 = time.time()
    while True:
        with smtp(server) as s:
            s.ehlo("client.test")
            s.mail("a@remote.test")
            if s.rcpt("carol@example.test")[0] == 250:
                break
        assert time.time() - t0 < 2.5, "new account not picked up within 2 s"
        time.sleep(0.1)
    with submission(server, "carol@example.test", "carolpw") as s:
        s.sendmail("carol@example.test", ["bob@example.test"], MSG)


def test_certificate_swapped_live(server):
    def serial():
        ctx = server.ssl_context(check_hostname=True)
        with socket.create_connection(("127.0.0.1", server.ports["SUBMISSIONS"]), 10) as raw:
            with ctx.wrap_socket(raw, server_hostname=HOST) as t:
                return t.getpeercert()["serialNumber"]
    first = serial()
    _, cert, key = make_ca(server.tls_dir, prefix="renewed")
    # certbot-style renewal: new files moved over the old paths
    os.rename(key, server.key)
    os.rename(cert, server.cert)
    end = time.time() + 6
    while serial() == first:
        assert time.time() < end, "renewed certificate not served"
        time.sleep(0.2)
    assert "event=tls_reloaded" in server.log_text()


def test_kill_worker_during_data_loses_nothing(server):
    r = Raw(server)
    r.reply()
    r.send(b"EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert [r.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
    r.send(MSG + b"half of it...\r\n")
    time.sleep(0.3)
    [pid] = server.worker_pids("smtp")
    os.kill(pid, signal.SIGKILL)
    assert r.closed()          # the sender sees no 250 and will retry
    assert server.messages("bob@example.test") == []
    server.wait_log("event=worker_started worker=smtp",
                    start=server.wait_log("event=worker_died").index("event=worker_died"))
    # the restarted worker takes the retry
    end = time.time() + 10
    while True:
        try:
            with smtp(server) as s:
                s.sendmail("a@remote.test", ["bob@example.test"], MSG)
            break
        except (OSError, smtplib.SMTPException):
            assert time.time() < end
            time.sleep(0.2)
    assert len(server.wait_messages("bob@example.test", 1)) == 1
    # only the finished message is visible; nothing half-written
    assert all(m.endswith(b"Hello Bob.\n") for m in server.messages("bob@example.test"))
    # the killed worker is expected in the log: don't fail the teardown on it
    server.allow_worker_death = True


def test_sigterm_lets_the_transaction_finish(server):
    r = Raw(server)
    r.reply()
    r.send(b"EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert [r.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
    r.send(MSG)
    server.signal(signal.SIGTERM)
    time.sleep(0.5)
    r.send(b".\r\n")
    code, _ = r.reply()
    assert code == 250
    code, text = r.reply()          # then the session is closed
    assert code == 421
    assert server.proc.wait(35) == 0
    assert len(server.messages("bob@example.test")) == 1


def test_status_reports_workers(server):
    r = server.status()
    assert r.returncode == 0, r.stderr
    assert "master pid=" in r.stdout and "worker=smtp" in r.stdout
    assert "listener service=submissions" in r.stdout


def test_early_talker_is_refused(make_server):
    srv = make_server(start=False, accounts=[("bob@example.test", "x")])
    del srv.env["SMTP_GREET_PAUSE"]         # the default is on (3 s)
    srv.start()
    r = Raw(srv)
    r.send(b"EHLO spammer.test\r\n")
    code, text = r.reply()
    assert code == 554
    assert r.closed()
    # a patient client is served after the pause, and not paused again
    r = Raw(srv)
    t0 = time.time()
    assert r.reply()[0] == 220
    assert time.time() - t0 >= 2.5
    r.send(b"EHLO patient.test\r\n")
    assert r.reply()[0] == 250
    r.send(b"QUIT\r\n")
    assert r.reply()[0] == 221
    r = Raw(srv)
    t0 = time.time()
    assert r.reply()[0] == 220
    assert time.time() - t0 < 1


def test_recipient_limit(make_server):
    srv = make_server(env={"SMTP_MAX_RECIPIENTS": "3"}, accounts=[("bob@example.test", "x")])
    with smtp(srv) as s:
        s.ehlo("client.test")
        assert "RCPTMAX=3" in s.esmtp_features.get("limits", "")
        s.mail("a@remote.test")
        for _ in range(3):
            assert s.rcpt("bob@example.test")[0] == 250
        code, text = s.rcpt("bob@example.test")
        assert code == 452 and b"4.5.3" in text


def test_recipient_guessing_ends_the_session(server):
    r = Raw(server)
    r.reply()
    r.send(b"EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\n")
    assert [r.reply()[0] for _ in range(2)] == [250, 250]
    codes = []
    for i in range(21):
        r.send(b"RCPT TO:<guess%d@example.test>\r\n" % i)
        codes.append(r.reply()[0])
    assert codes[:20] == [550] * 20 and codes[20] == 421
    assert r.closed()


def test_quota_refuses_a_full_mailbox(server):
    server.write_config("dovecot-quotas.cf", "bob@example.test:10k\n")
    time.sleep(2.1)
    with smtp(server) as s:
        s.ehlo("client.test")
        s.mail("a@remote.test", ["SIZE=20000"])
        code, text = s.rcpt("bob@example.test")
        assert code == 552 and b"5.2.2" in text
        s.rset()
        s.mail("a@remote.test")
        assert s.rcpt("bob@example.test")[0] == 250
        assert s.data(MSG + b"x" * 12000 + b"\r\n")[0] == 250
        s.mail("a@remote.test")
        code, text = s.rcpt("bob@example.test")
        assert code == 552 and b"Mailbox is full" in text
        assert s.rcpt("alice@example.test")[0] == 250       # no quota
