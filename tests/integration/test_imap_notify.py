"""NOTIFY (RFC 5465) against the real binary: two imaplib sessions of one
account, one with NOTIFY SET, the other (or the smtp worker) changing
mailboxes; the first must be told without asking (no IDLE, no NOOP)."""
import imaplib
import re
import select
import smtplib
import time

for _name in ("NOTIFY", "ENABLE"):
    imaplib.Commands.setdefault(_name, ("AUTH", "SELECTED"))


from imaputil import login, read_response, raw as raw_  # noqa: E402


def raw(m, line):
    """One command; returns (tagged line, [untagged lines without CRLF])."""
    return raw_(m, line, strip=True)


def read_until(m, pattern, timeout=5.0):
    """Reads unsolicited lines (the session sends no command meanwhile)
    until one matches pattern; returns all lines read."""
    got = []
    end = time.time() + timeout
    while time.time() < end:
        m.sock.settimeout(max(0.1, end - time.time()))
        try:
            ln = read_response(m)
        except (TimeoutError, OSError):
            break
        if not ln:
            break
        got.append(ln.rstrip(b"\r\n"))
        if re.search(pattern, got[-1]):
            m.sock.settimeout(None)
            return got
    m.sock.settimeout(None)
    raise AssertionError(f"no line matching {pattern!r} in {got!r}")


def nothing_arrives(m, secs=1.0):
    """True when the server sends nothing for secs (select: a timed-out
    read would leave imaplib's file object unusable)."""
    r, _, _ = select.select([m.sock], [], [], secs)
    return not r and m.sock.pending() == 0


def status_items(line):
    items = re.search(rb"\((.*)\)$", line).group(1).split()
    return {items[i].decode(): int(items[i + 1]) for i in range(0, len(items), 2)}


def test_capability_and_refusals(server):
    m = login(server)
    tag, lines = raw(m, b"CAPABILITY")
    assert b" NOTIFY" in lines[0]
    # RFC 5465 5: for the selected mailbox MessageNew and MessageExpunge go
    # together, and FlagChange needs both
    for bad in (b"NOTIFY SET (selected (MessageNew))",
                b"NOTIFY SET (selected (FlagChange))",
                b"NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
                b"NOTIFY SET", b"NOTIFY BOGUS"):
        tag, _ = raw(m, bad)
        assert b" BAD " in tag, (bad, tag)
    tag, _ = raw(m, b"NOTIFY SET (selected (MessageNew MessageExpunge AnnotationChange))")
    assert b" NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName" \
        b" SubscriptionChange)]" in tag, tag
    tag, _ = raw(m, b"NOTIFY NONE")
    assert b" OK " in tag
    m.logout()


def test_status_for_other_mailboxes(server):
    a = login(server)
    b = login(server)
    tag, lines = raw(a, b"NOTIFY SET STATUS (personal (MessageNew MessageExpunge FlagChange))")
    assert b" OK " in tag
    # the initial STATUS of every mailbox (RFC 5465 6)
    names = {re.match(rb'\* STATUS "?([^" ]+)"? ', ln).group(1) for ln in lines}
    assert {b"INBOX", b"Drafts", b"Sent", b"Trash", b"Junk"} <= names, lines
    drafts = [ln for ln in lines if b"Drafts" in ln][0]
    first = status_items(drafts)
    assert set(first) == {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ"}
    assert first["MESSAGES"] == 0

    # APPEND by the other session: STATUS arrives without a command
    b.append("Drafts", None, None, b"Subject: one\r\n\r\nbody\r\n")
    got = read_until(a, rb"^\* STATUS \"?Drafts\"? ")
    st = status_items(got[-1])
    assert st["MESSAGES"] == 1 and st["UIDNEXT"] == first["UIDNEXT"] + 1
    assert st["UIDVALIDITY"] == first["UIDVALIDITY"]

    # a flag change moves HIGHESTMODSEQ
    b.select("Drafts")
    b.store("1", "+FLAGS", "(\\Flagged)")
    got = read_until(a, rb"^\* STATUS \"?Drafts\"? ")
    st2 = status_items(got[-1])
    assert st2["HIGHESTMODSEQ"] > st["HIGHESTMODSEQ"] and st2["MESSAGES"] == 1

    # an expunge lowers MESSAGES
    b.store("1", "+FLAGS", "(\\Deleted)")
    b.expunge()
    got = read_until(a, rb"^\* STATUS \"?Drafts\"? \(MESSAGES 0 ")
    # the notifying session can still run commands as usual
    tag, lines = raw(a, b"NOOP")
    assert b" OK " in tag
    a.logout()
    b.logout()


def test_lone_events_choose_the_status_items(server):
    a = login(server)
    tag, lines = raw(a, b"NOTIFY SET STATUS (mailboxes Drafts (MessageExpunge))")
    assert lines == [b'* STATUS "Drafts" (MESSAGES 0)'], lines
    tag, lines = raw(a, b"NOTIFY SET STATUS (mailboxes Drafts (FlagChange))")
    assert re.fullmatch(rb'\* STATUS "Drafts" \(UIDVALIDITY \d+ HIGHESTMODSEQ \d+\)',
                        lines[0]), lines
    # without STATUS: nothing before OK
    tag, lines = raw(a, b"NOTIFY SET (mailboxes Drafts (MessageNew MessageExpunge))")
    assert b" OK " in tag and lines == []
    a.logout()


def test_smtp_delivery_into_a_mailbox_not_selected(server):
    a = login(server)
    a.select("Drafts")
    tag, lines = raw(a, b"NOTIFY SET (inboxes (MessageNew MessageExpunge))")
    assert b" OK " in tag and lines == []
    with smtplib.SMTP("127.0.0.1", server.ports["SMTP"], timeout=10) as s:
        s.sendmail("alice@remote.test", ["bob@example.test"],
                   b"From: alice@remote.test\r\nSubject: hi\r\n\r\nHello.\r\n")
    got = read_until(a, rb'^\* STATUS "INBOX" ')
    st = status_items(got[-1])
    assert st["MESSAGES"] == 1 and st["UIDNEXT"] == 2, got
    # Drafts (selected, no selected filter) got nothing
    assert not [ln for ln in got if b"EXISTS" in ln]
    a.logout()


def test_mailbox_names_and_subscriptions(server):
    a = login(server)
    b = login(server)
    tag, _ = raw(a, b"NOTIFY SET (personal (MailboxName SubscriptionChange))")
    assert b" OK " in tag
    b.create("Work")
    assert read_until(a, rb"^\* LIST")[-1] == b'* LIST () "." "Work"'
    b.rename("Work", "Play")
    assert read_until(a, rb"^\* LIST")[-1] == b'* LIST () "." "Play" ("OLDNAME" ("Work"))'
    b.subscribe("Play")
    assert read_until(a, rb"^\* LIST")[-1] == b'* LIST (\\Subscribed) "." "Play"'
    b.unsubscribe("Play")
    assert read_until(a, rb"^\* LIST")[-1] == b'* LIST () "." "Play"'
    b.delete("Play")
    assert read_until(a, rb"^\* LIST")[-1] == b'* LIST (\\NonExistent) "." "Play"'
    # the session that made the changes was not told of them
    tag, lines = raw(b, b"NOOP")
    assert not [ln for ln in lines if ln.startswith(b"* LIST")], lines
    a.logout()
    b.logout()


def test_new_mailbox_in_a_filter_is_watched(server):
    a = login(server)
    b = login(server)
    tag, _ = raw(a, b"NOTIFY SET (subtree Lists (MessageNew MessageExpunge MailboxName))")
    assert b" OK " in tag
    b.create("Lists.tegami")
    assert read_until(a, rb"^\* LIST")[-1] == b'* LIST () "." "Lists.tegami"'
    b.append("Lists.tegami", None, None, b"Subject: l\r\n\r\nx\r\n")
    got = read_until(a, rb'^\* STATUS "Lists.tegami" ')
    assert status_items(got[-1])["MESSAGES"] == 1
    # outside the subtree: nothing
    b.append("Drafts", None, None, b"Subject: d\r\n\r\nx\r\n")
    assert nothing_arrives(a)
    a.logout()
    b.logout()


def test_selected_mailbox_pushed_outside_idle(server):
    a = login(server)
    b = login(server)
    tag, _ = raw(a, b"ENABLE QRESYNC")
    a.select("INBOX")
    tag, _ = raw(a, b"NOTIFY SET (selected (MessageNew (UID FLAGS BODY.PEEK[HEADER.FIELDS"
                    b" (SUBJECT)]) MessageExpunge FlagChange)) (personal (MessageNew"
                    b" MessageExpunge))")
    assert b" OK " in tag
    b.append("INBOX", None, None, b"Subject: pushed\r\n\r\nbody\r\n")
    got = read_until(a, rb"FETCH")
    assert b"* 1 EXISTS" in got
    assert re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Recent\) BODY\[HEADER.FIELDS \(SUBJECT\)\]"
                    rb" \{\d+\}\r\nSubject: pushed\r\n\r\n\)", got[-1]), got[-1]
    # the selected mailbox is never reported by STATUS
    assert not [ln for ln in got if ln.startswith(b"* STATUS")], got
    # the fetch attributes did not mark the message \Seen
    b.select("INBOX")
    typ, data = b.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    b.store("1", "+FLAGS", "(\\Seen)")
    got = read_until(a, rb"^\* 1 FETCH")
    assert re.match(rb"\* 1 FETCH \(UID 1 FLAGS \(\\Recent \\Seen\) MODSEQ \(\d+\)\)", got[-1]), got
    b.store("1", "+FLAGS", "(\\Deleted)")
    b.expunge()
    # QRESYNC: VANISHED, not EXPUNGE
    got = read_until(a, rb"^\* VANISHED")
    assert got[-1] == b"* VANISHED 1"
    tag, _ = raw(a, b"NOTIFY NONE")
    b.append("INBOX", None, None, b"Subject: quiet\r\n\r\nbody\r\n")
    assert nothing_arrives(a)
    a.logout()
    b.logout()


def test_utf8_names_in_filters(server):
    a = login(server)
    tag, _ = raw(a, b"ENABLE UTF8=ACCEPT")
    assert b" OK " in tag
    tag, _ = raw(a, 'CREATE "Café"'.encode())
    assert b" OK " in tag
    tag, lines = raw(a, 'NOTIFY SET STATUS (mailboxes "Café" (MessageExpunge))'.encode())
    assert b" OK " in tag
    assert lines == ['* STATUS "Café" (MESSAGES 0)'.encode()], lines
    tag, _ = raw(a, b'NOTIFY SET (mailboxes "Caf\xff" (MessageNew))')
    assert b" BAD " in tag
    a.logout()


def test_overflow_while_the_client_does_not_read(server):
    """A client stuck in a long FETCH reply it does not read, while another
    session makes mailbox changes: past 64 KiB of waiting LIST responses it
    gets [NOTIFICATIONOVERFLOW] and NOTIFY is off (RFC 5465 5.8)."""
    a = login(server)
    b = login(server)
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 4000   # 4 MB
    for _ in range(5):
        b.append("INBOX", None, None, big)
    a.select("INBOX")
    tag, _ = raw(a, b"NOTIFY SET (personal (MailboxName))")
    assert b" OK " in tag
    ftag = a._new_tag()
    a.send(ftag + b" FETCH 1:* (BODY.PEEK[])\r\n")      # and read nothing yet
    time.sleep(0.5)
    for i in range(1500):
        b.create(f"F{i}")
        b.delete(f"F{i}")
    lines = []
    while True:
        ln = a.readline()
        lit = re.search(rb"\{(\d+)\}\r\n$", ln)
        if lit:
            a.read(int(lit.group(1)))
            ln = b"* FETCH literal" + a.readline()
        if ln.startswith(ftag + b" "):
            assert b" OK " in ln
            break
        lines.append(ln.rstrip(b"\r\n"))
    over = [ln for ln in lines if b"[NOTIFICATIONOVERFLOW]" in ln]
    assert len(over) == 1, [ln for ln in lines if not ln.startswith(b"* FETCH")][:5]
    # what was waiting was dropped, not sent
    assert not [ln for ln in lines if ln.startswith(b"* LIST")]
    # NOTIFY is off now
    b.create("After")
    assert nothing_arrives(a)
    a.logout()
    b.logout()
