"""The operator's commands (issue 3): tegami <cmd> and setup <cmd> on real files.

Run: make SANITIZE=1 build/tegami-san && /usr/bin/python3 -m pytest tests/integration/test_cli.py
"""
import base64
import concurrent.futures
import os
import re
import stat
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clihelp import (HASH_RE, ROOT, Cli, account_line, doveadm_verify, have,  # noqa: E402
                     openssl_dkim_p, txt_strings)


@pytest.fixture
def cli(tmp_path):
    return Cli(tmp_path)


def accounts_lines(cli):
    return cli.read("postfix-accounts.cf").splitlines()


# ---------------------------------------------------------------- email


@pytest.mark.parametrize("setup", [False, True], ids=["tegami", "setup"])
def test_email_add_writes_dms_line(cli, setup):
    cli.ok("email", "add", "User@Example.com", "secret", setup=setup)
    text = cli.read("postfix-accounts.cf")
    assert re.fullmatch(account_line("user@example.com") + "\n", text), text
    assert cli.mode("postfix-accounts.cf") == 0o640
    cli.ok("email", "add", "second@example.org", "pw2", setup=setup)
    lines = accounts_lines(cli)
    assert len(lines) == 2 and re.fullmatch(account_line("second@example.org"), lines[1])


def test_hashes_verify_with_doveadm_both_ways(cli, tmp_path):
    if not have("doveadm"):
        pytest.skip("doveadm (dovecot-core) not installed")
    cli.ok("email", "add", "a@example.com", "correct horse")
    stored = cli.read("postfix-accounts.cf").split("|", 1)[1].strip()
    assert doveadm_verify(stored, "correct horse")
    assert not doveadm_verify(stored, "wrong")
    # doveadm's hash, checked by tegami's password_verify (through a tiny harness
    # linked against the same objects as the binary).
    made = subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", "s3cret pw"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert re.fullmatch(HASH_RE, made), made
    harness = build_verify_harness(tmp_path)
    assert subprocess.run([harness, made, "s3cret pw"]).returncode == 0
    assert subprocess.run([harness, made, "s3cret"]).returncode == 1


def build_verify_harness(tmp_path):
    src = tmp_path / "verify.c"
    src.write_text(r'''
#include "auth/password.h"
#include <stdio.h>
int main(int argc, char **argv) {
	const char *err = NULL;
	int r = password_verify(argv[1], argv[2], &err);
	if (r < 0) fprintf(stderr, "%s\n", err);
	return r == 1 ? 0 : r == 0 ? 1 : 2;
}
''')
    san = os.path.exists(os.path.join(ROOT, "build/obj-san/auth/password.o"))
    objdir = os.path.join(ROOT, "build/obj-san" if san else "build/obj-opt")
    objs = [os.path.join(objdir, "auth/password.o")] + [
        os.path.join(objdir, "lib", f) for f in ("str.o", "xalloc.o", "log.o")]
    out = str(tmp_path / "verify")
    flags = ["-fsanitize=address,undefined"] if san else []
    subprocess.run(["cc", "-std=c17", "-I" + os.path.join(ROOT, "src")] + flags +
                   [str(src)] + objs + ["-lcrypt", "-lcrypto", "-o", out], check=True)
    return out


def test_password_stdin_and_no_terminal(cli):
    cli.ok("email", "add", "--password-stdin", "a@example.com", input="from stdin\n")
    stored = cli.read("postfix-accounts.cf").split("|", 1)[1].strip()
    if have("doveadm"):
        assert doveadm_verify(stored, "from stdin")
    # No password, no terminal, no --password-stdin: refused, nothing written.
    r = cli.fails(1, "email", "add", "b@example.com", input="")
    assert "--password-stdin" in r.stderr
    cli.fails(1, "email", "add", "--password-stdin", "b@example.com", input="")
    # The password never shows up in the output.
    r = cli.ok("email", "update", "a@example.com", "hunter2-secret")
    assert "hunter2-secret" not in r.stdout + r.stderr


def test_email_add_refuses_duplicates_and_alias_clashes(cli):
    cli.ok("email", "add", "a@example.com", "x")
    cli.ok("alias", "add", "info@example.com", "a@example.com")
    r = cli.fails(1, "email", "add", "A@example.com", "y")
    assert "already exists" in r.stderr
    r = cli.fails(1, "email", "add", "info@example.com", "y")
    assert "alias" in r.stderr
    r = cli.fails(1, "alias", "add", "a@example.com", "b@example.org")
    assert "account" in r.stderr


def test_email_update_replaces_hash_keeps_extras_and_comments(cli):
    cli.write("postfix-accounts.cf",
              "# accounts\r\n\nA@example.com|{PLAIN}old|userdb_mail=maildir:~/x\n"
              "b@example.com|{PLAIN}b\n    weird line\n", mode=0o600)
    cli.ok("email", "update", "a@example.com", "new")
    lines = cli.read("postfix-accounts.cf").split("\n")
    assert lines[0] == "# accounts\r" and lines[1] == ""
    assert re.fullmatch(r"A@example\.com\|" + HASH_RE + r"\|userdb_mail=maildir:~/x", lines[2])
    assert lines[3:] == ["b@example.com|{PLAIN}b", "    weird line", ""]
    assert cli.mode("postfix-accounts.cf") == 0o600   # the old mode is kept
    cli.fails(1, "email", "update", "nobody@example.com", "x")


def test_email_del_removes_aliases_quota_and_mailbox(cli):
    for a in ("a@example.com", "b@example.com"):
        cli.ok("email", "add", a, "pw")
    cli.write("postfix-virtual.cf",
              "# aliases\n"
              "only-a@example.com a@example.com\n"
              "both@example.com b@example.com,A@example.com\n"
              "first@example.com a@example.com,b@example.com\n"
              "other@example.com c@example.org\n")
    cli.ok("quota", "set", "a@example.com", "5G")
    cli.ok("quota", "set", "b@example.com", "1M")
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(cli.mail, "example.com", "a", d))
    os.makedirs(os.path.join(cli.mail, "example.com", "b", "cur"))
    cli.ok("email", "del", "-y", "a@example.com")
    assert cli.read("postfix-virtual.cf") == (
        "# aliases\n"
        "both@example.com b@example.com\n"
        "first@example.com b@example.com\n"
        "other@example.com c@example.org\n")
    assert cli.read("dovecot-quotas.cf") == "b@example.com:1M\n"
    assert [l.split("|")[0] for l in accounts_lines(cli)] == ["b@example.com"]
    assert not os.path.exists(os.path.join(cli.mail, "example.com", "a"))
    assert os.path.isdir(os.path.join(cli.mail, "example.com", "b"))
    # -n keeps the mailbox; the last one out removes the empty domain dir with -y.
    cli.ok("email", "add", "c@example.com", "pw")
    cli.ok("email", "del", "-n", "c@example.com")
    cli.ok("email", "del", "-y", "b@example.com")
    assert not os.path.exists(os.path.join(cli.mail, "example.com"))
    assert cli.read("postfix-virtual.cf") == "# aliases\nother@example.com c@example.org\n"


def test_email_del_refusals(cli):
    cli.ok("email", "add", "a@example.com", "pw")
    r = cli.fails(1, "email", "del", "a@example.com", input="")
    assert "-y" in r.stderr and "-n" in r.stderr
    cli.fails(1, "email", "del", "-y", "a@example.com", "nobody@example.com")
    cli.fails(1, "email", "del", "-x", "a@example.com")
    cli.fails(1, "email", "del", "-y")


def test_email_list_as_dms_prints_it(cli):
    cli.ok("email", "add", "a@example.com", "pw")
    cli.ok("email", "add", "b@example.com", "pw")
    cli.ok("alias", "add", "x@example.com", "a@example.com")
    cli.ok("alias", "add", "y@example.com", "a@example.com, b@example.com")
    cli.ok("quota", "set", "a@example.com", "10M")
    box = os.path.join(cli.mail, "example.com", "a")
    os.makedirs(os.path.join(box, "cur"))
    os.makedirs(os.path.join(box, ".Sent", "new"))
    with open(os.path.join(box, "cur", "1.x,S=1536:2,S"), "wb") as f:
        f.write(b"x" * 1536)
    with open(os.path.join(box, ".Sent", "new", "2.y"), "wb") as f:
        f.write(b"y" * 1024 * 1024)
    r = cli.ok("email", "list")
    assert r.stdout == (
        "* a@example.com ( 1.1M / 10M ) [10%]\n"
        "    [ aliases -> x@example.com, y@example.com ]\n\n"
        "* b@example.com ( 0 / ~ ) [0%]\n"
        "    [ aliases -> y@example.com ]\n\n")
    r = cli.ok("email", "list", env={"ENABLE_QUOTAS": "0"})
    assert r.stdout.startswith("* a@example.com\n    [ aliases")


def test_email_list_figures_as_dovecot_reports_them(cli):
    """Dovecot's quota is whole KiB (so a few bytes show as 0), and an
    account without a quota line has POSTFIX_MAILBOX_SIZE_LIMIT, the limit
    the servers enforce for it."""
    cli.ok("email", "add", "a@example.com", "pw")
    cli.ok("email", "add", "b@example.com", "pw")
    cli.ok("quota", "set", "b@example.com", "0")
    box = os.path.join(cli.mail, "example.com", "a", "cur")
    os.makedirs(box)
    with open(os.path.join(box, "1.x,S=600:2,S"), "wb") as f:
        f.write(b"x" * 600)
    env = {"POSTFIX_MAILBOX_SIZE_LIMIT": str(2 * 1024 * 1024)}
    assert cli.ok("email", "list", env=env).stdout == (
        "* a@example.com ( 0 / 2.0M ) [0%]\n\n"
        "* b@example.com ( 0 / ~ ) [0%]\n\n")
    with open(os.path.join(box, "2.x,S=5000:2,S"), "wb") as f:
        f.write(b"x" * 5000)
    # 5600 bytes are 5 KiB: 5120 -> numfmt 5.0K; 5120*100/2 MiB = 0%
    assert cli.ok("email", "list", env=env).stdout.startswith(
        "* a@example.com ( 5.0K / 2.0M ) [0%]\n\n")
    assert cli.ok("email", "list").stdout.startswith("* a@example.com ( 5.0K / ~ ) [0%]\n\n")


def test_email_restrict(cli):
    cli.ok("email", "restrict", "add", "send", "Bad@example.com")
    assert cli.read("postfix-send-access.cf") == "bad@example.com \t\t REJECT\n"
    cli.fails(1, "email", "restrict", "add", "send", "bad@example.com")
    cli.ok("email", "restrict", "add", "receive", "x@example.com")
    assert cli.ok("email", "restrict", "list", "send").stdout == "bad@example.com \t\t REJECT\n"
    cli.ok("email", "restrict", "del", "send", "bad@example.com")
    assert cli.read("postfix-send-access.cf") == ""
    assert "Everyone is allowed" in cli.ok("email", "restrict", "list", "send").stdout
    cli.fails(1, "email", "restrict", "add", "sideways", "x@example.com")
    cli.fails(1, "email", "restrict", "ban", "send", "x@example.com")
    cli.fails(1, "email", "restrict", "add", "send", "not-an-address")


# ---------------------------------------------------------------- alias


def test_alias_add_del_list(cli):
    cli.ok("alias", "add", "Postmaster@Example.com", "a@example.com")
    cli.ok("alias", "add", "postmaster@example.com", "b@example.org")
    cli.ok("alias", "add", "@example.net", "catch@example.com")
    assert cli.read("postfix-virtual.cf") == (
        "postmaster@example.com a@example.com,b@example.org\n"
        "@example.net catch@example.com\n")
    r = cli.fails(1, "alias", "add", "postmaster@example.com", "B@example.org")
    assert "already an alias" in r.stderr
    assert cli.ok("alias", "list").stdout == (
        "* postmaster@example.com a@example.com,b@example.org\n\n"
        "* @example.net catch@example.com\n\n")
    cli.ok("alias", "del", "postmaster@example.com", "a@example.com")
    assert cli.read("postfix-virtual.cf") == (
        "postmaster@example.com b@example.org\n@example.net catch@example.com\n")
    cli.ok("alias", "del", "postmaster@example.com", "b@example.org")
    assert cli.read("postfix-virtual.cf") == "@example.net catch@example.com\n"
    # Deleting what is not there is not an error (docker-mailserver's rule).
    cli.ok("alias", "del", "postmaster@example.com", "b@example.org")
    cli.fails(1, "alias", "add", "not an address", "a@example.com")
    cli.fails(1, "alias", "add", "x@example.com", "a@exa mple.com")
    cli.fails(1, "alias", "add", "x@example.com")


def test_alias_list_empty(cli):
    r = cli.fails(1, "alias", "list")
    assert "does not exist" in r.stderr
    cli.write("postfix-virtual.cf", "# nothing\n")
    r = cli.fails(1, "alias", "list")
    assert "empty" in r.stderr


def test_file_without_final_newline_gets_one_when_appended(cli):
    cli.write("postfix-virtual.cf", "# c\na@example.com b@example.com")
    cli.ok("alias", "add", "c@example.com", "d@example.com")
    assert cli.read("postfix-virtual.cf") == (
        "# c\na@example.com b@example.com\nc@example.com d@example.com\n")


# ---------------------------------------------------------------- quota


def test_quota_set_del(cli):
    cli.ok("email", "add", "a@example.com", "pw")
    cli.ok("quota", "set", "A@example.com", "5G")
    assert cli.read("dovecot-quotas.cf") == "a@example.com:5G\n"
    cli.ok("quota", "set", "a@example.com", "0")
    assert cli.read("dovecot-quotas.cf") == "a@example.com:0\n"
    r = cli.fails(1, "quota", "set", "a@example.com", "5X")
    assert "5X" in r.stderr
    cli.fails(1, "quota", "set", "nobody@example.com", "5G")
    cli.fails(1, "quota", "set", "a@example.com", input="")   # no terminal to ask
    cli.ok("quota", "del", "a@example.com")
    assert cli.read("dovecot-quotas.cf") == ""


# ---------------------------------------------------------------- masters


def test_dovecot_master(cli):
    cli.ok("dovecot-master", "add", "Admin", "pw1")
    cli.ok("dovecot-master", "add", "backup", "pw2", setup=True)
    lines = cli.read("dovecot-masters.cf").splitlines()
    assert re.fullmatch(r"admin\|" + HASH_RE, lines[0])
    assert re.fullmatch(r"backup\|" + HASH_RE, lines[1])
    assert cli.mode("dovecot-masters.cf") == 0o640
    cli.fails(1, "dovecot-master", "add", "admin", "x")
    cli.fails(1, "dovecot-master", "add", "bad*name", "x")
    old = lines[0]
    cli.ok("dovecot-master", "update", "admin", "pw3")
    new = cli.read("dovecot-masters.cf").splitlines()[0]
    assert new != old and re.fullmatch(r"admin\|" + HASH_RE, new)
    if have("doveadm"):
        assert doveadm_verify(new.split("|", 1)[1], "pw3")
    assert cli.ok("dovecot-master", "list").stdout == "* admin\n\n* backup\n\n"
    cli.ok("dovecot-master", "del", "admin", "backup")
    assert cli.read("dovecot-masters.cf") == ""


# ---------------------------------------------------------------- relay


def test_relay(cli):
    cli.ok("relay", "add-domain", "Example.com", "smtp.mailgun.org", "587")
    cli.ok("relay", "add-domain", "example.org", "relay.example.net")
    assert cli.read("postfix-relaymap.cf") == (
        "@example.com [smtp.mailgun.org]:587\n@example.org [relay.example.net]:25\n")
    cli.ok("relay", "exclude-domain", "example.org")
    assert cli.read("postfix-relaymap.cf") == (
        "@example.com [smtp.mailgun.org]:587\n@example.org \n")
    cli.ok("relay", "add-auth", "example.com", "mg-user", "mg-pass")
    assert cli.read("postfix-sasl-password.cf") == "@example.com mg-user:mg-pass\n"
    assert cli.mode("postfix-sasl-password.cf") == 0o600
    cli.ok("relay", "add-auth", "--password-stdin", "example.com", "mg-user", input="other\n")
    assert cli.read("postfix-sasl-password.cf") == "@example.com mg-user:other\n"
    cli.fails(1, "relay", "add-domain", "example.com", "smtp.mailgun.org", "99999")
    cli.fails(1, "relay", "add-domain", "not_a_domain", "smtp.mailgun.org")
    cli.fails(1, "relay", "add-auth", "example.com", "user", input="")


# ---------------------------------------------------------------- concurrency


def test_twenty_parallel_adds(cli):
    os.makedirs(cli.config)
    cli.write("postfix-accounts.cf", "# twenty\n")

    def add(i):
        return cli.run("email", "add", f"user{i}@example.com", f"pw{i}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
        results = list(ex.map(add, range(20)))
    for r in results:
        assert r.returncode == 0, r.stderr
    lines = cli.read("postfix-accounts.cf").splitlines()
    assert lines[0] == "# twenty"
    names = sorted(l.split("|")[0] for l in lines[1:])
    assert names == sorted(f"user{i}@example.com" for i in range(20))
    assert not [f for f in os.listdir(cli.config) if "tmp" in f]


# ---------------------------------------------------------------- DKIM


def check_dkim_txt(path, selector, domain, private):
    """The .txt parses as a zone TXT and its key is the private key's."""
    text = open(path).read()
    m = re.fullmatch(re.escape(selector) + r"\._domainkey\tIN\tTXT\t\((.*)\)  ; ----- DKIM key "
                     + re.escape(selector) + " for " + re.escape(domain) + "\n", text, re.S)
    assert m, text
    strings = txt_strings(m.group(1))
    assert all(len(s) <= 255 for s in strings)
    value = "".join(strings)
    kind, p = openssl_dkim_p(private)
    want = ("v=DKIM1; h=sha256; k=rsa; p=" if kind == "rsa" else "v=DKIM1; k=ed25519; p=") + p
    assert value == want
    return value


def test_config_dkim_default(cli):
    cli.ok("email", "add", "a@example.com", "pw")
    cli.ok("alias", "add", "info@example.org", "a@example.com")
    cli.ok("config", "dkim", "keysize", "1024")
    keys = os.path.join(cli.config, "opendkim", "keys")
    for d in ("example.com", "example.org"):
        priv = os.path.join(keys, d, "mail.private")
        st = os.stat(priv)
        if os.geteuid() == 0:
            # the queue worker (DMS_VMAIL_GID) must be able to sign with it
            assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == 5000
        else:
            assert stat.S_IMODE(st.st_mode) == 0o600
        assert open(priv).read().startswith("-----BEGIN PRIVATE KEY-----")
        check_dkim_txt(os.path.join(keys, d, "mail.txt"), "mail", d, priv)
    assert cli.read("opendkim/KeyTable") == (
        "mail._domainkey.example.com example.com:mail:/etc/opendkim/keys/example.com/mail.private\n"
        "mail._domainkey.example.org example.org:mail:/etc/opendkim/keys/example.org/mail.private\n")
    assert cli.read("opendkim/SigningTable") == (
        "*@example.com mail._domainkey.example.com\n*@example.org mail._domainkey.example.org\n")
    assert cli.read("opendkim/TrustedHosts") == "127.0.0.1\nlocalhost\n"
    # Again: nothing replaced, nothing duplicated.
    before = cli.snapshot()
    cli.ok("config", "dkim", setup=True)
    assert cli.snapshot() == before


def test_config_dkim_options_and_ed25519(cli):
    cli.ok("config", "dkim", "keysize", "2048", "selector", "s2024", "domain",
           "Example.com, example.net", "keytype", "ed25519")
    keys = os.path.join(cli.config, "opendkim", "keys")
    for d in ("example.com", "example.net"):
        v = check_dkim_txt(os.path.join(keys, d, "s2024.txt"), "s2024", d,
                           os.path.join(keys, d, "s2024.private"))
        assert len(v) > 255     # a 2048-bit key needs two strings
        check_dkim_txt(os.path.join(keys, d, "s2024-ed25519.txt"), "s2024-ed25519", d,
                       os.path.join(keys, d, "s2024-ed25519.private"))
    assert cli.read("opendkim/SigningTable") == (
        "*@example.com s2024._domainkey.example.com\n"
        "*@example.com s2024-ed25519._domainkey.example.com\n"
        "*@example.net s2024._domainkey.example.net\n"
        "*@example.net s2024-ed25519._domainkey.example.net\n")


def test_config_dkim_help_among_options(cli):
    """docker-mailserver's open-dkim prints its help for a `help` in an
    option's place, after other options too, and makes no key."""
    for args in (["help"], ["keysize", "1024", "help"],
                 ["selector", "s1", "domain", "example.com", "help"]):
        r = cli.ok("config", "dkim", *args, setup=True)
        assert r.stdout.startswith("usage: setup config dkim"), args
    assert not os.path.exists(os.path.join(cli.config, "opendkim"))
    # as a value it is a value: a selector named help
    cli.ok("config", "dkim", "selector", "help", "domain", "example.com")
    assert os.path.exists(os.path.join(cli.config, "opendkim", "keys",
                                       "example.com", "help.private"))


def test_config_dkim_bad_input(cli):
    cli.fails(1, "config", "dkim", "keysize", "123", "domain", "example.com")
    cli.fails(1, "config", "dkim", "keytype", "dsa", "domain", "example.com")
    cli.fails(1, "config", "dkim", "selector", "a.b", "domain", "example.com")
    cli.fails(1, "config", "dkim", "domain", "not a domain")
    cli.fails(1, "config", "dkim", "colour", "blue")
    cli.fails(1, "config", "dkim", "keysize")
    # No domains at all: nothing to do, said once, success.
    r = cli.run("config", "dkim")
    assert r.returncode == 0 and "no domain" in r.stderr


# ---------------------------------------------------------------- dns


def parse_dns(out):
    """(zone lines, table rows) of `tegami dns` output."""
    zone_part, table_part = out.split(";; ==== As a table", 1)
    zone = [l for l in zone_part.splitlines() if l and not l.startswith(";")]
    rows = [l for l in table_part.splitlines()
            if l and not l.startswith((";", " ", "TYPE", "("))][0:]
    return zone, rows[1:] if rows and rows[0].startswith(" registrar") else rows


def test_dns_records(cli):
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.zone

    cli.ok("email", "add", "a@example.com", "pw")
    cli.ok("alias", "add", "postmaster@example.com", "a@example.com")
    cli.ok("config", "dkim", "keytype", "ed25519")
    r = cli.ok("dns", env={"TEGAMI_PUBLIC_IPV4": "203.0.113.5",
                           "TEGAMI_PUBLIC_IPV6": "2001:db8::5"})
    zone_lines, rows = parse_dns(r.stdout)
    z = dns.zone.from_text("\n".join(zone_lines) + "\n", origin="example.com.",
                           relativize=False, check_origin=False)
    def rr(name, t):
        return z.find_rdataset(name, t)
    assert rr("mail.example.com.", "A")[0].address == "203.0.113.5"
    assert rr("mail.example.com.", "AAAA")[0].address == "2001:db8::5"
    mx = rr("example.com.", "MX")[0]
    assert mx.preference == 10 and str(mx.exchange) == "mail.example.com."
    spf = b"".join(rr("example.com.", "TXT")[0].strings).decode()
    assert spf == "v=spf1 mx ~all"
    dmarc = b"".join(rr("_dmarc.example.com.", "TXT")[0].strings).decode()
    assert dmarc.startswith("v=DMARC1; p=quarantine;") and "rua=mailto:postmaster@example.com" in dmarc
    keys = os.path.join(cli.config, "opendkim", "keys", "example.com")
    for sel in ("mail", "mail-ed25519"):
        txt = rr(f"{sel}._domainkey.example.com.", "TXT")[0]
        assert all(len(s) <= 255 for s in txt.strings)
        value = b"".join(txt.strings).decode()
        kind, p = openssl_dkim_p(os.path.join(keys, f"{sel}.private"))
        assert value.endswith("p=" + p) and f"k={kind}" in value
        # The table has the same value as one unquoted string.
        assert any(row.split()[:2] == ["TXT", f"{sel}._domainkey.example.com"]
                   and row.endswith(value) for row in rows)
    # The PTR is a comment in the zone (the provider sets it) and a table row.
    assert ";   5.113.0.203.in-addr.arpa.\t3600\tIN\tPTR\tmail.example.com." in r.stdout
    assert any(row.split() == ["PTR", "5.113.0.203.in-addr.arpa", "mail.example.com"] for row in rows)
    assert "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" in r.stdout
    # The long RSA value carries a note on splitting, with the strings to paste.
    assert re.search(r"\d+ characters: longer than one DNS string", r.stdout)
    # --strict hardens SPF.
    r = cli.ok("dns", "--strict", "example.com", env={"TEGAMI_PUBLIC_IPV4": "203.0.113.5"})
    assert '"v=spf1 mx -all"' in r.stdout


def test_dns_without_ip_uses_placeholders_and_says_how(cli):
    cli.ok("email", "add", "a@example.com", "pw")
    r = cli.ok("dns")
    assert "<your server's public IPv4 address>" in r.stdout
    assert "curl -4 ifconfig.me" in r.stdout and "TEGAMI_PUBLIC_IPV4" in r.stdout
    assert "no DKIM key for example.com" in r.stdout
    assert "postmaster@example.com, which does not exist" in r.stdout
    cli.fails(1, "dns", env={"TEGAMI_PUBLIC_IPV4": "300.1.1.1"})
    cli.fails(1, "dns", "not_a_domain")


def test_check_refuses_bad_arguments(cli):
    """What `tegami check` finds is tested against nsd in tests/e2e/test_check.py;
    here: arguments and settings it refuses before looking at anything."""
    cli.ok("email", "add", "a@example.com", "pw")
    for args, env in ((["check", "--bogus"], None), (["check", "not_a_domain"], None),
                      (["check", "a.example", "b.example"], None),
                      (["dns", "--check", "--bogus"], None),
                      (["check"], {"TEGAMI_PUBLIC_IPV4": "300.1.1.1"}),
                      (["check"], {"TEGAMI_PUBLIC_IPV6": "10.0.0.1"}),
                      (["check"], {"OVERRIDE_HOSTNAME": "localhost"})):
        r = cli.fails(1, *args, env=env)
        assert r.stdout == "" and "error:" in r.stderr, (args, r.stderr)
    r = cli.fails(1, "check", "--bogus", setup=True)
    assert r.stderr.startswith("setup: error: unexpected argument '--bogus'; usage: "
                               "setup check")


# ---------------------------------------------------------------- the tree


COMMANDS = [
    ["email", "add"], ["email", "update"], ["email", "del"], ["email", "restrict"],
    ["email", "list"], ["alias", "add"], ["alias", "del"], ["alias", "list"],
    ["quota", "set"], ["quota", "del"], ["dovecot-master", "add"],
    ["dovecot-master", "update"], ["dovecot-master", "del"], ["dovecot-master", "list"],
    ["config", "dkim"], ["relay", "add-domain"], ["relay", "add-auth"],
    ["relay", "exclude-domain"], ["dns"], ["check"], ["fail2ban"], ["debug", "show-mail-logs"],
    ["debug", "login"], ["debug", "fetchmail"], ["debug", "getmail"],
]


def test_help_lists_every_command(cli):
    for setup in (False, True):
        prog = "setup" if setup else "tegami"
        out = cli.ok("help", setup=setup).stdout
        for c in COMMANDS + [["help"], ["version"]]:
            assert f"{prog} {' '.join(c)}" in out, c
        assert cli.ok(setup=setup).stdout == out
        assert cli.ok("--help", setup=setup).stdout == out
    for c in COMMANDS:
        for h in ("--help", "help"):
            r = cli.ok(*c, h)
            assert r.stdout.startswith(f"usage: tegami {' '.join(c)}"), (c, r.stdout)
    assert cli.ok("email", "--help").stdout.count("\n    tegami email ") == 5
    assert re.fullmatch(r"tegami \S+\n", cli.ok("version").stdout)
    # docs/cli.md mirrors the help.
    doc = open(os.path.join(ROOT, "docs", "cli.md")).read()
    for c in COMMANDS:
        assert f"tegami {' '.join(c)}" in doc, c


def test_fail2ban_status_and_log(cli):
    cli.env["STATE_DIR"] = os.path.join(cli.tmp, "state")
    r = cli.ok("fail2ban", "status", setup=True)
    assert r.stdout == (
        "Status for the jail: tegami\n"
        "|- Filter\n"
        "|  `- Rule:\t6 failed logins within 1w\n"
        "`- Actions\n"
        "   |- Currently banned:\t0\n"
        "   |- Ban time:\t1w\n"
        "   `- Banned IP list:\t\n\n")
    cli.ok("fail2ban", "ban", "192.0.2.7")
    cli.ok("fail2ban", "ban", "2001:db8::1")
    out = cli.ok("fail2ban", "status", env={"FAIL2BAN_MAXRETRY": "3"}).stdout
    assert "\t3 failed logins within 1w\n" in out
    assert "Currently banned:\t2\n" in out
    # an IPv6 address is banned as its /64 (filter/ban.h)
    assert re.search(r"Banned IP list:\t(192\.0\.2\.7 2001:db8::/64|2001:db8::/64 192\.0\.2\.7)\n", out), out
    # no fail2ban.log: one line that says where the ban lines are
    r = cli.fails(1, "fail2ban", "log", setup=True)
    assert "event=(banned|" in r.stderr and "docker logs" in r.stderr
    cli.fails(1, "fail2ban", "frobnicate")


def test_debug_commands(cli):
    cli.env["STATE_DIR"] = os.path.join(cli.tmp, "state")
    r = cli.fails(1, "debug", "show-mail-logs", setup=True)
    assert "standard error" in r.stderr and "docker logs" in r.stderr
    for what in ("fetchmail", "getmail"):
        r = cli.fails(1, "debug", what, setup=True)
        assert f"no {what}" in r.stderr
    # login: a shell that sees the folders tegami reads
    r = cli.run("debug", "login", "echo", "$CONFIG_DIR", "$MAIL_DIR;", "exit", "7",
                setup=True)
    assert r.returncode == 7 and r.stdout == f"{cli.config} {cli.mail}\n", r
    r = cli.run("debug", "login", setup=True, input="echo hi $STATE_DIR\n")
    assert r.returncode == 0 and r.stdout.startswith("hi "), r
    cli.fails(2, "debug")
    cli.fails(2, "debug", "frobnicate")


def test_unknown_commands_exit_2(cli):
    for args in (["frobnicate"], ["email"], ["email", "frobnicate"], ["config", "spf"],
                 ["postscreen"], ["status-of-nothing"], ["debug"], ["debug", "sieve"]):
        r = cli.fails(2, *args)
        assert "unknown command" in r.stderr
    r = cli.fails(2, "email", "frob", setup=True)
    assert r.stderr.startswith("setup: ")


@pytest.mark.parametrize("args", [
    ["email", "add", "not-an-address", "pw"],
    ["email", "add", "a@example.com"],
    ["email", "add", "a b@example.com", "pw"],
    ["email", "add", "../../etc@example.com", "pw"],
    ["email", "add", "a@example.com", "pw", "extra"],
    ["email", "del", "-y", "bad"],
    ["quota", "set", "a@example.com", "5X"],
    ["alias", "add", "x@example.com", "a,,"],
    ["relay", "exclude-domain"],
], ids=lambda a: " ".join(a))
def test_bad_input_exit_1_and_files_untouched(cli, args):
    cli.ok("email", "add", "a@example.com", "pw")
    cli.fails(1, *args, input="")


def test_unwritable_config_dir(cli, tmp_path):
    cli.ok("email", "add", "a@example.com", "pw")
    # Under a regular file: cannot be created.
    r = cli.fails(1, "email", "add", "b@example.com", "pw",
                  env={"CONFIG_DIR": cli.path("postfix-accounts.cf") + "/sub"})
    assert "Not a directory" in r.stderr
    # A directory this user may not write to (tests run as root: drop to nobody).
    if os.geteuid() == 0 and have("setpriv"):
        os.chmod(cli.tmp, 0o755)
        os.chmod(cli.config, 0o755)
        r = cli.fails(1, "email", "add", "b@example.com", "pw",
                      prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        assert "Permission denied" in r.stderr


def test_settings_error_is_one_line(cli):
    cli.fails(1, "email", "list", env={"LOG_LEVEL": "loud"})


# ---------------------------------------------------------------- on a terminal


def run_on_tty(cli, args, answers, timeout=60):
    """Runs a command with a pseudo-terminal as stdin and stderr; answers are
    (prompt, reply) pairs: each reply is typed once its prompt was printed.
    Returns (exit code, everything the terminal showed)."""
    import pty
    import select
    import time
    master, slave = pty.openpty()
    p = subprocess.Popen([cli_binary()] + args,
                         stdin=slave, stdout=subprocess.PIPE, stderr=slave,
                         env=cli.env, close_fds=True)
    os.close(slave)
    seen = b""
    deadline = time.time() + timeout
    pending = list(answers)
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if pending and pending[0][0].encode() in seen.split(b"\x00")[-1]:
            prompt, reply = pending.pop(0)
            # Only what follows this prompt counts for the next one.
            seen += b"\x00"
            time.sleep(0.05)
            os.write(master, reply.encode() + b"\n")
        if p.poll() is not None and not r:
            break
    p.wait(timeout=timeout)
    os.close(master)
    return p.returncode, seen.replace(b"\x00", b"").decode(errors="replace")


def cli_binary():
    from clihelp import binary
    return binary()


def test_password_asked_twice_without_echo(cli):
    rc, shown = run_on_tty(cli, ["email", "add", "t@example.com"],
                           [("Enter Password: ", "tty-secret-1"),
                            ("Confirm Password: ", "tty-secret-1")])
    assert rc == 0, shown
    assert "tty-secret-1" not in shown
    stored = cli.read("postfix-accounts.cf").split("|", 1)[1].strip()
    if have("doveadm"):
        assert doveadm_verify(stored, "tty-secret-1")
    rc, shown = run_on_tty(cli, ["email", "add", "u@example.com"],
                           [("Enter Password: ", "one"), ("Confirm Password: ", "two")])
    assert rc == 1 and "do not match" in shown
    assert "u@example.com" not in cli.read("postfix-accounts.cf")


def test_email_del_asks_on_a_terminal(cli):
    cli.ok("email", "add", "a@example.com", "pw")
    cli.ok("email", "add", "b@example.com", "pw")
    for u in ("a", "b"):
        os.makedirs(os.path.join(cli.mail, "example.com", u, "cur"))
    rc, shown = run_on_tty(cli, ["email", "del", "a@example.com"], [("[y/N] ", "n")])
    assert rc == 0, shown
    assert os.path.isdir(os.path.join(cli.mail, "example.com", "a"))
    rc, shown = run_on_tty(cli, ["email", "del", "b@example.com"], [("[y/N] ", "y")])
    assert rc == 0, shown
    assert not os.path.exists(os.path.join(cli.mail, "example.com", "b"))
    assert cli.read("postfix-accounts.cf") == ""


def test_dns_zone_lines_pass_nsd_checkzone(cli, tmp_path):
    if not have("nsd-checkzone"):
        pytest.skip("nsd not installed")
    cli.ok("email", "add", "a@example.com", "pw")
    cli.ok("config", "dkim", "keysize", "2048", "keytype", "ed25519")
    out = cli.ok("dns", "example.com", env={"TEGAMI_PUBLIC_IPV4": "203.0.113.5",
                                            "TEGAMI_PUBLIC_IPV6": "2001:db8::5"}).stdout
    zone_part = out.split(";; ==== As a table", 1)[0]
    zone = tmp_path / "example.com.zone"
    zone.write_text("$ORIGIN example.com.\n$TTL 3600\n"
                    "@ IN SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 3600\n"
                    "@ IN NS ns1.example.com.\nns1 IN A 192.0.2.53\n" + zone_part)
    r = subprocess.run(["nsd-checkzone", "example.com", str(zone)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
