"""A bed for `tegami check`: the e2e bed's namespaces and nsd (e2e_bed.py),
with zones of its own, IPv6, and hosts that answer port 25 in three ways.

    tegami-e2e-<pid>-check-br      bridge br0
    tegami-e2e-<pid>-check-dns     10.77.0.2            nsd
    tegami-e2e-<pid>-check-good    10.77.0.11 fd77::11  mx.good.test: every record right
    tegami-e2e-<pid>-check-bad     10.77.0.12 fd77::12  mx.bad.test: the usual mistakes
    tegami-e2e-<pid>-check-open    10.77.0.21 fd77::21  port 25 answers
    tegami-e2e-<pid>-check-refuse  10.77.0.22 fd77::22  port 25 closed (RST)
    tegami-e2e-<pid>-check-drop    10.77.0.23 fd77::23  port 25 open, but its replies
                                                        to good and bad go into a
                                                        blackhole route: a timeout

Zones (nsd): good.test, bad.test, world.test (the port 25 hosts and the
"other" hosts bad.test points at), 0.77.10.in-addr.arpa and the ip6.arpa
zone of fd77::/64.

good.test and sub.good.test: MX to mx.good.test, A/AAAA and PTRs right,
SPF "v=spf1 mx -all", DKIM from `tegami config dkim keytype ed25519`, DMARC
p=quarantine at good.test only (sub.good.test inherits it through the
organizational domain).

bad.test: MX to another host, mx.bad.test's A elsewhere, two SPF records,
the RSA DKIM key published from before it was made again (stale), the
Ed25519 key not published, no DMARC; PTR of 10.77.0.12 names the
provider's host, fd77::12 has none. sub.bad.test: no MX (its own
address is this server), an SPF record with eleven includes, no DKIM key,
no DMARC.

The DKIM records are derived from the private keys with openssl, not with
tegami, so the bed checks tegami's derivation too.
"""
import base64
import os
import subprocess
import time

import e2e_bed
from e2e_bed import DNS_ADDR, Bed, BedError, Host, sh, _txt_strings
from e2e_mail import BINARY

HERE = os.path.dirname(os.path.abspath(__file__))
NET6 = "fd77::"
REV4_ZONE = "0.77.10.in-addr.arpa"
# fd77:0000:0000:0000::/64, nibbles reversed
REV6_ZONE = "0.0.0.0.0.0.0.0.0.0.0.0.7.7.d.f.ip6.arpa"

HOSTS = {
    # role: (domain, IPv4 address); IPv6 is fd77::<last octet>
    "good": ("good.test", "10.77.0.11"),
    "bad": ("bad.test", "10.77.0.12"),
    "open": ("open.world.test", "10.77.0.21"),
    "refuse": ("refuse.world.test", "10.77.0.22"),
    "drop": ("drop.world.test", "10.77.0.23"),
}
# The host bad.test's MX names instead of mx.bad.test, and where its A
# record points.
OLD_MX = "mx.oldhost.world.test"
OLD_MX_ADDR = "10.77.0.50"
WRONG_A = "10.77.0.99"
PROVIDER_PTR = "host-12.provider.world.test"

LISTENER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 25))
s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"220 " + sys.argv[1].encode() + b" ESMTP test listener\r\n")
    c.close()
"""


def v6(addr):
    return NET6 + addr.rsplit(".", 1)[1]


def dkim_value(path, ed25519):
    """The TXT value of a private key, by openssl (independent of tegami)."""
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform",
                          "DER"], capture_output=True, check=True).stdout
    if ed25519:
        return "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


class CheckBed(Bed):
    def __init__(self, workdir):
        super().__init__(workdir)
        self.tag = f"{e2e_bed.PREFIX}{os.getpid()}-check"
        self.hosts = {n: Host(self, n, d, a) for n, (d, a) in HOSTS.items()}
        for h in self.hosts.values():
            h.addr6 = v6(h.addr)
        self.published = {}  # name -> DKIM TXT value in the zone

    def start(self):
        super().start()
        self._port25()

    def _network(self):
        super()._network()
        for role, h in self.hosts.items():
            self.run(role, ["ip", "-6", "addr", "add", f"{h.addr6}/64", "dev",
                            "eth0", "nodad"])

    def tegami(self, config_dir, *args):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "CONFIG_DIR": config_dir, "OVERRIDE_HOSTNAME": "mx.check.test",
               "ASAN_OPTIONS": "detect_leaks=0"}
        r = subprocess.run([BINARY] + list(args), capture_output=True, text=True,
                           env=env, timeout=120)
        if r.returncode != 0:
            raise BedError(f"tegami {' '.join(args)}: {r.returncode}: {r.stderr}")
        return r

    def _keys(self):
        good, bad = self.hosts["good"], self.hosts["bad"]
        # good: RSA + Ed25519 for both domains, all published
        self.tegami(good.config_dir, "config", "dkim", "keytype", "ed25519",
                    "domain", "good.test,sub.good.test")
        for dom in ("good.test", "sub.good.test"):
            kdir = os.path.join(good.config_dir, "opendkim", "keys", dom)
            for sel in ("mail", "mail-ed25519"):
                self.published[f"{sel}._domainkey.{dom}"] = dkim_value(
                    os.path.join(kdir, f"{sel}.private"), sel.endswith("ed25519"))
        # bad: the RSA key is published, then made again (rotation
        # without publishing); the Ed25519 key is never published
        self.tegami(bad.config_dir, "config", "dkim", "keytype", "ed25519",
                    "domain", "bad.test")
        kdir = os.path.join(bad.config_dir, "opendkim", "keys", "bad.test")
        self.published["mail._domainkey.bad.test"] = dkim_value(
            os.path.join(kdir, "mail.private"), False)
        for ext in ("private", "txt"):
            os.unlink(os.path.join(kdir, f"mail.{ext}"))
        self.tegami(bad.config_dir, "config", "dkim", "domain", "bad.test")
        if dkim_value(os.path.join(kdir, "mail.private"), False) == \
                self.published["mail._domainkey.bad.test"]:
            raise BedError("config dkim did not make a new key")

    @staticmethod
    def _soa():
        return ["$TTL 300",
                "@ IN SOA ns.world.test. hostmaster.world.test. 1 3600 600 86400 300",
                "@ IN NS ns.world.test."]

    def _dkim_lines(self, zone):
        """The published DKIM records under zone, relative to it."""
        return [f"{name[:-len(zone) - 1]} IN TXT {_txt_strings(value)}"
                for name, value in self.published.items()
                if name.endswith("." + zone)]

    def zones(self):
        good, bad = self.hosts["good"], self.hosts["bad"]
        z = {}
        z["good.test"] = self._soa() + [
            "@ IN MX 10 mx.good.test.",
            f"mx IN A {good.addr}",
            f"mx IN AAAA {good.addr6}",
            '@ IN TXT "v=spf1 mx -all"',
            '@ IN TXT "google-site-verification=not-spf"',
            '_dmarc IN TXT "v=DMARC1; p=quarantine; adkim=r; aspf=r; '
            'rua=mailto:postmaster@good.test"',
            "sub IN MX 10 mx.good.test.",
            'sub IN TXT "v=spf1 mx -all"',
        ] + self._dkim_lines("good.test")
        z["bad.test"] = self._soa() + [
            f"@ IN MX 10 {OLD_MX}.",
            f"mx IN A {WRONG_A}",
            f"mx IN AAAA {bad.addr6}",
            f'@ IN TXT "v=spf1 ip4:{bad.addr} -all"',
            '@ IN TXT "v=spf1 mx ~all"',
            f"sub IN A {bad.addr}",
            'sub IN TXT "v=spf1 ' + "include:spf.bad.test " * 11 + '-all"',
            f'spf IN TXT "v=spf1 ip4:{OLD_MX_ADDR} -all"',
        ] + self._dkim_lines("bad.test")
        world = [
            f"ns IN A {DNS_ADDR}",
            f"mx.oldhost IN A {OLD_MX_ADDR}",
            f"host-12.provider IN A {bad.addr}",
        ]
        for role in ("open", "refuse", "drop"):
            h = self.hosts[role]
            sub = h.domain[:-len(".world.test")]
            world += [f"{sub} IN MX 10 {h.mx}.", f"mx.{sub} IN A {h.addr}",
                      f"mx.{sub} IN AAAA {h.addr6}"]
        z["world.test"] = self._soa() + world
        rev4 = [f"2 IN PTR ns.world.test.", f"11 IN PTR {good.mx}.",
                f"12 IN PTR {PROVIDER_PTR}."]
        for role in ("open", "refuse", "drop"):
            h = self.hosts[role]
            rev4.append(f"{h.addr.rsplit('.', 1)[1]} IN PTR {h.mx}.")
        z[REV4_ZONE] = self._soa() + rev4
        # fd77::11 only; fd77::12 has no PTR
        nib = ".".join(reversed(f"{int(good.addr.rsplit('.', 1)[1], 16):016x}"))
        z[REV6_ZONE] = self._soa() + [f"{nib} IN PTR {good.mx}."]
        return {name: "\n".join(lines) + "\n" for name, lines in z.items()}

    def _dns(self):
        self.start_nsd(self.zones(), "good", "good.test")

    def _port25(self):
        """open and drop listen on 25; refuse does not; drop's replies to
        good and bad are routed into a blackhole, so their SYNs go
        unanswered (what a provider's filter looks like from inside)."""
        for role in ("open", "drop"):
            h = self.hosts[role]
            p = subprocess.Popen(["ip", "netns", "exec", self.ns(role),
                                  "/usr/bin/python3", "-c", LISTENER, h.mx],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
            self.procs.append(p)
            if p.stdout.readline().strip() != "listening":
                raise BedError(f"the port 25 listener on {role} did not start")
        for role in ("good", "bad"):
            h = self.hosts[role]
            self.run("drop", ["ip", "route", "add", "blackhole", f"{h.addr}/32"])
            self.run("drop", ["ip", "-6", "route", "add", "blackhole",
                              f"{h.addr6}/128"])


def make_cert(dirpath, name, names, days, ca=None):
    """A CA (made once in dirpath) and a certificate for names valid for
    days; returns (ca, cert, key)."""
    ca_key = os.path.join(dirpath, "check-ca-key.pem")
    ca_pem = os.path.join(dirpath, "check-ca.pem")
    if not os.path.exists(ca_pem):
        sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key, "-out", ca_pem,
            "-days", "365", "-subj", "/CN=tegami check CA"])
    key = os.path.join(dirpath, f"{name}-key.pem")
    csr = os.path.join(dirpath, f"{name}.csr")
    cert = os.path.join(dirpath, f"{name}-cert.pem")
    ext = os.path.join(dirpath, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n")
    sh(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={names[0]}"])
    sh(["openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
        "-CAcreateserial", "-out", cert, "-days", str(days), "-extfile", ext])
    return ca_pem, cert, key
