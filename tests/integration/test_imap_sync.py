"""Several IMAP sessions on one mailbox, the real binary and imaplib: changes
pushed to IDLE (by an SMTP delivery, by another session, by another
process renaming a file), NOOP seeing new mail, QRESYNC (RFC 7162) after
another session expunged, and many sessions changing one mailbox at once."""
import imaplib
import os
import re
import smtplib
import threading
import time

from tegami_server import HOST  # noqa: F401  (the fixtures' module)

MSG = (b"From: alice@remote.test\r\nTo: bob@example.test\r\nSubject: sync\r\n"
       b"\r\nbody\r\n")


def deliver(srv, to="bob@example.test", msg=MSG):
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.sendmail("alice@remote.test", [to], msg)


def login(srv, user="bob@example.test", pw="bobpw"):
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["IMAPS"], ssl_context=srv.ssl_context())
    m.login(user, pw)
    return m


def command(m, *words):
    """Sends a raw command; returns (untagged lines, tagged line)."""
    tag = m._new_tag()
    m.send(tag + b" " + b" ".join(w if isinstance(w, bytes) else w.encode()
                                  for w in words) + b"\r\n")
    lines = []
    while True:
        line = m.readline()
        if line.startswith(tag + b" "):
            return lines, line
        lines.append(line.rstrip(b"\r\n"))


def idle_start(m):
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+")
    return tag


def idle_done(m, tag):
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        if line.startswith(tag):
            assert b" OK " in line
            return


def test_idle_woken_by_smtp_delivery_latency(server):
    """The latency is printed (pytest -s) for the record; only the arrival
    is asserted: an IDLE session needs no poll to hear of new mail."""
    m = login(server)
    m.select("INBOX")
    tag = idle_start(m)
    m.sock.settimeout(20)
    lat = []
    for n in range(1, 4):
        t0 = time.monotonic()
        deliver(server)            # returns after the 250: mail is in new/
        t1 = time.monotonic()
        line = m.readline()
        t2 = time.monotonic()
        assert line.strip() == b"* %d EXISTS" % n, line
        assert m.readline().strip() == b"* %d RECENT" % n
        lat.append((t2 - t1) * 1000)
        print(f"idle push: delivery {1000 * (t1 - t0):.1f} ms, EXISTS "
              f"{lat[-1]:.1f} ms after the 250")
    idle_done(m, tag)
    m.logout()


def test_idle_woken_by_another_session_and_another_process(server):
    for _ in range(2):
        deliver(server)
    server.wait_messages("bob@example.test", 2)
    a = login(server)
    a.select("INBOX")
    b = login(server)
    b.select("INBOX")
    tag = idle_start(a)
    a.sock.settimeout(20)
    # a flag change by a session of the same worker
    b.store("1", "+FLAGS", "(\\Flagged)")
    line = a.readline()
    assert re.match(rb"\* 1 FETCH \(UID 1 FLAGS \((\\Recent )?\\Flagged\)\)", line), line
    # an expunge by the other session: EXPUNGE, not a reload
    b.store("2", "+FLAGS", "(\\Deleted)")
    assert b"FETCH" in a.readline()
    b.expunge()
    assert a.readline().strip() == b"* 2 EXPUNGE"
    # another process renames the file (a flag set by hand): inotify;
    # first the worker gives it the name of \Flagged (its next flush)
    [path] = server.wait_message_files(
        "bob@example.test", lambda f: len(f) == 1 and f[0].endswith(":2,F"))
    assert path.endswith(":2,F"), path
    os.rename(path, path.replace(":2,F", ":2,FS"))
    line = a.readline()
    assert b"* 1 FETCH" in line and b"\\Seen" in line, line
    idle_done(a, tag)
    a.logout()
    b.logout()


def test_noop_sees_new_mail_and_nothing_when_nothing_changed(server):
    m = login(server)
    m.select("INBOX")
    untagged, tagged = command(m, "NOOP")
    assert untagged == [] and b"OK" in tagged
    deliver(server)
    untagged, _ = command(m, "NOOP")
    assert b"* 1 EXISTS" in untagged
    untagged, _ = command(m, "NOOP")
    assert untagged == []
    m.logout()


def test_qresync_after_another_session_expunged(server):
    for _ in range(6):
        deliver(server)
    server.wait_messages("bob@example.test", 6)
    a = login(server)
    untagged, tagged = command(a, "ENABLE", "QRESYNC")
    assert b"* ENABLED QRESYNC" in untagged
    untagged, tagged = command(a, "SELECT", "INBOX")
    text = b"\n".join(untagged)
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", text).group(1))
    modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1))
    a.logout()

    b = login(server)
    b.select("INBOX")
    b.uid("STORE", "2", "+FLAGS", "(\\Answered)")
    b.uid("STORE", "3,5", "+FLAGS", "(\\Deleted)")
    b.expunge()
    b.logout()

    a = login(server)
    command(a, "ENABLE", "QRESYNC")
    untagged, tagged = command(a, "SELECT", "INBOX",
                               f"(QRESYNC ({uidvalidity} {modseq}))")
    assert b"OK" in tagged
    assert b"* VANISHED (EARLIER) 3,5" in untagged
    fetches = [line for line in untagged if b"FETCH" in line]
    assert len(fetches) == 1 and b"UID 2 " in fetches[0] and b"\\Answered" in fetches[0]
    assert re.search(rb"MODSEQ \(\d+\)", fetches[0])
    # only what the client knows of: known-uids 1:4
    untagged, _ = command(a, "SELECT", "INBOX",
                          f"(QRESYNC ({uidvalidity} {modseq} 1:4))")
    assert b"* OK [CLOSED] Previous mailbox closed." in untagged
    assert b"* VANISHED (EARLIER) 3" in untagged
    # a stale UIDVALIDITY: no resync data, the client starts over
    untagged, _ = command(a, "SELECT", "INBOX", f"(QRESYNC ({uidvalidity + 1} 1))")
    assert not any(b"VANISHED" in line for line in untagged)
    # UID FETCH ... (CHANGEDSINCE m VANISHED)
    untagged, tagged = command(a, "UID", "FETCH", "1:*", "(FLAGS)",
                               f"(CHANGEDSINCE {modseq} VANISHED)")
    assert b"OK" in tagged
    assert b"* VANISHED (EARLIER) 3,5" in untagged
    # once enabled, expunges are reported as VANISHED
    command(a, "UID", "STORE", "6", "+FLAGS", "(\\Deleted)")
    untagged, _ = command(a, "EXPUNGE")
    assert b"* VANISHED 6" in untagged and not any(b"EXPUNGE" in line for line in untagged)
    a.logout()


def test_qresync_needs_enable(server):
    deliver(server)
    server.wait_messages("bob@example.test", 1)
    m = login(server)
    _, tagged = command(m, "SELECT", "INBOX", "(QRESYNC (1 1))")
    assert b" BAD " in tagged
    command(m, "SELECT", "INBOX")
    _, tagged = command(m, "UID", "FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE 1 VANISHED)")
    assert b" BAD " in tagged
    m.logout()


def test_concurrent_sessions_on_one_mailbox(server):
    """Eight sessions append, flag and expunge at once; afterwards every
    session and a fresh one agree with the Maildir."""
    a = login(server)
    a.select("INBOX")
    errors = []

    def worker(i):
        try:
            m = login(server)
            m.select("INBOX")
            for k in range(10):
                typ, data = m.append("INBOX", None, None,
                                     b"Subject: %d-%d\r\n\r\nx\r\n" % (i, k))
                assert typ == "OK"
                uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
                m.uid("STORE", str(uid), "+FLAGS", "(\\Seen)")
                if k % 2:
                    m.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
                    m.uid("EXPUNGE", str(uid))
                m.noop()
            m.logout()
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    typ, data = a.noop()
    typ, data = a.uid("FETCH", "1:*", "(FLAGS)")
    uids = sorted(int(x) for x in re.findall(rb"UID (\d+)", b" ".join(
        d if isinstance(d, bytes) else d[0] for d in data if d)))
    assert len(uids) == 40 and all(b"\\Seen" in d for d in data if d)
    files = server.wait_message_files(
        "bob@example.test", lambda f: all(n.endswith(":2,S") for n in f))
    assert len(files) == 40 and all(f.endswith(":2,S") for f in files)
    # the expunged files, parked under dot names, are unlinked off the loop
    cur = os.path.join(server.maildir("bob@example.test"), "cur")
    end = time.time() + 10
    while any(n.startswith(".") for n in os.listdir(cur)) and time.time() < end:
        time.sleep(0.1)
    assert sorted(os.listdir(cur)) == sorted(os.path.basename(f) for f in files)
    b = login(server)
    typ, data = b.select("INBOX")
    assert data == [b"40"]
    a.logout()
    b.logout()
