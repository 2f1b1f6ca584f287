"""The master process: configuration errors, ignored docker-mailserver keys,
certificates from SSL_TYPE, SNI, reload, privilege drop, no-account start."""
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from tegami_server import BINARY, HOST, TegamiServer, make_ca


def run_serve(srv, timeout=10):
    """Starts serve and expects it to stop by itself; returns (rc, output)."""
    r = subprocess.run([BINARY, "serve"], env=srv.env, cwd=srv.base,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def ehlo_size(srv):
    with smtplib.SMTP("127.0.0.1", srv.ports["SMTP"], timeout=10) as s:
        s.ehlo("client.test")
        return s.esmtp_features["size"]


def peer_cert_names(srv, sni):
    ctx = ssl.create_default_context(cafile=srv.ca)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", srv.ports["SUBMISSIONS"]), 10) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as t:
            cert = t.getpeercert()
            return [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]


def test_bad_value_stops_startup_with_one_line(tmp_path):
    srv = TegamiServer(tmp_path, env={"POSTFIX_MESSAGE_SIZE_LIMIT": "10M"})
    rc, out = run_serve(srv)
    assert rc == 1
    [line] = [l for l in out.splitlines() if "fatal" in l]
    assert "POSTFIX_MESSAGE_SIZE_LIMIT=10M" in line and "environment" in line
    assert "whole number" in line


def test_bad_value_in_env_file_names_the_file_and_line(tmp_path):
    srv = TegamiServer(tmp_path)
    envfile = os.path.join(srv.base, "mailserver.env")
    with open(envfile, "w") as f:
        f.write("# settings\nSPOOF_PROTECTION=maybe\n")
    srv.env["TEGAMI_ENV_FILE"] = envfile
    rc, out = run_serve(srv)
    assert rc == 1
    assert f"{envfile}:2" in out and "SPOOF_PROTECTION=1" in out


def test_permit_docker_other_than_none_is_refused(tmp_path):
    srv = TegamiServer(tmp_path, env={"PERMIT_DOCKER": "network"})
    rc, out = run_serve(srv)
    assert rc == 1 and "PERMIT_DOCKER" in out and "not implemented" in out


def test_port_in_use_is_named(tmp_path):
    srv = TegamiServer(tmp_path)
    busy = socket.socket()
    busy.bind(("127.0.0.1", srv.ports["SMTP"]))
    busy.listen(1)
    try:
        rc, out = run_serve(srv)
    finally:
        busy.close()
    assert rc == 1 and "LISTEN_SMTP" in out and "Address already in use" in out


def test_unimplemented_dms_keys_are_listed_once(make_server):
    srv = make_server(env={"ENABLE_AMAVIS": "1", "ENABLE_SPAMASSASSIN": "1"})
    text = srv.log_text()
    assert text.count("event=config_ignored key=ENABLE_AMAVIS") == 1
    assert "event=config_ignored key=ENABLE_SPAMASSASSIN" in text


def test_starts_with_no_accounts_and_keeps_running(make_server):
    srv = make_server(accounts=[])
    time.sleep(3)
    assert srv.proc.poll() is None
    r = srv.status()
    assert r.returncode == 0 and "accounts=0" in r.stdout


def test_workers_drop_privileges(make_server):
    if os.geteuid() != 0:
        pytest.skip("privilege drop happens only when started as root")
    srv = make_server(env={"DMS_VMAIL_UID": "5000", "DMS_VMAIL_GID": "5000"})
    [pid] = srv.worker_pids("smtp")
    # the worker says it is ready once it has dropped (start() returns as
    # soon as any worker is ready and the master's port answers)
    srv.wait_log(f"smtp[{pid}]: info event=worker_ready")
    status = open(f"/proc/{pid}/status").read()
    uid_line = [l for l in status.splitlines() if l.startswith("Uid:")][0]
    assert uid_line.split()[1:] == ["5000"] * 4
    groups = [l for l in status.splitlines() if l.startswith("Groups:")][0]
    assert groups.split()[1:] == []


def test_empty_ssl_type_makes_a_self_signed_certificate(make_server):
    srv = make_server(env={"SSL_TYPE": "", "SSL_CERT_PATH": "", "SSL_KEY_PATH": ""})
    srv.wait_log("event=tls_self_signed")
    cert = os.path.join(srv.state_dir, "tegami", "tls", f"{HOST}-cert.pem")
    assert os.path.exists(cert)
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = True
    with socket.create_connection(("127.0.0.1", srv.ports["SUBMISSIONS"]), 10) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as t:
            assert t.version() in ("TLSv1.2", "TLSv1.3")


def test_letsencrypt_layout_and_sni(make_server, tmp_path):
    le = tmp_path / "letsencrypt"
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in (HOST, "mail.other.test"):
        d = le / "live" / name
        d.mkdir(parents=True)
        _, cert, key = make_ca(str(certs), names=(name,), prefix=name)
        os.rename(cert, d / "fullchain.pem")
        os.rename(key, d / "privkey.pem")
    os.chmod(tmp_path, 0o755)
    srv = make_server(env={"SSL_TYPE": "letsencrypt", "SSL_CERT_PATH": "", "SSL_KEY_PATH": "",
                           "TEGAMI_LETSENCRYPT_DIR": str(le)})
    srv.ca = os.path.join(str(certs), "ca.pem")
    assert peer_cert_names(srv, HOST) == [HOST]
    assert peer_cert_names(srv, "mail.other.test") == ["mail.other.test"]
    assert peer_cert_names(srv, "unknown.test") == [HOST]


def test_sighup_reloads_the_configuration(make_server):
    srv = make_server(start=False)
    envfile = os.path.join(srv.base, "mailserver.env")
    with open(envfile, "w") as f:
        f.write("POSTFIX_MESSAGE_SIZE_LIMIT=20000\n")
    os.chmod(envfile, 0o644)
    srv.env["TEGAMI_ENV_FILE"] = envfile
    srv.start()
    assert ehlo_size(srv) == "20000"
    [old] = srv.worker_pids("smtp")
    with open(envfile, "w") as f:
        f.write("POSTFIX_MESSAGE_SIZE_LIMIT=30000\n")
    srv.signal(signal.SIGHUP)
    srv.wait_log("event=reloaded")
    end = time.time() + 10
    while ehlo_size(srv) != "30000":
        assert time.time() < end
        time.sleep(0.1)
    end = time.time() + 10
    while old in srv.worker_pids("smtp"):
        assert time.time() < end, "the old worker did not stop"
        time.sleep(0.1)
    # a broken file keeps the running configuration
    with open(envfile, "w") as f:
        f.write("POSTFIX_MESSAGE_SIZE_LIMIT=lots\n")
    srv.signal(signal.SIGHUP)
    srv.wait_log("event=reload_failed")
    assert ehlo_size(srv) == "30000"


def test_cli_added_account_logs_in_within_two_seconds(server):
    env = dict(server.env)
    r = subprocess.run([BINARY, "email", "add", "dave@example.test", "davepw"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    t0 = time.time()
    while True:
        try:
            with smtplib.SMTP("127.0.0.1", server.ports["SUBMISSION"], timeout=10) as s:
                s.starttls(context=server.ssl_context())
                s.login("dave@example.test", "davepw")
                break
        except smtplib.SMTPAuthenticationError:
            # a failed login is answered after a one-second penalty
            assert time.time() - t0 < 2.0 + 1.5, "account not usable within 2 s"
    # and it receives mail: the mailbox is created on first delivery
    with smtplib.SMTP("127.0.0.1", server.ports["SMTP"], timeout=10) as s:
        s.sendmail("x@remote.test", ["dave@example.test"], b"Subject: hi\r\n\r\nhi\r\n")
    server.wait_messages("dave@example.test", 1)


def test_session_limit_per_address(make_server):
    srv = make_server(env={"SMTP_MAX_SESSIONS_PER_IP": "2"})
    time.sleep(0.5)     # the start-up probe's session has ended
    socks = [socket.create_connection(("127.0.0.1", srv.ports["SMTP"]), 5) for _ in range(2)]
    for s in socks:
        assert s.recv(100).startswith(b"220")
    third = socket.create_connection(("127.0.0.1", srv.ports["SMTP"]), 5)
    assert third.recv(100).startswith(b"421 4.7.0")
    for s in socks + [third]:
        s.close()


def test_cli_restrictions_apply_to_the_running_server(server):
    env = dict(server.env)
    for args in (["email", "restrict", "add", "send", "alice@example.test"],
                 ["email", "restrict", "add", "receive", "bob@example.test"]):
        r = subprocess.run([BINARY] + args, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    time.sleep(2.1)
    with smtplib.SMTP("127.0.0.1", server.ports["SUBMISSION"], timeout=10) as s:
        s.starttls(context=server.ssl_context())
        s.login("alice@example.test", "alicepw")
        code, text = s.mail("alice@example.test")
        assert code == 553 and b"5.7.1" in text
    with smtplib.SMTP("127.0.0.1", server.ports["SMTP"], timeout=10) as s:
        s.ehlo("client.test")
        s.mail("x@remote.test")
        code, text = s.rcpt("bob@example.test")
        assert code == 550 and b"5.7.1" in text
        assert s.rcpt("alice@example.test")[0] == 250


def test_alias_added_by_cli_works_within_two_seconds(server):
    r = subprocess.run([BINARY, "alias", "add", "info@example.test", "bob@example.test"],
                       env=dict(server.env), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    t0 = time.time()
    while True:
        with smtplib.SMTP("127.0.0.1", server.ports["SMTP"], timeout=10) as s:
            s.ehlo("client.test")
            s.mail("x@remote.test")
            if s.rcpt("info@example.test")[0] == 250:
                break
        assert time.time() - t0 < 2.0, "alias not picked up within 2 s"
        time.sleep(0.1)


def test_unreachable_config_dir_is_named_at_startup(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("workers switch users only when started as root")
    srv = TegamiServer(tmp_path)
    hidden = os.path.join(srv.base, "hidden")
    os.makedirs(os.path.join(hidden, "config"))
    os.chmod(hidden, 0o700)
    srv.env["CONFIG_DIR"] = os.path.join(hidden, "config")
    rc, out = run_serve(srv)
    assert rc == 1
    assert "key=CONFIG_DIR" in out and "uid 5000" in out
