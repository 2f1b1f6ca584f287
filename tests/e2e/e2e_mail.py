"""Real tegami instances on the bed: one per host namespace, with the
host's domain, its DKIM keys (copied from the bed), a certificate for
mx.<domain> from a throwaway CA, and listeners on <addr>:25 and :587.

    with MailHost(bed, "a", ca_dir) as a:
        a.add_account("alice@a.test", "pw")
        a.submit("alice@a.test", "pw", "bob@b.test", msg)

The server runs as root in the namespace and its workers drop to uid 5000
as in production, so its directories live in a fresh 0755 dir under /tmp
and the DKIM keys are handed to that uid."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from tegami_server import BINARY, make_ca, sha512_crypt  # noqa: E402

VMAIL = 5000

SUBMIT = r"""
import smtplib, ssl, sys
host, port, user, pw, frm, to, cafile = sys.argv[1:8]
msg = sys.stdin.buffer.read()
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
with smtplib.SMTP(host, int(port), timeout=20) as s:
    s.starttls(context=ctx)
    s.login(user, pw)
    s.sendmail(frm, to.split(","), msg)
print("submitted")
"""


class MailHost:
    def __init__(self, bed, name, ca_dir, env=None):
        self.bed = bed
        self.name = name
        self.host = bed.hosts[name]
        self.domain = self.host.domain
        self.addr = self.host.addr
        self.base = tempfile.mkdtemp(prefix=f"tegami-e2e-{name}-", dir="/tmp")
        os.chmod(self.base, 0o755)
        self.config_dir = os.path.join(self.base, "config")
        self.mail_dir = os.path.join(self.base, "mail")
        self.state_dir = os.path.join(self.base, "state")
        for d in (self.config_dir, self.mail_dir, self.state_dir):
            os.makedirs(d)
        shutil.copytree(os.path.join(self.host.config_dir, "opendkim"),
                        os.path.join(self.config_dir, "opendkim"))
        for root, dirs, files in os.walk(os.path.join(self.config_dir, "opendkim")):
            for n in dirs + files:
                os.chown(os.path.join(root, n), VMAIL, VMAIL)
        self.ca, self.cert, self.key = make_ca(ca_dir, names=(self.host.mx,),
                                               prefix=name)
        self.log_path = os.path.join(self.base, "tegami.log")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CONFIG_DIR": self.config_dir,
            "MAIL_DIR": self.mail_dir,
            "STATE_DIR": self.state_dir,
            "OVERRIDE_HOSTNAME": self.host.mx,
            "SSL_TYPE": "manual",
            "SSL_CERT_PATH": self.cert,
            "SSL_KEY_PATH": self.key,
            "LOG_LEVEL": "debug",
            "LISTEN_SMTP": f"{self.addr}:25",
            "LISTEN_SUBMISSION": f"{self.addr}:587",
            "LISTEN_SUBMISSIONS": "",
            "LISTEN_IMAP": "",
            "LISTEN_IMAPS": "",
            "LISTEN_POP3": "",
            "LISTEN_POP3S": "",
            "TEGAMI_QUEUE_RETRY_FIRST": "1",
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        }
        if env:
            self.env.update(env)
        self.proc = None
        self.log = None

    # -- files
    def add_account(self, address, password):
        path = os.path.join(self.config_dir, "postfix-accounts.cf")
        old = open(path).read() if os.path.exists(path) else ""
        with open(path + ".tmp", "w") as f:
            f.write(old + f"{address}|{sha512_crypt(password)}\n")
        os.rename(path + ".tmp", path)

    def messages(self, address, folder=""):
        """Messages of the account's INBOX, or of a Maildir++ folder,
        oldest first by the files' mtimes across new/ and cur/: listing
        new/ and then cur/ would put an older message that was moved to
        cur/ after the last delivery, which [-1] then takes for it. A
        file whose name starts with a dot is not a message (Maildir): an
        expunged message waits as `.expunged.*` until it is unlinked."""
        local, domain = address.split("@")
        found = []
        for sub in ("new", "cur"):
            p = os.path.join(self.mail_dir, domain, local,
                             "." + folder if folder else "", sub)
            if os.path.isdir(p):
                for n in os.listdir(p):
                    if n.startswith("."):
                        continue
                    try:
                        with open(os.path.join(p, n), "rb") as f:
                            found.append((os.fstat(f.fileno()).st_mtime_ns,
                                          n, f.read()))
                    except FileNotFoundError:
                        pass    # renamed (a flag change) or expunged meanwhile
        found.sort(key=lambda t: (t[0], t[1]))
        return [data for _, _, data in found]

    def wait_messages(self, address, count, timeout=20, folder=""):
        end = time.time() + timeout
        while time.time() < end:
            m = self.messages(address, folder)
            if len(m) >= count:
                return m
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: {address} has "
                             f"{len(self.messages(address, folder))} "
                             f"messages{' in ' + folder if folder else ''}, wanted "
                             f"{count}\n--- log:\n" + self.log_text()[-5000:])

    def wait_log(self, needle, timeout=20, start=0):
        end = time.time() + timeout
        while time.time() < end:
            if needle in self.log_text()[start:]:
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: log never said {needle!r}\n--- log:\n"
                             + self.log_text()[-5000:])

    def queue_entries(self):
        d = os.path.join(self.state_dir, "tegami", "queue", "env")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def log_text(self):
        try:
            return open(self.log_path, "rb").read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- process
    def start(self):
        self.log = open(self.log_path, "ab")
        mark = len(self.log_text())
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.bed.ns(self.name),
                                      BINARY, "serve"], env=self.env, cwd=self.base,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        end = time.time() + 20
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"tegami on {self.name} exited:\n"
                                     + self.log_text()[-4000:])
            t = self.log_text()[mark:]
            if re.search(r"smtp\[\d+\]: info event=worker_ready", t) and \
                    re.search(r"queue\[\d+\]: info event=worker_ready", t):
                return self
            time.sleep(0.05)
        raise AssertionError(f"tegami on {self.name} did not start:\n"
                             + self.log_text()[-4000:])

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None

    def check_log(self):
        text = self.log_text()
        for bad in ("AddressSanitizer", "runtime error:", " panic ",
                    "event=worker_died"):
            assert bad not in text, f"{self.name}: log has {bad!r}:\n" + text[-6000:]

    def close(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- clients
    def cli(self, args, check=True):
        r = self.bed.run(self.name, [BINARY] + list(args), check=False, timeout=30,
                         env=self.env)
        if check and r.returncode != 0:
            raise AssertionError(f"tegami {' '.join(args)}: {r.returncode}\n"
                                 f"{r.stdout}{r.stderr}")
        return r

    def submit(self, user, password, frm, to, msg):
        r = subprocess.run(["ip", "netns", "exec", self.bed.ns(self.name),
                            "/usr/bin/python3", "-c", SUBMIT, self.addr, "587",
                            user, password, frm, to, self.ca],
                           input=msg, capture_output=True, timeout=30)
        assert r.returncode == 0 and b"submitted" in r.stdout, \
            (r.stdout + r.stderr).decode() + "\n--- log:\n" + self.log_text()[-4000:]
