"""A docker-mailserver mail folder made by a real Dovecot 2.3 (the one
docker-mailserver v15 runs, with its 10-mail.conf and 15-mailboxes.conf
settings) opens unchanged in tegami, and goes back to Dovecot unchanged.

Dovecot's imap and pop3 binaries run here as throwaway pre-authenticated
sessions (imaplib.IMAP4_stream), no daemon. Dovecot writes everything a
real folder has: Maildir names with ,S=,W= and :2,<flags><keyword
letters>, dovecot-uidlist v3 with W and P extension fields and UID gaps,
dovecot-keywords, a subscriptions file (v2), dovecot.index*, modified
UTF-7 folder names, a \\Noselect parent, and the home/ directory inside
the Maildir root that docker-mailserver's mail_home puts there.

Run: make SANITIZE=1 build/tegami-san && /usr/bin/python3 -m pytest tests/integration/test_dms_mailfolder.py
"""
import imaplib
import os
import re
import shutil
import smtplib
import subprocess

import pytest

DOVECOT_IMAP = "/usr/lib/dovecot/imap"
DOVECOT_POP3 = "/usr/lib/dovecot/pop3"
USER = "joe@example.test"
PASSWORD = "joepw"
# the folders a client sees; Foo exists only as the parent of Foo.Bar
FOLDERS = ["INBOX", "Archive", "Drafts", "Entw&APw-rfe", "Foo.Bar", "Junk",
           "Sent", "Trash", "Work", "Work.Projects"]


def vmail_ids():
    return (5000, 5000) if os.geteuid() == 0 else (os.geteuid(), os.getegid())


class Dovecot:
    """Dovecot 2.3 configured as docker-mailserver v15 configures it."""

    def __init__(self, base, mail_dir):
        self.base = base
        self.conf = os.path.join(base, "dovecot.conf")
        run = os.path.join(base, "dovecot-run")
        self.home = os.path.join(base, "dovecot-home")
        os.makedirs(run, exist_ok=True)
        os.makedirs(self.home, exist_ok=True)
        uid, gid = vmail_ids()
        # 10-mail.conf and 15-mailboxes.conf of docker-mailserver v15
        with open(self.conf, "w") as f:
            f.write(f"""base_dir = {run}
state_dir = {run}
log_path = {base}/dovecot.log
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
mail_home = {mail_dir}/%d/%n/home/
mail_location = maildir:{mail_dir}/%d/%n
maildir_stat_dirs = yes
pop3_save_uidl = yes
namespace inbox {{
  inbox = yes
  mailbox Drafts {{
    auto = subscribe
    special_use = \\Drafts
  }}
  mailbox Junk {{
    auto = subscribe
    special_use = \\Junk
  }}
  mailbox Trash {{
    auto = subscribe
    special_use = \\Trash
  }}
  mailbox Sent {{
    auto = subscribe
    special_use = \\Sent
  }}
}}
""")

    def _cmd(self, binary):
        return (f"env -i USER={USER} HOME={self.home} {binary} -c {self.conf}")

    def imap(self):
        return imaplib.IMAP4_stream(self._cmd(DOVECOT_IMAP))

    def pop3_uidl(self):
        r = subprocess.run(self._cmd(DOVECOT_POP3), shell=True, input=b"UIDL\r\nQUIT\r\n",
                           capture_output=True, timeout=30, check=True)
        return r.stdout.decode()


def msg(n, extra=""):
    return (f"From: sender{n}@remote.test\r\nTo: {USER}\r\nSubject: message {n}\r\n"
            f"Message-ID: <m{n}@remote.test>\r\n{extra}\r\nbody of message {n}\r\n").encode()


def ok(r):
    assert r[0] == "OK", r
    return r[1]


def view(m):
    """What a client sees: folders, subscriptions, and per folder its
    UIDVALIDITY, UIDNEXT and (uid, flags, size, subject) of each message.
    Folders from LIST "" "*" and, for the levels of hierarchy that are no
    folder, LIST "" "%" and "<name>.%": Dovecot lists Foo (\\Noselect) of
    Foo.Bar for "*" too, tegami only for a trailing % (RFC 3501 6.3.8)."""
    folders = {}

    def add_list(pattern):
        for line in ok(m.list('""', pattern)):
            if line is None:
                continue
            attrs, name = re.fullmatch(rb'\(([^)]*)\) "\." (.+)', line).groups()
            folders[name.decode().strip('"')] = set(attrs.decode().split())
    add_list("*")
    add_list("%")
    for name in list(folders):
        add_list(f'"{name}.%"')
    subscribed = set()
    for line in ok(m.lsub('""', "*")):
        subscribed.add(re.fullmatch(rb'\(([^)]*)\) "\." (.+)', line).group(2).decode().strip('"'))
    boxes = {}
    for name in sorted(folders):
        if "\\Noselect" in folders[name]:
            continue
        ok(m.select(f'"{name}"', readonly=True))
        uidvalidity = int(m.untagged_responses["UIDVALIDITY"][-1])
        status = ok(m.status(f'"{name}"', "(UIDNEXT MESSAGES)"))[0].decode()
        uidnext = int(re.search(r"UIDNEXT (\d+)", status).group(1))
        msgs = []
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK", data
        for item in data:
            if not isinstance(item, tuple):
                continue
            meta = item[0].decode()
            uid = int(re.search(r"UID (\d+)", meta).group(1))
            flags = set(re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()) - {"\\Recent"}
            size = int(re.search(r"RFC822\.SIZE (\d+)", meta).group(1))
            subject = item[1].decode().strip()
            msgs.append((uid, frozenset(flags), size, subject))
        boxes[name] = (uidvalidity, uidnext, sorted(msgs))
        m.close()
    return folders, subscribed, boxes


def make_dovecot_folder(dv, root):
    """The mail folder of a docker-mailserver user who has used it for a
    while: what Dovecot itself writes, and what an MTA drops into new/."""
    m = dv.imap()
    assert m.state == "AUTH"        # PREAUTH
    for name in ("Archive", "Foo.Bar", "Entw&APw-rfe", "Work", "Work.Projects"):
        ok(m.create(name))
    for name in ("Archive", "Foo.Bar", "Entw&APw-rfe", "Work.Projects"):
        ok(m.subscribe(name))
    appends = [
        ("INBOX", r"(\Seen)", 1), ("INBOX", r"(\Answered \Flagged $Forwarded)", 2),
        ("INBOX", r"(project-x $Junk)", 3), ("INBOX", r"(\Deleted)", 4),
        ("INBOX", r"(\Draft NonJunk)", 5), ("Archive", r"(\Seen)", 6),
        ("Entw&APw-rfe", r"(\Seen $Label1)", 7),
        # a client's sent copy: Dovecot makes .Sent on the first save;
        # Drafts, Junk and Trash stay virtual (auto=subscribe, no directory)
        ("Sent", r"(\Seen)", 8),
    ]
    for box, flags, n in appends:
        ok(m.append(f'"{box}"', flags, None, msg(n)))
    ok(m.select("INBOX"))
    ok(m.expunge())                 # message 4: a gap in the UIDs
    m.logout()
    # Postfix-style deliveries into new/ that Dovecot then takes in
    uid, gid = vmail_ids()
    for i, n in enumerate((9, 10)):
        p = os.path.join(root, "new", f"17000000{i}0.M{i}P1.mta.example.test")
        with open(p, "wb") as f:
            f.write(msg(n))
        os.chown(p, uid, gid)
    m = dv.imap()
    ok(m.select("INBOX"))
    ok(m.fetch("1:*", "(RFC822.SIZE BODY.PEEK[])"))   # Dovecot adds W= fields
    m.logout()
    # POP3 with pop3_save_uidl: P extension fields in dovecot-uidlist
    assert "+OK" in dv.pop3_uidl()
    # docker-mailserver's home inside the Maildir root, with Sieve scripts
    home = os.path.join(root, "home")
    os.makedirs(os.path.join(home, "sieve"), exist_ok=True)
    with open(os.path.join(home, "sieve", "main.sieve"), "w") as f:
        f.write("keep;\n")
    os.symlink("sieve/main.sieve", os.path.join(home, ".dovecot.sieve"))
    for d, dirs, files in os.walk(home):
        for n in [d] + [os.path.join(d, x) for x in dirs + files]:
            os.lchown(n, uid, gid)


def tegami_imap(srv):
    m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["IMAPS"], ssl_context=srv.ssl_context())
    ok(m.login(USER, PASSWORD))
    return m


def without_tegami_folder_attrs(folders):
    """Attributes both servers give: \\Noselect, children, special-use of
    the four folders docker-mailserver configures (tegami also marks
    Archive as \\Archive, Dovecot does not unless configured to)."""
    keep = {"\\Noselect", "\\HasChildren", "\\HasNoChildren", "\\Drafts", "\\Junk",
            "\\Trash", "\\Sent"}
    return {k: v & keep for k, v in folders.items()}


@pytest.mark.skipif(not os.access(DOVECOT_IMAP, os.X_OK), reason="dovecot-core not installed")
def test_dovecot_folder_opens_unchanged_and_goes_back(make_server):
    srv = make_server(start=False, accounts=((USER, PASSWORD),))
    root = srv.maildir(USER)
    os.makedirs(os.path.dirname(root))
    uid, gid = vmail_ids()
    os.chown(srv.mail_dir, uid, gid)
    os.chown(os.path.dirname(root), uid, gid)
    dv = Dovecot(srv.base, srv.mail_dir)
    make_dovecot_folder(dv, root)

    uidlist = open(os.path.join(root, "dovecot-uidlist")).read()
    # what the fixture must hold to test what it claims
    assert re.search(r"^\d+ W\d+ P[0-9a-f]{16} :1700000000\.M0P1", uidlist, re.M), uidlist
    assert {"dovecot.index.log", "subscriptions"} <= set(os.listdir(root))
    assert os.path.isdir(os.path.join(root, ".Entw&APw-rfe"))
    assert not os.path.exists(os.path.join(root, ".Foo"))
    assert open(os.path.join(root, "subscriptions")).read().startswith("V\t2\n\n")
    assert any(re.search(r",S=\d+,W=\d+:2,FRa$", n) for n in os.listdir(os.path.join(root, "cur")))

    # the other extension fields Dovecot reads (G: the message GUID that
    # dsync and doveadm import set, S: the physical size), added by hand
    # to UID 5's line the way Dovecot writes them
    lines = uidlist.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("5 "):
            base = line.split(" :", 1)[1].strip()
            size = os.path.getsize(next(os.path.join(root, "cur", n)
                                        for n in os.listdir(os.path.join(root, "cur"))
                                        if n.startswith(base)))
            lines[i] = f"5 G0123456789abcdef0123456789abcdef S{size} W{size} :{base}\n"
    with open(os.path.join(root, "dovecot-uidlist"), "w") as f:
        f.write("".join(lines))
    assert "5 G0123456789abcdef" in open(os.path.join(root, "dovecot-uidlist")).read()

    m = dv.imap()
    dovecot_before = view(m)
    m.logout()
    files_before = sorted(os.listdir(root))
    index_files = {n: open(os.path.join(root, n), "rb").read() for n in files_before
                   if n.startswith("dovecot.") or n.startswith("dovecot-uidvalidity")}
    # an MTA delivery while switching over: neither server has seen it
    p = os.path.join(root, "new", "1700000100.M9P1.mta.example.test")
    with open(p, "wb") as f:
        f.write(msg(11))
    os.chown(p, uid, gid)

    srv.start()
    m = tegami_imap(srv)
    folders, subscribed, boxes = view(m)
    d_folders, d_subscribed, d_boxes = dovecot_before
    assert sorted(folders) == sorted(d_folders) == sorted(FOLDERS + ["Foo"])
    assert "home" not in folders
    assert without_tegami_folder_attrs(folders) == without_tegami_folder_attrs(d_folders)
    assert subscribed == d_subscribed
    for name, (uidvalidity, uidnext, msgs) in d_boxes.items():
        t_uidvalidity, t_uidnext, t_msgs = boxes[name]
        assert t_uidvalidity == uidvalidity, name
        if name == "INBOX":
            # the new delivery gets the next UID, after Dovecot's
            assert t_msgs[:-1] == msgs
            assert t_msgs[-1][0] == uidnext and t_msgs[-1][3] == "Subject: message 11"
            assert t_uidnext == uidnext + 1
        else:
            assert (t_uidnext, t_msgs) == (uidnext, msgs), name
    inbox_keywords = {f for _, fl, _, _ in boxes["INBOX"][2] for f in fl if not f.startswith("\\")}
    assert inbox_keywords == {"$Forwarded", "project-x", "$Junk", "NonJunk"}

    # use it: a delivery, a flag and a new keyword, a move, an expunge, a folder
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.sendmail("sender12@remote.test", [USER], msg(12))
    srv.wait_messages(USER, 8)
    ok(m.select("INBOX"))
    ok(m.uid("STORE", "3", "+FLAGS", r"(\Seen tegami-kw)"))
    ok(m.uid("MOVE", "2", "Archive"))
    ok(m.uid("STORE", "1", "+FLAGS", r"(\Deleted)"))
    ok(m.expunge())
    ok(m.create("Reports"))
    ok(m.subscribe("Reports"))
    m.close()
    tegami_after = view(m)
    m.logout()
    assert srv.stop() == 0
    # the Dovecot files tegami does not write are left byte for byte
    for n, data in index_files.items():
        assert open(os.path.join(root, n), "rb").read() == data, n
    assert os.path.exists(os.path.join(root, "home", "sieve", "main.sieve"))
    assert os.path.islink(os.path.join(root, "home", ".dovecot.sieve"))

    # roll back: Dovecot sees what tegami showed
    m = dv.imap()
    dovecot_after = view(m)
    m.logout()
    t_folders, t_subscribed, t_boxes = tegami_after
    d_folders, d_subscribed, d_boxes = dovecot_after
    assert sorted(d_folders) == sorted(t_folders)
    assert d_subscribed == t_subscribed
    for name in t_boxes:
        assert d_boxes[name] == t_boxes[name], name
    assert any("tegami-kw" in fl for _, fl, _, _ in d_boxes["INBOX"][2])
    assert any(s == "Subject: message 2" for _, _, _, s in d_boxes["Archive"][2])
    shutil.rmtree(os.path.join(srv.base, "dovecot-run"), ignore_errors=True)
