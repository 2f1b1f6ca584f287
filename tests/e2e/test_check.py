"""`tegami check` against real DNS (nsd) on the check bed (check_bed.py):
a host whose records are all right (with a real `tegami serve` behind its
listeners), one with the usual mistakes (no server), and port 25
answered, refused and dropped. Every line the command prints is matched,
and its exit code."""
import os
import re

import pytest

import e2e_bed
from check_bed import (CheckBed, OLD_MX, OLD_MX_ADDR, PROVIDER_PTR, WRONG_A,
                       dkim_value, make_cert)
from e2e_mail import BINARY, MailHost


@pytest.fixture(scope="module")
def cbed(tmp_path_factory):
    reason = e2e_bed.usable()
    if reason:
        pytest.skip(reason)
    b = CheckBed(str(tmp_path_factory.mktemp("check")))
    try:
        b.start()
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def good(cbed, tmp_path_factory):
    tls = str(tmp_path_factory.mktemp("check-tls"))
    ca, cert, key = make_cert(tls, "good-90d", ["mx.good.test"], 90)
    h = cbed.hosts["good"]
    m = MailHost(cbed, "good", tls, env={
        "SSL_CERT_PATH": cert, "SSL_KEY_PATH": key,
        "LISTEN_SUBMISSIONS": f"{h.addr}:465", "LISTEN_IMAPS": f"{h.addr}:993",
        "TEGAMI_PUBLIC_IPV4": h.addr, "TEGAMI_PUBLIC_IPV6": h.addr6,
        "TEGAMI_CHECK_PORT25_DOMAIN": "open.world.test",
        "TEGAMI_CHECK_TIMEOUT": "1",
        # the throwaway CA stands in for the public ones
        "SSL_CERT_FILE": ca,
    })
    m.cert, m.key = cert, key
    try:
        m.add_account("postmaster@good.test", "pw")
        m.add_account("alice@sub.good.test", "pw")
        m.start()
        yield m
        m.stop()
        m.check_log()
    finally:
        m.close()


class Plain:
    """A host with a configuration and no server running."""

    def __init__(self, bed, name, env):
        self.bed, self.name, self.env = bed, name, env


@pytest.fixture(scope="module")
def bad(cbed, tmp_path_factory):
    h = cbed.hosts["bad"]
    base = str(tmp_path_factory.mktemp("check-bad"))
    ca, cert, key = make_cert(base, "www", ["www.bad.test"], 90)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "CONFIG_DIR": h.config_dir, "MAIL_DIR": os.path.join(base, "mail"),
        "STATE_DIR": os.path.join(base, "state"),
        "OVERRIDE_HOSTNAME": h.mx,
        "SSL_TYPE": "manual", "SSL_CERT_PATH": cert, "SSL_KEY_PATH": key,
        "SSL_CERT_FILE": ca,
        "LISTEN_SMTP": f"{h.addr}:25", "LISTEN_SUBMISSION": f"{h.addr}:587",
        "LISTEN_SUBMISSIONS": f"{h.addr}:465", "LISTEN_IMAPS": f"{h.addr}:993",
        "TEGAMI_PUBLIC_IPV4": h.addr, "TEGAMI_PUBLIC_IPV6": h.addr6,
        "TEGAMI_DNS_SERVERS": e2e_bed.DNS_ADDR,
        "TEGAMI_CHECK_PORT25_DOMAIN": "drop.world.test",
        "TEGAMI_CHECK_TIMEOUT": "1",
        "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
    }
    p = Plain(cbed, "bad", env)
    p.cert, p.key = cert, key
    for addr in ("bob@bad.test", "carol@sub.bad.test"):
        r = cbed.run("bad", [BINARY, "email", "add", addr, "pw"], env=env,
                     check=False)
        assert r.returncode == 0, r.stderr
    return p


def run(host, args, env=None, exe=BINARY):
    e = dict(host.env)
    e.update(env or {})
    e["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    r = host.bed.run(host.name, [exe] + list(args), check=False, timeout=60, env=e)
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def match_lines(out, expected):
    """Every line of out against the regex of the same position."""
    lines = out.splitlines()
    for i, (got, want) in enumerate(zip(lines, expected)):
        assert re.fullmatch(want, got), f"line {i + 1}:\n got  {got!r}\n want {want!r}\n\n{out}"
    assert len(lines) == len(expected), f"{len(lines)} lines, wanted {len(expected)}:\n{out}"


def q(s):
    return re.escape(s)


def zone_quoted(value):
    """A TXT value as `tegami dns` quotes it: the tags, then p= in strings
    of at most 255 bytes."""
    head, key = value[:value.index("p=")], value[value.index("p="):]
    parts = ([head] if head else []) + [key[i:i + 255] for i in range(0, len(key), 255)]
    return " ".join(f'"{p}"' for p in parts)


def tegami_record(path, ed25519):
    """The record tegami publishes for a key: openssl's key, tegami's tags."""
    v = dkim_value(path, ed25519)
    return v if ed25519 else v.replace("v=DKIM1; k=rsa;", "v=DKIM1; h=sha256; k=rsa;")


MS = r"\d+ ms"
DATE = r"\d{4}-\d{2}-\d{2}"


def good_lines(good):
    src = q(f"{good.cert} + {good.key}")
    out = [
        q("tegami check: mail host mx.good.test, domains good.test, sub.good.test"),
        q("DNS answers come from the resolvers in /etc/resolv.conf"),
        "",
        q("Mail host mx.good.test"),
        q("OK   A mx.good.test: 10.77.0.11, as TEGAMI_PUBLIC_IPV4 says"),
        q("OK   AAAA mx.good.test: fd77::11, as TEGAMI_PUBLIC_IPV6 says"),
        q("OK   PTR 10.77.0.11: mx.good.test, which resolves back to 10.77.0.11"),
        q("OK   PTR fd77::11: mx.good.test, which resolves back to fd77::11"),
    ]
    for dom in ("good.test", "sub.good.test"):
        out += [
            "",
            q(f"Domain {dom}"),
            q(f"OK   MX {dom}: 10 mx.good.test (this server)"),
            q(f'OK   SPF {dom}: pass for 10.77.0.11 (by "mx"), fd77::11 (by "mx"); '
              f"other senders get fail"),
            q(f"OK   DKIM mail-ed25519._domainkey.{dom}: the Ed25519 key of "
              f"opendkim/keys/{dom}/mail-ed25519.private"),
            q(f"OK   DKIM mail._domainkey.{dom}: the RSA 2048 key of "
              f"opendkim/keys/{dom}/mail.private"),
        ]
    out.insert(14, q("OK   DMARC good.test: p=quarantine, adkim=r (relaxed), aspf=r "
                     "(relaxed); reports to postmaster@good.test"))
    out += [
        q("OK   DMARC sub.good.test: no record of its own; the organizational "
          "domain's (_dmarc.good.test) applies: p=quarantine, adkim=r (relaxed), "
          "aspf=r (relaxed); reports to postmaster@good.test"),
        "",
        q("TLS and network"),
        f"OK   TLS mx.good.test: {src} names it, by tegami check CA, valid until "
        f"{DATE} \\((89|90) days\\)",
        q("OK   port 25 out: connected to mx.open.world.test (10.77.0.21) port 25, "
          "a mail host of open.world.test, in ") + MS,
        q("OK   port 25 out (IPv6): connected to mx.open.world.test (fd77::21) port "
          "25, a mail host of open.world.test, in ") + MS,
        q("OK   listening smtp: 10.77.0.11:25 (LISTEN_SMTP)"),
        q("OK   listening submission: 10.77.0.11:587 (LISTEN_SUBMISSION)"),
        q("OK   listening submissions: 10.77.0.11:465 (LISTEN_SUBMISSIONS)"),
        q("OK   listening imaps: 10.77.0.11:993 (LISTEN_IMAPS)"),
        "",
        q("summary: 21 OK, 0 WARN, 0 FAIL"),
    ]
    return out


def test_good_host_all_ok(good):
    r = run(good, ["check"])
    assert r.returncode == 0, r.stdout + r.stderr
    match_lines(r.stdout, good_lines(good))
    assert r.stderr == ""
    # --quiet: nothing at all when nothing is wrong, for cron
    r = run(good, ["check", "--quiet"])
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_dns_check_and_setup_are_the_same_command(good, tmp_path):
    setup = os.path.join(str(tmp_path), "setup")
    os.symlink(BINARY, setup)
    for args, exe in ((["dns", "--check"], BINARY), (["check"], setup),
                      (["dns", "--check", "good.test"], BINARY)):
        r = run(good, args, exe=exe)
        assert r.returncode == 0, r.stdout + r.stderr
        lines = good_lines(good)
        if "good.test" in args:
            # only the one domain: no sub.good.test section
            lines[0] = q("tegami check: mail host mx.good.test, domain good.test")
            lines = [l for l in lines if "sub\\.good\\.test" not in l]
            del lines[15]  # the empty line that began that section
            lines[-1] = q("summary: 16 OK, 0 WARN, 0 FAIL")
        match_lines(r.stdout, lines)


def test_warnings_alone_exit_0(good):
    """Without TEGAMI_PUBLIC_IPV6 the AAAA cannot be confirmed: a warning,
    and the published address stands in for SPF and PTR (which pass)."""
    r = run(good, ["check", "--quiet"], env={"TEGAMI_PUBLIC_IPV6": ""})
    assert r.returncode == 0, r.stdout + r.stderr
    match_lines(r.stdout, [
        q("WARN AAAA mx.good.test: fd77::11; tegami does not know this server's "
          "public IPv6 address, so it cannot tell whether that is this server"),
        q("     fix:       set TEGAMI_PUBLIC_IPV6 to the server's public address "
          "(`curl -6 ifconfig.me` on the server, or your provider's panel) and run "
          "this again"),
    ])
    r = run(good, ["check"], env={"TEGAMI_PUBLIC_IPV6": ""})
    assert q("OK   PTR fd77::11: mx.good.test, which resolves back to fd77::11 (an "
             "address of the host name's AAAA record: TEGAMI_PUBLIC_IPV6 is not "
             "set)") in re.escape(r.stdout)
    assert "summary: 19 OK, 1 WARN, 0 FAIL" in r.stdout


def test_port25_refused(good):
    r = run(good, ["check", "--quiet"],
            env={"TEGAMI_CHECK_PORT25_DOMAIN": "refuse.world.test"})
    assert r.returncode == 1, r.stdout + r.stderr
    exp = []
    for fam, addr in (("", "10.77.0.22"), (" (IPv6)", "fd77::22")):
        exp += [
            q(f"FAIL port 25 out{fam}: refused: refuse.world.test's mail hosts "
              "answered port 25 with a TCP reset, which they do not do; a firewall "
              "on the way (your provider's?) rejects port 25"),
            q(f"     tried:     mx.refuse.world.test ({addr}) port 25: refused (TCP "
              "reset) after ") + MS,
            q("     should be: a TCP connection to port 25 of other mail servers, or "
              "a relay host"),
            q("     fix:       ask your provider to open outbound port 25 (many do on "
              "request), or send through a relay host: "
              "DEFAULT_RELAY_HOST=[smtp.example.net]:587 with RELAY_USER and "
              "RELAY_PASSWORD"),
        ]
    match_lines(r.stdout, exp)


def bad_lines(cbed, bad):
    kdir = os.path.join(cbed.hosts["bad"].config_dir, "opendkim", "keys", "bad.test")
    ed = tegami_record(os.path.join(kdir, "mail-ed25519.private"), True)
    rsa = tegami_record(os.path.join(kdir, "mail.private"), False)
    stale = cbed.published["mail._domainkey.bad.test"]
    rev6 = "2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.7.d.f.ip6.arpa"
    fix_port25 = q("     fix:       ask your provider to open outbound port 25 (many "
                   "do on request), or send through a relay host: "
                   "DEFAULT_RELAY_HOST=[smtp.example.net]:587 with RELAY_USER and "
                   "RELAY_PASSWORD")
    src = q(f"{bad.cert} + {bad.key}")
    out = [
        q("tegami check: mail host mx.bad.test, domains bad.test, sub.bad.test"),
        q("DNS answers come from 10.77.0.2 (TEGAMI_DNS_SERVERS)"),
        "",
        q("Mail host mx.bad.test"),
        q(f"FAIL A mx.bad.test: {WRONG_A}, not this server's 10.77.0.12 "
          "(TEGAMI_PUBLIC_IPV4): mail for your domains goes elsewhere"),
        q(f"     published: mx.bad.test. A {WRONG_A}"),
        q("     should be: mx.bad.test. A 10.77.0.12"),
        q("     fix:       publish mx.bad.test. 3600 IN A 10.77.0.12 instead"),
        q("OK   AAAA mx.bad.test: fd77::12, as TEGAMI_PUBLIC_IPV6 says"),
        q(f"FAIL PTR 10.77.0.12: {PROVIDER_PTR}, not the host name mx.bad.test that "
          "tegami greets other servers with"),
        q(f"     published: 12.0.77.10.in-addr.arpa. PTR {PROVIDER_PTR}."),
        q("     should be: 12.0.77.10.in-addr.arpa. PTR mx.bad.test."),
        q("     fix:       ask your VPS provider to set the reverse DNS (PTR) of "
          "10.77.0.12 to mx.bad.test"),
        q("FAIL PTR fd77::12: no PTR record: Gmail, Outlook and many others refuse or "
          "junk mail from an address without reverse DNS"),
        q(f"     published: nothing at {rev6}"),
        q(f"     should be: {rev6}. PTR mx.bad.test."),
        q("     fix:       ask your VPS provider to set the reverse DNS (PTR) of "
          "fd77::12 to mx.bad.test (most have it in their control panel)"),
        "",
        q("Domain bad.test"),
        q(f"FAIL MX bad.test: points at {OLD_MX} ({OLD_MX_ADDR}), another host, not "
          "at this server (mx.bad.test)"),
        q(f"     published: bad.test. MX 10 {OLD_MX}."),
        q("     should be: bad.test. MX 10 mx.bad.test."),
        q("     fix:       publish bad.test. 3600 IN MX 10 mx.bad.test. instead of the "
          f"MX naming {OLD_MX}"),
        q("FAIL SPF bad.test: 2 SPF records: receivers treat more than one as an "
          "error (permerror) and ignore them all"),
        # in the order of their text, whatever order DNS gives them in
        q('     published: bad.test. TXT "v=spf1 ip4:10.77.0.12 -all"'),
        q('     published: bad.test. TXT "v=spf1 mx ~all"'),
        q("     should be: exactly one TXT record starting with v=spf1"),
        q("     fix:       merge them into one and delete the others, e.g. publish "
          'only bad.test. 3600 IN TXT "v=spf1 mx ~all"'),
        q("FAIL DKIM mail-ed25519._domainkey.bad.test: no record: receivers cannot "
          "check the signatures made with the Ed25519 key "
          "opendkim/keys/bad.test/mail-ed25519.private"),
        q("     published: nothing at mail-ed25519._domainkey.bad.test"),
        q("     should be: the public key of opendkim/keys/bad.test/"
          "mail-ed25519.private (Ed25519) at mail-ed25519._domainkey.bad.test"),
        q("     fix:       publish mail-ed25519._domainkey.bad.test. 3600 IN TXT "
          + zone_quoted(ed)),
        q("FAIL DKIM mail._domainkey.bad.test: another key than the RSA 2048 key in "
          "opendkim/keys/bad.test/mail.private (an old key, from before the key was "
          "made again?): every signature fails"),
        q("     published: mail._domainkey.bad.test. TXT " + zone_quoted(stale)),
        q("     should be: the public key of opendkim/keys/bad.test/mail.private "
          "(RSA 2048)"),
        q("     fix:       publish mail._domainkey.bad.test. 3600 IN TXT "
          + zone_quoted(rsa) + " and delete the others at that name"),
        q("FAIL DMARC bad.test: no DMARC record: receivers apply no policy to mail "
          "forged in your name, and Gmail and Yahoo want one"),
        q("     published: no TXT record starting with v=DMARC1 at _dmarc.bad.test"),
        q("     should be: one TXT record starting with v=DMARC1 at _dmarc.bad.test"),
        q('     fix:       publish _dmarc.bad.test. 3600 IN TXT "v=DMARC1; '
          'p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@bad.test"'),
        "",
        q("Domain sub.bad.test"),
        q("WARN MX sub.bad.test: no MX record: mail still arrives through the "
          "domain's own address 10.77.0.12 (implicit MX), but some senders want an MX"),
        q("     published: no MX; sub.bad.test. A/AAAA 10.77.0.12"),
        q("     should be: sub.bad.test. MX 10 mx.bad.test."),
        q("     fix:       publish sub.bad.test. 3600 IN MX 10 mx.bad.test."),
        q("FAIL SPF sub.bad.test: permerror for 10.77.0.12: more than 10 "
          "DNS-querying terms (11 DNS lookups counted); receivers treat the record as "
          "broken"),
        q('     published: sub.bad.test. TXT "v=spf1 ' + "include:spf.bad.test " * 11
          + '-all"'),
        q("     should be: a record that evaluates within 10 DNS lookups (include, a, "
          "mx, ptr, exists, redirect; those of included records count too)"),
        q("     fix:       remove the include: terms you do not need, or replace them "
          "with the ip4:/ip6: ranges they stand for"),
        q("FAIL DKIM sub.bad.test: no key in opendkim/keys/sub.bad.test/: tegami "
          "sends the domain's mail unsigned, and Gmail and Yahoo want a signature"),
        q("     fix:       tegami config dkim domain sub.bad.test, then tegami dns "
          "for the record to publish"),
        q("FAIL DMARC sub.bad.test: no DMARC record: receivers apply no policy to "
          "mail forged in your name, and Gmail and Yahoo want one"),
        q("     published: no TXT record starting with v=DMARC1 at "
          "_dmarc.sub.bad.test nor at _dmarc.bad.test"),
        q("     should be: one TXT record starting with v=DMARC1 at "
          "_dmarc.sub.bad.test"),
        q('     fix:       publish _dmarc.sub.bad.test. 3600 IN TXT "v=DMARC1; '
          'p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@sub.bad.test"'),
        "",
        q("TLS and network"),
    ]
    for name in ("mx.bad.test", "sub.bad.test"):
        out += [
            f"FAIL TLS {q(name)}: the certificate served for it \\({src}\\) does not "
            f"name {q(name)}: clients and servers that check it refuse it",
            q("     served:    www.bad.test, by tegami check CA, until ") + DATE,
            q(f"     should be: a certificate naming {name}"),
            q("     fix:       get a certificate for these names (e.g. `certbot "
              "certonly --standalone -d mx.bad.test -d sub.bad.test`) and set "
              "SSL_TYPE=letsencrypt (or manual with SSL_CERT_PATH/SSL_KEY_PATH)"),
        ]
    for fam, addr in (("", "10.77.0.23"), (" (IPv6)", "fd77::23")):
        out += [
            q(f"FAIL port 25 out{fam}: timed out: no answer from port 25 of "
              "drop.world.test's mail hosts within 1 s; the usual sign of a provider "
              "that blocks outbound port 25"),
            q(f"     tried:     mx.drop.world.test ({addr}) port 25: timed out after ")
            + r"1\d\d\d ms",
            q("     should be: a TCP connection to port 25 of other mail servers, or a "
              "relay host"),
            fix_port25,
        ]
    for name, key, port in (("smtp", "LISTEN_SMTP", 25),
                            ("submission", "LISTEN_SUBMISSION", 587),
                            ("submissions", "LISTEN_SUBMISSIONS", 465),
                            ("imaps", "LISTEN_IMAPS", 993)):
        out += [
            q(f"FAIL listening {name}: nothing answers on any address of "
              f"{key}=10.77.0.12:{port}: is `tegami serve` running?"),
            q(f"     tried:     10.77.0.12:{port}: refused (TCP reset)"),
            q("     fix:       start the server (tegami serve) and look at its log "
              "for the listener"),
        ]
    out += ["", q("summary: 1 OK, 1 WARN, 19 FAIL")]
    return out


def test_bad_host_every_mistake(cbed, bad):
    r = run(bad, ["check"])
    assert r.returncode == 1, r.stdout + r.stderr
    match_lines(r.stdout, bad_lines(cbed, bad))
    assert r.stderr == ""
    # --quiet: the same problems, without the OK line, headings and summary
    quiet = run(bad, ["check", "--quiet"])
    assert quiet.returncode == 1
    full = [l for l in r.stdout.splitlines()]
    keep, skip = [], False
    for l in full[2:]:
        if l.startswith(("OK ", "summary:", "Mail host", "Domain ", "TLS and")) or l == "":
            skip = l.startswith("OK ")
            continue
        if skip and l.startswith("     "):
            continue
        skip = False
        keep.append(l)
    assert re.sub(MS, "N ms", quiet.stdout) == re.sub(MS, "N ms", "\n".join(keep) + "\n")


def test_bad_host_with_a_relay(bad):
    """Port 25 blocked matters less when a relay host carries the mail: a
    warning, and the relay itself is checked."""
    r = run(bad, ["check", "--quiet"],
            env={"DEFAULT_RELAY_HOST": "[mx.open.world.test]:25"})
    assert r.returncode == 1
    r = run(bad, ["check"], env={"DEFAULT_RELAY_HOST": "[mx.open.world.test]:25"})
    lines = r.stdout.splitlines()
    i = next(i for i, l in enumerate(lines) if "port 25 out:" in l)
    match_lines("\n".join(lines[i:i + 10]), [
        q("WARN port 25 out: timed out: no answer from port 25 of drop.world.test's "
          "mail hosts within 1 s; the usual sign of a provider that blocks outbound "
          "port 25, but outbound mail goes through a relay host"),
        q("     tried:     mx.drop.world.test (10.77.0.23) port 25: timed out after ")
        + r"1\d\d\d ms",
        q("     should be: a TCP connection to port 25 of other mail servers, or a "
          "relay host"),
        q("WARN port 25 out (IPv6): timed out: no answer from port 25 of "
          "drop.world.test's mail hosts within 1 s; the usual sign of a provider that "
          "blocks outbound port 25, but outbound mail goes through a relay host"),
        q("     tried:     mx.drop.world.test (fd77::23) port 25: timed out after ")
        + r"1\d\d\d ms",
        q("     should be: a TCP connection to port 25 of other mail servers, or a "
          "relay host"),
        q("OK   relay mx.open.world.test:25: connected to mx.open.world.test "
          "(10.77.0.21) port 25 in ") + MS,
        q("FAIL listening smtp: nothing answers on any address of "
          "LISTEN_SMTP=10.77.0.12:25: is `tegami serve` running?"),
        q("     tried:     10.77.0.12:25: refused (TCP reset)"),
        q("     fix:       start the server (tegami serve) and look at its log for "
          "the listener"),
    ])
    assert "summary: 2 OK, 3 WARN, 17 FAIL" in r.stdout
    # RELAY_HOST carries the domains' mail, but bounces still go direct
    r = run(bad, ["check"], env={"RELAY_HOST": "mx.open.world.test", "RELAY_PORT": "25"})
    assert r.returncode == 1
    assert q("FAIL port 25 out: timed out: no answer from port 25 of drop.world.test's "
             "mail hosts within 1 s; the usual sign of a provider that blocks outbound "
             "port 25; your domains' mail goes through a relay host, but bounces go out "
             "directly (set DEFAULT_RELAY_HOST too)\n") in re.escape(r.stdout)
    assert re.search(q("OK   relay mx.open.world.test:25: connected to mx.open.world.test "
                       "(10.77.0.21) port 25 in ") + MS, r.stdout)


def test_one_domain_and_bad_arguments(bad):
    r = run(bad, ["check", "--quiet", "sub.bad.test"])
    assert r.returncode == 1
    assert "Domain bad.test" not in r.stdout and "MX bad.test" not in r.stdout
    assert "FAIL SPF sub.bad.test: permerror" in r.stdout
    for args in (["check", "--bogus"], ["check", "not_a_domain"],
                 ["check", "a.test", "b.test"]):
        r = run(bad, args)
        assert r.returncode == 1 and r.stdout == "", args
        assert len(r.stderr.splitlines()) == 1 and "error" in r.stderr, r.stderr


def test_check_bed_cleans_up_even_on_failure(tmp_path):
    """A second check bed that fails inside: namespaces, /etc/netns, nsd
    and the port 25 listeners are gone afterwards."""
    if e2e_bed.usable():
        pytest.skip(e2e_bed.usable())
    b = CheckBed(str(tmp_path))
    b.tag += "x"
    with pytest.raises(RuntimeError):
        with b:
            pids = [p.pid for p in b.procs]
            assert len(pids) == 3  # nsd, two listeners
            assert any(ns.startswith(b.tag) for ns in e2e_bed.netns_list())
            raise RuntimeError("test failed")
    assert not any(ns.startswith(b.tag) for ns in e2e_bed.netns_list())
    if os.path.isdir("/etc/netns"):
        assert not any(d.startswith(b.tag) for d in os.listdir("/etc/netns"))
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_tls_by_sni_and_expiring(bad, tmp_path):
    """Two certificates: the daemon's own SNI choice serves the one for the
    MX names (expiring in days: a warning); clients without SNI get the
    first one, which names neither (a warning of its own)."""
    ca, cert, key = make_cert(str(tmp_path), "mx", ["mx.bad.test", "sub.bad.test"], 3)
    r = run(bad, ["check"], env={"TEGAMI_TLS_EXTRA": f"{cert}:{key}",
                                 "SSL_CERT_FILE": ca})
    lines = r.stdout.splitlines()
    i = next(i for i, l in enumerate(lines) if l.startswith(("OK   TLS", "WARN TLS",
                                                             "FAIL TLS")))
    src = q(f"{cert} + {key}")
    www = q(f"{bad.cert} + {bad.key}")
    match_lines("\n".join(lines[i:i + 9]), [
        f"WARN TLS mx\\.bad\\.test: {src} expires on {DATE}, in [23] days",
        q("     fix:       renew it (certbot renew; is its timer running?); tegami "
          "picks the new one up by itself"),
        f"WARN TLS sub\\.bad\\.test: {src} expires on {DATE}, in [23] days",
        q("     fix:       renew it (certbot renew; is its timer running?); tegami "
          "picks the new one up by itself"),
        f"WARN TLS mx\\.bad\\.test without SNI: the certificate served to clients "
        f"that send no server name \\({www}\\) does not name mx\\.bad\\.test: clients "
        f"and servers that check it refuse it",
        q("     served:    www.bad.test, by tegami check CA, until ") + DATE,
        q("     should be: a certificate naming mx.bad.test"),
        q("     fix:       get a certificate for these names (e.g. `certbot certonly "
          "--standalone -d mx.bad.test -d sub.bad.test`) and set SSL_TYPE=letsencrypt "
          "(or manual with SSL_CERT_PATH/SSL_KEY_PATH)"),
        q("FAIL port 25 out: timed out: no answer from port 25 of drop.world.test's "
          "mail hosts within 1 s; the usual sign of a provider that blocks outbound "
          "port 25"),
    ])
