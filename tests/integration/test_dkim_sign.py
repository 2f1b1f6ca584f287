"""DKIM signatures made by tegami's signer, checked by an independent
verifier (dkimpy, Debian package python3-dkim).

How the signed messages get here: the C unit runner has a test,
`test_dkim_export` (src/msgauth/test_dkim.c), that does nothing unless
TEGAMI_TEST_DKIM_OUT names a directory; then it signs a few messages with
the RFC 8463 keys (RSA and Ed25519) through the real signing API and writes
<name>.eml plus the keys' DNS records there. No extra binary, no hidden
command in tegami: the code under test is exactly the library the daemon
links.
"""
import os
import subprocess

import pytest

dkim = pytest.importorskip("dkim")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNERS = [os.path.join(ROOT, "build", n) for n in ("unit-tests-san", "unit-tests")]


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    runner = next((r for r in RUNNERS if os.access(r, os.X_OK)), None)
    if runner is None:
        pytest.skip("build/unit-tests-san not built (make SANITIZE=1 build/unit-tests-san)")
    out = tmp_path_factory.mktemp("dkim")
    env = dict(os.environ, TEGAMI_TEST_DKIM_OUT=str(out))
    r = subprocess.run([runner, "dkim_export"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "1 passed, 0 failed" in r.stdout, r.stdout + r.stderr
    records = {
        b"test._domainkey.football.example.com.": (out / "test.txt").read_bytes(),
        b"brisbane._domainkey.football.example.com.": (out / "brisbane.txt").read_bytes(),
    }

    def dnsfunc(name, timeout=5):
        return records.get(name if name.endswith(b".") else name + b".")

    msgs = {p.stem: p.read_bytes() for p in out.glob("*.eml")}
    assert len(msgs) == 4
    return msgs, dnsfunc


def verify_all(msg, dnsfunc):
    d = dkim.DKIM(msg)
    n = msg.count(b"DKIM-Signature:")
    return [d.verify(idx=i, dnsfunc=dnsfunc) for i in range(n)]


@pytest.mark.parametrize("name", ["plain", "folded", "empty-body", "no-final-crlf"])
def test_signatures_verify(signed, name):
    msgs, dnsfunc = signed
    msg = msgs[name]
    assert msg.count(b"DKIM-Signature:") == 2
    assert b"a=rsa-sha256" in msg and b"a=ed25519-sha256" in msg
    assert verify_all(msg, dnsfunc) == [True, True]
    for line in msg.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.startswith((b"DKIM-Signature", b" ")) and b"=" in line:
            assert len(line) < 78, line


def test_changed_subject_fails(signed):
    msgs, dnsfunc = signed
    msg = msgs["plain"].replace(b"Subject: Is dinner ready?", b"Subject: Is dinner late?")
    assert verify_all(msg, dnsfunc) == [False, False]


def test_added_from_fails(signed):
    """From is over-signed: one more From header breaks the signatures."""
    msgs, dnsfunc = signed
    head, body = msgs["plain"].split(b"\r\n\r\n", 1)
    msg = head + b"\r\nFrom: Mallory <m@evil.example>\r\n\r\n" + body
    assert verify_all(msg, dnsfunc) == [False, False]


def test_relaxed_body_tolerates_whitespace(signed):
    msgs, dnsfunc = signed
    msg = msgs["plain"].replace(b"We lost the game.  Are", b"We lost the game. Are") + b"\r\n\r\n"
    assert verify_all(msg, dnsfunc) == [True, True]
