"""Helpers for the CLI tests: run tegami (or `setup`) on a temp config dir."""
import os
import re
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def binary():
    for name in ("build/tegami-san", "build/tegami"):
        path = os.path.join(ROOT, name)
        if os.access(path, os.X_OK):
            return path
    raise RuntimeError("build tegami first: make SANITIZE=1 build/tegami-san")


class Cli:
    """One config dir + mail dir, and a way to run commands on them."""

    def __init__(self, tmp):
        self.tmp = str(tmp)
        self.config = os.path.join(self.tmp, "config")
        self.mail = os.path.join(self.tmp, "mail")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "CONFIG_DIR": self.config,
            "MAIL_DIR": self.mail,
            "OVERRIDE_HOSTNAME": "mail.example.com",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
        }
        self.setup_link = os.path.join(self.tmp, "bin", "setup")
        os.makedirs(os.path.dirname(self.setup_link), exist_ok=True)
        os.symlink(binary(), self.setup_link)

    def run(self, *args, input=None, setup=False, env=None, prefix=()):
        e = dict(self.env)
        if env:
            e.update(env)
        exe = self.setup_link if setup else binary()
        return subprocess.run(list(prefix) + [exe] + list(args), input=input,
                              capture_output=True, text=True, env=e, timeout=120)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"{args}: rc={r.returncode}\n{r.stdout}\n{r.stderr}"
        assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
        return r

    def fails(self, code, *args, **kw):
        """The command exits with code, says so in one line, and changes no file."""
        before = self.snapshot()
        r = self.run(*args, **kw)
        assert r.returncode == code, f"{args}: rc={r.returncode} (want {code})\n{r.stdout}\n{r.stderr}"
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1, f"{args}: want one line on stderr, got:\n{r.stderr}"
        assert self.snapshot() == before, f"{args} changed files"
        return r

    def path(self, name):
        return os.path.join(self.config, name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read().decode()

    def write(self, name, text, mode=None):
        os.makedirs(os.path.dirname(self.path(name)), exist_ok=True)
        with open(self.path(name), "wb") as f:
            f.write(text.encode())
        if mode is not None:
            os.chmod(self.path(name), mode)

    def mode(self, name):
        return os.stat(self.path(name)).st_mode & 0o7777

    def snapshot(self):
        """Every file under the temp dir (but the lock), with content and mode."""
        out = {}
        for root, dirs, files in os.walk(self.tmp):
            for fn in files:
                p = os.path.join(root, fn)
                if fn == ".tegami.lock" or os.path.islink(p):
                    continue
                st = os.stat(p)
                with open(p, "rb") as f:
                    out[p] = (f.read(), st.st_mode)
            for d in dirs:
                out[os.path.join(root, d) + "/"] = None
        return out


HASH_RE = r"\{SHA512-CRYPT\}\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}"


def account_line(email):
    return re.escape(email) + r"\|" + HASH_RE


def doveadm_verify(stored, password):
    r = subprocess.run(["doveadm", "pw", "-t", stored, "-p", password],
                       capture_output=True, text=True)
    return r.returncode == 0 and "(verified)" in (r.stdout + r.stderr)


def have(tool):
    return shutil.which(tool) is not None


def txt_strings(quoted):
    """The character-strings of a zone-file TXT rdata: "a" "b" -> [a, b]."""
    out = re.findall(r'"((?:[^"\\]|\\.)*)"', quoted)
    rest = re.sub(r'"((?:[^"\\]|\\.)*)"', "", quoted).strip(" \t\n()")
    assert rest == "" or rest.startswith(";"), f"junk outside the strings: {rest!r}"
    return out


def openssl_dkim_p(private_path):
    """The p= value for a private key, computed by the openssl command."""
    der = subprocess.run(["openssl", "pkey", "-in", private_path, "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    import base64
    text = subprocess.run(["openssl", "pkey", "-in", private_path, "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    if "ED25519" in text.upper():
        return "ed25519", base64.b64encode(der[-32:]).decode()
    return "rsa", base64.b64encode(der).decode()
