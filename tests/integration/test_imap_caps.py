"""The IMAP capabilities that make tegami's set a superset of Dovecot 2.3's
default one, against the real binary with imaplib: PREVIEW (RFC 8970) and
SNIPPET=FUZZY, I18NLEVEL=1 (RFC 5255: SEARCH and SORT under
i;unicode-casemap)."""
import imaplib
import re
import smtplib

# the capabilities Dovecot 2.3.19 (Debian 12) advertises after a login with
# the default settings, every one of which tegami must have too
DOVECOT_DEFAULT = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY "
    "THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND "
    "URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED "
    "I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN "
    "CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY "
    "PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY")


from imaputil import deliver, imaps, raw  # noqa: E402


PLAIN = (b"From: alice@remote.test\r\nTo: bob@example.test\r\nSubject: lunch\r\n\r\n"
         b"Sure,   see you\r\nat noon.\r\n\r\nOn Monday Ann wrote:\r\n> lunch?\r\n"
         b"-- \r\nAlice\r\n")
HTML = (b"From: alice@remote.test\r\nTo: bob@example.test\r\nSubject: news\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"<html><head><style>p{}</style></head><body><p>Caf=C3=A9 &amp; cr=\r\n"
        b"=C3=A8me</p></body></html>\r\n")


def test_capabilities_cover_dovecots_default_set(server):
    m = imaps(server)
    caps = set(c.upper() for c in m.capabilities)      # before the login
    m.login("bob@example.test", "bobpw")
    typ, data = m.capability()
    caps |= set(data[0].decode().upper().split())
    missing = [c for c in DOVECOT_DEFAULT.upper().split() if c not in caps]
    assert missing == [], missing
    m.logout()


def test_preview_and_snippet(server):
    deliver(server, PLAIN)
    deliver(server, HTML)
    m = imaps(server)
    m.login("bob@example.test", "bobpw")
    m.select("INBOX")
    tag, lines = raw(m, b"FETCH 1:2 (UID PREVIEW)")
    assert tag.endswith(b"OK Fetch completed."), tag
    text = b"".join(lines)
    assert b'PREVIEW "Sure, see you at noon."' in text, text
    # 8-bit text goes as a literal to a client without UTF8=ACCEPT
    assert b"PREVIEW {14}\r\nCaf\xc3\xa9 & cr\xc3\xa8me" in text, text
    # RFC 8970's LAZY, alone and in a list, and the draft's SNIPPET
    tag, lines = raw(m, b"FETCH 1 PREVIEW (LAZY)")
    assert tag.endswith(b"OK Fetch completed."), tag
    assert b'PREVIEW "Sure, see you at noon."' in lines[0], lines
    tag, lines = raw(m, b"UID FETCH 1:* (FLAGS PREVIEW (LAZY) RFC822.SIZE)")
    assert tag.endswith(b"OK Fetch completed."), tag
    assert re.search(rb'FLAGS \([^)]*\) PREVIEW "Sure, see you at noon\." RFC822\.SIZE \d+',
                     lines[0]), lines
    tag, lines = raw(m, b"FETCH 1 (SNIPPET (LAZY=FUZZY))")
    assert b'SNIPPET (FUZZY "Sure, see you at noon.")' in lines[0], lines
    # PREVIEW does not mark the message read
    typ, data = m.fetch("1:2", "(FLAGS)")
    assert all(b"\\Seen" not in d for d in data), data
    # unknown modifiers are BAD, a FETCH with CHANGEDSINCE still works
    tag, _ = raw(m, b"FETCH 1 (PREVIEW (FUZZY))")
    assert b" BAD " in tag, tag
    tag, lines = raw(m, b"FETCH 1 PREVIEW (CHANGEDSINCE 0)")
    assert tag.endswith(b"OK Fetch completed."), tag
    assert b"MODSEQ" in lines[0], lines
    m.logout()


def test_search_and_sort_under_unicode_casemap(server):
    import base64
    subjects = ["Caf\u00e9 order", "CAFE\u0301 bill", "cafe menu", "\u00c4rger", "Banana"]
    for subj in subjects:
        deliver(server, (f"From: a@remote.test\r\nTo: bob@example.test\r\n"
                         f"Subject: =?utf-8?b?{base64.b64encode(subj.encode()).decode()}?="
                         f"\r\n\r\nbody\r\n").encode())
    server.wait_messages("bob@example.test", len(subjects))
    m = imaps(server)
    m.login("bob@example.test", "bobpw")
    m.select("INBOX")
    # the UIDs the scan gave each subject (the delivery order need not be it)
    uid_of = {}
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    for item in data:
        if isinstance(item, tuple):
            uid = re.search(rb"UID (\d+)", item[0]).group(1)
            word = base64.b64decode(re.search(rb"\?b\?([^?]+)\?=", item[1]).group(1))
            uid_of[word.decode()] = uid
    assert len(uid_of) == len(subjects), data

    def uids(*names):
        return sorted((uid_of[n] for n in names), key=int)
    # é precomposed, é decomposed: the same; "cafe" is found in both
    for q in ("caf\u00e9", "CAFE\u0301"):
        typ, data = m.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT", q.encode())
        assert sorted(data[0].split(), key=int) == uids(subjects[0], subjects[1]), (q, data)
    typ, data = m.uid("SEARCH", "SUBJECT", "cafe")
    assert sorted(data[0].split(), key=int) == uids(*subjects[:3]), data
    # Ärger sorts among the A's, before Banana
    typ, data = m.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
    assert data[0].split()[:2] == [uid_of["\u00c4rger"], uid_of["Banana"]], data
    m.logout()


def test_url_partial_in_urlfetch_and_catenate(make_server):
    """URL-PARTIAL (RFC 5550 §5): ;PARTIAL=offset.length in a URLAUTH URL
    (with TEGAMI_IMAP_URLAUTH=1) and in a CATENATE URL gives those bytes of
    the section."""
    server = make_server(env={"TEGAMI_IMAP_URLAUTH": "1"},
                         accounts=(("bob@example.test", "bobpw"),))
    deliver(server, b"From: a@remote.test\r\nTo: bob@example.test\r\nSubject: p\r\n\r\n"
                    b"0123456789abcdef\r\n")
    server.wait_messages("bob@example.test", 1)
    m = imaps(server)
    m.login("bob@example.test", "bobpw")
    m.select("INBOX")
    tag, lines = raw(m, b'GENURLAUTH "imap://bob%40example.test@mail.example.test/'
                     b'INBOX/;UID=1/;SECTION=TEXT/;PARTIAL=4.6;URLAUTH=authuser" INTERNAL')
    assert b"OK" in tag, tag
    url = re.search(rb'GENURLAUTH "([^"]+)"', lines[0]).group(1)
    tag, lines = raw(m, b'URLFETCH "' + url + b'"')
    assert b"OK" in tag, tag
    assert lines[0].rstrip().endswith(b'"456789"') or b"{6}\r\n456789" in lines[0], lines
    # offset only: to the end of the section
    tag, lines = raw(m, b'APPEND Drafts CATENATE (TEXT {9+}\r\nSubject: '
                     b' URL "/INBOX/;UID=1/;SECTION=TEXT/;PARTIAL=10")')
    assert b"OK" in tag, tag
    m.select("Drafts")
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == b"Subject: abcdef\r\n", data
    m.logout()


def test_savedate_fetch_and_search(server):
    """SAVEDATE (RFC 8514): when a message was put into its folder, apart
    from its internal date; SAVEDBEFORE/SAVEDON/SAVEDSINCE, and
    SAVEDATESUPPORTED."""
    import time
    m = imaps(server)
    m.login("bob@example.test", "bobpw")
    old = imaplib.Time2Internaldate(time.mktime((2001, 5, 4, 12, 0, 0, 0, 0, -1)))
    assert m.append("Drafts", "", old, b"Subject: old draft\r\n\r\ntext\r\n")[0] == "OK"
    m.select("Drafts")
    today = time.strftime("%d-%b-%Y", time.gmtime())
    tag, lines = raw(m, b"FETCH 1 (INTERNALDATE SAVEDATE)")
    text = lines[0].decode()
    assert 'INTERNALDATE "04-May-2001' in text, text
    saved = re.search(r'(SAVEDATE "[^"]+")', text).group(1)
    when = time.mktime(imaplib.Internaldate2tuple(saved.replace("SAVEDATE", "INTERNALDATE")
                                                  .encode()))
    assert abs(when - time.time()) < 60, (saved, time.time())
    for key, want in ((f"SAVEDON {today}", [b"1"]), (f"SAVEDSINCE {today}", [b"1"]),
                      (f"SAVEDBEFORE {today}", []), ("SAVEDATESUPPORTED", [b"1"]),
                      ("BEFORE 5-May-2001", [b"1"]), ("SAVEDBEFORE 5-May-2001", [])):
        typ, data = m.search(None, *key.split())
        assert data[0].split() == want, (key, data)
    # a copy is saved now; its internal date stays the original's
    assert m.copy("1", "INBOX")[0] == "OK"
    m.select("INBOX")
    tag, lines = raw(m, b"FETCH 1 (INTERNALDATE SAVEDATE)")
    assert 'INTERNALDATE "04-May-2001' in lines[0].decode(), lines
    typ, data = m.search(None, "SAVEDON", today)
    assert data[0].split() == [b"1"], data
    m.logout()
