"""The spam defences between real hosts (issue 6): host ext (10.77.0.21,
ext.test, an outside tegami MTA, plus the addresses .22-.24 for raw
clients; called x below) sends to host b over the bed's network; the records come from the bed's nsd
(s.test: SPF/DKIM/DMARC cases, bl.test: a DNSBL; see e2e_bed.SPAM_ZONES).

b runs with docker-mailserver's defaults for SPF/DKIM/DMARC (on; SPF fail
refused at RCPT as policyd-spf does), ENABLE_DNSBL with bl.test,
ENABLE_FAIL2BAN with a short ban, IMAP for bob's mail client; greylisting
gets a b of its own at the end. Where b refuses, x's queue bounces and the
DSN lands in the sender's Maildir on x."""
import base64
import os
import time

import pytest

import e2e_clients
from e2e_mail import MailHost

PW = "secret-pw-1"
X_SENDERS = ["alice@ext.test"] + [f"joe@{d}.s.test" for d in
                                ("pass", "soft", "fail", "perm", "rej", "qua")]
BANTIME = 6


def b_env(b_addr, **extra):
    env = {
        "ENABLE_DNSBL": "1",
        "TEGAMI_DNSBL_SITES": "bl.test*3",
        "ENABLE_FAIL2BAN": "1",
        "FAIL2BAN_BANTIME": str(BANTIME),
        "LISTEN_IMAP": f"{b_addr}:143",
        "SMTP_GREET_PAUSE": "0",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def hosts(bed, tmp_path_factory):
    ca_dir = str(tmp_path_factory.mktemp("ca-spam"))
    b = MailHost(bed, "b", ca_dir, env=b_env(bed.hosts["b"].addr))
    x = MailHost(bed, "ext", ca_dir)
    try:
        b.add_account("bob@b.test", PW)
        for a in X_SENDERS:
            x.add_account(a, PW)
        b.start()
        x.start()
        yield b, x
        for h in (b, x):
            h.stop()
            h.check_log()
    finally:
        b.close()
        x.close()


def message(frm, subject, body="Hello Bob.\r\n", to="bob@b.test"):
    return (f"From: <{frm}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.time()}@ext.test>\r\n"
            f"\r\n{body}").encode()


def header(msg):
    return msg.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode()


def newest_with(msgs, needle):
    for m in reversed(msgs):
        if needle.encode() in m:
            return m
    raise AssertionError(f"no message with {needle!r} among {len(msgs)}")


def send_via_x(x, sender, subject, body="Hello Bob.\r\n"):
    """Submission on x as the sender; x's queue delivers to b over MX."""
    x.submit(sender, PW, sender, "bob@b.test", message(sender, subject, body))


def wait_dsn(x, sender, subject, n0):
    dsn = x.wait_messages(sender, n0 + 1)[-1]
    assert b"multipart/report" in dsn and f"Subject: {subject}".encode() in dsn, dsn[:3000]
    return dsn.decode("utf-8", "replace")


def test_spf_pass_softfail_permerror_and_fail(bed, hosts):
    b, x = hosts
    n = len(b.messages("bob@b.test"))
    for dom, result in (("pass", "pass"), ("soft", "softfail"), ("perm", "permerror")):
        send_via_x(x, f"joe@{dom}.s.test", f"spf {dom}")
        n += 1
        got = newest_with(b.wait_messages("bob@b.test", n), f"Subject: spf {dom}")
        h = header(got)
        assert f"Received-SPF: {result}" in h and "client-ip=10.77.0.21" in h, h
        assert f"spf={result} " in h and f"smtp.mailfrom=joe@{dom}.s.test" in h, h
    assert "more than 10 DNS-querying terms" in h, h
    # fail: b refuses at RCPT (docker-mailserver's policyd-spf default);
    # x bounces to the sender
    before = len(x.messages("joe@fail.s.test"))
    send_via_x(x, "joe@fail.s.test", "spf fail")
    dsn = wait_dsn(x, "joe@fail.s.test", "spf fail", before)
    assert "5.7.23" in dsn and "SPF fail" in dsn, dsn[:3000]
    assert len(b.messages("bob@b.test")) == n
    b.wait_log("reason=spf spf=fail domain=fail.s.test")


def test_dkim_pass_and_a_body_changed_in_transit(bed, hosts):
    import dkim
    b, x = hosts
    n = len(b.messages("bob@b.test"))
    # x signs for ext.test (RSA and Ed25519); b verifies against nsd
    send_via_x(x, "alice@ext.test", "dkim signed by x")
    got = newest_with(b.wait_messages("bob@b.test", n + 1), "Subject: dkim signed by x")
    h = header(got)
    assert h.count("dkim=pass header.d=ext.test") == 2, h
    assert "dmarc=pass" in h and "spf=pass" in h, h
    # a third party's signature (dkimpy), injected from x's namespace
    key = open(bed.spam_dkim[0], "rb").read()
    body = message("joe@dk.s.test", "dkim by dkimpy", body="The original text.\r\n")
    signed = dkim.sign(body, b"sel", b"dk.s.test", key,
                       include_headers=[b"from", b"to", b"subject"]) + body
    r = e2e_clients.run(bed, "ext", "smtp_send", host=b.addr, source=x.addr,
                        helo="mx.ext.test", mail_from="joe@dk.s.test",
                        rcpts=["bob@b.test"], msg=base64.b64encode(signed).decode())
    assert r["code"] == 250, r
    got = newest_with(b.wait_messages("bob@b.test", n + 2), "Subject: dkim by dkimpy")
    h = header(got)
    assert "dkim=pass header.d=dk.s.test" in h and "dmarc=pass" in h, h
    assert "spf=neutral" in h, h
    # the same signature over a body a relay changed: DKIM fails, and
    # dk.s.test's DMARC p=reject refuses at the end of DATA
    tampered = signed.replace(b"The original text.", b"The altered text!!")
    r = e2e_clients.run(bed, "ext", "smtp_send", host=b.addr, source=x.addr,
                        helo="mx.ext.test", mail_from="joe@dk.s.test",
                        rcpts=["bob@b.test"], msg=base64.b64encode(tampered).decode())
    assert r["code"] == 550 and r["stage"] == "data" and r["text"].startswith("5.7.1"), r
    assert "DMARC" in r["text"], r
    assert len(b.messages("bob@b.test")) == n + 2


def test_dmarc_reject_and_quarantine(bed, hosts):
    b, x = hosts
    n = len(b.messages("bob@b.test"))
    before = len(x.messages("joe@rej.s.test"))
    send_via_x(x, "joe@rej.s.test", "dmarc reject")
    dsn = wait_dsn(x, "joe@rej.s.test", "dmarc reject", before)
    assert "5.7.1" in dsn and "DMARC" in dsn, dsn[:3000]
    nj = len(b.messages("bob@b.test", "Junk"))
    send_via_x(x, "joe@qua.s.test", "dmarc quarantine")
    got = newest_with(b.wait_messages("bob@b.test", nj + 1, folder="Junk"),
                      "Subject: dmarc quarantine")
    assert "dmarc=fail" in header(got), header(got)
    assert len(b.messages("bob@b.test")) == n


def test_dnsbl_listing_and_the_refused_resolver_answer(bed, hosts):
    b, x = hosts
    listed, refused = bed.hosts["ext"].addr.rsplit(".", 1)[0] + ".22", \
        bed.hosts["ext"].addr.rsplit(".", 1)[0] + ".23"
    r = e2e_clients.run(bed, "ext", "smtp_banner", host=b.addr, source=listed)
    assert r["banner"].startswith("554 5.7.1") and "bl.test" in r["banner"], r
    # 127.255.255.254 means "your resolver is refused": no listing
    n = len(b.messages("bob@b.test"))
    msg = message("joe@soft.s.test", "from the refused-answer address")
    r = e2e_clients.run(bed, "ext", "smtp_send", host=b.addr, source=refused,
                        helo="mx.ext.test", mail_from="joe@soft.s.test",
                        rcpts=["bob@b.test"], msg=base64.b64encode(msg).decode())
    assert r["code"] == 250, r
    b.wait_messages("bob@b.test", n + 1)
    log = b.log_text()
    assert f"event=dnsbl ip={listed} score=3 listed=bl.test" in log, log[-3000:]
    assert f"event=dnsbl ip={refused} score=0" in log, log[-3000:]
    assert "event=dnsbl_resolver_refused" in log


def test_ban_after_six_bad_passwords_and_its_end(bed, hosts):
    """Three wrong SMTP AUTH passwords and three wrong IMAP ones, from one
    address on x: banned on every port of b, and let in again after
    FAIL2BAN_BANTIME."""
    b, x = hosts
    guesser = bed.hosts["ext"].addr.rsplit(".", 1)[0] + ".24"
    args = dict(host=b.addr, source=guesser, cafile=b.ca, user="bob@b.test")
    codes = [e2e_clients.run(bed, "ext", "smtp_auth", password="wrong", **args)["code"]
             for _ in range(3)]
    assert codes == [535] * 3, codes
    for _ in range(2):
        r = e2e_clients.run(bed, "ext", "imap_login", password="wrong", **args)
        assert r["result"] == "NO" and "AUTHENTICATIONFAILED" in r["text"], r
    # the sixth: IMAP, in the imap worker; the ban is for all of b
    r = e2e_clients.run(bed, "ext", "imap_login", password="wrong", **args)
    assert r["result"] == "NO", r
    t_ban = time.time()
    b.wait_log(f"event=ban ip={guesser}")
    end = time.time() + 3
    while True:
        banner = e2e_clients.run(bed, "ext", "smtp_banner", host=b.addr,
                                 source=guesser)["banner"]
        if banner.startswith("421") or time.time() > end:
            break
        time.sleep(0.2)
    assert banner.startswith("421 4.7.0"), banner
    g = e2e_clients.run(bed, "ext", "imap_greeting", host=b.addr, source=guesser)
    assert g["greeting"].startswith("* BYE [UNAVAILABLE]"), g
    # even the right password is refused while banned
    assert e2e_clients.run(bed, "ext", "smtp_auth", password=PW, **args)["code"] == 421
    # others on x are not affected
    assert e2e_clients.run(bed, "ext", "smtp_banner", host=b.addr,
                           source=x.addr)["banner"].startswith("220")
    assert guesser in b.cli(["fail2ban"]).stdout
    # the end of the ban
    time.sleep(max(0, t_ban + BANTIME + 0.5 - time.time()))
    end = time.time() + 3
    while True:
        banner = e2e_clients.run(bed, "ext", "smtp_banner", host=b.addr,
                                 source=guesser)["banner"]
        if banner.startswith("220") or time.time() > end:
            break
        time.sleep(0.2)
    assert banner.startswith("220"), banner
    assert e2e_clients.run(bed, "ext", "imap_login", password=PW, **args)["result"] == "OK"
    assert e2e_clients.run(bed, "ext", "smtp_auth", password=PW, **args)["code"] == 235


SPAM = ["Cheap pills viagra casino winner, claim your free prize money now, "
        "click here unsubscribe lottery jackpot bitcoin investment {}",
        "Congratulations winner! Free casino bonus, cheap viagra pills, claim "
        "prize money lottery click here now {}"]
HAM = ["Hi Bob, the project meeting moved to Thursday; please bring the "
       "quarterly report and the budget figures for the review {}",
       "Bob, thanks for the notes from the design review. The build is green "
       "again and the release candidate is tagged {}"]


def test_trained_spam_lands_in_junk(bed, hosts):
    """x delivers offers and notes to bob; bob's mail client (on x, IMAP
    over STARTTLS) moves the offers into Junk and rescues the notes from
    it; the next offer from x lands in Junk by itself."""
    b, x = hosts
    n = len(b.messages("bob@b.test"))
    for i in range(10):
        send_via_x(x, "alice@ext.test", f"offer {i}", SPAM[i % 2].format(i) + "\r\n")
        send_via_x(x, "alice@ext.test", f"notes {i}", HAM[i % 2].format(i) + "\r\n")
    b.wait_messages("bob@b.test", n + 20, timeout=60)
    args = dict(host=b.addr, source=x.addr, cafile=b.ca, user="bob@b.test",
                password=PW)
    r = e2e_clients.run(bed, "ext", "imap_move", src="INBOX", dst="Junk",
                        subject="offer", **args)
    assert r["moved"] == 10, r
    r = e2e_clients.run(bed, "ext", "imap_move", src="INBOX", dst="Junk",
                        subject="notes", copy_expunge=True, **args)
    assert r["moved"] == 10, r
    r = e2e_clients.run(bed, "ext", "imap_move", src="Junk", dst="INBOX",
                        subject="notes", **args)
    assert r["moved"] == 10, r
    b.wait_log("class=ham trained=10")
    nj = len(b.messages("bob@b.test", "Junk"))
    send_via_x(x, "alice@ext.test", "a new offer", SPAM[0].format("today") + "\r\n")
    got = newest_with(b.wait_messages("bob@b.test", nj + 1, folder="Junk"),
                      "Subject: a new offer")
    assert "X-Spam: Yes" in header(got), header(got)
    ni = len(b.messages("bob@b.test"))
    send_via_x(x, "alice@ext.test", "new notes", HAM[1].format("today") + "\r\n")
    got = newest_with(b.wait_messages("bob@b.test", ni + 1), "Subject: new notes")
    assert "X-Spam: Yes" not in header(got)


def test_greylisting_defers_the_first_try_and_takes_the_retry(bed, hosts,
                                                             tmp_path_factory):
    """A b with ENABLE_POSTGREY (3 s delay): x's first delivery gets 451,
    x's queue retries (TEGAMI_QUEUE_RETRY_FIRST=1, doubling) and the retry
    after the delay is taken. (Runs last: it replaces b.)"""
    b, x = hosts
    b.stop()
    grey = MailHost(bed, "b", os.path.dirname(b.ca),
                    env=b_env(bed.hosts["b"].addr, ENABLE_POSTGREY="1",
                              POSTGREY_DELAY="3", POSTGREY_TEXT="Greylisted, come back"))
    try:
        grey.add_account("bob@b.test", PW)
        grey.start()
        mark = len(x.log_text())
        t0 = time.time()
        send_via_x(x, "alice@ext.test", "greylisted")
        got = grey.wait_messages("bob@b.test", 1, timeout=40)[-1]
        assert b"Subject: greylisted" in got
        # Postgrey counts whole seconds: at least 2 of the 3 have passed
        assert time.time() - t0 >= 2
        log = grey.log_text()
        assert "event=greylisted ip=10.77.0.21 from=<alice@ext.test> to=<bob@b.test>" in log
        xlog = x.log_text()[mark:]
        assert "status=deferred" in xlog and "Greylisted, come back" in xlog, xlog[-3000:]
        assert "status=sent" in xlog
        grey.stop()
        grey.check_log()
    finally:
        grey.close()
