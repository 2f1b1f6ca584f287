"""IMAP served by the real binary: logins on 993 and 143, mail delivered by
the smtp worker read back byte for byte, IDLE woken by a delivery, flags
kept in the Maildir file names, master users, curl over IMAPS."""
import imaplib
import os
import smtplib
import socket
import ssl
import subprocess
import threading
import time

import pytest

from tegami_server import HOST

MSG = (b"From: alice@remote.test\r\nTo: bob@example.test\r\nSubject: hello imap\r\n"
       b"Message-ID: <imap1@remote.test>\r\n\r\nHello over IMAP.\r\n")


def deliver(srv, to="bob@example.test", msg=MSG):
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.sendmail("alice@remote.test", [to], msg)


def imaps(srv):
    return imaplib.IMAP4_SSL("127.0.0.1", srv.ports["IMAPS"], ssl_context=srv.ssl_context())


def test_login_select_fetch_over_993(server):
    deliver(server)
    server.wait_messages("bob@example.test", 1)
    m = imaps(server)
    assert "IMAP4REV1" in m.capabilities       # imaplib upper-cases them
    m.login("bob@example.test", "bobpw")
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = m.uid("FETCH", "1:*", "(UID RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    body = data[0][1]
    stored = server.messages("bob@example.test")[0].replace(b"\n", b"\r\n")
    assert body == stored and body.endswith(MSG)
    # Drafts, Sent, Trash, Junk exist and are subscribed after the first login
    typ, lsub = m.lsub()
    names = b" ".join(lsub)
    for folder in (b"Drafts", b"Sent", b"Trash", b"Junk"):
        assert folder in names
    m.logout()


def test_starttls_on_143_and_flags_in_file_names(server):
    deliver(server)
    server.wait_messages("bob@example.test", 1)
    m = imaplib.IMAP4("127.0.0.1", server.ports["IMAP"])
    m.starttls(ssl_context=server.ssl_context())
    m.login("bob@example.test", "bobpw")
    m.select("INBOX")
    typ, _ = m.store("1", "+FLAGS", "(\\Seen \\Flagged)")
    assert typ == "OK"
    m.logout()
    # the file takes its new name at the next flush, within a second or two
    [path] = server.wait_message_files(
        "bob@example.test", lambda f: len(f) == 1 and f[0].endswith(":2,FS"))
    assert path.split("/")[-2] == "cur" and path.endswith(":2,FS")


def test_wrong_password_and_master_user(server):
    m = imaps(server)
    with pytest.raises(imaplib.IMAP4.error):
        m.login("bob@example.test", "nope")
    m.logout()
    server.write_config("dovecot-masters.cf",
                        "admin|{PLAIN}adminpw\n")
    time.sleep(2.1)
    m = imaps(server)
    m.login("bob@example.test*admin", "adminpw")
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def test_idle_is_woken_by_an_smtp_delivery(server):
    m = imaps(server)
    m.login("bob@example.test", "bobpw")
    m.select("INBOX")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+")
    t0 = time.time()
    threading.Timer(0.3, deliver, args=(server,)).start()
    m.sock.settimeout(5)
    line = m.readline()
    assert line.strip() == b"* 1 EXISTS", line
    assert time.time() - t0 < 3
    m.send(b"DONE\r\n")
    while not m.readline().startswith(tag):
        pass
    m.logout()


def test_append_then_read_from_the_maildir(server):
    m = imaps(server)
    m.login("alice@example.test", "alicepw")
    msg = b"Subject: draft\r\n\r\nunfinished\r\n"
    typ, data = m.append("Drafts", "(\\Draft)", None, msg)
    assert typ == "OK" and b"APPENDUID" in data[0]
    m.logout()
    [stored] = server.messages("alice@example.test", folder="Drafts")
    assert stored == msg.replace(b"\r\n", b"\n")


def test_curl_imaps(server):
    deliver(server)
    server.wait_messages("bob@example.test", 1)
    r = subprocess.run(["curl", "-s", "--cacert", server.ca,
                        "--resolve", f"{HOST}:{server.ports['IMAPS']}:127.0.0.1",
                        "--user", "bob@example.test:bobpw",
                        f"imaps://{HOST}:{server.ports['IMAPS']}/INBOX;UID=1"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.replace(b"\r\n", b"\n").endswith(b"Hello over IMAP.\n")


def test_status_counts_imap_connections(server):
    m = imaps(server)
    m.login("bob@example.test", "bobpw")
    time.sleep(1.2)
    out = server.status().stdout
    assert "worker=imap" in out and "imap_connections=1" in out and "logged_in=1" in out
    m.logout()
