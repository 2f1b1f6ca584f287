"""POP3 UIDLs after a migration from Dovecot: a real Dovecot (Debian's
dovecot-pop3d, throwaway config, docker-mailserver's pop3_uidl_format
%08Xu%08Xv) serves a Maildir; the same Maildir, copied with its
dovecot-uidlist, is then served by tegami, which must answer the same
UIDLs, so a POP3 client that leaves mail on the server downloads nothing
again. A mailbox tegami made itself keeps its base-name UIDLs."""
import os
import poplib
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

import pytest

from tegami_server import free_port

MSGS = [b"From: a@remote.test\nSubject: one\n\nfirst\n",
        b"From: b@remote.test\nSubject: two\n\nsecond\n",
        b"From: c@remote.test\nSubject: three\n\nthird\n"]


def write_maildir(root):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for i, body in enumerate(MSGS):
        sub = "cur" if i == 0 else "new"
        name = f"17000000{i:02d}.M1P1Q{i}.oldhost" + (":2,S" if sub == "cur" else "")
        with open(os.path.join(root, sub, name), "wb") as f:
            f.write(body)


def chown_tree(path, uid, gid):
    for d, dirs, files in os.walk(path):
        os.chown(d, uid, gid)
        for f in files:
            os.chown(os.path.join(d, f), uid, gid)


def uidls(port, user, password):
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    p.user(user)
    p.pass_(password)
    _, lines, _ = p.uidl()
    p.quit()
    return [line.decode().split(" ", 1)[1] for line in lines]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def run_dovecot(base, maildir, port):
    """Starts Dovecot with a config of its own under base; returns its pid."""
    run = os.path.join(base, "run")
    os.makedirs(run)
    users = os.path.join(base, "users")
    with open(users, "w") as f:
        f.write("bob@example.test:{PLAIN}bobpw:5000:5000::%s::\n" % maildir)
    conf = os.path.join(base, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(f"""protocols = pop3
listen = 127.0.0.1
base_dir = {run}
instance_name = tegami-test-dovecot
log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 5000
mail_location = maildir:{maildir}
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
""")
    # it forks into the background: no pipes it would keep open
    subprocess.run(["dovecot", "-c", conf], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    wait_port(port)
    # the master writes its pid file a moment after its listener is up
    pidfile = os.path.join(run, "master.pid")
    end = time.time() + 10
    while True:
        try:
            with open(pidfile) as f:
                return int(f.read().strip()), conf
        except (OSError, ValueError):
            if time.time() > end:
                raise
            time.sleep(0.05)


@pytest.mark.skipif(os.geteuid() != 0, reason="Dovecot serves uid 5000 mail as root")
def test_uidls_are_dovecots_after_a_migration(make_server):
    # Dovecot's auth process (user dovecot) must reach its files
    dc = tempfile.mkdtemp(prefix="tegami-test-dovecot-", dir="/tmp")
    os.chmod(dc, 0o755)
    try:
        migrate_and_compare(make_server, dc)
    finally:
        shutil.rmtree(dc, ignore_errors=True)


def migrate_and_compare(make_server, dc):
    old = os.path.join(dc, "mail", "bob")
    write_maildir(old)
    chown_tree(os.path.join(dc, "mail"), 5000, 5000)
    port = free_port()
    pid, conf = run_dovecot(dc, old, port)
    try:
        dovecot_uidls = uidls(port, "bob@example.test", "bobpw")
    finally:
        subprocess.run(["doveadm", "-c", conf, "stop"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        end = time.time() + 10
        while time.time() < end and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.05)
        if os.path.exists(f"/proc/{pid}"):
            os.kill(pid, signal.SIGKILL)
    assert len(dovecot_uidls) == 3
    assert os.path.exists(os.path.join(old, "dovecot-uidlist"))

    srv = make_server(env={"ENABLE_POP3": "1"},
                      accounts=(("bob@example.test", "bobpw"),), start=False)
    new = srv.maildir("bob@example.test")
    os.makedirs(os.path.dirname(new), exist_ok=True)
    shutil.copytree(old, new, symlinks=True)
    for junk in os.listdir(new):        # Dovecot's own index is not ours
        if junk.startswith("dovecot.index"):
            os.unlink(os.path.join(new, junk))
    chown_tree(os.path.dirname(new), 5000, 5000)
    srv.start()
    assert uidls(srv.ports["POP3"], "bob@example.test", "bobpw") == dovecot_uidls
    # stable: the same again, and after an IMAP session looked at the folder
    assert uidls(srv.ports["POP3"], "bob@example.test", "bobpw") == dovecot_uidls


def test_tegami_mailbox_keeps_base_name_uidls(make_server):
    srv = make_server(env={"ENABLE_POP3": "1"},
                      accounts=(("bob@example.test", "bobpw"),))
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.sendmail("a@remote.test", ["bob@example.test"],
                   MSGS[0].replace(b"\n", b"\r\n"))
    srv.wait_messages("bob@example.test", 1)
    got = uidls(srv.ports["POP3"], "bob@example.test", "bobpw")
    [path] = srv.message_files("bob@example.test")
    base = os.path.basename(path).split(":")[0].split(",")[0]
    assert got == [base]
    # the index is there now, and the UIDL did not change with it
    assert os.path.exists(os.path.join(srv.maildir("bob@example.test"),
                                       "tegami-index.sqlite"))
    assert uidls(srv.ports["POP3"], "bob@example.test", "bobpw") == [base]
