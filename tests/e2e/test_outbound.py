"""Outbound delivery across the bed, before the queue exists: host A
finds B's MX through nsd (src/dns/mxroute), signs with A's DKIM keys
(src/msgauth/, DMS layout), sends with the SMTP client (src/smtp/client)
to an SMTP sink on B's MX address; dkimverify inside B checks the
message as received. The C side is the unit test test_smtp_client_live,
run inside A's namespace; the sink is tests/e2e/smtp_sink.py (to be
replaced by tegami on B)."""
import glob
import os
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def sink(bed, tmp_path):
    out = tmp_path / "received"
    out.mkdir()
    b = bed.hosts["b"]
    p = subprocess.Popen(["ip", "netns", "exec", bed.ns("b"), "/usr/bin/python3",
                          os.path.join(HERE, "smtp_sink.py"), b.addr, "25", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        yield out
    finally:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_a_sends_to_b_dkim_verifies(bed, unit_runner, sink):
    a = bed.hosts["a"]
    env = dict(os.environ,
               TEGAMI_TEST_SMTP_TO="bob@b.test",
               TEGAMI_TEST_SMTP_BAD_RCPT="unknown@b.test",
               TEGAMI_TEST_DKIM_FROM="alice@a.test",
               TEGAMI_TEST_DKIM_CONFIG_DIR=a.config_dir)
    r = bed.run("a", [unit_runner, "smtp_client_live"], env=env, check=False, timeout=60)
    assert "unit: 1 passed, 0 failed" in r.stdout, r.stdout + r.stderr
    emls = glob.glob(str(sink / "*.eml"))
    assert len(emls) == 1
    with open(emls[0].replace(".eml", ".env")) as f:
        assert f.read().split() == ["alice@a.test", "bob@b.test"]
    msg = open(emls[0], "rb").read()
    assert msg.count(b"DKIM-Signature:") == 2
    assert b"\r\n.dot line\r\n" in msg
    # dkimverify checks the first signature: the RSA one; then the
    # Ed25519 one moved to the top.
    head, body = msg.split(b"\r\n\r\n", 1)
    fields, cur = [], None
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and cur is not None:
            cur.append(line)
        else:
            cur = [line]
            fields.append(cur)
    sigs = [f for f in fields if f[0].startswith(b"DKIM-Signature:")]
    rest = [f for f in fields if not f[0].startswith(b"DKIM-Signature:")]
    assert len(sigs) == 2
    for sig in sigs:
        one = b"\r\n".join(b"\r\n".join(f) for f in [sig] + rest) + b"\r\n\r\n" + body
        v = subprocess.run(["ip", "netns", "exec", bed.ns("b"), "/usr/bin/python3",
                            "/usr/bin/dkimverify"], input=one, capture_output=True,
                           timeout=30)
        assert v.returncode == 0 and b"signature ok" in v.stdout, v.stdout + v.stderr
