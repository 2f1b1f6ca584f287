"""SEARCH, SORT and THREAD served by the real binary, driven with imaplib:
ESEARCH (RFC 4731), SEARCHRES (RFC 5182), CONTEXT=SEARCH/SORT with
updates across two sessions (RFC 5267), WITHIN (RFC 5032), CHARSET and
search on decoded text, SORT (RFC 5256, RFC 5957), THREAD, UTF8=ACCEPT
mailbox names (RFC 6855)."""
import imaplib
import os
import re
import time

import pytest

USER, PASS = "bob@example.test", "bobpw"


class Client:
    """imaplib for the connection; commands sent as raw lines so that the
    untagged answers can be checked exactly."""

    def __init__(self, srv):
        self.m = imaplib.IMAP4("127.0.0.1", srv.ports["IMAP"])
        self.m.login(USER, PASS)

    def cmd(self, line, literal=None, lit8=False, tail=b""):
        """Sends '<tag> line' (line may end in a {n} literal whose bytes
        are literal, ~{n} with lit8, then tail); returns (untagged
        lines, tagged status line)."""
        tag = self.m._new_tag().decode()
        data = f"{tag} {line}".encode() if isinstance(line, str) else tag.encode() + b" " + line
        if literal is not None:
            data += (b"~{%d}" if lit8 else b"{%d}") % len(literal)
            self.m.send(data + b"\r\n")
            cont = self.m.readline()
            assert cont.startswith(b"+"), cont
            self.m.send(literal + tail + b"\r\n")
        else:
            self.m.send(data + b"\r\n")
        untagged = []
        while True:
            line = self.m.readline()
            assert line, "connection closed"
            if line.startswith(tag.encode() + b" "):
                return untagged, line.rstrip(b"\r\n").decode(errors="replace")
            untagged.append(line.rstrip(b"\r\n").decode(errors="replace"))

    def ok(self, line, literal=None, **kw):
        untagged, status = self.cmd(line, literal, **kw)
        assert status.split(" ")[1] == "OK", (line, status)
        return untagged

    def one(self, line, prefix, literal=None):
        got = [u for u in self.ok(line, literal) if u.upper().startswith(prefix.upper())]
        assert len(got) == 1, (line, got)
        return got[0]

    def append(self, msg, flags="", date=None, box="INBOX"):
        f = f" ({flags})" if flags else ""
        d = f' "{date}"' if date else ""
        return self.ok(f"APPEND {box}{f}{d} ".encode(), literal=msg)

    def close(self):
        try:
            self.m.logout()
        except Exception:
            pass


def mail(subject="s", frm="a@x.test", to="b@x.test", date="Mon, 1 Jan 2024 10:00:00 +0000",
         extra="", body="body\r\n", mid=None, refs=None):
    h = f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
    if mid:
        h += f"Message-ID: {mid}\r\n"
    if refs:
        h += f"References: {refs}\r\n"
    h = (h + extra + "\r\n").encode()
    return h + (body if isinstance(body, bytes) else body.encode())


@pytest.fixture
def c(server):
    cl = Client(server)
    yield cl
    cl.close()


def esearch(line):
    """'* ESEARCH (TAG "x") UID MIN 1 ALL 1:3' -> {'MIN': '1', 'ALL': '1:3', 'UID': True}"""
    m = re.match(r'\* ESEARCH \(TAG "([^"]*)"\)( UID)?(.*)$', line)
    assert m, line
    out = {"TAG": m.group(1), "UID": bool(m.group(2))}
    rest = m.group(3).split()
    i = 0
    while i < len(rest):
        if rest[i] == "PARTIAL":
            j = i + 1
            while not rest[j].endswith(")"):
                j += 1
            out["PARTIAL"] = " ".join(rest[i + 1:j + 1])
            i = j + 1
        else:
            out[rest[i]] = rest[i + 1]
            i += 2
    return out


def test_capabilities_are_advertised(c):
    caps = c.one("CAPABILITY", "* CAPABILITY").split()
    for cap in ("ESEARCH", "SEARCHRES", "WITHIN", "CONTEXT=SEARCH", "CONTEXT=SORT",
                "SORT", "SORT=DISPLAY", "ESORT", "THREAD=REFERENCES", "THREAD=REFS",
                "THREAD=ORDEREDSUBJECT", "UTF8=ACCEPT"):
        assert cap in caps


def test_esearch_min_max_count_all(c):
    for i in range(6):
        c.append(mail(f"m{i}"), flags="\\Seen" if i in (1, 3) else "")
    c.ok("SELECT INBOX")
    c.ok("STORE 4 +FLAGS (\\Deleted)")
    c.ok("EXPUNGE")
    r = esearch(c.one("SEARCH RETURN (MIN MAX COUNT ALL) ALL", "* ESEARCH"))
    assert (r["MIN"], r["MAX"], r["COUNT"], r["ALL"]) == ("1", "5", "5", "1:5")
    # RETURN () is ALL; UIDs skip the expunged one
    r = esearch(c.one("UID SEARCH RETURN () ALL", "* ESEARCH"))
    assert r["UID"] and r["ALL"] == "1:3,5:6"
    r = esearch(c.one("UID SEARCH RETURN (MIN MAX) SEEN", "* ESEARCH"))
    assert (r["MIN"], r["MAX"]) == ("2", "2")
    # nothing found: no MIN/MAX/ALL, COUNT 0
    r = esearch(c.one("SEARCH RETURN (MIN MAX ALL COUNT) 1000", "* ESEARCH"))
    assert r == {"TAG": r["TAG"], "UID": False, "COUNT": "0"}
    # plain SEARCH still answers * SEARCH
    assert c.one("SEARCH SEEN", "* SEARCH") == "* SEARCH 2"
    _, st = c.cmd("SEARCH RETURN (FOO) ALL")
    assert " BAD " in st


def test_esearch_modseq(c):
    for i in range(3):
        c.append(mail(f"m{i}"))
    c.ok("SELECT INBOX (CONDSTORE)")
    mods = {}
    for seq in (1, 3, 2):
        u = c.one(f"STORE {seq} +FLAGS (\\Seen)", f"* {seq} FETCH")
        mods[seq] = int(re.search(r"MODSEQ \((\d+)\)", u).group(1))
    r = esearch(c.one("SEARCH RETURN (MIN) MODSEQ 1", "* ESEARCH"))
    assert r["MIN"] == "1" and int(r["MODSEQ"]) == mods[1]
    r = esearch(c.one("SEARCH RETURN (ALL) MODSEQ 1", "* ESEARCH"))
    assert r["ALL"] == "1:3" and int(r["MODSEQ"]) == max(mods.values())
    r = esearch(c.one(f"SEARCH RETURN (ALL) MODSEQ {mods[2] + 1}", "* ESEARCH"))
    assert "ALL" not in r and "MODSEQ" not in r


def test_searchres_dollar_everywhere(c):
    for i in range(5):
        c.append(mail(f"m{i}"), flags="\\Flagged" if i in (1, 3) else "")
    c.ok("CREATE Saved")
    c.ok("SELECT INBOX")
    # SAVE alone answers no ESEARCH
    assert not [u for u in c.ok("SEARCH RETURN (SAVE) FLAGGED") if "ESEARCH" in u]
    got = c.ok("FETCH $ (FLAGS)")
    assert [u.split()[1] for u in got if "FETCH" in u] == ["2", "4"]
    c.ok("STORE $ +FLAGS (\\Answered)")
    assert c.one("SEARCH ANSWERED", "* SEARCH") == "* SEARCH 2 4"
    assert c.one("UID SEARCH UID $", "* SEARCH") == "* SEARCH 2 4"
    assert c.one("SEARCH NOT $", "* SEARCH") == "* SEARCH 1 3 5"
    c.ok("COPY $ Saved")
    assert c.one("STATUS Saved (MESSAGES)", "* STATUS").endswith("(MESSAGES 2)")
    # MIN MAX SAVE keeps just those two; a search can read $ while saving
    c.ok("SEARCH RETURN (SAVE MIN) 2:5")
    assert c.one("SEARCH $", "* SEARCH") == "* SEARCH 2"
    # a failed SEARCH with SAVE empties $
    _, st = c.cmd("SEARCH RETURN (SAVE) NOSUCHKEY")
    assert " BAD " in st
    assert c.one("SEARCH $", "* SEARCH") == "* SEARCH"
    # a new SELECT empties it too
    c.ok("SEARCH RETURN (SAVE) ALL")
    c.ok("SELECT INBOX")
    assert c.one("SEARCH $", "* SEARCH") == "* SEARCH"
    # expunged messages leave $
    c.ok("SEARCH RETURN (SAVE) FLAGGED")
    c.ok("STORE 2 +FLAGS (\\Deleted)")
    c.ok("EXPUNGE")
    assert c.one("UID SEARCH $", "* SEARCH") == "* SEARCH 4"


def test_context_updates_follow_another_session(server, c):
    for i in range(4):
        c.append(mail(f"m{i}"))
    c.ok("SELECT INBOX")
    other = Client(server)
    try:
        other.ok("SELECT INBOX")
        u = c.ok("UID SEARCH RETURN (UPDATE ALL) SEEN")
        assert esearch(u[0]).get("ALL") is None
        tag = esearch(u[0])["TAG"]
        other.ok("STORE 2:3 +FLAGS (\\Seen)")
        lines = c.ok("NOOP")
        assert f'* ESEARCH (TAG "{tag}") UID ADDTO (0 2:3)' in lines
        other.ok("STORE 2 +FLAGS (\\Deleted)")
        other.ok("EXPUNGE")
        lines = c.ok("NOOP")
        rem = [x for x in lines if "REMOVEFROM" in x]
        assert rem == [f'* ESEARCH (TAG "{tag}") UID REMOVEFROM (0 2)']
        # the REMOVEFROM comes before the EXPUNGE it goes with
        assert lines.index(rem[0]) < lines.index("* 2 EXPUNGE")
        # a new message that matches is added
        other.append(mail("new"), flags="\\Seen")
        lines = c.ok("NOOP")
        assert f'* ESEARCH (TAG "{tag}") UID ADDTO (0 5)' in lines
        # our own STORE is reported in its own answer
        lines = c.ok("STORE 1 +FLAGS (\\Seen)")
        assert f'* ESEARCH (TAG "{tag}") UID ADDTO (0 1)' in lines
        c.ok(f'CANCELUPDATE "{tag}"')
        lines = c.ok("STORE 1 -FLAGS (\\Seen)")
        assert not [x for x in lines if "ESEARCH" in x]
        _, st = c.cmd('CANCELUPDATE "nosuchtag"')
        assert " BAD " in st
    finally:
        other.close()


def test_sort_context_update_gives_positions(server, c):
    for subj in ("b", "d"):
        c.append(mail(subj))
    c.ok("SELECT INBOX")
    u = c.ok("SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 ALL")
    r = esearch(u[0])
    assert r["ALL"] == "1:2"
    # a goes to position 1 of the sorted list; then c to position 3
    lines = c.append(mail("a"))
    assert f'* ESEARCH (TAG "{r["TAG"]}") ADDTO (1 3)' in lines
    other = Client(server)
    try:
        other.append(mail("c"))
        other.append(mail("e"))
    finally:
        other.close()
    lines = c.ok("NOOP")
    assert f'* ESEARCH (TAG "{r["TAG"]}") ADDTO (3 4 5 5)' in lines
    lines = c.ok("STORE 1 +FLAGS (\\Deleted)")
    assert not [x for x in lines if "ESEARCH" in x]
    lines = c.ok("EXPUNGE")
    assert lines[:2] == [f'* ESEARCH (TAG "{r["TAG"]}") REMOVEFROM (0 1)', "* 1 EXPUNGE"]


def test_search_partial(c):
    for i in range(5):
        c.append(mail(f"m{i}"))
    c.ok("SELECT INBOX")
    assert esearch(c.one("SEARCH RETURN (PARTIAL 2:4) ALL", "* ESEARCH"))["PARTIAL"] == "(2:4 2:4)"
    assert esearch(c.one("SEARCH RETURN (PARTIAL 4:2) 1,3:5", "* ESEARCH"))["PARTIAL"] == "(2:4 3:5)"
    assert esearch(c.one("SEARCH RETURN (PARTIAL 6:9) ALL", "* ESEARCH"))["PARTIAL"] == "(6:9 NIL)"
    for bad in ("PARTIAL 1", "PARTIAL 1:*", "PARTIAL 0:2", "PARTIAL 1:2 ALL"):
        _, st = c.cmd(f"SEARCH RETURN ({bad}) ALL")
        assert " BAD " in st, bad


def test_within_older_younger(c):
    now = time.time()
    old = time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(now - 3 * 86400))
    c.append(mail("old"), date=old)
    c.append(mail("new"))
    c.ok("SELECT INBOX")
    assert c.one("SEARCH YOUNGER 3600", "* SEARCH") == "* SEARCH 2"
    assert c.one("SEARCH OLDER 86400", "* SEARCH") == "* SEARCH 1"
    assert c.one("SEARCH OLDER 10 YOUNGER 400000", "* SEARCH") == "* SEARCH 1"
    _, st = c.cmd("SEARCH OLDER 0")
    assert " BAD " in st


def test_search_decoded_text_and_charsets(c):
    c.append(mail("=?iso-8859-1?q?Caf=E9_cr=E8me?=", body="nothing\r\n"))
    c.append(mail("plain", extra="Content-Type: text/plain; charset=iso-8859-1\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n",
                  body="Der B=E4cker =\r\nbackt Br=F6tchen.\r\n"))
    c.append(mail("b64", extra="Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: base64\r\n",
                  body="0J/RgNC40LLQtdGCINC80LjRgA==\r\n"))   # Привет мир
    c.append(mail("koi8", extra="Content-Type: multipart/mixed; boundary=XX\r\n",
                  body=b"--XX\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n"
                  b"\xf0\xd2\xc9\xd7\xc5\xd4\r\n--XX--\r\n"))
    c.ok("SELECT INBOX")
    # SUBJECT on the RFC 2047 word, decoded; upper case finds lower case
    assert c.one('SEARCH CHARSET UTF-8 SUBJECT ', "* SEARCH", literal="CAFÉ".encode()) == "* SEARCH 1"
    # the QP soft line break is gone, the Latin-1 bytes are UTF-8 now
    assert c.one("SEARCH CHARSET UTF-8 BODY ", "* SEARCH",
                 literal="bäcker backt brötchen".encode()) == "* SEARCH 2"
    # the same words sent in ISO-8859-1
    assert c.one("SEARCH CHARSET ISO-8859-1 BODY ", "* SEARCH",
                 literal="BR\xd6TCHEN".encode("latin-1")) == "* SEARCH 2"
    # base64 UTF-8, and KOI8-R inside a multipart
    assert c.one("SEARCH CHARSET UTF-8 TEXT ", "* SEARCH",
                 literal="ПРИВЕТ".encode()) == "* SEARCH 3 4"
    assert c.one("SEARCH BODY ", "* SEARCH", literal="мир".encode()) == "* SEARCH 3"
    # the raw base64 is not what is searched
    assert c.one("SEARCH BODY 0J", "* SEARCH") == "* SEARCH"
    _, st = c.cmd("SEARCH CHARSET X-NO-SUCH BODY x")
    assert " NO [BADCHARSET (UTF-8 US-ASCII" in st
    assert c.one("SEARCH CHARSET US-ASCII HEADER Content-Type koi8", "* SEARCH") == "* SEARCH"
    assert c.one("SEARCH CHARSET US-ASCII BODY koi8", "* SEARCH") == "* SEARCH 4"


def test_search_every_key_parses(c):
    c.append(mail("one", extra="X-Tag: yes\r\n"), flags="\\Seen \\Flagged $Work",
             date="01-Feb-2024 10:00:00 +0000")
    c.append(mail("two", date="Tue, 2 Jan 2024 10:00:00 +0000", body="x" * 2000))
    c.ok("SELECT INBOX")
    cases = {
        "ALL": "1 2", "ANSWERED": "", "UNANSWERED": "1 2", "DELETED": "",
        "UNDELETED": "1 2", "DRAFT": "", "UNDRAFT": "1 2", "FLAGGED": "1",
        "UNFLAGGED": "2", "SEEN": "1", "UNSEEN": "2", "KEYWORD $Work": "1",
        "UNKEYWORD $Work": "2", "NEW": "2", "OLD": "", "RECENT": "1 2",
        "LARGER 1000": "2", "SMALLER 1000": "1", "BEFORE 02-Feb-2024": "1",
        "ON 01-Feb-2024": "1", "SINCE 02-Feb-2024": "2",
        "SENTBEFORE 02-Jan-2024": "1", "SENTON 02-Jan-2024": "2",
        "SENTSINCE 02-Jan-2024": "2", "FROM a@x": "1 2", "TO b@x.test": "1 2",
        "CC x": "", "BCC x": "", "SUBJECT TWO": "2", "HEADER X-Tag \"\"": "1",
        "HEADER x-tag YES": "1", "BODY xxxx": "2", "TEXT x-tag": "1",
        "NOT SEEN": "2", "OR SEEN LARGER 1000": "1 2", "(SEEN FLAGGED)": "1",
        "UID 2": "2", "2:*": "2", "*": "2", "1,2 NOT 1": "2",
    }
    for key, want in cases.items():
        got = c.one(f"SEARCH {key}", "* SEARCH")
        assert got == ("* SEARCH " + want).rstrip(), (key, got)
    for bad in ("NOSUCH", "LARGER x", "BEFORE 1-Foo-2020", "OR SEEN", "()", "UID x:y"):
        _, st = c.cmd(f"SEARCH {bad}")
        assert " BAD " in st, bad


def test_sort_every_key(c):
    c.append(mail("Re: banana", frm="Zed <z@x.test>", to="m@x.test",
                  date="Wed, 3 Jan 2024 10:00:00 +0000", extra="Cc: c2@x.test\r\n"),
             date="03-Jan-2024 00:00:00 +0000")
    c.append(mail("apple", frm="b@x.test", to="Anna <n@x.test>",
                  date="Wed, 3 Jan 2024 09:00:00 -0200", body="y" * 500,
                  extra="Cc: c1@x.test\r\n"), date="01-Jan-2024 00:00:00 +0000")
    c.append(mail("[list] Cherry", frm="=?utf-8?q?=C3=84rger?= <a@x.test>",
                  to="o@x.test", date="Mon, 1 Jan 2024 10:00:00 +0000"),
             date="02-Jan-2024 00:00:00 +0000")
    c.ok("SELECT INBOX")
    want = {
        "(ARRIVAL)": "2 3 1", "(REVERSE ARRIVAL)": "1 3 2", "(SUBJECT)": "2 1 3",
        "(DATE)": "3 1 2", "(REVERSE DATE)": "2 1 3", "(FROM)": "3 2 1",
        "(TO)": "1 2 3", "(CC)": "3 2 1", "(SIZE)": "1 3 2", "(REVERSE SIZE)": "2 3 1",
        # RFC 5051: Ärger is A + U+0308 and sorts with the A's
        "(DISPLAYFROM)": "3 2 1", "(DISPLAYTO)": "2 1 3",
        "(SUBJECT REVERSE ARRIVAL)": "2 1 3",
    }
    for crit, order in want.items():
        assert c.one(f"SORT {crit} UTF-8 ALL", "* SORT") == f"* SORT {order}", crit
    assert c.one("UID SORT (SUBJECT) UTF-8 NOT SUBJECT apple", "* SORT") == "* SORT 1 3"
    r = esearch(c.one("SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL", "* ESEARCH"))
    assert (r["MIN"], r["MAX"], r["COUNT"], r["ALL"]) == ("2", "3", "3", "2,1,3")
    r = esearch(c.one("SORT RETURN (PARTIAL 2:3) (REVERSE ARRIVAL) UTF-8 ALL", "* ESEARCH"))
    assert r["PARTIAL"] == "(2:3 3,2)"
    for bad in ("SORT () UTF-8 ALL", "SORT (FOO) UTF-8 ALL", "SORT (REVERSE) UTF-8 ALL",
                "SORT (SUBJECT) ALL", "SORT (SUBJECT)"):
        _, st = c.cmd(bad)
        assert " BAD " in st, bad
    _, st = c.cmd("SORT (SUBJECT) X-NO-SUCH ALL")
    assert " NO [BADCHARSET" in st


def test_thread_algorithms(c):
    d = "Mon, 1 Jan 2024 10:00:%02d +0000"
    c.append(mail("hello", mid="<1@t>", date=d % 1))
    c.append(mail("Re: hello", mid="<2@t>", refs="<1@t>", date=d % 2))
    c.append(mail("other", mid="<3@t>", date=d % 3))
    c.append(mail("Re: hello", mid="<4@t>", refs="<1@t> <2@t>", date=d % 4))
    c.append(mail("Re: hello", mid="<5@t>", refs="<1@t>", date=d % 5))
    c.append(mail("Re: other", mid="<6@t>", refs="<lost@t>", date=d % 6))
    c.ok("SELECT INBOX")
    assert c.one("THREAD REFERENCES UTF-8 ALL", "* THREAD") == \
        "* THREAD (1 (2 4)(5))(3 6)"
    # REFS: no subject gathering; threads by their newest message
    assert c.one("THREAD REFS UTF-8 ALL", "* THREAD") == "* THREAD (3)(1 (2 4)(5))(6)"
    assert c.one("THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD") == \
        "* THREAD (1 (2)(4)(5))(3 6)"
    assert c.one("UID THREAD REFERENCES UTF-8 NOT 3", "* THREAD") == \
        "* THREAD (1 (2 4)(5))(6)"
    assert c.one("THREAD REFERENCES UTF-8 SUBJECT nothing", "* THREAD") == "* THREAD"
    for bad in ("THREAD FOO UTF-8 ALL", "THREAD REFERENCES", "THREAD REFERENCES UTF-8 FOO"):
        _, st = c.cmd(bad)
        assert " BAD " in st, bad


def test_utf8_accept_mailbox_names(server, c):
    legacy = Client(server)
    try:
        assert c.one("ENABLE UTF8=ACCEPT", "* ENABLED") == "* ENABLED UTF8=ACCEPT"
        c.ok('CREATE "Entwürfe"'.encode())
        c.append(mail("x"), box='"Entwürfe"')
        lst = c.ok('LIST "" "Entw*"'.encode())
        assert lst == ['* LIST (\\HasNoChildren) "." "Entwürfe"']
        assert c.one('STATUS "Entwürfe" (MESSAGES)'.encode(), "* STATUS") == \
            '* STATUS "Entwürfe" (MESSAGES 1)'
        c.ok('SELECT "Entwürfe"'.encode())
        # on disk, and to a client without UTF8=ACCEPT: modified UTF-7
        assert os.path.isdir(os.path.join(server.maildir(USER), ".Entw&APw-rfe"))
        assert legacy.ok('LIST "" "Entw*"') == ['* LIST (\\HasNoChildren) "." "Entw&APw-rfe"']
        c.ok('RENAME "Entwürfe" "Brouillons & Co"'.encode())
        assert legacy.ok('LIST "" "Brou*"') == ['* LIST (\\HasNoChildren) "." "Brouillons &- Co"']
        _, st = c.cmd(b'CREATE "bad \xff"')
        assert " BAD " in st
        # RFC 6855 §4: APPEND ... UTF8 (~{n}) with UTF-8 headers
        msg = "From: Jörg <j@x.test>\r\nSubject: Grüße\r\n\r\nhi\r\n".encode()
        c.ok(b"APPEND INBOX UTF8 (", literal=msg, lit8=True, tail=b")")
        c.ok("SELECT INBOX")
        env = c.one("FETCH 1 (ENVELOPE)", "* 1 FETCH")
        # quoted UTF-8 for this client...
        assert '"Grüße"' in env and '(("Jörg" NIL "j" "x.test"))' in env
        # ...while the other gets the same bytes as literals
        legacy.ok("SELECT INBOX")
        lines = legacy.ok("FETCH 1 (ENVELOPE)")
        assert "{7}" in lines[0] and not any('"Grüße"' in x for x in lines)
        # the UTF8 item means nothing before ENABLE
        _, st = legacy.cmd(b"APPEND INBOX UTF8 (", literal=msg, lit8=True, tail=b")")
        assert " BAD " in st
    finally:
        legacy.close()


def test_hostile_search_input_ends_nothing(c):
    c.append(mail("x"))
    c.ok("SELECT INBOX")
    deep = "(" * 40 + "ALL" + ")" * 40
    for bad in ("SEARCH " + deep, "SEARCH " + "NOT " * 100 + "ALL",
                "SEARCH RETURN", "SEARCH RETURN (PARTIAL", "SORT RETURN (ALL) (ARRIVAL)",
                "THREAD REFERENCES UTF-8 " + "OR " * 50 + "ALL"):
        _, st = c.cmd(bad)
        assert " BAD " in st, bad
    assert c.one("SEARCH ALL", "* SEARCH") == "* SEARCH 1"


def fifo_reader_waiting(path):
    """A writer's end of the FIFO once something is opening it to read
    (the open of a reader waiting on a FIFO counts as a reader), else None."""
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return None


def files_by_subject(srv):
    """{subject: (file name in cur/, content)} of USER's INBOX."""
    cur = os.path.join(srv.maildir(USER), "cur")
    out = {}
    for name in os.listdir(cur):
        with open(os.path.join(cur, name), "rb") as f:
            data = f.read()
        out[re.search(rb"Subject: (\S+)", data).group(1).decode()] = (name, data)
    return out


def held_by_a_fifo(srv, a, b, subject, line, meanwhile=None):
    """Sends `line` in session a with the file of the message `subject`
    made a FIFO of the same name (the index keeps it; reading it waits
    for a writer). Once the worker is reading it, b must be served (the
    worker has one loop), then meanwhile(b) runs; then the FIFO gives the
    old content, and becomes a file again. Returns a's untagged lines."""
    cur = os.path.join(srv.maildir(USER), "cur")
    name, content = files_by_subject(srv)[subject]
    fifo = os.path.join(cur, name)
    os.unlink(fifo)
    os.mkfifo(fifo, 0o644)
    tag = a.m._new_tag().decode()
    a.m.send(f"{tag} {line}\r\n".encode())
    end = time.time() + 10
    w = fifo_reader_waiting(fifo)
    while w is None and time.time() < end:
        time.sleep(0.02)
        w = fifo_reader_waiting(fifo)
    assert w is not None, "the command never opened the FIFO"
    try:
        b.m.sock.settimeout(5)
        b.ok("NOOP")
        if meanwhile:
            meanwhile(b)
    finally:
        os.write(w, content)
        os.close(w)
    untagged = []
    while True:
        got = a.m.readline()
        assert got, "connection closed"
        if got.startswith(tag.encode() + b" "):
            assert got.split()[1] == b"OK", got
            break
        untagged.append(got.decode().rstrip())
    os.unlink(fifo)
    with open(fifo, "wb") as f:
        f.write(content)
    return untagged


@pytest.fixture
def one_worker(make_server):
    """Two sessions of USER in the only imap worker, INBOX selected in
    both, messages with the subjects m0, m1, m2 containing "zebra"."""
    srv = make_server(env={"TEGAMI_IMAP_WORKERS": "1"}, accounts=((USER, PASS),))
    a, b = Client(srv), Client(srv)
    for i in range(3):
        a.append(mail(f"m{i}", body=f"the zebra {i}\r\n"))
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    yield srv, a, b
    a.close()
    b.close()


def test_text_search_reads_files_off_the_loop(one_worker):
    """SEARCH BODY reads the message files on a pool thread: while one
    file holds that read, another session of the same worker is served,
    and a file renamed meanwhile by a flag change is still searched,
    under its new name."""
    srv, a, b = one_worker
    renamed = files_by_subject(srv)["m2"][0]

    def flag_the_third(b):
        b.ok("STORE 3 +FLAGS (\\Flagged)")
        # the file takes its new name at the worker's next flush
        cur = os.path.join(srv.maildir(USER), "cur")
        end = time.time() + 10
        while renamed in os.listdir(cur) and time.time() < end:
            time.sleep(0.05)
        assert renamed not in os.listdir(cur)
    untagged = held_by_a_fifo(srv, a, b, "m0", "SEARCH BODY zebra", flag_the_third)
    assert [u for u in untagged if u.startswith("* SEARCH")] == ["* SEARCH 1 2 3"], untagged


def test_sort_and_thread_read_keys_off_the_loop(one_worker):
    """The sort keys a fresh cache lacks are read on a pool thread too."""
    srv, a, b = one_worker
    untagged = held_by_a_fifo(srv, a, b, "m1", "SORT (REVERSE SUBJECT) UTF-8 ALL")
    assert [u for u in untagged if u.startswith("* SORT")] == ["* SORT 3 2 1"], untagged
    # the keys are cached now: another SORT reads no file, a FIFO or not
    assert a.one("SORT (SUBJECT) UTF-8 ALL", "* SORT") == "* SORT 1 2 3"
    a.ok("SELECT INBOX")    # a new selection starts from the index's cache
    a.append(mail("m3", body="x\r\n", refs="<none@x>"))
    a.ok("NOOP")
    untagged = held_by_a_fifo(srv, a, b, "m3", "THREAD REFERENCES UTF-8 ALL")
    assert [u for u in untagged if u.startswith("* THREAD")] == ["* THREAD (1)(2)(3)(4)"], untagged
