"""mbsync (Debian package isync) against the real server: mail on the
server to a local Maildir, a local flag change and a local new message
back to the server, then a run with nothing to do, which must transfer
nothing. mbsync speaks TLS itself and checks the certificate against the
test CA and the name mail.example.test; the tunnel only carries its bytes
to 127.0.0.1 (TESTING.md: these clients refuse a bare IP)."""
import imaplib
import os
import re
import smtplib
import subprocess

from tegami_server import HOST


def deliver(srv, n):
    msg = (f"From: alice@remote.test\r\nTo: bob@example.test\r\n"
           f"Subject: sync {n}\r\nMessage-ID: <mbsync{n}@remote.test>\r\n\r\n"
           f"body {n}\r\n").encode()
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.sendmail("alice@remote.test", ["bob@example.test"], msg)
    return msg


def write_config(srv, base):
    local = os.path.join(base, "local")
    os.makedirs(local, exist_ok=True)
    # the tunnel ends when the server closes (mbsync waits for it to)
    tunnel = ("bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d; exec 4<&0; "
              "cat <&4 >&3 2>/dev/null & cat <&3; kill $! 2>/dev/null'"
              % srv.ports["IMAPS"])
    conf = os.path.join(base, "mbsyncrc")
    with open(conf, "w") as f:
        f.write(f"""IMAPAccount test
Host {HOST}
User bob@example.test
Pass bobpw
Tunnel "{tunnel}"
SSLType IMAPS
CertificateFile {srv.ca}
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel test
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
""")
    return conf, os.path.join(local, "INBOX")


def mbsync(conf):
    """Runs mbsync with its protocol trace (-Dn); returns the commands it
    sent the server."""
    r = subprocess.run(["mbsync", "-Dn", "-c", conf, "-a"], capture_output=True,
                       text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    return [line.split(">>> ", 1)[1] for line in out.splitlines() if ">>> " in line]


def transfers(cmds):
    """What moved: bodies fetched, messages appended, flags stored."""
    return (sum("BODY.PEEK[]" in c for c in cmds), sum(" APPEND " in c for c in cmds),
            sum(" STORE " in c for c in cmds))


def local_files(inbox):
    out = []
    for sub in ("cur", "new"):
        d = os.path.join(inbox, sub)
        out += [os.path.join(d, n) for n in sorted(os.listdir(d))] if os.path.isdir(d) else []
    return out


def test_mbsync_both_ways_then_nothing(server, tmp_path):
    sent = [deliver(server, n) for n in range(3)]
    server.wait_messages("bob@example.test", 3)
    conf, inbox = write_config(server, str(tmp_path))

    # 1. the server's mail comes down, byte for byte but for LF line ends
    assert transfers(mbsync(conf)) == (3, 0, 0)
    files = local_files(inbox)
    assert len(files) == 3
    # mbsync adds an X-TUID header line of its own (TESTING.md)
    got = sorted(re.sub(rb"(?m)^X-TUID: .*\n", b"", open(f, "rb").read()) for f in files)
    assert got == sorted(server.messages("bob@example.test"))
    assert all(m.replace(b"\r\n", b"\n").split(b"\n\n")[1] in b"".join(got) for m in sent)

    # 2. a flag set locally and a message written locally go up
    first = files[0]
    name = os.path.basename(first)
    flagged = (first.replace("/new/", "/cur/") +
               ("" if ":2," in name else ":2,")) + "F"
    os.rename(first, flagged)
    with open(os.path.join(inbox, "new", "1700000000.local1.host"), "wb") as f:
        f.write(b"From: bob@example.test\nSubject: written offline\n\nhello\n")
    fetched, appended, stored = transfers(mbsync(conf))
    assert fetched == 0 and appended == 1 and stored >= 1
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["IMAPS"], ssl_context=server.ssl_context())
    m.login("bob@example.test", "bobpw")
    typ, data = m.select("INBOX")
    assert data == [b"4"]
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    text = b" ".join(d[0] + d[1] if isinstance(d, tuple) else d for d in data)
    assert text.count(b"\\Flagged") == 1
    assert b"written offline" in text
    m.logout()
    files_before = {f: open(f, "rb").read() for f in local_files(inbox)}
    server_before = sorted(server.message_files("bob@example.test"))

    # 3. nothing to do: nothing moves either way, nothing is rewritten
    assert transfers(mbsync(conf)) == (0, 0, 0)
    assert {f: open(f, "rb").read() for f in local_files(inbox)} == files_before
    assert sorted(server.message_files("bob@example.test")) == server_before
