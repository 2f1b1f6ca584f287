"""POP3 (ENABLE_POP3=1) against the real binary with Python's poplib: STLS,
USER/PASS, AUTH PLAIN, implicit TLS on 995, byte-exact RETR/TOP, UIDL,
DELE committed only by QUIT, [IN-USE], plaintext refusal, SMTP delivery."""
import base64
import hashlib
import os
import poplib
import smtplib
import socket
import ssl
import time

import pytest

from tegami_server import sha512_crypt

ALICE = "alice@example.test"
VMAIL = 5000


def pop3_env(**extra):
    env = {"ENABLE_POP3": "1"}
    env.update(extra)
    return env


@pytest.fixture
def pop(make_server):
    return make_server(env=pop3_env(), accounts=[(ALICE, "alicepw"),
                                                 ("bob@example.test", "bobpw")])


def chown(path):
    if os.geteuid() == 0:
        os.chown(path, VMAIL, VMAIL)


def put_message(srv, address, content, when, extra=""):
    """Writes a message as a delivery would (LF line ends, S= and W=)."""
    md = srv.maildir(address)
    for d in (os.path.dirname(os.path.dirname(md)), os.path.dirname(md), md,
              os.path.join(md, "new"), os.path.join(md, "cur"),
              os.path.join(md, "tmp")):
        os.makedirs(d, exist_ok=True)
        chown(d)
    vsize = len(content.replace(b"\n", b"\r\n"))
    name = f"{when}.M{when % 1000}P1Q{when % 97}.host{extra},S={len(content)},W={vsize}"
    path = os.path.join(md, "new", name)
    with open(path, "wb") as f:
        f.write(content)
    chown(path)
    return name


def wire(content):
    """What RETR carries for a file, after poplib undid the dot-stuffing."""
    return content.replace(b"\n", b"\r\n")


def retr_bytes(p, n):
    resp, lines, octets = p.retr(n)
    return resp, b"\r\n".join(lines) + b"\r\n", octets


def login_stls(srv, user=ALICE, pw="alicepw"):
    p = poplib.POP3("127.0.0.1", srv.ports["POP3"], timeout=10)
    p.stls(srv.ssl_context())
    p.user(user)
    p.pass_(pw)
    return p


MSG1 = (b"From: a@example.org\nTo: alice@example.test\nSubject: one\n\n"
        b"first line\n.starts with a dot\n..two dots\nlast\n")
MSG2 = (b"From: b@example.org\nSubject: two\n\nbody 1\nbody 2\nbody 3\n"
        b"body 4\n")


def test_pop3_off_by_default(make_server):
    srv = make_server()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.ports["POP3"]), 2).close()
    # the imap worker serves IMAP only; with IMAP off too it is not started
    srv2 = make_server(env={"ENABLE_IMAP": "0"})
    assert srv2.worker_pids("imap") == []


def test_stls_user_pass_list_uidl_retr_byte_exact(pop):
    n1 = put_message(pop, ALICE, MSG1, 1700000001)
    n2 = put_message(pop, ALICE, MSG2, 1700000002)
    p = poplib.POP3("127.0.0.1", pop.ports["POP3"], timeout=10)
    assert p.getwelcome().startswith(b"+OK")
    caps = p.capa()
    assert "STLS" in caps and "UIDL" in caps and "TOP" in caps
    p.stls(pop.ssl_context())
    caps = p.capa()
    assert "STLS" not in caps and "USER" in caps and caps["SASL"] == ["PLAIN"]
    assert p.user(ALICE).startswith(b"+OK")
    assert p.pass_("alicepw").startswith(b"+OK")
    assert p.stat() == (2, len(wire(MSG1)) + len(wire(MSG2)))
    _, listing, _ = p.list()
    assert listing == [b"1 %d" % len(wire(MSG1)), b"2 %d" % len(wire(MSG2))]
    _, uidls, _ = p.uidl()
    assert uidls == [b"1 " + n1.split(",")[0].encode(),
                     b"2 " + n2.split(",")[0].encode()]
    assert p.uidl(2) == b"+OK 2 " + n2.split(",")[0].encode()
    resp, data, octets = retr_bytes(p, 1)
    assert resp == b"+OK %d octets" % len(wire(MSG1))
    assert data == wire(MSG1)
    _, data, _ = retr_bytes(p, 2)
    assert data == wire(MSG2)
    p.quit()
    # opened: moved from new/ to cur/ with ":2,", nothing deleted
    files = pop.message_files(ALICE)
    assert len(files) == 2 and all("/cur/" in f and f.endswith(":2,")
                                   for f in files)
    log = pop.wait_log("event=pop3_logout")
    assert f"event=pop3_logout user={ALICE}" in log
    assert "retrieved=2 deleted=0" in log


def test_dot_stuffing_on_the_wire(pop):
    put_message(pop, ALICE, MSG1, 1700000001)
    s = socket.create_connection(("127.0.0.1", pop.ports["POP3"]), 10)
    f = s.makefile("rwb")
    f.readline()
    for cmd in (b"USER " + ALICE.encode(), b"PASS alicepw", b"RETR 1",
                b"QUIT"):
        f.write(cmd + b"\r\n")
    f.flush()
    out = b""
    while not out.endswith(b"signing off (0 messages deleted)\r\n"):
        chunk = s.recv(65536)
        assert chunk
        out += chunk
    s.close()
    assert b"\r\n..starts with a dot\r\n...two dots\r\nlast\r\n.\r\n" in out


def test_top(pop):
    put_message(pop, ALICE, MSG2, 1700000002)
    p = login_stls(pop)
    _, lines, _ = p.top(1, 2)
    assert lines == [b"From: b@example.org", b"Subject: two", b"",
                     b"body 1", b"body 2"]
    _, lines, _ = p.top(1, 0)
    assert lines == [b"From: b@example.org", b"Subject: two", b""]
    _, lines, _ = p.top(1, 100)
    assert lines[-1] == b"body 4"
    with pytest.raises(poplib.error_proto):
        p.top(2, 1)
    p.quit()


def test_auth_plain(pop):
    put_message(pop, ALICE, MSG1, 1700000001)
    p = poplib.POP3("127.0.0.1", pop.ports["POP3"], timeout=10)
    p.stls(pop.ssl_context())
    tok = base64.b64encode(b"\0" + ALICE.encode() + b"\0alicepw").decode()
    assert p._shortcmd("AUTH PLAIN " + tok).startswith(b"+OK")
    assert p.stat()[0] == 1
    p.quit()
    # the continuation form (RFC 5034)
    p = poplib.POP3("127.0.0.1", pop.ports["POP3"], timeout=10)
    p.stls(pop.ssl_context())
    assert p._shortcmd("AUTH PLAIN") == b"+ "
    assert p._shortcmd(tok).startswith(b"+OK")
    p.quit()


def test_pop3s_implicit_tls(pop):
    put_message(pop, ALICE, MSG1, 1700000001)
    ctx = pop.ssl_context(check_hostname=True)
    # by address, with the certificate's name checked
    raw = socket.create_connection(("127.0.0.1", pop.ports["POP3S"]), 10)
    tls = ctx.wrap_socket(raw, server_hostname="mail.example.test")
    f = tls.makefile("rwb")
    assert f.readline().startswith(b"+OK")
    f.write(b"CAPA\r\n")
    f.flush()
    caps = []
    while True:
        line = f.readline()
        if line == b".\r\n":
            break
        caps.append(line.strip())
    assert b"USER" in caps and b"STLS" not in caps
    tls.close()
    p = poplib.POP3_SSL("127.0.0.1", pop.ports["POP3S"],
                        context=pop.ssl_context(), timeout=10)
    p.user(ALICE)
    p.pass_("alicepw")
    _, data, _ = retr_bytes(p, 1)
    assert data == wire(MSG1)
    p.quit()


def test_dele_quit_removes_dropped_connection_keeps(pop):
    put_message(pop, ALICE, MSG1, 1700000001)
    put_message(pop, ALICE, MSG2, 1700000002)
    # DELE, then the connection drops: nothing is deleted
    p = login_stls(pop)
    assert p.dele(1).startswith(b"+OK")
    p.close()   # no QUIT
    log = pop.wait_log("event=pop3_logout", timeout=10)
    assert "retrieved=0 deleted=0 uncommitted=yes" in log
    assert len(pop.message_files(ALICE)) == 2
    # DELE + RSET + QUIT: nothing either
    p = login_stls(pop)
    p.dele(1)
    assert p.stat()[0] == 1
    p.rset()
    assert p.stat()[0] == 2
    p.quit()
    assert len(pop.message_files(ALICE)) == 2
    # DELE + QUIT: the file is gone
    p = login_stls(pop)
    p.dele(1)
    with pytest.raises(poplib.error_proto):
        p.retr(1)
    assert p.quit().startswith(b"+OK")
    files = pop.message_files(ALICE)
    assert len(files) == 1 and "1700000002" in files[0]
    log = pop.wait_log("deleted=1")
    assert log.count("event=pop3_logout") == 3


def test_smtp_delivery_shows_up(pop):
    with smtplib.SMTP("127.0.0.1", pop.ports["SMTP"], timeout=10) as s:
        s.sendmail("x@example.org", [ALICE],
                   b"Subject: via smtp\r\n\r\nhello pop\r\n")
    pop.wait_messages(ALICE, 1)
    p = login_stls(pop)
    _, data, octets = retr_bytes(p, 1)
    assert b"Subject: via smtp\r\n" in data and data.endswith(b"hello pop\r\n")
    [f] = pop.message_files(ALICE)
    assert data == wire(open(f, "rb").read())
    assert p.list(1) == b"+OK 1 %d" % len(data)
    p.quit()


def test_second_session_in_use(pop):
    p = login_stls(pop)
    q = poplib.POP3("127.0.0.1", pop.ports["POP3"], timeout=10)
    q.stls(pop.ssl_context())
    q.user(ALICE)
    with pytest.raises(poplib.error_proto) as e:
        q.pass_("alicepw")
    assert b"[IN-USE]" in e.value.args[0]
    p.quit()
    q.user(ALICE)
    assert q.pass_("alicepw").startswith(b"+OK")
    q.quit()


def test_wrong_password(pop):
    p = poplib.POP3("127.0.0.1", pop.ports["POP3"], timeout=10)
    p.stls(pop.ssl_context())
    p.user(ALICE)
    t = time.time()
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("wrong")
    assert time.time() - t >= 0.9
    assert e.value.args[0].startswith(b"-ERR [AUTH]")
    p.user(ALICE)
    assert p.pass_("alicepw").startswith(b"+OK")
    p.quit()
    assert "event=auth result=failed service=pop3" in pop.log_text()


def test_plaintext_login_refused_without_tls(make_server):
    srv = make_server(env=pop3_env(TEGAMI_POP3_PLAINTEXT_LOOPBACK="0"))
    p = poplib.POP3("127.0.0.1", srv.ports["POP3"], timeout=10)
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
    for cmd in ("USER " + ALICE, "AUTH PLAIN AGFsaWNlAGFsaWNlcHc="):
        with pytest.raises(poplib.error_proto) as e:
            p._shortcmd(cmd)
        assert e.value.args[0].startswith(b"-ERR [AUTH]")
    p.stls(srv.ssl_context())
    p.user(ALICE)
    assert p.pass_("alicepw").startswith(b"+OK")
    p.quit()


def test_plaintext_allowed_on_loopback_by_default(pop):
    p = poplib.POP3("127.0.0.1", pop.ports["POP3"], timeout=10)
    assert "USER" in p.capa()
    p.user(ALICE)
    assert p.pass_("alicepw").startswith(b"+OK")
    p.quit()


def test_master_user(pop):
    pop.write_config("dovecot-masters.cf", "admin|" + sha512_crypt("adminpw") + "\n")
    time.sleep(1.5)     # the worker looks for changed files once a second
    put_message(pop, ALICE, MSG1, 1700000001)
    p = login_stls(pop, user=ALICE + "*admin", pw="adminpw")
    assert p.stat()[0] == 1
    p.quit()
    assert "master=admin" in pop.wait_log("event=pop3_logout")


def test_big_message_streamed(pop):
    body = b"".join(b"line %07d " % i + b"x" * 60 + b"\n" for i in range(150000))
    msg = b"Subject: big\n\n" + body + b".\n"
    put_message(pop, ALICE, msg, 1700000003)
    p = login_stls(pop)
    _, data, _ = retr_bytes(p, 1)
    assert data == wire(msg)
    p.quit()


def test_protocol_errors_and_line_limit(pop):
    s = socket.create_connection(("127.0.0.1", pop.ports["POP3"]), 10)
    f = s.makefile("rwb")
    f.readline()
    f.write(b"X" * 300 + b"\r\nNOOP\r\nRETR 1\r\nCAPA\r\n")
    f.flush()
    assert f.readline() == b"-ERR Line too long\r\n"
    assert f.readline().startswith(b"-ERR")     # NOOP before login
    assert f.readline().startswith(b"-ERR")     # RETR before login
    assert f.readline().startswith(b"+OK")
    for i in range(20):
        f.write(b"BOGUS\r\n")
    f.flush()
    rest = s.recv(65536)
    while True:
        more = s.recv(65536)
        if not more:
            break
        rest += more
    assert b"Too many errors" in rest
    s.close()


def test_sigterm_keeps_uncommitted(pop):
    put_message(pop, ALICE, MSG1, 1700000001)
    p = login_stls(pop)
    p.dele(1)
    end = time.time() + 5
    while time.time() < end:    # workers report once a second
        status = pop.status().stdout
        if "logged_in=1" in status:
            break
        time.sleep(0.2)
    assert "worker=imap" in status and "connections=1 imap_connections=0 logged_in=1" in status
    pop.signal(15)          # the master stops every worker
    line = p.file.readline()
    assert line.startswith(b"-ERR [SYS/TEMP]")
    assert pop.proc.wait(20) == 0
    assert len(pop.message_files(ALICE)) == 1
    assert "uncommitted=yes" in pop.log_text()


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_retr_of_20mb_is_streamed_not_buffered(make_server):
    """A client that does not read: the worker holds a bounded window of the
    message (64 KiB + socket buffers), not 20 MB; then all of it arrives.
    (ASan's quarantine would keep freed buffers: turned off here.)"""
    pop = make_server(env=pop3_env(
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:quarantine_size_mb=0"))
    line = b"y" * 99 + b"\n"
    msg = b"Subject: huge\n\n" + line * 200000     # 20 MB
    put_message(pop, ALICE, msg, 1700000004)
    p = login_stls(pop)
    pid = pop.worker_of(p.sock)
    before = rss_kb(pid)
    p.sock.sendall(b"RETR 1\r\n")
    time.sleep(1.5)
    grown = rss_kb(pid) - before
    print("rss growth kB", grown)
    assert grown < 8 * 1024, f"worker RSS grew by {grown} kB"
    resp = p._getresp()
    assert resp == b"+OK %d octets" % len(wire(msg))
    got = hashlib.sha256()
    n = 0
    while True:
        l, _ = p._getline()
        if l == b".":
            break
        if l.startswith(b".."):
            l = l[1:]
        got.update(l + b"\r\n")
        n += len(l) + 2
    assert n == len(wire(msg))
    assert got.digest() == hashlib.sha256(wire(msg)).digest()
    p.quit()


def test_sessions_per_ip_capped(make_server):
    srv = make_server(env=pop3_env(TEGAMI_POP3_MAX_SESSIONS_PER_IP="1"))
    a = poplib.POP3("127.0.0.1", srv.ports["POP3"], timeout=10)
    with pytest.raises(poplib.error_proto) as e:
        poplib.POP3("127.0.0.1", srv.ports["POP3"], timeout=10)
    assert b"[SYS/TEMP] Too many connections" in e.value.args[0]
    a.quit()


def test_pipelined_script_with_half_close(pop):
    """Everything in one write, then FIN (a `printf ... | nc` client): the
    RETR is streamed whole, then DELE and QUIT still run."""
    msg = b"Subject: s\n\n" + b"z" * 70 + b"\n" * 1 + (b"w" * 79 + b"\n") * 30000
    put_message(pop, ALICE, msg, 1700000005)
    s = socket.create_connection(("127.0.0.1", pop.ports["POP3"]), 20)
    s.sendall(b"USER " + ALICE.encode() + b"\r\nPASS alicepw\r\nRETR 1\r\n"
              b"DELE 1\r\nQUIT\r\n")
    s.shutdown(socket.SHUT_WR)
    time.sleep(0.5)
    out = b""
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        out += chunk
    s.close()
    assert wire(msg) + b".\r\n+OK Marked to be deleted.\r\n" in out
    assert out.endswith(b"signing off (1 messages deleted)\r\n")
    assert pop.message_files(ALICE) == []


def test_stls_drops_plaintext_sent_along(pop):
    """Commands sent in the same packet as STLS are never run under TLS."""
    s = socket.create_connection(("127.0.0.1", pop.ports["POP3"]), 10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"STLS\r\nUSER " + ALICE.encode() + b"\r\n")
    assert f.readline() == b"+OK Begin TLS negotiation now.\r\n"
    time.sleep(0.2)
    tls = pop.ssl_context().wrap_socket(s, server_hostname="mail.example.test")
    tf = tls.makefile("rwb")
    tf.write(b"PASS alicepw\r\n")
    tf.flush()
    assert tf.readline() == b"-ERR No username given.\r\n"
    tf.write(b"QUIT\r\n")
    tf.flush()
    assert tf.readline().startswith(b"+OK")
    tls.close()
    assert "event=stls_injection" in pop.log_text()
