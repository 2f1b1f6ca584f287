"""Several imap workers (TEGAMI_IMAP_WORKERS): they share the listening
sockets, take turns accepting, count sessions together for the limits,
and sessions of one account in different workers see each other's
changes (IDLE, NOTIFY). Which worker serves a connection is read from
/proc (TegamiServer.worker_of)."""
import imaplib
import os
import random
import re
import signal
import socket
import threading
import time

import pytest

from imaputil import imaps, login, raw
from test_imap_notify import nothing_arrives, read_until

ACCOUNTS = (("alice@example.test", "alicepw"), ("bob@example.test", "bobpw"))

for _name in ("NOTIFY",):
    imaplib.Commands.setdefault(_name, ("AUTH", "SELECTED"))


def two_workers(make_server, **env):
    srv = make_server(env=dict({"TEGAMI_IMAP_WORKERS": "2"}, **env),
                      accounts=ACCOUNTS)
    end = time.time() + 10
    while len(re.findall(r"imap\[\d+\]: info event=worker_ready",
                         srv.log_text())) < 2 and time.time() < end:
        time.sleep(0.05)
    assert len(srv.worker_pids("imap")) == 2
    return srv


def in_each_worker(srv, connect):
    """Connections from connect() until two are served by different
    workers: returns (first, second, extra ones to close)."""
    by_pid, extra = {}, []
    for _ in range(20):
        m = connect()
        pid = srv.worker_of(m.sock)
        assert pid is not None
        if pid in by_pid:
            extra.append(m)
        else:
            by_pid[pid] = m
        if len(by_pid) == 2:
            a, b = by_pid.values()
            return a, b, extra
    raise AssertionError("every connection went to one worker")


def alice_in_each_worker(srv):
    """Two sessions of alice, in different workers, INBOX selected in both."""
    a, b, extra = in_each_worker(
        srv, lambda: login(srv, "alice@example.test", "alicepw"))
    for m in extra:
        m.logout()
    a.select("INBOX")
    b.select("INBOX")
    return a, b


def test_workers_take_turns_and_show_in_status(make_server):
    srv = two_workers(make_server)
    pids = srv.worker_pids("imap")
    conns = [imaps(srv) for _ in range(8)]
    served = [srv.worker_of(m.sock) for m in conns]
    # the one with more sessions leaves the next connections to the other
    for pid in pids:
        assert 3 <= served.count(pid) <= 5, served
    status = srv.status().stdout
    assert len(re.findall(r"^worker=imap pid=\d+", status, re.M)) == 2, status
    for m in conns:
        m.logout()


def test_one_worker_when_asked(make_server):
    srv = make_server(env={"TEGAMI_IMAP_WORKERS": "1"}, accounts=ACCOUNTS)
    time.sleep(0.5)
    assert len(srv.worker_pids("imap")) == 1


def greeting(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        data = b""
        while b"\n" not in data:
            chunk = s.recv(512)
            if not chunk:
                break
            data += chunk
        return data.decode()


def test_limits_count_every_worker(make_server):
    srv = two_workers(make_server, TEGAMI_IMAP_MAX_SESSIONS_PER_IP="3",
                      TEGAMI_IMAP_MAX_SESSIONS_PER_USER="2")
    a, b, extra = in_each_worker(srv, lambda: imaps(srv))
    for m in extra:
        m.logout()
    time.sleep(0.3)
    a.login("alice@example.test", "alicepw")
    b.login("alice@example.test", "alicepw")
    # a third session of alice's, in either worker, is one too many
    c = imaps(srv)
    with pytest.raises(imaplib.IMAP4.error, match=r"\[LIMIT\]"):
        c.login("alice@example.test", "alicepw")
    c.login("bob@example.test", "bobpw")
    # a fourth connection from this address is refused at the greeting
    assert greeting(srv.ports["IMAP"]).startswith(
        "* BYE [UNAVAILABLE] Too many connections")
    srv.wait_log("reason=too_many_sessions limit=3")
    srv.wait_log("reason=too_many_user_sessions limit=2")
    # a logout in one worker makes room for a login in the other
    served_b = srv.worker_of(b.sock)
    b.logout()
    time.sleep(0.3)
    for _ in range(10):
        e = imaps(srv)
        if srv.worker_of(e.sock) != served_b:
            break
        e.logout()
        time.sleep(0.1)
    e.login("alice@example.test", "alicepw")
    for m in (a, c, e):
        m.logout()


def test_limits_forget_a_dead_worker(make_server):
    srv = two_workers(make_server, TEGAMI_IMAP_MAX_SESSIONS_PER_USER="1")
    srv.allow_worker_death = True
    a = login(srv, "alice@example.test", "alicepw")
    with pytest.raises(imaplib.IMAP4.error, match=r"\[LIMIT\]"):
        login(srv, "alice@example.test", "alicepw")
    dead = srv.worker_of(a.sock)
    os.kill(dead, signal.SIGKILL)
    srv.wait_log("event=worker_died worker=imap")
    end = time.time() + 10
    while (dead in srv.worker_pids("imap") or len(srv.worker_pids("imap")) < 2) \
            and time.time() < end:
        time.sleep(0.05)
    # alice's only session died with its worker: she may log in again
    b = login(srv, "alice@example.test", "alicepw")
    b.logout()


def test_idle_sees_changes_made_in_the_other_worker(make_server):
    srv = two_workers(make_server)
    a, b, extra = in_each_worker(
        srv, lambda: login(srv, "alice@example.test", "alicepw"))
    for m in extra:
        m.logout()
    msg = b"From: x@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    assert b.append("INBOX", None, None, msg)[0] == "OK"
    a.select("INBOX")
    b.select("INBOX")
    tag = a._new_tag()
    a.send(tag + b" IDLE\r\n")
    assert a.readline().startswith(b"+")
    b.store("1", "+FLAGS", "\\Flagged")
    read_until(a, rb"^\* 1 FETCH \(.*\\Flagged", timeout=3)
    assert b.append("INBOX", None, None, msg)[0] == "OK"
    read_until(a, rb"^\* 2 EXISTS", timeout=3)
    b.store("1", "+FLAGS", "\\Deleted")
    b.expunge()
    read_until(a, rb"^\* 1 EXPUNGE", timeout=3)
    a.send(b"DONE\r\n")
    read_until(a, tag + rb" OK", timeout=3)
    for m in (a, b):
        m.logout()


def test_notify_mailbox_list_across_workers(make_server):
    srv = two_workers(make_server)
    a, b, extra = in_each_worker(
        srv, lambda: login(srv, "alice@example.test", "alicepw"))
    for m in extra:
        m.logout()
    tag, _ = raw(a, b"NOTIFY SET (personal (MailboxName SubscriptionChange))")
    assert b" OK" in tag
    assert b.create("Projects")[0] == "OK"
    assert read_until(a, rb"^\* LIST")[-1] == b'* LIST () "." "Projects"'
    assert b.subscribe("Projects")[0] == "OK"
    assert read_until(a, rb"^\* LIST")[-1] == b'* LIST (\\Subscribed) "." "Projects"'
    assert b.rename("Projects", "Done")[0] == "OK"
    assert read_until(a, rb"^\* LIST")[-1] == \
        b'* LIST () "." "Done" ("OLDNAME" ("Projects"))'
    assert b.delete("Done")[0] == "OK"
    assert read_until(a, rb"^\* LIST")[-1] == b'* LIST (\\NonExistent) "." "Done"'
    # another account's sessions hear nothing of it
    c = login(srv, "bob@example.test", "bobpw")
    tag, _ = raw(c, b"NOTIFY SET (personal (MailboxName))")
    assert b.create("Other")[0] == "OK"
    assert read_until(a, rb"^\* LIST")[-1] == b'* LIST () "." "Other"'
    assert nothing_arrives(c)
    for m in (a, b, c):
        m.logout()


def test_pop3_lock_holds_across_workers(make_server):
    import poplib
    srv = two_workers(make_server, ENABLE_POP3="1")
    p, q, extra = in_each_worker(
        srv, lambda: poplib.POP3("127.0.0.1", srv.ports["POP3"], timeout=10))
    for m in extra:
        m.quit()
    p.user("alice@example.test")
    assert p.pass_("alicepw").startswith(b"+OK")
    q.user("alice@example.test")
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        q.pass_("alicepw")
    p.quit()
    q.user("alice@example.test")
    assert q.pass_("alicepw").startswith(b"+OK")
    q.quit()


def test_expunged_files_are_gone_once_the_server_stops(make_server):
    """An expunged file waits under a dot name for the disk threads, also
    when its account's last session has ended; a worker that stops before
    they came unlinks what is left instead of leaving it in cur/."""
    srv = two_workers(make_server)
    m = login(srv, "alice@example.test", "alicepw")
    for i in range(5):
        m.append("INBOX", None, None, b"Subject: %d\r\n\r\nbody\r\n" % i)
    m.select("INBOX")
    m.store("1:4", "+FLAGS", r"(\Deleted)")
    typ, data = m.expunge()
    assert typ == "OK" and len(data) == 4
    m.logout()
    srv.stop()
    cur = os.path.join(srv.maildir("alice@example.test"), "cur")
    left = sorted(os.listdir(cur))
    assert [n for n in left if n.startswith(".expunged.")] == []
    assert len([n for n in left if not n.startswith(".")]) == 1


def recent_of(m):
    """The UIDs this session sees with \\Recent (after a NOOP)."""
    typ, data = m.noop()
    assert typ == "OK"
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK"
    uids = set()
    for line in data:
        line = line if isinstance(line, bytes) else b""
        mm = re.search(rb"UID (\d+)", line)
        if mm and b"\\Recent" in line:
            uids.add(int(mm.group(1)))
    return uids


def test_recent_goes_to_one_session_across_workers(make_server):
    """RFC 3501 2.3.2: a new message is \\Recent in one session only, also
    when the sessions that see it first are in different workers."""
    srv = two_workers(make_server)
    a, b = alice_in_each_worker(srv)
    adder = login(srv, "alice@example.test", "alicepw")
    msg = b"From: x@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    for _ in range(3):
        assert adder.append("INBOX", None, None, msg)[0] == "OK"
    seen_a = recent_of(a)
    seen_b = recent_of(b)
    assert seen_a == {1, 2, 3}, (seen_a, seen_b)
    assert seen_b == set(), (seen_a, seen_b)
    # the next ones go to whoever syncs first, here the other worker
    for _ in range(2):
        assert adder.append("INBOX", None, None, msg)[0] == "OK"
    seen_b = recent_of(b)
    seen_a = recent_of(a)
    assert seen_b == {4, 5}, (seen_a, seen_b)
    assert seen_a == {1, 2, 3}, (seen_a, seen_b)
    for m in (a, b, adder):
        m.logout()


def folder_scans(srv, sock):
    """How often the worker serving sock has read a folder's cur/ (the
    debug line of each full scan)."""
    pid = srv.worker_of(sock)
    return len(re.findall(r"imap\[%d\]: debug event=folder_scan" % pid,
                          srv.log_text()))


def test_the_other_workers_changes_come_from_the_index(make_server):
    """A session learns of what a session in the other worker did (flags
    set and cleared, an expunge, an append) from the index, without
    reading cur/ again; a file renamed by someone else, whom the index
    knows nothing of, still makes it look."""
    srv = two_workers(make_server)
    a, b, extra = in_each_worker(
        srv, lambda: login(srv, "alice@example.test", "alicepw"))
    for m in extra:
        m.logout()
    for i in range(4):
        msg = b"Subject: %d\r\n\r\nbody\r\n" % i
        assert b.append("INBOX", None, None, msg)[0] == "OK"
    a.select("INBOX")
    b.select("INBOX")

    def flags_seen_by_a():
        assert a.noop()[0] == "OK"
        typ, data = a.fetch("1:*", "(UID FLAGS)")
        assert typ == "OK"
        out = {}
        for line in data:
            mm = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", line)
            out[int(mm.group(1))] = set(mm.group(2).decode().split()) - {r"\Recent"}
        return out

    before = folder_scans(srv, a.sock)
    b.store("1", "+FLAGS", r"(\Flagged)")
    b.store("2", "+FLAGS", r"(\Seen)")
    b.store("2", "-FLAGS", r"(\Seen)")      # its file has the old name again
    b.store("3", "+FLAGS", r"(\Deleted)")
    assert b.expunge()[0] == "OK"
    assert b.append("INBOX", None, None, b"Subject: new\r\n\r\nbody\r\n")[0] == "OK"
    assert flags_seen_by_a() == {1: {r"\Flagged"}, 2: set(), 4: set(), 5: set()}
    assert folder_scans(srv, a.sock) == before, srv.log_text()[-3000:]
    # b renames the flagged file a second or so later; a is told by
    # inotify, and the index explains the new name: still no scan
    cur = os.path.join(srv.maildir("alice@example.test"), "cur")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        name = [n for n in os.listdir(cur) if n.endswith(":2,F")]
        if name:
            break
        time.sleep(0.05)
    assert len(name) == 1
    assert flags_seen_by_a() == {1: {r"\Flagged"}, 2: set(), 4: set(), 5: set()}
    assert folder_scans(srv, a.sock) == before, srv.log_text()[-3000:]
    # a Dovecot (or an mv) renames a file: only cur/ can tell
    os.rename(os.path.join(cur, name[0]), os.path.join(cur, name[0] + "S"))
    # the index may yet explain it (another worker commits after its
    # rename): cur/ is read once the grace (250 ms) is over
    deadline = time.monotonic() + 5
    while flags_seen_by_a()[1] != {r"\Flagged", r"\Seen"}:
        assert time.monotonic() < deadline, "the rename was never seen"
        time.sleep(0.05)
    assert folder_scans(srv, a.sock) == before + 1
    for m in (a, b):
        m.logout()


def test_the_other_workers_appends_and_flags_while_we_sync(make_server):
    """The other worker's APPEND puts its file in cur/ before it commits the
    row, and its STORE renames inside its transaction: a session syncing
    all the while (NOOP in a loop) waits for those commits instead of
    reading cur/ again, and ends up with the same view."""
    srv = two_workers(make_server)
    a, b = alice_in_each_worker(srv)
    before = folder_scans(srv, a.sock)
    stop = threading.Event()
    errors = []

    def syncer():
        try:
            while not stop.is_set():
                assert a.noop()[0] == "OK"
        except Exception as e:      # reported by the main thread
            errors.append(e)

    t = threading.Thread(target=syncer)
    t.start()
    try:
        for i in range(40):
            assert b.append("INBOX", None, None, b"Subject: %d\r\n\r\nbody\r\n" % i)[0] == "OK"
            assert b.store(str(i + 1), "+FLAGS", r"(\Seen)")[0] == "OK"
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert a.noop()[0] == "OK"     # SEARCH alone need not sync
    typ, data = a.search(None, "SEEN")
    assert typ == "OK" and len(data[0].split()) == 40, data
    # a slow machine may let one commit come later than the grace
    assert folder_scans(srv, a.sock) - before <= 1, srv.log_text()[-3000:]
    for m in (a, b):
        m.logout()


def test_many_changes_of_the_other_worker_are_read_from_cur(make_server):
    """More renames by the other worker between two syncs than the list
    of names holds: cur/ is read once instead, and nothing is missed."""
    srv = two_workers(make_server)
    a, b, extra = in_each_worker(
        srv, lambda: login(srv, "alice@example.test", "alicepw"))
    for m in extra:
        m.logout()
    cur = os.path.join(srv.maildir("alice@example.test"), "cur")
    os.makedirs(cur, exist_ok=True)
    for i in range(300):
        with open(os.path.join(cur, "17000%05d.M1P1Q1.host,S=20:2," % i), "w") as f:
            f.write("Subject: %d\n\nbody\n" % i)
    a.select("INBOX")
    b.select("INBOX")
    before = folder_scans(srv, a.sock)
    assert b.store("1:300", "+FLAGS.SILENT", r"(\Seen)")[0] == "OK"
    # b renames the 300 files at its next flush, a second or so later
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sum(n.endswith(":2,S") for n in os.listdir(cur)) == 300:
            break
        time.sleep(0.05)
    assert sum(n.endswith(":2,S") for n in os.listdir(cur)) == 300
    assert a.noop()[0] == "OK"
    typ, data = a.search(None, "UNSEEN")
    assert typ == "OK" and data == [b""]
    assert folder_scans(srv, a.sock) == before + 1
    for m in (a, b):
        m.logout()


class Tracking(imaplib.IMAP4_SSL):
    """An IMAPS client that keeps the message count as the server tells it
    (EXISTS sets it, each EXPUNGE takes one away), in the order sent."""
    count = 0

    def _append_untagged(self, typ, dat):
        if typ == "EXISTS":
            self.count = int(dat)
        elif typ == "EXPUNGE":
            self.count -= 1
        super()._append_untagged(typ, dat)


def test_sessions_in_both_workers_agree_after_check(make_server):
    """Sessions of one account in both workers append, flag, delete and
    expunge at once; when all have stopped, a CHECK brings each to the same
    view: the count it was told (EXISTS, EXPUNGE) matches its SEARCH ALL,
    and every session sees the same UIDs with the same flags."""
    srv = two_workers(make_server)
    sessions = []
    for _ in range(6):
        m = Tracking("127.0.0.1", srv.ports["IMAPS"], ssl_context=srv.ssl_context())
        m.login("alice@example.test", "alicepw")
        m.select("INBOX")
        sessions.append(m)
    assert len({srv.worker_of(m.sock) for m in sessions}) == 2
    msg = b"From: a@example.org\r\nSubject: t\r\n\r\nbody\r\n"

    def uids(m):
        typ, data = m.uid("SEARCH", None, "ALL")
        assert typ == "OK"
        return [int(x) for x in data[0].split()]

    def work(m, rnd, errors):
        try:
            for _ in range(15):
                op = rnd.random()
                if op < 0.35:
                    assert m.append("INBOX", None, None, msg)[0] == "OK"
                elif op < 0.75:
                    have = uids(m)
                    if have:
                        flag = rnd.choice([r"(\Deleted)", r"(\Seen)", r"(\Flagged)"])
                        m.uid("STORE", str(rnd.choice(have)),
                              rnd.choice(["+FLAGS", "-FLAGS"]), flag)
                else:
                    assert m.expunge()[0] == "OK"
        except Exception as e:      # reported by the main thread
            errors.append(e)

    for rnd_round in range(8):
        errors = []
        threads = [threading.Thread(target=work,
                                    args=(m, random.Random(rnd_round * 10 + i), errors))
                   for i, m in enumerate(sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        views = []
        for m in sessions:
            assert m.check()[0] == "OK"
            have = uids(m)
            assert m.count == len(have), (rnd_round, m.count, len(have))
            # imaplib hands back the FETCHes it kept from earlier commands
            # too: the last one of a message is the answer to this one
            m.untagged_responses.pop("FETCH", None)
            typ, data = m.fetch("1:*", "(UID FLAGS)") if have else ("OK", [])
            assert typ == "OK"
            flags = {}
            for line in data:
                mm = re.match(rb"(\d+) \(UID (\d+) FLAGS \(([^)]*)\)\)", line or b"")
                assert mm, line
                flags[int(mm.group(2))] = (int(mm.group(1)), set(
                    mm.group(3).split()) - {rb"\Recent"})
            views.append((have, flags))
        assert all(v == views[0] for v in views), (rnd_round, views)
    for m in sessions:
        m.logout()
