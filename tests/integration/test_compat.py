"""Moving from docker-mailserver: its mailserver.env, its config folder and
its local aliases, on the real binary.

Run: make SANITIZE=1 build/tegami-san && /usr/bin/python3 -m pytest tests/integration/test_compat.py
"""
import os
import re
import shutil
import smtplib
import socket
import time

from tegami_server import HOST

HERE = os.path.dirname(os.path.abspath(__file__))
MSG = b"From: a@remote.test\r\nSubject: hi\r\n\r\nhello\r\n"


def chown_vmail(top):
    """A docker-mailserver mail folder belongs to 5000:5000 (DMS_VMAIL_UID)."""
    if os.geteuid() != 0:
        return
    for d, dirs, files in os.walk(top):
        for n in [d] + [os.path.join(d, x) for x in dirs + files]:
            os.lchown(n, 5000, 5000)


def ignored_keys(text):
    return re.findall(r"event=config_ignored key=(\S+)", text)


def test_dms_template_env_file_starts_unchanged(make_server):
    """docker-mailserver's own mailserver.env, as copied by an operator,
    starts tegami; only what it turns on that tegami lacks is reported,
    once each, and nothing is called unknown."""
    srv = make_server(start=False)
    envfile = os.path.join(srv.base, "mailserver.env")
    shutil.copy(os.path.join(HERE, "dms_template.env"), envfile)
    os.chmod(envfile, 0o644)
    srv.env["TEGAMI_ENV_FILE"] = envfile
    srv.start()
    text = srv.log_text()
    assert sorted(ignored_keys(text)) == ["ENABLE_AMAVIS", "ENABLE_UPDATE_CHECK"]
    assert "event=config_unknown" not in text
    # the template's empty POSTFIX_MESSAGE_SIZE_LIMIT= is the default
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.ehlo("client.test")
        assert s.esmtp_features["size"] == "10240000"


def test_template_switches_report_what_they_ask_for(make_server):
    env = {"ENABLE_SPAMASSASSIN": "1", "SA_TAG": "2.0", "ENABLE_SRS": "0",
           "SRS_SECRET": "s3cret", "ENABLE_FETCHMAIL": "1", "FETCHMAIL_POLL": "300",
           "ENABLE_MANAGESIEVE": "", "ENABLE_FAIL2BAN": "0",
           "FAIL2BAN_BLOCKTYPE": "reject", "LDAP_BIND_PW": "x",
           "CLAMAV_MESSAGE_SIZE_LIMIT": "25M", "SA_SPAM_SUBJECT": "[SPAM] "}
    srv = make_server(env=env)
    text = srv.log_text()
    assert sorted(ignored_keys(text)) == sorted(
        ["ENABLE_SPAMASSASSIN", "SA_TAG", "ENABLE_FETCHMAIL", "FETCHMAIL_POLL"])
    line = next(l for l in text.splitlines() if "key=ENABLE_FETCHMAIL" in l)
    assert "source=environment" in line and 'instead="no fetchmail' in line
    assert "event=config_renamed key=SA_SPAM_SUBJECT" in text
    # a SIGHUP reload reports again (the configuration was read again)
    srv.signal(1)
    srv.wait_log("event=reloaded")
    assert ignored_keys(srv.log_text()).count("ENABLE_FETCHMAIL") == 2


def test_unread_config_files_and_sieve_scripts_are_named_at_start(make_server):
    srv = make_server(start=False)
    srv.write_config("postfix-main.cf", "message_size_limit = 20000000\n"
                     "smtpd_helo_restrictions = permit\n")
    srv.write_config("before.dovecot.sieve", 'require "fileinto";\n')
    srv.write_config("alice@example.test.dovecot.sieve", "keep;\n")
    srv.write_config("fetchmail.cf", "poll imap.example.org\n")
    os.makedirs(os.path.join(srv.config_dir, "rspamd", "dkim"))
    srv.write_config("rspamd/dkim/rsa-2048-mail-example.test.private.txt", "x\n")
    home = os.path.join(srv.maildir("alice@example.test"), "home")
    os.makedirs(os.path.join(home, "sieve"))
    with open(os.path.join(home, "sieve", "vacation.sieve"), "w") as f:
        f.write('require "vacation"; vacation "away";\n')
    os.symlink("sieve/vacation.sieve", os.path.join(home, ".dovecot.sieve"))
    chown_vmail(srv.mail_dir)
    srv.start()
    text = srv.log_text()
    files = re.findall(r"event=config_file_ignored file=(\S+)", text)
    assert [os.path.basename(f) for f in files] == [
        "postfix-main.cf", "before.dovecot.sieve",
        "alice@example.test.dovecot.sieve", "fetchmail.cf",
        "rsa-2048-mail-example.test.private.txt"]
    main = next(l for l in text.splitlines() if "postfix-main.cf" in l)
    assert "settings=message_size_limit,smtpd_helo_restrictions" in main
    [sieve] = [l for l in text.splitlines() if "event=sieve_ignored" in l]
    assert "accounts_with_active_script=1 scripts=1" in sieve
    assert "/home/.dovecot.sieve" in sieve
    # once, at start: not again for every connection or reload of accounts
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.sendmail("a@remote.test", ["alice@example.test"], MSG)
    srv.add_account("bob@example.test", "bobpw")
    time.sleep(2.5)
    assert srv.log_text().count("event=sieve_ignored") == 1
    # and the home/ directory is not a mail folder
    assert os.path.exists(os.path.join(home, "sieve", "vacation.sieve"))


def test_postfix_aliases_root_and_devnull(make_server):
    srv = make_server(start=False, env={"POSTMASTER_ADDRESS": "alice@example.test"})
    srv.write_config("postfix-aliases.cf",
                     "# local aliases\n"
                     "devnull: /dev/null\n"
                     "ops: bob@example.test,\n"
                     "  root\n"
                     "cron: |/usr/bin/logger\n")
    srv.add_account("bob@example.test", "bobpw")
    srv.start()
    srv.wait_log("event=accounts_unsupported")
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.sendmail("a@remote.test", [f"root@{HOST}"], MSG)
        s.sendmail("a@remote.test", ["root@localhost"], MSG)
        s.sendmail("a@remote.test", [f"ops@{HOST}"], MSG)
        # accepted and thrown away
        assert s.sendmail("a@remote.test", [f"devnull@{HOST}"], MSG) == {}
        # local aliases are the host's: the mail domain does not take them
        try:
            s.sendmail("a@remote.test", ["ops@example.test"], MSG)
            raise AssertionError("ops@example.test was accepted")
        except smtplib.SMTPRecipientsRefused as e:
            assert e.recipients["ops@example.test"][0] == 550
        try:
            s.sendmail("a@remote.test", [f"cron@{HOST}"], MSG)
            raise AssertionError("a pipe-only alias was accepted")
        except smtplib.SMTPRecipientsRefused:
            pass
    alice = srv.wait_messages("alice@example.test", 3)
    assert all(m.endswith(b"hello\r\n") or m.endswith(b"hello\n") for m in alice)
    assert len(srv.wait_messages("bob@example.test", 1)) == 1
    time.sleep(0.5)
    assert len(srv.messages("alice@example.test")) == 3
    assert re.search(r"to=<devnull@mail\.example\.test> .*status=discarded relay=none",
                     srv.log_text())
    # the file is re-read when it changes, like the other account files
    srv.write_config("postfix-aliases.cf", "ops: bob@example.test\n")
    srv.wait_log("event=accounts_reload")
    time.sleep(0.3)
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.sendmail("a@remote.test", [f"ops@{HOST}"], MSG)
    assert len(srv.wait_messages("bob@example.test", 2)) == 2
    time.sleep(0.5)
    assert len(srv.messages("alice@example.test")) == 3


def test_smtp_only_serves_no_imap(make_server):
    srv = make_server(env={"SMTP_ONLY": "1", "ENABLE_POP3": "1"})
    text = srv.log_text()
    assert "event=smtp_only" in text
    assert "service=imap " not in text and "service=pop3" not in text
    for port in ("IMAP", "IMAPS", "POP3"):
        try:
            socket.create_connection(("127.0.0.1", srv.ports[port]), 1).close()
            raise AssertionError(f"{port} answered with SMTP_ONLY=1")
        except OSError:
            pass
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.sendmail("a@remote.test", ["alice@example.test"], MSG)
    srv.wait_messages("alice@example.test", 1)


def test_migration_doc_lists_every_variable():
    """docs/migration.md has a row for every docker-mailserver variable the
    unit test declares (src/daemon/test_settings.c), and every config file
    tegami reports is in its files table."""
    root = os.path.dirname(os.path.dirname(HERE))
    c = open(os.path.join(root, "src", "daemon", "test_settings.c")).read()
    names = re.findall(r'^\t"([A-Z0-9_]+)",$',
                       c.split("dms_variables[] = {", 1)[1].split("};", 1)[0], re.M)
    assert len(names) > 130
    doc = open(os.path.join(root, "docs", "migration.md")).read()
    rows = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", doc, re.M))
    assert sorted(set(names) - rows) == []
    compat = open(os.path.join(root, "src", "daemon", "compat.c")).read()
    for what in re.findall(r'^\t\{ "([^"]+)", RULE_', compat, re.M):
        assert f"`{what}`" in doc or what.replace("*", "") in doc, what
