"""The spam defences wired into the real server (issue 6): SPF, DKIM and
DMARC at the end of DATA against records served by nsd on a free loopback
port (TEGAMI_DNS_SERVERS), a DNSBL zone and its "refused resolver" answer,
greylisting, brute-force bans with `tegami fail2ban`, the junk filter
trained with `tegami junk train`, and forged Authentication-Results."""
import base64
import os
import pathlib
import shutil
import smtplib
import socket
import subprocess
import time

import pytest

from tegami_server import BINARY, HOST, free_port

ZONE = "spam.test"


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def txt_strings(value, size=200):
    return " ".join('"%s"' % value[i:i + size] for i in range(0, len(value), size))


def start_nsd(d, records):
    """nsd on a free loopback port serving ZONE with these records (and
    SOA/NS); returns (process, "127.0.0.1@port")."""
    nsd = shutil.which("nsd") or "/usr/sbin/nsd"
    if not os.path.exists(nsd):
        pytest.fail("nsd is not installed (make test-deps)")
    d = pathlib.Path(d)
    d.mkdir(parents=True, exist_ok=True)
    head = [f"$ORIGIN {ZONE}.", "$TTL 60",
            f"@ IN SOA ns.{ZONE}. admin.{ZONE}. 1 3600 600 86400 60",
            f"@ IN NS ns.{ZONE}.", "ns IN A 127.0.0.1"]
    (d / f"{ZONE}.zone").write_text("\n".join(head + records + [""]))
    port = free_udp_port()
    (d / "nsd.conf").write_text(f'''server:
  ip-address: 127.0.0.1@{port}
  port: {port}
  zonesdir: "{d}"
  database: ""
  pidfile: "{d}/nsd.pid"
  logfile: "{d}/nsd.log"
  username: ""
  xfrdfile: "{d}/xfrd.state"
  zonelistfile: "{d}/zone.list"
remote-control:
  control-enable: no
zone:
  name: "{ZONE}"
  zonefile: "{ZONE}.zone"
''')
    proc = subprocess.Popen([nsd, "-d", "-c", str(d / "nsd.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        if (d / "nsd.pid").exists():
            break
        time.sleep(0.1)
    time.sleep(0.3)
    return proc, f"127.0.0.1@{port}"


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    """nsd serving spam.test; yields (server address, DKIM private key PEM)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives import serialization as ser
    d = tmp_path_factory.mktemp("nsd")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL,
                            ser.NoEncryption())
    der = key.public_key().public_bytes(ser.Encoding.DER,
                                        ser.PublicFormat.SubjectPublicKeyInfo)
    many = " ".join(f"a:h{i}.{ZONE}" for i in range(11))
    records = [
        'pass IN TXT "v=spf1 ip4:127.0.0.0/8 -all"',
        'fail IN TXT "v=spf1 ip4:192.0.2.1 -all"',
        'soft IN TXT "v=spf1 ip4:192.0.2.1 ~all"',
        f'perm IN TXT "v=spf1 {many} -all"',
        # neutral SPF (?all): not refused at RCPT, DKIM and DMARC decide
        'dk IN TXT "v=spf1 ip4:192.0.2.1 ?all"',
        '_dmarc.dk IN TXT "v=DMARC1; p=reject"',
        "sel._domainkey.dk IN TXT " + txt_strings(
            "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()),
        'rej IN TXT "v=spf1 ip4:192.0.2.1 ?all"',
        '_dmarc.rej IN TXT "v=DMARC1; p=reject"',
        'qua IN TXT "v=spf1 ip4:192.0.2.1 ?all"',
        '_dmarc.qua IN TXT "v=DMARC1; p=quarantine"',
        # fails SPF, would pass DMARC by DKIM: refused at RCPT by default
        'fwd IN TXT "v=spf1 ip4:192.0.2.1 -all"',
        'exp IN TXT "v=spf1 ip4:192.0.2.1 exp=why.exp.spam.test -all"',
        'why.exp IN TXT "Mail from %{d} must come from our servers, not %{i}"',
        'helofail IN TXT "v=spf1 -all"',
        # an explanation with line ends and a control byte in it
        'expctl IN TXT "v=spf1 exp=why.expctl.spam.test -all"',
        'why.expctl IN TXT "line one\\013\\010250 fake line"',
        # DNSBL: 127.0.0.2 is listed; 127.0.0.3 gets the "refused" answer
        "2.0.0.127.bl IN A 127.0.0.2",
        "3.0.0.127.bl IN A 127.255.255.254",
        "bl IN A 127.0.0.1",
    ] + [f"h{i} IN A 192.0.2.{i + 10}" for i in range(11)]
    proc, addr = start_nsd(d, records)
    yield addr, pem
    proc.terminate()
    proc.wait(timeout=10)


def auth_env(dns_addr, **extra):
    env = {"TEGAMI_DNS_SERVERS": dns_addr, "ENABLE_POLICYD_SPF": "1",
           "ENABLE_OPENDKIM": "1", "ENABLE_OPENDMARC": "1"}
    env.update(extra)
    return env


def message(frm, subject="hello", body="Hello there.\r\n", extra="", msgid=None):
    msgid = msgid or f"{time.time()}@x"
    return (f"From: {frm}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{msgid}>\r\n{extra}\r\n{body}").encode()


def send(srv, sender, msg, helo="client.spam.test", source="127.0.0.1"):
    c = smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], source_address=(source, 0),
                     timeout=30)
    try:
        c.ehlo(helo)
        c.sendmail(sender, ["alice@example.test"], msg)
        return None
    except smtplib.SMTPResponseException as e:
        return e.smtp_code, e.smtp_error.decode()
    except smtplib.SMTPRecipientsRefused as e:
        code, text = list(e.recipients.values())[0]
        return code, text.decode()
    finally:
        try:
            c.quit()
        except Exception:
            pass


def header_block(data):
    return data.split(b"\n\n", 1)[0].decode()


def test_spf_results_in_stored_message(make_server, dns):
    """Docker-mailserver's default (policyd-spf, Mail_From_reject = Fail):
    a fail is refused at RCPT, softfail and permerror are delivered with
    their Received-SPF."""
    srv = make_server(env=auth_env(dns[0]))
    cases = [("pass", "pass"), ("soft", "softfail"), ("perm", "permerror")]
    for i, (dom, result) in enumerate(cases):
        assert send(srv, f"joe@{dom}.{ZONE}", message(f"joe@{dom}.{ZONE}")) is None
        got = srv.wait_messages("alice@example.test", i + 1)
        h = header_block(got[-1])
        assert f"Received-SPF: {result}" in h, h
        ar = h[h.index("Authentication-Results:"):]
        assert ar.startswith(f"Authentication-Results: {HOST};"), h
        assert f"spf={result}" in ar, h
        # trace fields above the message's own header
        assert h.index("Received-SPF:") < h.index("From: joe@"), h
    assert "more than 10 DNS-querying terms" in header_block(got[-1])
    r = send(srv, f"joe@fail.{ZONE}", message(f"joe@fail.{ZONE}"))
    assert r is not None and r[0] == 550 and r[1].startswith("5.7.23"), r
    assert "SPF fail" in r[1] and "127.0.0.1" in r[1], r
    srv.wait_log("reason=spf spf=fail")
    # the domain's own explanation (exp=) is what the client is told
    r = send(srv, f"joe@exp.{ZONE}", message(f"joe@exp.{ZONE}"))
    assert r is not None and r[0] == 550, r
    assert f"Mail from exp.{ZONE} must come from our servers, not 127.0.0.1" in r[1], r
    # ... but never one with line ends or control bytes: nothing it holds
    # becomes a reply line of its own (our own text instead)
    r = send(srv, f"joe@expctl.{ZONE}", message(f"joe@expctl.{ZONE}"))
    assert r is not None and r[0] == 550 and r[1].startswith("5.7.23"), r
    assert "\n" not in r[1] and "fake" not in r[1], r
    # a HELO name whose SPF fails is refused too (HELO_reject = Fail)
    r = send(srv, f"joe@pass.{ZONE}", message(f"joe@pass.{ZONE}"),
             helo=f"helofail.{ZONE}")
    assert r is not None and r[0] == 550 and "HELO" in r[1], r
    assert len(srv.messages("alice@example.test")) == 3


def test_spf_reject_policy_is_configurable(make_server, dns):
    # off: every result is delivered; DMARC alone may refuse
    srv = make_server(env=auth_env(dns[0], TEGAMI_SPF_REJECT="off"))
    assert send(srv, f"joe@fail.{ZONE}", message(f"joe@fail.{ZONE}")) is None
    h = header_block(srv.wait_messages("alice@example.test", 1)[-1])
    assert "Received-SPF: fail" in h and "spf=fail" in h, h
    # softfail: ~all is refused as well
    srv = make_server(env=auth_env(dns[0], TEGAMI_SPF_REJECT="softfail",
                                   TEGAMI_SPF_PERMERROR_REJECT="1"))
    for dom, code in (("soft", "5.7.23"), ("fail", "5.7.23"), ("perm", "5.7.24")):
        r = send(srv, f"joe@{dom}.{ZONE}", message(f"joe@{dom}.{ZONE}"))
        assert r is not None and r[0] == 550 and r[1].startswith(code), (dom, r)
    assert send(srv, f"joe@pass.{ZONE}", message(f"joe@pass.{ZONE}")) is None
    srv.wait_messages("alice@example.test", 1)
    # a forwarded message (SPF fails, DKIM would carry DMARC): refused by
    # default, as docker-mailserver's policyd-spf does, before DATA
    srv = make_server(env=auth_env(dns[0]))
    c = smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=30)
    c.ehlo("client.spam.test")
    code, _ = c.mail(f"joe@fwd.{ZONE}")
    assert code == 250
    code, text = c.rcpt("alice@example.test")
    assert code == 550 and text.startswith(b"5.7.23"), text
    c.quit()


def test_dns_answers_cached(make_server, tmp_path):
    """The SPF/DKIM/DMARC lookups are answered from tegami's DNS cache for
    their TTL: with the name server gone, a second message from the same
    domain still gets its SPF pass."""
    proc, addr = start_nsd(tmp_path / "nsd-cache", [
        'pass IN TXT "v=spf1 ip4:127.0.0.0/8 -all"',
        '_dmarc.pass IN TXT "v=DMARC1; p=none"'])
    try:
        srv = make_server(env=auth_env(addr))
        assert send(srv, f"joe@pass.{ZONE}", message(f"joe@pass.{ZONE}")) is None
        assert "Received-SPF: pass" in header_block(
            srv.wait_messages("alice@example.test", 1)[-1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    t0 = time.time()
    assert send(srv, f"ann@pass.{ZONE}", message(f"ann@pass.{ZONE}")) is None
    h = header_block(srv.wait_messages("alice@example.test", 2)[-1])
    assert "Received-SPF: pass" in h and "dmarc=pass" in h, h
    assert time.time() - t0 < 5      # no resolver timeout was waited for
    # the workers report their counters every second or so
    end = time.time() + 5
    while True:
        st = subprocess.run([BINARY, "status"], env=srv.env, capture_output=True,
                            text=True, timeout=10).stdout
        hits = int(st.split("dns_cache_hits=")[1].split()[0]) \
            if "dns_cache_hits=" in st else 0
        if hits >= 2 or time.time() > end:
            break
        time.sleep(0.2)
    assert hits >= 2, st


def test_dkim_pass_and_body_changed(make_server, dns):
    import dkim
    srv = make_server(env=auth_env(dns[0]))
    body = message(f"Joe <joe@dk.{ZONE}>", body="Signed body.\r\n")
    sig = dkim.sign(body, b"sel", f"dk.{ZONE}".encode(), dns[1],
                    include_headers=[b"from", b"to", b"subject"])
    # SPF fails for dk (not 127/8) but the aligned signature passes DMARC
    assert send(srv, f"joe@dk.{ZONE}", sig + body) is None
    h = header_block(srv.wait_messages("alice@example.test", 1)[-1])
    assert "dkim=pass" in h and f"header.d=dk.{ZONE}" in h, h
    assert "dmarc=pass" in h, h
    # the same signature over a changed body: DKIM fails, DMARC p=reject
    tampered = sig + body.replace(b"Signed body.", b"Signed body!")
    r = send(srv, f"joe@dk.{ZONE}", tampered)
    assert r is not None and r[0] == 550 and "5.7.1" in r[1], r
    assert len(srv.messages("alice@example.test")) == 1
    assert "dkim=fail" in srv.log_text() or "dmarc=fail" in srv.log_text()


def test_dmarc_reject_and_quarantine(make_server, dns):
    srv = make_server(env=auth_env(dns[0]))
    r = send(srv, f"joe@rej.{ZONE}", message(f"joe@rej.{ZONE}"))
    assert r is not None and r[0] == 550 and "5.7.1" in r[1], r
    assert send(srv, f"joe@qua.{ZONE}", message(f"joe@qua.{ZONE}")) is None
    got = srv.wait_messages("alice@example.test", 1, folder="Junk")
    assert "dmarc=fail" in header_block(got[0])
    assert srv.messages("alice@example.test") == []


def test_forged_authentication_results_removed(make_server, dns):
    srv = make_server(env=auth_env(dns[0]))
    forged = (f"Authentication-Results: {HOST}; dkim=pass header.d=bank.example\r\n"
              "Authentication-Results: other.example; spf=pass\r\n")
    assert send(srv, f"joe@pass.{ZONE}", message(f"joe@pass.{ZONE}", extra=forged)) is None
    h = header_block(srv.wait_messages("alice@example.test", 1)[0])
    assert "bank.example" not in h, h
    assert "Authentication-Results: other.example; spf=pass" in h
    assert h.count(f"Authentication-Results: {HOST};") == 1


def test_dnsbl_listed_and_refused_resolver(make_server, dns):
    srv = make_server(env={"TEGAMI_DNS_SERVERS": dns[0], "ENABLE_DNSBL": "1",
                           "TEGAMI_DNSBL_SITES": f"bl.{ZONE}*3"})
    s = socket.create_connection(("127.0.0.1", srv.ports["SMTP"]), timeout=20,
                                 source_address=("127.0.0.2", 0))
    banner = s.recv(512).decode()
    s.close()
    assert banner.startswith("554 5.7.1") and f"bl.{ZONE}" in banner, banner
    # 127.255.255.254: our resolver is refused, not a listing
    assert send(srv, "joe@example.org", message("joe@example.org"), source="127.0.0.3") is None
    srv.wait_messages("alice@example.test", 1)
    log = srv.log_text()
    assert "event=dnsbl ip=127.0.0.2 score=3" in log
    assert "event=dnsbl_resolver_refused" in log
    assert "event=dnsbl ip=127.0.0.3 score=0" in log


def test_greylisting_defers_then_accepts(make_server):
    srv = make_server(env={"ENABLE_POSTGREY": "1", "POSTGREY_DELAY": "2",
                           "POSTGREY_TEXT": "Greylisted for the test"})
    r = send(srv, "joe@example.org", message("joe@example.org"))
    assert r is not None and r[0] == 451 and "4.7.1" in r[1] and \
        "Greylisted for the test" in r[1], r
    r = send(srv, "joe@example.org", message("joe@example.org"))
    assert r is not None and r[0] == 451, r   # too early
    time.sleep(2.5)
    assert send(srv, "joe@example.org", message("joe@example.org")) is None
    srv.wait_messages("alice@example.test", 1)
    # authenticated submissions are never greylisted
    c = smtplib.SMTP("127.0.0.1", srv.ports["SUBMISSION"], timeout=30)
    c.starttls(context=srv.ssl_context())
    c.login("alice@example.test", "alicepw")
    c.sendmail("alice@example.test", ["alice@example.test"], message("alice@example.test"))
    c.quit()
    srv.wait_messages("alice@example.test", 2)


def test_greylist_auto_whitelists_a_client_after_its_retries(make_server):
    """POSTGREY_AUTO_WHITELIST_CLIENTS=2: a /24 that got mail through twice
    (counted at most once an hour, so the first is dated two hours back in
    the server's own table) is taken at once for a sender never seen;
    another network is still greylisted."""
    import sqlite3
    srv = make_server(env={"ENABLE_POSTGREY": "1", "POSTGREY_DELAY": "1",
                           "POSTGREY_AUTO_WHITELIST_CLIENTS": "2"})
    db = os.path.join(srv.state_dir, "tegami", "greylist.db")
    for n, sender in enumerate(["one@example.org", "two@example.net"]):
        r = send(srv, sender, message(sender))
        assert r is not None and r[0] == 451, r
        time.sleep(1.5)
        assert send(srv, sender, message(sender)) is None
        srv.wait_messages("alice@example.test", n + 1)
        with sqlite3.connect(db, timeout=10) as c:
            count, = c.execute("SELECT count FROM greylist_clients "
                               "WHERE net='127.0.0.0/24'").fetchone()
            assert count == n + 1, count
            if n == 0:
                c.execute("UPDATE greylist_clients SET last = last - 7200")
    # the same /24, a sender never seen: no delay now
    assert send(srv, "three@example.com", message("three@example.com"),
                source="127.0.0.77") is None
    srv.wait_messages("alice@example.test", 3)
    # a client of another /24 is not whitelisted by that
    r = send(srv, "four@example.com", message("four@example.com"),
             source="127.0.9.1")
    assert r is not None and r[0] == 451, r
    assert len(srv.messages("alice@example.test")) == 3


def cli(srv, *args, stdin=None):
    return subprocess.run([BINARY] + list(args), env=srv.env, input=stdin,
                          capture_output=True, timeout=30)


def try_login(srv, password):
    c = smtplib.SMTP("127.0.0.1", srv.ports["SUBMISSION"], timeout=30)
    try:
        c.starttls(context=srv.ssl_context())
        c.ehlo()
        # one mechanism, one failure (login() would try PLAIN then LOGIN)
        c.user, c.password = "alice@example.test", password
        c.auth("PLAIN", c.auth_plain)
        return 235
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code
    except smtplib.SMTPServerDisconnected:
        return 421
    finally:
        try:
            c.close()
        except Exception:
            pass


def banner(srv, source="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", srv.ports["SMTP"]), timeout=10,
                                 source_address=(source, 0))
    try:
        return s.recv(512).decode()
    finally:
        s.close()


def test_ban_after_six_bad_passwords_and_its_end(make_server):
    srv = make_server(env={"ENABLE_FAIL2BAN": "1", "FAIL2BAN_BANTIME": "6"})
    codes = [try_login(srv, "wrong") for _ in range(6)]
    assert codes[:5] == [535] * 5 and codes[5] == 421, codes
    assert banner(srv).startswith("421 4.7.0"), banner(srv)
    assert "127.0.0.1" in cli(srv, "fail2ban").stdout.decode()
    time.sleep(6.5)
    assert banner(srv).startswith("220"), banner(srv)
    assert try_login(srv, "alicepw") == 235


def test_fail2ban_cli_ban_and_unban(make_server):
    srv = make_server(env={"ENABLE_FAIL2BAN": "1"})
    r = cli(srv, "fail2ban", "ban", "127.0.0.4")
    assert r.returncode == 0 and b"127.0.0.4" in r.stdout, r
    end = time.time() + 2.5
    while not banner(srv, "127.0.0.4").startswith("421") and time.time() < end:
        time.sleep(0.2)
    assert banner(srv, "127.0.0.4").startswith("421 4.7.0")
    assert banner(srv, "127.0.0.5").startswith("220")
    assert b"127.0.0.4" in cli(srv, "fail2ban").stdout
    assert cli(srv, "fail2ban", "unban", "127.0.0.4").returncode == 0
    end = time.time() + 2.5
    while not banner(srv, "127.0.0.4").startswith("220") and time.time() < end:
        time.sleep(0.2)
    assert banner(srv, "127.0.0.4").startswith("220")
    assert cli(srv, "fail2ban", "unban", "127.0.0.4").returncode == 1
    assert cli(srv, "fail2ban", "ban", "not-an-ip").returncode == 1


SPAM = ["Cheap pills viagra casino winner, claim your free prize money now, "
        "click here unsubscribe lottery jackpot bitcoin investment {}",
        "Congratulations winner! Free casino bonus, cheap viagra pills, claim "
        "prize money lottery click here now {}"]
HAM = ["Hi Alice, the project meeting moved to Thursday; please bring the "
       "quarterly report and the budget figures for the review {}",
       "Alice, thanks for the notes from the design review. The build is green "
       "again and the release candidate is tagged {}"]


def test_trained_spam_lands_in_junk(make_server):
    srv = make_server(env={"SPAM_SUBJECT": "[SPAM]"})
    for i in range(12):
        for cls, texts in (("spam", SPAM), ("ham", HAM)):
            text = texts[i % 2].format(i)
            msg = message("x@example.org", subject=f"{cls} {i}", body=text + "\r\n",
                          msgid=f"{cls}{i}@x")
            r = cli(srv, "junk", "train", cls, "-", stdin=msg)
            assert r.returncode == 0, r
    r = cli(srv, "junk", "train", "spam", "-", stdin=message("x@example.org",
            subject="spam 0", body=SPAM[0].format(0) + "\r\n", msgid="spam0@x"))
    assert b"Already trained" in r.stdout, r
    spam = message("win@example.org", subject="you won",
                   body=SPAM[0].format("now") + "\r\n", extra="X-Spam: No\r\n")
    assert send(srv, "win@example.org", spam) is None
    got = srv.wait_messages("alice@example.test", 1, folder="Junk")
    h = header_block(got[0])
    assert "X-Spam: Yes" in h and "X-Spam: No" not in h, h
    assert "Subject: [SPAM] you won" in h, h
    ham = message("bob@example.org", subject="meeting",
                  body=HAM[0].format("today") + "\r\n")
    assert send(srv, "bob@example.org", ham) is None
    h = header_block(srv.wait_messages("alice@example.test", 1)[0])
    assert "X-Spam: Yes" not in h and "Subject: meeting" in h, h


EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def test_clamd_rejects_eicar(make_server):
    clamd = shutil.which("clamd") or "/usr/sbin/clamd"
    if not os.path.exists(clamd):
        pytest.fail("clamd is not installed (apt-get install clamav-daemon)")
    srv = make_server(start=False, env={"ENABLE_CLAMAV": "1"})
    d = os.path.join(srv.base, "clamd")
    os.makedirs(os.path.join(d, "db"))
    os.chmod(d, 0o755)
    # No signature download: a database of one signature, EICAR's bytes.
    with open(os.path.join(d, "db", "tegami-test.ndb"), "w") as f:
        f.write("Tegami.Test.EICAR:0:*:" + EICAR.encode().hex() + "\n")
    sock = os.path.join(d, "clamd.sock")
    with open(os.path.join(d, "clamd.conf"), "w") as f:
        f.write(f"LocalSocket {sock}\nLocalSocketMode 666\nDatabaseDirectory {d}/db\n"
                f"Foreground yes\nLogFile {d}/clamd.log\nTemporaryDirectory {d}\n"
                f"PidFile {d}/clamd.pid\n" + ("User root\n" if os.geteuid() == 0 else ""))
    proc = subprocess.Popen([clamd, "-c", os.path.join(d, "clamd.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.time() + 60
        while not os.path.exists(sock) and time.time() < end:
            assert proc.poll() is None, open(os.path.join(d, "clamd.log")).read()
            time.sleep(0.2)
        assert os.path.exists(sock)
        srv.env["TEGAMI_CLAMD_SOCKET"] = sock
        srv.start()
        r = send(srv, "joe@example.org", message("joe@example.org", body=EICAR + "\r\n"))
        assert r is not None and r[0] == 554 and "5.7.1" in r[1] and \
            "Tegami.Test.EICAR" in r[1], r
        assert send(srv, "joe@example.org", message("joe@example.org")) is None
        assert len(srv.wait_messages("alice@example.test", 1)) == 1
        srv.wait_log("clamav=infected")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_greylist_spares_a_verified_sender(make_server, dns):
    srv = make_server(env=auth_env(dns[0], ENABLE_POSTGREY="1", POSTGREY_DELAY="1"),
                      accounts=(("alice@example.test", "alicepw"),
                                ("bob@example.test", "bobpw")))
    sender = f"joe@pass.{ZONE}"
    r = send(srv, sender, message(sender))
    assert r is not None and r[0] == 451, r
    time.sleep(1.5)
    assert send(srv, sender, message(sender)) is None   # SPF pass: noted
    srv.wait_messages("alice@example.test", 1)
    # a new triplet (another sender of the same domain, another recipient)
    c = smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=30)
    c.ehlo("client.spam.test")
    try:
        c.sendmail(f"ann@pass.{ZONE}", ["bob@example.test"], message(f"ann@pass.{ZONE}"))
    except smtplib.SMTPRecipientsRefused:
        raise AssertionError(srv.log_text()[-3000:])
    c.quit()
    srv.wait_messages("bob@example.test", 1)


def send_to(srv, rcpt, sender="joe@example.org"):
    c = smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=30)
    try:
        c.ehlo("client.spam.test")
        c.sendmail(sender, [rcpt], message(sender))
        return 250
    except smtplib.SMTPRecipientsRefused as e:
        return list(e.recipients.values())[0][0]
    finally:
        c.quit()


def test_greylist_whitelist_files_read_and_reloaded(make_server):
    srv = make_server(start=False, env={"ENABLE_POSTGREY": "1"},
                      accounts=(("alice@example.test", "alicepw"),
                                ("bob@example.test", "bobpw")))
    # Postgrey's files in CONFIG_DIR, as docker-mailserver mounts them
    srv.write_config("whitelist_recipients", "# no greylisting for bob\n"
                     "bob@example.test\npostmaster@\n")
    srv.start()
    assert send_to(srv, "bob@example.test") == 250
    assert send_to(srv, "alice@example.test") == 451
    srv.wait_messages("bob@example.test", 1)
    # a client whitelist added while running is read within a second or two
    srv.write_config("whitelist_clients.local", "# our backup MX\n127.0.0.1\n")
    srv.wait_log("event=greylist_whitelists_reloaded")
    assert send_to(srv, "alice@example.test") == 250
    srv.wait_messages("alice@example.test", 1)
    # a broken line keeps the lists as they were (never opens the gate wider
    # nor closes it by accident)
    srv.write_config("whitelist_clients.local", "/[unclosed/\n")
    srv.wait_log("event=greylist_whitelist_failed")
    assert send_to(srv, "alice@example.test") == 250


def test_send_limit_per_user(make_server):
    srv = make_server(env={"TEGAMI_SEND_LIMIT": "3"})
    c = smtplib.SMTP("127.0.0.1", srv.ports["SUBMISSION"], timeout=30)
    c.starttls(context=srv.ssl_context())
    c.login("alice@example.test", "alicepw")
    refused = c.sendmail("alice@example.test",
                         [f"r{i}@example.org" for i in range(3)] + ["alice@example.test"],
                         message("alice@example.test"))
    assert list(refused) == ["alice@example.test"]
    assert refused["alice@example.test"][0] == 450
    assert b"4.7.1" in refused["alice@example.test"][1]
    c.quit()
    srv.wait_log("reason=send_limit")


# --- bans shared by SMTP AUTH, IMAP and POP3 (one table, two workers) -----

def greeting(port, source="127.0.0.1", tls_ctx=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=(source, 0))
    if tls_ctx is not None:
        s = tls_ctx.wrap_socket(s, server_hostname=HOST)
    try:
        data = b""
        while b"\n" not in data:
            chunk = s.recv(512)
            if not chunk:
                break
            data += chunk
        return data.decode()
    finally:
        s.close()


def imap_login(srv, password):
    import imaplib
    c = imaplib.IMAP4("127.0.0.1", srv.ports["IMAP"], timeout=30)
    try:
        c.login("alice@example.test", password)
        return "OK"
    except imaplib.IMAP4.error as e:
        return "NO " + str(e)
    finally:
        try:
            c.logout()
        except Exception:
            pass


def pop3_login(srv, password):
    import poplib
    c = poplib.POP3("127.0.0.1", srv.ports["POP3"], timeout=30)
    try:
        c.user("alice@example.test")
        c.pass_(password)
        return "OK"
    except poplib.error_proto as e:
        return e.args[0].decode()
    finally:
        try:
            c.quit()
        except Exception:
            pass


def test_ban_counts_smtp_imap_and_pop3_together(make_server):
    import imaplib
    srv = make_server(env={"ENABLE_FAIL2BAN": "1", "ENABLE_POP3": "1"})
    import poplib
    # connections opened before the ban, logged out
    early = imaplib.IMAP4("127.0.0.1", srv.ports["IMAP"], timeout=30)
    early_pop = poplib.POP3("127.0.0.1", srv.ports["POP3"], timeout=30)
    assert try_login(srv, "wrong") == 535
    assert try_login(srv, "wrong") == 535
    assert imap_login(srv, "wrong").startswith("NO ")
    assert imap_login(srv, "wrong").startswith("NO ")
    assert pop3_login(srv, "wrong").startswith("-ERR [AUTH] Authentication failed")
    assert not cli(srv, "fail2ban").stdout.decode().startswith("Banned")
    # the sixth failure, over IMAP, bans: NO, then BYE
    r = imap_login(srv, "wrong")
    assert r.startswith("NO ") and "AUTHENTICATIONFAILED" in r, r
    srv.wait_log("event=ban ip=127.0.0.1")
    assert "Banned: 127.0.0.1 until" in cli(srv, "fail2ban").stdout.decode()
    # every protocol refuses the address, the smtp worker within a second
    end = time.time() + 3
    while not banner(srv).startswith("421") and time.time() < end:
        time.sleep(0.1)
    assert banner(srv).startswith("421 4.7.0"), banner(srv)
    g = greeting(srv.ports["IMAP"])
    assert g.startswith("* BYE [UNAVAILABLE] Too many failed logins"), g
    g = greeting(srv.ports["IMAPS"], tls_ctx=srv.ssl_context())
    assert g.startswith("* BYE [UNAVAILABLE] Too many failed logins"), g
    g = greeting(srv.ports["POP3"])
    assert g.startswith("-ERR [SYS/TEMP] Too many failed logins"), g
    assert greeting(srv.ports["IMAP"], source="127.0.0.9").startswith("* OK")
    # the connection that was already open may not guess either: the
    # right password is refused and the server says BYE
    with pytest.raises((imaplib.IMAP4.error, imaplib.IMAP4.abort)):
        early.login("alice@example.test", "alicepw")
    with pytest.raises((imaplib.IMAP4.abort, OSError, imaplib.IMAP4.error)):
        early.noop()
    # and the POP3 one: refused, then the server hangs up
    early_pop.user("alice@example.test")
    with pytest.raises(poplib.error_proto) as e:
        early_pop.pass_("alicepw")
    assert e.value.args[0].startswith(b"-ERR [AUTH] Too many failed logins"), e.value
    assert early_pop.sock.recv(100) == b""
    early_pop.close()
    # unban by hand: all of them let it in again
    assert cli(srv, "fail2ban", "unban", "127.0.0.1").returncode == 0
    end = time.time() + 3
    while not greeting(srv.ports["IMAP"]).startswith("* OK") and time.time() < end:
        time.sleep(0.1)
    assert imap_login(srv, "alicepw") == "OK"
    assert pop3_login(srv, "alicepw") == "OK"
    end = time.time() + 3
    while not banner(srv).startswith("220") and time.time() < end:
        time.sleep(0.1)
    assert try_login(srv, "alicepw") == 235
    log = srv.log_text()
    assert "alicepw" not in log and "wrong" not in log.replace("wrong_", "")


def test_imap_sessions_per_address_limited(make_server):
    import imaplib
    srv = make_server(env={"TEGAMI_IMAP_MAX_SESSIONS_PER_IP": "2"})
    a = imaplib.IMAP4("127.0.0.1", srv.ports["IMAP"], timeout=30)
    b = imaplib.IMAP4("127.0.0.1", srv.ports["IMAP"], timeout=30)
    g = greeting(srv.ports["IMAP"])
    assert g.startswith("* BYE [UNAVAILABLE] Too many connections"), g
    assert greeting(srv.ports["IMAP"], source="127.0.0.2").startswith("* OK")
    a.logout()
    end = time.time() + 3
    while not greeting(srv.ports["IMAP"]).startswith("* OK") and time.time() < end:
        time.sleep(0.1)
    b.logout()


# --- junk training from IMAP, MARK_SPAM_AS_READ ---------------------------

def deliver_all(srv, texts, subject_prefix):
    n0 = len(srv.messages("alice@example.test"))
    for i, text in enumerate(texts):
        msg = message("x@example.org", subject=f"{subject_prefix} {i}",
                      body=text + "\r\n", msgid=f"{subject_prefix}{i}@x")
        assert send(srv, "x@example.org", msg) is None
    srv.wait_messages("alice@example.test", n0 + len(texts))


def imap_uids(c, criteria):
    typ, data = c.uid("SEARCH", None, *criteria)
    assert typ == "OK", data
    return data[0].split()


def test_junk_trained_by_imap_moves(make_server):
    import imaplib
    srv = make_server(env={"ENABLE_POP3": "0"})
    spam = [SPAM[i % 2].format(i) for i in range(12)]
    ham = [HAM[i % 2].format(i) for i in range(12)]
    # nothing is trained yet: everything lands in INBOX
    deliver_all(srv, spam[:8], "offer")
    deliver_all(srv, ham, "notes")
    assert srv.messages("alice@example.test", "Junk") == []
    c = imaplib.IMAP4("127.0.0.1", srv.ports["IMAP"], timeout=30)
    c.login("alice@example.test", "alicepw")
    c.select("INBOX")
    offers = imap_uids(c, ["SUBJECT", "offer"])
    assert len(offers) == 8
    # MOVE four, COPY + EXPUNGE four: all eight are spam now
    typ, _ = c.uid("MOVE", b",".join(offers[:4]).decode(), "Junk")
    assert typ == "OK"
    typ, _ = c.uid("COPY", b",".join(offers[4:]).decode(), "Junk")
    assert typ == "OK"
    c.uid("STORE", b",".join(offers[4:]).decode(), "+FLAGS", r"(\Deleted)")
    c.expunge()
    # four more arrive by APPEND (another account's client moving them in)
    for text in spam[8:]:
        m = message("x@example.org", subject="appended", body=text + "\r\n")
        typ, _ = c.append("Junk", None, None, m)
        assert typ == "OK"
    # a ham message put into Junk by mistake and taken back out: ham
    notes = imap_uids(c, ["SUBJECT", "notes"])
    c.uid("MOVE", notes[0].decode(), "Junk")
    c.select("Junk")
    back = imap_uids(c, ["SUBJECT", "notes"])
    assert len(back) == 1
    c.uid("MOVE", back[0].decode(), "INBOX")
    # Junk -> Trash teaches nothing
    c.uid("MOVE", imap_uids(c, ["SUBJECT", "appended"])[0].decode(), "Trash")
    # training is asynchronous; wait until the worker has done it
    end = time.time() + 10
    while srv.log_text().count("event=junk_trained") < 6 and time.time() < end:
        time.sleep(0.1)
    log = srv.log_text()
    assert log.count("event=junk_trained account=alice@example.test class=spam") >= 3, log[-3000:]
    assert "class=ham trained=1" in log, log[-3000:]
    assert "class=ham trained=0 already=0" not in log
    # the rest of the ham: out of Junk it goes (APPEND into Junk, then back)
    c.select("INBOX")
    c.logout()
    # teach the remaining ham the same way a user would rescue it
    c = imaplib.IMAP4("127.0.0.1", srv.ports["IMAP"], timeout=30)
    c.login("alice@example.test", "alicepw")
    c.select("INBOX")
    rest = imap_uids(c, ["SUBJECT", "notes"])
    c.uid("MOVE", b",".join(rest).decode(), "Junk")
    c.select("Junk")
    c.uid("MOVE", b",".join(imap_uids(c, ["SUBJECT", "notes"])).decode(), "INBOX")
    c.logout()
    end = time.time() + 10
    while "class=ham trained=12" not in srv.log_text() and time.time() < end:
        time.sleep(0.1)
    assert "class=ham trained=12" in srv.log_text(), srv.log_text()[-3000:]
    # a new similar spam goes to Junk; new ham stays in INBOX
    n_inbox = len(srv.messages("alice@example.test"))
    n_junk = len(srv.messages("alice@example.test", "Junk"))
    assert send(srv, "win@example.org", message("win@example.org", subject="win",
                body=SPAM[1].format("new") + "\r\n")) is None
    got = srv.wait_messages("alice@example.test", n_junk + 1, folder="Junk")
    assert any(b"Subject: win" in m and b"X-Spam: Yes" in m for m in got)
    assert send(srv, "bob@example.org", message("bob@example.org", subject="agenda",
                body=HAM[1].format("new") + "\r\n")) is None
    got = srv.wait_messages("alice@example.test", n_inbox + 1)
    assert any(b"Subject: agenda" in m and b"X-Spam: Yes" not in m for m in got)


def test_mark_spam_as_read(make_server):
    import imaplib
    srv = make_server(env={"MARK_SPAM_AS_READ": "1"})
    # trained from directories of message files (a Maildir's cur/, say)
    for cls, texts in (("spam", SPAM), ("ham", HAM)):
        d = os.path.join(srv.base, f"train-{cls}")
        os.makedirs(d)
        for i in range(12):
            with open(os.path.join(d, f"{i}.eml"), "wb") as f:
                f.write(message("x@example.org", subject=f"{cls} {i}",
                                body=texts[i % 2].format(i) + "\r\n", msgid=f"{cls}{i}@x"))
        os.makedirs(os.path.join(d, "subdir"))      # not a message: skipped
        r = cli(srv, "junk", "train", cls, d)
        assert r.returncode == 0 and b"Trained 12, already trained 0" in r.stdout, r
    r = cli(srv, "junk", "train", "spam", os.path.join(srv.base, "train-spam"))
    assert b"Trained 0, already trained 12" in r.stdout, r
    assert send(srv, "win@example.org", message("win@example.org", subject="seen?",
                body=SPAM[0].format("again") + "\r\n")) is None
    srv.wait_messages("alice@example.test", 1, folder="Junk")
    files = srv.message_files("alice@example.test", "Junk")
    assert len(files) == 1
    assert "/cur/" in files[0] and files[0].endswith(":2,S"), files
    # ham is not marked
    assert send(srv, "bob@example.org", message("bob@example.org", subject="plain",
                body=HAM[0].format("again") + "\r\n")) is None
    srv.wait_messages("alice@example.test", 1)
    inbox = srv.message_files("alice@example.test")
    assert len(inbox) == 1 and "/new/" in inbox[0], inbox
    c = imaplib.IMAP4("127.0.0.1", srv.ports["IMAP"], timeout=30)
    c.login("alice@example.test", "alicepw")
    typ, data = c.select("Junk")
    assert typ == "OK"
    typ, data = c.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0], data
    typ, data = c.status("Junk", "(UNSEEN)")
    assert b"UNSEEN 0" in data[0], data
    c.logout()


# --- rspamd, for real: its actions as docker-mailserver's milter honours them

RSPAMD_LOCAL = {
    "worker-normal.inc": 'bind_socket = "127.0.0.1:{port}";\ncount = 1;\n',
    "worker-controller.inc": 'bind_socket = "127.0.0.1:{cport}";\ncount = 1;\n',
    "worker-proxy.inc": "enabled = false;\n",
    "worker-fuzzy.inc": "enabled = false;\n",
    # no outside DNS here: fail fast; loopback clients are not "local"
    "options.inc": 'gtube_patterns = "all";\nlocal_addrs = [];\n'
                   'dns { nameserver = ["127.0.0.1:9"]; timeout = 0.5s; retransmits = 1; }\n',
    "logging.inc": 'type = "file";\nfilename = "{dir}/rspamd.log";\nlevel = "info";\n',
    # docker-mailserver's actions.conf, with a subject for rewrite_subject
    "actions.conf": 'greylist = 4;\nadd_header = 6;\nrewrite_subject = 8;\nreject = 11;\n'
                    'subject = "***SPAM*** %s";\n',
    # each test recipient gets one action whatever the score (the settings
    # module, keyed by the envelope recipient tegami sends in Rcpt:)
    "settings.conf": "".join(
        f'{name} {{ priority = high; rcpt = "{name}@example.test"; apply {{ actions {{ '
        f'{acts} }} }} }}\n' for name, acts in (
            ("addheader", "reject = 1000; rewrite_subject = 900; add_header = -1000; "
                          "greylist = -1000;"),
            ("rewrite", "reject = 1000; rewrite_subject = -1000; add_header = -1000; "
                        "greylist = -1000;"),
            ("grey", "reject = 1000; rewrite_subject = 900; add_header = 800; "
                     "greylist = -1000;"),
            ("clean", "reject = 1000; rewrite_subject = 900; add_header = 800; "
                      "greylist = 700;"))),
}


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    exe = shutil.which("rspamd")
    if exe is None:
        pytest.fail("rspamd is not installed (make test-deps)")
    d = tmp_path_factory.mktemp("rspamd")
    for sub in ("db", "run", "log", "local.d"):
        (d / sub).mkdir()
    port, cport = free_port(), free_port()
    for name, text in RSPAMD_LOCAL.items():
        (d / "local.d" / name).write_text(text.replace("{port}", str(port))
                              .replace("{cport}", str(cport)).replace("{dir}", str(d)))
    args = [exe, "-f", "-c", "/etc/rspamd/rspamd.conf", f"--var=LOCAL_CONFDIR={d}",
            f"--var=DBDIR={d}/db", f"--var=RUNDIR={d}/run", f"--var=LOGDIR={d}/log"]
    if os.geteuid() == 0:
        args[2:2] = ["-u", "root", "-g", "root"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.time() + 90     # the first start compiles its regexps
        while True:
            assert proc.poll() is None, (d / "rspamd.log").read_text()[-3000:]
            try:
                with socket.create_connection(("127.0.0.1", port), 1) as s:
                    s.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
                    s.settimeout(5)
                    got = b""
                    while True:
                        chunk = s.recv(512)
                        if not chunk:
                            break
                        got += chunk
                    if b"pong" in got:
                        break
            except OSError:
                pass
            assert time.time() < end, "rspamd did not start"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def test_rspamd_actions_are_honoured(make_server, rspamd):
    names = ("addheader", "rewrite", "grey", "clean")
    srv = make_server(env={"ENABLE_RSPAMD": "1", "TEGAMI_RSPAMD_ADDRESS": rspamd,
                           "TEGAMI_JUNK_FILTER": "0"},
                      accounts=[(f"{n}@example.test", "pw") for n in names])

    def send_one(rcpt, body="Just a plain message.\r\n", subject="hello"):
        c = smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=60)
        try:
            c.ehlo("client.spam.test")
            c.sendmail("joe@example.org", [rcpt],
                       message("joe@example.org", subject=subject, body=body))
            return None
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error.decode()
        finally:
            c.quit()

    # add header: X-Spam: Yes, into Junk
    assert send_one("addheader@example.test") is None
    h = header_block(srv.wait_messages("addheader@example.test", 1, folder="Junk")[0])
    assert "X-Spam: Yes" in h and "rspamd" in h and "Subject: hello" in h, h
    # rewrite subject: rspamd's subject, into Junk
    assert send_one("rewrite@example.test") is None
    h = header_block(srv.wait_messages("rewrite@example.test", 1, folder="Junk")[0])
    assert "Subject: ***SPAM*** hello" in h and "X-Spam: Yes" in h, h
    # greylist: try again later
    r = send_one("grey@example.test")
    assert r is not None and r[0] == 451 and r[1].startswith("4.7.1"), r
    # reject (GTUBE scores over 11): refused
    r = send_one("clean@example.test", body=GTUBE + "\r\n")
    assert r is not None and r[0] == 554 and r[1].startswith("5.7.1"), r
    # no action: the inbox, X-Spam: No
    assert send_one("clean@example.test") is None
    h = header_block(srv.wait_messages("clean@example.test", 1)[0])
    assert "X-Spam: No" in h and "Subject: hello" in h, h
    log = srv.log_text()
    for action in ("rspamd=add_header", "rspamd=rewrite_subject", "rspamd=greylist",
                   "rspamd=reject", "rspamd=no_action"):
        assert action in log, (action, log[-3000:])
