"""Runs one real tegami server for a test: config, mail and state dirs in a
temp dir, every listener on a free 127.0.0.1 port, a CA-signed certificate
for mail.example.test, and helpers to look into the Maildirs."""
import crypt
import os
import signal
import socket
import ssl
import subprocess
import shutil
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("TEGAMI_BINARY") or (
    os.path.join(ROOT, "build", "tegami-san")
    if os.path.exists(os.path.join(ROOT, "build", "tegami-san"))
    else os.path.join(ROOT, "build", "tegami"))

LISTENERS = ["SMTP", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "POP3", "POP3S"]
HOST = "mail.example.test"


_given_ports = set()


def free_port():
    """A port nothing listens on now and that this process has not handed
    out before: the kernel may give the same free port to two binds in a
    row once the first socket is closed, and two listeners of one server
    must not get the same one."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _given_ports:
            _given_ports.add(port)
            return port


def sha512_crypt(password):
    return "{SHA512-CRYPT}" + crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))


def make_ca(dirpath, names=(HOST,), prefix="server"):
    """A throwaway CA and a certificate for names; returns (ca, cert, key)."""
    ca_key = os.path.join(dirpath, "ca-key.pem")
    ca = os.path.join(dirpath, "ca.pem")
    if not os.path.exists(ca):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key,
                        "-out", ca, "-days", "2", "-subj", "/CN=tegami test CA"],
                       check=True, capture_output=True)
    key = os.path.join(dirpath, f"{prefix}-key.pem")
    csr = os.path.join(dirpath, f"{prefix}.csr")
    cert = os.path.join(dirpath, f"{prefix}-cert.pem")
    ext = os.path.join(dirpath, f"{prefix}.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n")
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", f"/CN={names[0]}"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                    "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext],
                   check=True, capture_output=True)
    return ca, cert, key


class TegamiServer:
    def __init__(self, base, env=None):
        if os.geteuid() == 0:
            # Workers drop to uid 5000 as in production: they must be able to
            # reach the config, mail and state dirs, which pytest's own
            # tmp_path (mode 0700, root) does not allow.
            base = tempfile.mkdtemp(prefix="tegami-test-", dir="/tmp")
            os.chmod(base, 0o755)
            self.cleanup_dir = base
        else:
            self.cleanup_dir = None
        self.base = str(base)
        self.config_dir = os.path.join(self.base, "config")
        self.mail_dir = os.path.join(self.base, "mail")
        self.state_dir = os.path.join(self.base, "state")
        self.tls_dir = os.path.join(self.base, "tls")
        for d in (self.config_dir, self.mail_dir, self.state_dir, self.tls_dir):
            os.makedirs(d, exist_ok=True)
        self.ca, self.cert, self.key = make_ca(self.tls_dir)
        self.ports = {k: free_port() for k in LISTENERS}
        self.log_path = os.path.join(self.base, "tegami.log")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CONFIG_DIR": self.config_dir,
            "MAIL_DIR": self.mail_dir,
            "STATE_DIR": self.state_dir,
            "OVERRIDE_HOSTNAME": HOST,
            "SSL_TYPE": "manual",
            "SSL_CERT_PATH": self.cert,
            "SSL_KEY_PATH": self.key,
            "LOG_LEVEL": "debug",
            # tests connect from 127.0.0.1 over and over; the early-talker
            # pause (default 3 s) has a test of its own
            "SMTP_GREET_PAUSE": "0",
            # No DNS in the test sandbox: SPF/DKIM/DMARC (on by default,
            # as in docker-mailserver) are switched on by the tests that
            # bring their own name server (test_spam*.py).
            "ENABLE_POLICYD_SPF": "0",
            "ENABLE_OPENDKIM": "0",
            "ENABLE_OPENDMARC": "0",
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        }
        for k, p in self.ports.items():
            self.env[f"LISTEN_{k}"] = f"127.0.0.1:{p}"
        if env:
            self.env.update(env)
        self.proc = None
        self.allow_worker_death = False
        self.start_failed = False

    # --- files -----------------------------------------------------------
    def write_config(self, name, text):
        path = os.path.join(self.config_dir, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)

    def add_account(self, address, password):
        path = os.path.join(self.config_dir, "postfix-accounts.cf")
        old = open(path).read() if os.path.exists(path) else ""
        self.write_config("postfix-accounts.cf",
                          old + f"{address}|{sha512_crypt(password)}\n")

    def maildir(self, address, folder=""):
        local, domain = address.split("@")
        d = os.path.join(self.mail_dir, domain, local)
        return os.path.join(d, "." + folder) if folder else d

    def messages(self, address, folder=""):
        """Contents (bytes) of every message in new/ and cur/, oldest first
        (names starting with '.' are no messages, as for every Maildir
        reader: tegami parks expunged files so until they are unlinked)."""
        d = self.maildir(address, folder)
        out = []
        for sub in ("new", "cur"):
            p = os.path.join(d, sub)
            if not os.path.isdir(p):
                continue
            for n in os.listdir(p):
                if n.startswith("."):
                    continue
                fp = os.path.join(p, n)
                out.append((os.stat(fp).st_mtime_ns, n, fp))
        out.sort()
        return [open(fp, "rb").read() for _, _, fp in out]

    def message_files(self, address, folder=""):
        d = self.maildir(address, folder)
        files = []
        for sub in ("new", "cur"):
            p = os.path.join(d, sub)
            if os.path.isdir(p):
                files += [os.path.join(p, n) for n in sorted(os.listdir(p))
                          if not n.startswith(".")]
        return files

    def wait_messages(self, address, count, timeout=10, folder=""):
        end = time.time() + timeout
        while time.time() < end:
            m = self.messages(address, folder)
            if len(m) >= count:
                return m
            time.sleep(0.05)
        raise AssertionError(f"{address}: {len(self.messages(address, folder))} "
                             f"messages, wanted {count}")

    def wait_message_files(self, address, ok, timeout=10, folder=""):
        """The message files once ok(files) holds: flag changes rename
        their files about a second after the STORE (store_names_flush)."""
        end = time.time() + timeout
        while True:
            files = self.message_files(address, folder)
            if ok(files) or time.time() >= end:
                return files
            time.sleep(0.05)

    def queue_entries(self):
        d = os.path.join(self.state_dir, "tegami", "queue", "env")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    # --- process ---------------------------------------------------------
    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BINARY, "serve"], env=self.env, cwd=self.base,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.kill()
                self.start_failed = True
                raise
        return self

    def kill(self):
        """Ends the master at once; its workers follow when their control
        socket closes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def wait_ready(self, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"tegami exited {self.proc.returncode}:\n"
                                     + self.log_text()[-4000:])
            if "event=worker_ready" in self.log_text():
                try:
                    s = socket.create_connection(("127.0.0.1", self.ports["SMTP"]), 1)
                    s.close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError("tegami did not start:\n" + self.log_text()[-4000:])

    def log_text(self):
        try:
            return open(self.log_path, "rb").read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, needle, timeout=10, start=0):
        end = time.time() + timeout
        while time.time() < end:
            t = self.log_text()
            if needle in t[start:]:
                return t
            time.sleep(0.05)
        raise AssertionError(f"log never said {needle!r}:\n" + self.log_text()[-3000:])

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def worker_pids(self, kind="smtp"):
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                             text=True).stdout.split()
        pids = []
        for p in out:
            try:
                cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if len(cmd) >= 3 and cmd[1] == b"worker" and cmd[2] == kind.encode():
                pids.append(int(p))
        return pids

    def worker_of(self, sock, kind="imap"):
        """The pid of the worker serving the client socket sock: the
        server-side socket of its connection, found by port in
        /proc/net/tcp*, then among the workers' fds."""
        port = sock.getsockname()[1]
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in open(table).read().splitlines()[1:]:
                f = line.split()
                if int(f[2].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f[9])
        for pid in self.worker_pids(kind):
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return pid
        return None

    def stop(self, timeout=40):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("tegami did not stop on SIGTERM")

    def stop_and_check(self):
        if self.start_failed:
            return          # the start already failed the test, with the log
        rc = self.stop()
        text = self.log_text()
        bad_words = ["AddressSanitizer", "runtime error:", " panic "]
        if not self.allow_worker_death:
            bad_words.append("event=worker_died")
        for bad in bad_words:
            assert bad not in text, f"log has {bad!r}:\n" + text[-6000:]
        assert rc == 0, f"tegami exited {rc}:\n" + text[-3000:]
        if self.cleanup_dir:
            shutil.rmtree(self.cleanup_dir, ignore_errors=True)

    # --- clients ---------------------------------------------------------
    def ssl_context(self, check_hostname=False):
        """Verifies the chain against the test CA. smtplib names the server
        by the address it dialled (127.0.0.1), so the host name is checked
        only where a test passes server_hostname=HOST itself."""
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = check_hostname
        return ctx

    def status(self):
        r = subprocess.run([BINARY, "status"], env=self.env, capture_output=True,
                           text=True, timeout=10)
        return r
