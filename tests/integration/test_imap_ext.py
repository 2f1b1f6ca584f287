"""IMAP extensions of the mailbox side against the real binary, with Python's
imaplib (raw commands where imaplib has no method): LIST-EXTENDED,
LIST-STATUS, STATUS=SIZE, CREATE-SPECIAL-USE, BINARY, MULTIAPPEND, CATENATE,
URLAUTH, QUOTA (and the smtp worker's 552 agreeing with it), COMPRESS=DEFLATE
over TLS, IMAP4rev2, AUTHENTICATE LOGIN / SASL-IR, session limits."""
import base64
import imaplib
import re
import smtplib
import socket
import ssl
import time
import zlib

import pytest

for _name in ("GENURLAUTH", "URLFETCH", "RESETKEY", "COMPRESS", "ENABLE"):
    imaplib.Commands.setdefault(_name, ("AUTH", "SELECTED"))

BASE64_MSG = (b"From: alice@remote.test\r\nTo: bob@example.test\r\nSubject: parts\r\n"
              b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
              b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
              b"aGVsbG8gd29ybGQ=\r\n--b\r\nContent-Type: text/plain\r\n"
              b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 au lait\r\n"
              b"--b--\r\n")


from imaputil import deliver, imaps, login, raw  # noqa: E402,F401


def untagged(m, typ, dat, name):
    return m._untagged_response(typ, dat, name)[1]


def test_capabilities(server):
    m = imaps(server)
    caps = set(m.capabilities)
    assert {"IMAP4REV1", "IMAP4REV2", "SASL-IR", "AUTH=PLAIN", "AUTH=LOGIN"} <= caps
    m.login("bob@example.test", "bobpw")
    tag, lines = raw(m, b"CAPABILITY")
    caps = set(lines[0].decode().split()[2:])
    for c in ("IMAP4rev2", "LIST-EXTENDED", "LIST-STATUS", "STATUS=SIZE",
              "CREATE-SPECIAL-USE", "BINARY", "MULTIAPPEND", "CATENATE", "URL-PARTIAL",
              "QUOTA", "QUOTA=RES-STORAGE", "COMPRESS=DEFLATE",
              "SPECIAL-USE", "APPENDLIMIT=10240000"):
        assert c in caps, c
    # URLAUTH is off unless TEGAMI_IMAP_URLAUTH=1 (as Dovecot's without
    # imap_urlauth_host): not offered, its commands unknown
    assert not any(c.startswith("URLAUTH") for c in caps), caps
    for c in (b'GENURLAUTH "imap://bob%40example.test@mail.example.test/INBOX/;UID=1;'
              b'URLAUTH=authuser" INTERNAL', b'URLFETCH "/INBOX/;UID=1"', b"RESETKEY"):
        tag, _ = raw(m, c)
        assert b"BAD Unknown command" in tag, (c, tag)
    m.logout()


@pytest.fixture
def urlauth_server(make_server):
    """alice and bob, with TEGAMI_IMAP_URLAUTH=1."""
    return make_server(env={"TEGAMI_IMAP_URLAUTH": "1"},
                       accounts=(("alice@example.test", "alicepw"),
                                 ("bob@example.test", "bobpw")))


def test_list_extended_status_and_special_use(server):
    m = login(server)
    assert m.create("Work")[0] == "OK"
    assert m.create("Work.Old")[0] == "OK"
    assert m.subscribe("Work.Old")[0] == "OK"
    tag, lines = raw(m, b'CREATE Stash (USE (\\Archive))')
    assert b"OK" in tag
    tag, lines = raw(m, b'CREATE Bad (USE (\\All))')
    assert b"NO [USEATTR]" in tag
    tag, lines = raw(m, b'LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (CHILDREN)')
    assert b"OK" in tag
    assert b'* LIST (\\HasChildren) "." "Work" ("CHILDINFO" ("SUBSCRIBED"))\r\n' in lines
    tag, lines = raw(m, b'LIST (SPECIAL-USE) "" *')
    found = b"".join(lines)
    assert b'(\\Archive) "." "Stash"' in found and b'(\\Sent) "." "Sent"' in found
    assert b'"Work"' not in found
    m.append("Work", "", imaplib.Time2Internaldate(time.time()),
             b"Subject: one\r\n\r\nbody\r\n")
    tag, lines = raw(m, b'LIST "" (Work Stash) RETURN (STATUS (MESSAGES SIZE DELETED))')
    assert b"OK" in tag
    assert b'* STATUS "Work" (MESSAGES 1 SIZE 22 DELETED 0)\r\n' in lines
    assert b'* STATUS "Stash" (MESSAGES 0 SIZE 0 DELETED 0)\r\n' in lines
    typ, dat = m.status("Work", "(APPENDLIMIT SIZE)")
    assert typ == "OK" and b"APPENDLIMIT 10240000 SIZE 22" in dat[0]
    m.logout()


def test_list_star_shows_levels_without_a_folder(server):
    """"a.b" exists, "a" does not: LIST "*" shows "a" as \\Noselect
    \\HasChildren (as Dovecot does); LSUB keeps \\Noselect for an
    unsubscribed parent of a subscribed folder, and a subscription with no
    folder makes no level in LIST."""
    m = login(server)
    assert m.create("a.b")[0] == "OK"
    assert m.subscribe("a.b")[0] == "OK"
    assert m.subscribe("ghost.child")[0] == "OK"
    tag, lines = raw(m, b'LIST "" "*"')
    assert b"OK" in tag
    assert b'* LIST (\\Noselect \\HasChildren) "." "a"\r\n' in lines, lines
    assert b'* LIST (\\HasNoChildren \\Subscribed) "." "a.b"\r\n' in lines, lines
    assert not [ln for ln in lines if ln.endswith(b' "ghost"\r\n')], lines
    tag, lines = raw(m, b'LIST "" "a*"')
    assert b'* LIST (\\Noselect \\HasChildren) "." "a"\r\n' in lines, lines
    tag, lines = raw(m, b'LIST "" "a.*"')
    assert not [ln for ln in lines if ln.endswith(b' "a"\r\n')], lines
    tag, lines = raw(m, b'LSUB "" "%"')
    assert b'* LSUB (\\Noselect) "." "a"\r\n' in lines, lines
    tag, lines = raw(m, b'LSUB "" "*"')
    assert not [ln for ln in lines if ln.endswith(b' "a"\r\n')], lines
    # a folder made for the level takes its place
    assert m.create("a")[0] == "OK"
    tag, lines = raw(m, b'LIST "" "*"')
    assert b'* LIST (\\HasChildren) "." "a"\r\n' in lines, lines
    m.logout()


def test_binary_fetch_and_literal8_append(server):
    deliver(server, BASE64_MSG)
    server.wait_messages("bob@example.test", 1)
    m = login(server)
    m.select("INBOX")
    typ, dat = m.fetch("1", "(BINARY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[2])")
    assert typ == "OK"
    assert dat[0][1] == b"hello world"
    assert dat[1][1] == "café au lait".encode()
    assert b"BINARY.SIZE[2] 13" in dat[2]
    # raw bytes with a NUL, sent as literal8; BODY[] shows base64, BINARY the bytes
    blob = bytes(range(256))
    msg = (b"Subject: bin\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n" + blob)
    tag = m._new_tag()
    m.send(tag + b" APPEND INBOX ~{%d}\r\n" % len(msg))
    assert m.readline().startswith(b"+")
    m.send(msg + b"\r\n")
    while True:
        ln = m.readline()
        if ln.startswith(tag):
            break
    assert b"OK [APPENDUID" in ln
    tag, lines = raw(m, b"FETCH 2 (BODY.PEEK[1] BINARY.PEEK[1])")
    body = b"".join(lines)
    assert b"\0" in body.split(b"BINARY[1]")[1]
    assert b"\0" not in body.split(b"BINARY[1]")[0]
    assert blob in body
    assert b"BINARY[1] ~{256}\r\n" in body
    m.logout()


def test_multiappend_and_catenate(server):
    m = login(server)
    tag, _ = raw(m, b"APPEND Drafts (\\Seen) {16+}\r\nSubject: one\r\n\r\n"
                 b" {16+}\r\nSubject: two\r\n\r\n")
    assert re.search(rb"OK \[APPENDUID \d+ 1:2\]", tag)
    typ, dat = m.status("Drafts", "(MESSAGES)")
    assert b"MESSAGES 2" in dat[0]
    # all or nothing: the second message names a message that is not there
    tag, _ = raw(m, b"APPEND Drafts {16+}\r\nSubject: new\r\n\r\n"
                 b' CATENATE (URL "/Drafts/;UID=99")')
    assert b"NO [BADURL /Drafts/;UID=99]" in tag
    assert b"MESSAGES 2" in m.status("Drafts", "(MESSAGES)")[1][0]
    tag, _ = raw(m, b'APPEND Drafts CATENATE (URL "/Drafts/;UID=2/;SECTION=HEADER" '
                 b"TEXT {12+}\r\nnew body\r\n\r\n)")
    assert b"OK [APPENDUID" in tag
    m.select("Drafts")
    typ, dat = m.fetch("3", "(BODY.PEEK[])")
    assert dat[0][1] == b"Subject: two\r\n\r\nnew body\r\n\r\n"
    tag, _ = raw(m, b'APPEND Nope CATENATE (URL "/Drafts/;UID=1")')
    assert b"NO [TRYCREATE]" in tag
    m.logout()


def test_urlauth_between_accounts(urlauth_server):
    server = urlauth_server
    m = login(server)
    tag, lines = raw(m, b"CAPABILITY")
    assert b" URLAUTH URLAUTH=BINARY" in lines[0], lines
    m.logout()
    deliver(server, BASE64_MSG)
    server.wait_messages("bob@example.test", 1)
    bob = login(server)
    bob.select("INBOX")
    tag, lines = raw(bob, b'GENURLAUTH "imap://bob%40example.test@mail.example.test/'
                     b'INBOX/;UID=1/;SECTION=1;URLAUTH=authuser" INTERNAL')
    assert b"OK" in tag
    url = re.search(rb'GENURLAUTH "([^"]+)"', lines[0]).group(1)
    assert b":internal:" in url
    tag, lines = raw(bob, b'GENURLAUTH "imap://bob%40example.test@mail.example.test/'
                     b'INBOX/;UID=1;URLAUTH=user+bob@example.test" INTERNAL')
    private = re.search(rb'GENURLAUTH "([^"]+)"', lines[0]).group(1)
    alice = login(server, "alice@example.test", "alicepw")
    tag, lines = raw(alice, b'URLFETCH "' + url + b'" ("' + url + b'" BINARY) "'
                     + private + b'"')
    assert b"OK" in tag
    out = b"".join(lines)
    assert b"{16}\r\naGVsbG8gd29ybGQ=" in out
    assert b"(BINARY {11}\r\nhello world)" in out
    assert out.rstrip().endswith(b" NIL")       # user+bob: not for alice
    tag, _ = raw(bob, b"RESETKEY INBOX")
    assert b"OK" in tag
    tag, lines = raw(alice, b'URLFETCH "' + url + b'"')
    assert lines[0].rstrip().endswith(b" NIL")
    alice.logout()
    bob.logout()


def test_quota_imap_and_smtp_agree(server):
    server.write_config("dovecot-quotas.cf", "bob@example.test:10k\n")
    time.sleep(2.2)
    m = login(server)
    typ, dat = m.getquotaroot("INBOX")
    assert typ == "OK"
    assert dat[0] == [b'"INBOX" "User quota"']
    assert dat[1] == [b'"User quota" (STORAGE 0 10)']
    # 7 KiB into Drafts over IMAP: the smtp worker counts it too
    m.append("Drafts", "", imaplib.Time2Internaldate(time.time()),
             b"Subject: big\r\n\r\n" + b"x" * 7000 + b"\r\n")
    typ, dat = m.getquota('"User quota"')
    assert dat == [b'"User quota" (STORAGE 7 10)']
    with smtplib.SMTP("127.0.0.1", server.ports["SMTP"], timeout=10) as s:
        s.ehlo("client.test")
        assert s.mail("alice@remote.test", ["SIZE=2000"])[0] == 250
        assert s.rcpt("bob@example.test")[0] == 250
        s.rset()
        assert s.mail("alice@remote.test", ["SIZE=4000"])[0] == 250
        code, text = s.rcpt("bob@example.test")
        assert code == 552 and b"5.2.2" in text
    # APPEND over the limit is refused before the literal goes out
    tag = m._new_tag()
    m.send(tag + b" APPEND INBOX {5000}\r\n")
    ln = m.readline()
    assert ln.startswith(tag + b" NO [OVERQUOTA]")
    m.select("Drafts")
    typ, dat = m.copy("1", "Sent")
    assert typ == "NO" and b"OVERQUOTA" in dat[0]
    typ, dat = m.copy("1", "Trash")       # Trash may go 50 MiB over
    assert typ == "OK"
    m.logout()


class Deflate:
    """A COMPRESS=DEFLATE client on a socket (raw DEFLATE both ways)."""

    def __init__(self, sock):
        self.sock = sock
        self.z_out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.z_in = zlib.decompressobj(-15)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(self.z_out.compress(data) + self.z_out.flush(zlib.Z_SYNC_FLUSH))

    def until(self, tag, timeout=10):
        end = time.time() + timeout
        self.sock.settimeout(timeout)
        while not re.search(rb"(^|\r\n)" + re.escape(tag) + rb" [^\r\n]*\r\n", self.buf):
            if time.time() > end:
                raise AssertionError(self.buf[-500:])
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("closed: " + repr(self.buf[-500:]))
            self.buf += self.z_in.decompress(chunk)
        out, self.buf = self.buf, b""
        return out


def compress_session(sock, first=b""):
    """Logs in on a plain-text-or-TLS socket and switches on COMPRESS."""
    f = sock.makefile("rb")
    if first:
        assert f.readline().startswith(first)
    sock.sendall(b"a LOGIN bob@example.test bobpw\r\n")
    while not (ln := f.readline()).startswith(b"a "):
        pass
    assert ln.startswith(b"a OK") and b"COMPRESS=DEFLATE" in ln
    sock.sendall(b"b COMPRESS DEFLATE\r\n")
    assert f.readline() == b"b OK DEFLATE active\r\n"
    return Deflate(sock)


def test_compress_over_tls(server):
    deliver(server, b"Subject: zz\r\n\r\n" + b"compress me please\r\n" * 5000)
    server.wait_messages("bob@example.test", 1)
    ctx = server.ssl_context()
    # 993: TLS from the start
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.ports["IMAPS"])))
    z = compress_session(sock, b"* OK")
    z.send(b"c SELECT INBOX\r\n")
    assert b"* 1 EXISTS" in z.until(b"c")
    z.send(b"d FETCH 1 BODY.PEEK[]\r\ne COMPRESS DEFLATE\r\n")
    out = z.until(b"e")
    assert b"compress me please\r\n" * 5000 in out
    assert b"d OK" in out and b"e NO [COMPRESSIONACTIVE]" in out
    z.send(b"f LOGOUT\r\n")
    assert b"f OK" in z.until(b"f")
    sock.close()
    # 143: STARTTLS, then COMPRESS on top of it
    raw_sock = socket.create_connection(("127.0.0.1", server.ports["IMAP"]))
    f = raw_sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    raw_sock.sendall(b"s STARTTLS\r\n")
    assert f.readline().startswith(b"s OK")
    sock = ctx.wrap_socket(raw_sock)
    z = compress_session(sock)
    z.send(b"g NOOP\r\n")
    assert b"g OK" in z.until(b"g")
    # garbage where DEFLATE data should be ends the session, not the server
    sock.sendall(b"\xff\xfe not deflate at all")
    sock.settimeout(10)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionError, ssl.SSLError):
        pass
    sock.close()
    m = login(server)
    assert m.noop()[0] == "OK"
    m.logout()


def test_imap4rev2(server):
    deliver(server, b"Subject: a\r\n\r\nx\r\n")
    deliver(server, b"Subject: b\r\n\r\ny\r\n")
    server.wait_messages("bob@example.test", 2)
    m = login(server)
    typ, dat = m._simple_command("ENABLE", "IMAP4rev2")
    assert typ == "OK" and untagged(m, typ, dat, "ENABLED") == [b"IMAP4rev2"]
    tag, lines = raw(m, b"SELECT INBOX")
    sel = b"".join(lines)
    assert b'* LIST () "." "INBOX"' in sel and b"RECENT" not in sel
    tag, lines = raw(m, b"UID SEARCH ALL")
    assert lines == [b'* ESEARCH (TAG "' + tag.split()[0] + b'") UID ALL 1:2\r\n']
    tag, lines = raw(m, b"FETCH 1:* FLAGS")
    assert b"\\Recent" not in b"".join(lines)
    m.logout()


def test_authenticate_login_and_sasl_ir(server):
    m = imaps(server)
    answers = iter([b"bob@example.test", b"bobpw"])
    typ, _ = m.authenticate("LOGIN", lambda challenge: next(answers))
    assert typ == "OK"
    m.logout()
    m = imaps(server)
    ir = base64.b64encode(b"\0bob@example.test\0bobpw")
    tag, _ = raw(m, b"AUTHENTICATE PLAIN " + ir)
    assert b"OK [CAPABILITY" in tag
    m.logout()


def test_session_limits_per_user(make_server):
    srv = make_server(env={"TEGAMI_IMAP_MAX_SESSIONS_PER_USER_IP": "2",
                           "TEGAMI_IMAP_MAX_SESSIONS_PER_USER": "3"},
                      accounts=(("alice@example.test", "alicepw"),
                                ("bob@example.test", "bobpw")))
    a1 = login(srv, "alice@example.test", "alicepw")
    a2 = login(srv, "alice@example.test", "alicepw")
    a3 = imaps(srv)
    with pytest.raises(imaplib.IMAP4.error, match=r"\[LIMIT\]"):
        a3.login("alice@example.test", "alicepw")
    # a wrong password says nothing about the limit
    with pytest.raises(imaplib.IMAP4.error, match=r"AUTHENTICATIONFAILED"):
        a3.login("alice@example.test", "nope")
    # another account is not affected; one logout makes room again
    b1 = login(srv)
    a1.logout()
    time.sleep(0.2)
    a3.login("alice@example.test", "alicepw")
    assert a3.select("INBOX")[0] == "OK"
    srv.wait_log("reason=too_many_user_ip_sessions")
    for m in (a2, a3, b1):
        m.logout()


def test_literal_too_big_is_refused_before_it_is_sent(make_server):
    srv = make_server(env={"POSTFIX_MESSAGE_SIZE_LIMIT": "100000"},
                      accounts=(("bob@example.test", "bobpw"),))
    m = login(srv)
    tag = m._new_tag()
    m.send(tag + b" APPEND INBOX {200000}\r\n")
    assert m.readline().startswith(tag + b" NO [TOOBIG]")
    tag = m._new_tag()
    m.send(tag + b" APPEND INBOX ~{200000}\r\n")
    assert m.readline().startswith(tag + b" NO [TOOBIG]")
    assert m.noop()[0] == "OK"
    m.logout()
