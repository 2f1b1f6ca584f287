"""A little internet for end-to-end tests: network namespaces, a bridge,
an authoritative DNS server (nsd) and one namespace per mail host.

    with Bed(workdir) as bed:
        bed.run("a", ["dig", "+short", "MX", "b.test"])

Layout (addresses exist only inside the namespaces; nothing is configured
in the root namespace):

    tegami-e2e-<pid>-br    bridge br0, one veth end per host
    tegami-e2e-<pid>-dns   10.77.0.2   nsd: a.test, b.test, 0.77.10.in-addr.arpa
    tegami-e2e-<pid>-a     10.77.0.11  mx.a.test  (mail host of a.test)
    tegami-e2e-<pid>-b     10.77.0.12  mx.b.test  (mail host of b.test)
    tegami-e2e-<pid>-ext   10.77.0.21  mx.ext.test (an outside MTA; also .22-.24)

Each host namespace gets /etc/netns/<ns>/resolv.conf (and hosts), which
`ip netns exec` bind-mounts over /etc/resolv.conf, pointing at nsd.

Every host has DKIM keys in the docker-mailserver layout under
host.config_dir/opendkim/keys/<domain>/ (`mail` = RSA 2048, `ed` =
Ed25519), published in the zone with SPF and DMARC records.

Names carry the pid of the run that made them, so runs side by side do
not meet, and a run finds what a killed run left behind (its pid is gone)
and removes it. Everything is removed in stop(), which the context manager
and the pytest fixture call even when a test fails.
"""
import base64
import os
import shutil
import signal
import subprocess
import time

PREFIX = "tegami-e2e-"
NET = "10.77.0"
DNS_ADDR = f"{NET}.2"
HOSTS = {
    # name: (domain, address)
    "a": ("a.test", f"{NET}.11"),
    "b": ("b.test", f"{NET}.12"),
    # an outside MTA for the spam scenarios (tests/e2e/test_spam_bed.py)
    "ext": ("ext.test", f"{NET}.21"),
}
# More addresses on a host's eth0 (clients the spam scenarios tell apart:
# listed in the DNSBL, the "refused resolver" answer, a password guesser).
EXTRA_ADDRS = {
    "ext": [f"{NET}.22", f"{NET}.23", f"{NET}.24"],
}
# Zones for the spam scenarios (s.test: SPF/DKIM/DMARC cases sent from ext;
# bl.test: a DNSBL). %(x)s is host ext's address; "dk.s.test" gets a DKIM
# key of its own (bed.spam_dkim) made at start.
SPAM_ZONES = {
    "s.test": [
        'pass IN TXT "v=spf1 ip4:%(x)s -all"',
        'soft IN TXT "v=spf1 ip4:192.0.2.1 ~all"',
        'fail IN TXT "v=spf1 ip4:192.0.2.1 -all"',
        'perm IN TXT "v=spf1 ' + " ".join(f"a:h{i}.s.test" for i in range(11)) + ' -all"',
        # neutral SPF: DKIM and DMARC decide
        'dk IN TXT "v=spf1 ?all"',
        '_dmarc.dk IN TXT "v=DMARC1; p=reject"',
        'rej IN TXT "v=spf1 ?all"',
        '_dmarc.rej IN TXT "v=DMARC1; p=reject"',
        'qua IN TXT "v=spf1 ?all"',
        '_dmarc.qua IN TXT "v=DMARC1; p=quarantine"',
    ] + [f"h{i} IN A 192.0.2.{10 + i}" for i in range(11)],
    "bl.test": [
        # ext's second address is listed; its third gets the answer Spamhaus
        # gives a refused (public) resolver
        "22.0.77.10 IN A 127.0.0.2",
        "23.0.77.10 IN A 127.255.255.254",
    ],
}


class BedError(Exception):
    pass


def sh(args, check=True, timeout=30, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise BedError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def netns_list():
    r = sh(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def usable():
    """None when the bed can be built here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "the e2e bed needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    if sh(["ip", "netns", "list"], check=False).returncode != 0:
        return "'ip netns' is not available"
    for tool in ("nsd", "nsd-checkzone", "nsd-checkconf", "openssl", "dig"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"{tool} is not installed (make test-deps)"
    return None


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_netns(ns):
    # Processes left inside (nsd of a killed run) go first, by pid.
    r = sh(["ip", "netns", "pids", ns], check=False)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    sh(["ip", "netns", "del", ns], check=False)
    shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)


def clean_stale():
    """Removes namespaces of earlier runs whose process is gone; returns them."""
    removed = []
    for ns in netns_list():
        if not ns.startswith(PREFIX):
            continue
        try:
            pid = int(ns[len(PREFIX):].split("-", 1)[0])
        except ValueError:
            raise BedError(f"namespace {ns} looks like ours but has no pid: "
                           f"remove it with 'ip netns del {ns}'")
        if pid != os.getpid() and not _pid_alive(pid):
            _remove_netns(ns)
            removed.append(ns)
    return removed


def _txt_strings(value):
    """A TXT value as zone-file strings of at most 255 bytes each."""
    parts = [value[i:i + 250] for i in range(0, len(value), 250)]
    return "( " + " ".join(f'"{p}"' for p in parts) + " )"


class Host:
    def __init__(self, bed, name, domain, addr):
        self.bed = bed
        self.name = name
        self.domain = domain
        self.addr = addr
        self.ns = bed.ns(name)
        self.mx = f"mx.{domain}"
        self.config_dir = os.path.join(bed.workdir, name, "config")
        self.dkim = {}  # selector -> (private key path, TXT value)

    def run(self, args, **kw):
        return self.bed.run(self.name, args, **kw)


class Bed:
    def __init__(self, workdir):
        self.workdir = os.path.abspath(workdir)
        self.tag = f"{PREFIX}{os.getpid()}"
        self.namespaces = []
        self.procs = []
        self.hosts = {n: Host(self, n, d, a) for n, (d, a) in HOSTS.items()}
        self.dns_addr = DNS_ADDR
        self.spam_dkim = None   # (private key path, TXT value) of dk.s.test

    def ns(self, role):
        return f"{self.tag}-{role}"

    # -- context manager: stop() always runs
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def run(self, role, args, check=True, timeout=30, env=None):
        return sh(["ip", "netns", "exec", self.ns(role)] + list(args),
                  check=check, timeout=timeout, env=env)

    def start(self):
        clean_stale()
        mine = [ns for ns in netns_list() if ns.startswith(self.tag + "-")]
        if mine:
            raise BedError(f"namespaces {', '.join(mine)} already exist for this "
                           f"process; remove them with 'ip netns del'")
        os.makedirs(self.workdir, exist_ok=True)
        self._network()
        self._keys()
        self._spam_keys()
        self._dns()

    def _add_ns(self, role):
        ns = self.ns(role)
        sh(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        self.run(role, ["ip", "link", "set", "lo", "up"])
        return ns

    def _network(self):
        self._add_ns("br")
        self.run("br", ["ip", "link", "add", "br0", "type", "bridge"])
        self.run("br", ["ip", "link", "set", "br0", "up"])
        members = [("dns", DNS_ADDR)] + [(n, h.addr) for n, h in self.hosts.items()]
        for role, addr in members:
            ns = self._add_ns(role)
            port = f"p-{role}"
            # Both ends are made in the bridge namespace; one moves to the host.
            self.run("br", ["ip", "link", "add", port, "type", "veth",
                            "peer", "name", "eth0", "netns", ns])
            self.run("br", ["ip", "link", "set", port, "master", "br0"])
            self.run("br", ["ip", "link", "set", port, "up"])
            self.run(role, ["ip", "addr", "add", f"{addr}/24", "dev", "eth0"])
            for extra in EXTRA_ADDRS.get(role, []):
                self.run(role, ["ip", "addr", "add", f"{extra}/24", "dev", "eth0"])
            self.run(role, ["ip", "link", "set", "eth0", "up"])
            etc = f"/etc/netns/{ns}"
            os.makedirs(etc, exist_ok=True)
            with open(f"{etc}/resolv.conf", "w") as f:
                f.write(f"nameserver {DNS_ADDR}\noptions timeout:2 attempts:2\n")
            with open(f"{etc}/hosts", "w") as f:
                f.write("127.0.0.1 localhost\n::1 localhost\n")
                for h in self.hosts.values():
                    f.write(f"{h.addr} {h.mx}\n")

    def _keys(self):
        for h in self.hosts.values():
            kdir = os.path.join(h.config_dir, "opendkim", "keys", h.domain)
            os.makedirs(kdir, exist_ok=True)
            for sel, alg in (("mail", ["-algorithm", "RSA", "-pkeyopt",
                                       "rsa_keygen_bits:2048"]),
                             ("ed", ["-algorithm", "ED25519"])):
                path = os.path.join(kdir, f"{sel}.private")
                sh(["openssl", "genpkey"] + alg + ["-out", path])
                os.chmod(path, 0o600)
                der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout",
                                      "-outform", "DER"], capture_output=True,
                                     check=True).stdout
                if sel == "ed":
                    # RFC 8463: the raw 32-byte key, not the SPKI.
                    value = "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()
                else:
                    value = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
                h.dkim[sel] = (path, value)

    def _spam_keys(self):
        path = os.path.join(self.workdir, "dk.s.test.private")
        sh(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
            "rsa_keygen_bits:2048", "-out", path])
        der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform",
                              "DER"], capture_output=True, check=True).stdout
        self.spam_dkim = (path, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode())

    def _spam_zone(self, name):
        lines = [
            "$TTL 300",
            f"@ IN SOA ns.{name}. hostmaster.{name}. 1 3600 600 86400 300",
            f"@ IN NS ns.{name}.",
            f"ns IN A {DNS_ADDR}",
        ] + [r % {"x": self.hosts["ext"].addr} for r in SPAM_ZONES[name]]
        if name == "s.test":
            lines.append(f"sel._domainkey.dk IN TXT {_txt_strings(self.spam_dkim[1])}")
        return "\n".join(lines) + "\n"

    def _zone(self, h):
        lines = [
            "$TTL 300",
            f"@ IN SOA ns.{h.domain}. hostmaster.{h.domain}. 1 3600 600 86400 300",
            f"@ IN NS ns.{h.domain}.",
            f"ns IN A {DNS_ADDR}",
            f"@ IN MX 10 {h.mx}.",
            f"@ IN A {h.addr}",
            f"mx IN A {h.addr}",
            f'@ IN TXT "v=spf1 ip4:{h.addr} -all"',
            f'_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:postmaster@{h.domain}"',
            "nomail IN MX 0 .",     # RFC 7505 null MX: accepts no mail
        ]
        for sel, (_, value) in h.dkim.items():
            lines.append(f"{sel}._domainkey IN TXT {_txt_strings(value)}")
        return "\n".join(lines) + "\n"

    def _reverse_zone(self):
        lines = [
            "$TTL 300",
            "@ IN SOA ns.a.test. hostmaster.a.test. 1 3600 600 86400 300",
            "@ IN NS ns.a.test.",
            f"{DNS_ADDR.rsplit('.', 1)[1]} IN PTR ns.a.test.",
        ]
        for h in self.hosts.values():
            lines.append(f"{h.addr.rsplit('.', 1)[1]} IN PTR {h.mx}.")
        return "\n".join(lines) + "\n"

    def _dns(self):
        zones = {h.domain: self._zone(h) for h in self.hosts.values()}
        zones["0.77.10.in-addr.arpa"] = self._reverse_zone()
        for name in SPAM_ZONES:
            zones[name] = self._spam_zone(name)
        self.start_nsd(zones, "a", "a.test")

    def start_nsd(self, zones, probe_host, probe_zone):
        """nsd in the dns namespace, serving zones ({name: text}), checked
        with nsd-checkzone and nsd-checkconf first; returns once a dig
        from probe_host gets probe_zone's SOA."""
        d = os.path.join(self.workdir, "nsd")
        os.makedirs(d, exist_ok=True)
        conf = [
            "server:", f"  ip-address: {DNS_ADDR}", "  port: 53",
            '  username: ""', '  chroot: ""', f'  zonesdir: "{d}"',
            f'  pidfile: "{d}/nsd.pid"', f'  logfile: "{d}/nsd.log"',
            f'  zonelistfile: "{d}/zone.list"', '  database: ""',
            f'  xfrdfile: "{d}/xfrd.state"', f'  xfrdir: "{d}"',
            "  server-count: 1", "  verbosity: 1",
            "remote-control:", "  control-enable: no",
        ]
        for name, text in zones.items():
            path = os.path.join(d, f"{name}.zone")
            with open(path, "w") as f:
                f.write(text)
            sh(["nsd-checkzone", name, path])
            conf += ["zone:", f"  name: {name}", f'  zonefile: "{path}"']
        conf_path = os.path.join(d, "nsd.conf")
        with open(conf_path, "w") as f:
            f.write("\n".join(conf) + "\n")
        sh(["nsd-checkconf", conf_path])
        log = open(os.path.join(d, "nsd.stderr"), "w")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns("dns"), "nsd", "-d",
                              "-c", conf_path], stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        deadline = time.monotonic() + 10
        while True:
            r = self.run(probe_host, ["dig", "+short", "+time=1", "+tries=1",
                                      f"@{DNS_ADDR}", "SOA", probe_zone],
                         check=False)
            if r.returncode == 0 and r.stdout.strip():
                break
            if p.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(d, "nsd.stderr")) as f:
                    out = f.read()
                raise BedError(f"nsd did not come up: {out[-2000:]}")
            time.sleep(0.1)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        for ns in reversed(self.namespaces):
            _remove_netns(ns)
        self.namespaces = []
