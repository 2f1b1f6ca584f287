"""The bed itself: DNS as the mail hosts see it, through dig and through
tegami's own resolver (src/dns/, run as the unit test `test_dns_live`
inside a host namespace)."""
import os
import subprocess

import pytest

import e2e_bed


def dig(bed, host, *q):
    r = bed.run(host, ["dig", "+short", "+time=2", "+tries=1"] + list(q))
    return r.stdout.strip()


def test_dig_sees_the_zones(bed):
    assert dig(bed, "a", "MX", "b.test") == "10 mx.b.test."
    assert dig(bed, "a", "A", "mx.b.test") == "10.77.0.12"
    assert dig(bed, "b", "MX", "a.test") == "10 mx.a.test."
    assert dig(bed, "b", "-x", "10.77.0.11") == "mx.a.test."
    assert '"v=spf1 ip4:10.77.0.12 -all"' in dig(bed, "a", "TXT", "b.test")
    assert "v=DMARC1; p=reject" in dig(bed, "a", "TXT", "_dmarc.b.test")
    # The DKIM record is long: several strings that join to the value.
    for sel in ("mail", "ed"):
        out = dig(bed, "a", "TXT", f"{sel}._domainkey.b.test")
        joined = "".join(part.strip('"') for part in out.split('" "'))
        assert joined == bed.hosts["b"].dkim[sel][1]


def test_nothing_in_the_root_namespace(bed):
    out = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert "10.77.0." not in out


@pytest.mark.parametrize("server", ["10.77.0.2", "resolv.conf"])
def test_tegami_resolver(bed, unit_runner, server):
    """src/dns/ against nsd (resolver and MX routing, the unit tests
    test_dns_live and test_mx_route_live): explicit forwarder, and
    /etc/resolv.conf."""
    b = bed.hosts["b"]
    env = dict(os.environ,
               TEGAMI_TEST_DNS_SERVER=server,
               TEGAMI_TEST_DNS_MX_DOMAIN=b.domain,
               TEGAMI_TEST_DNS_MX_HOST=b.mx,
               TEGAMI_TEST_DNS_MX_ADDR=b.addr,
               TEGAMI_TEST_DNS_TXT_NAME=f"mail._domainkey.{b.domain}",
               TEGAMI_TEST_DNS_TXT_VALUE=b.dkim["mail"][1])
    r = bed.run("a", [unit_runner, "_live"], env=env, check=False, timeout=60)
    assert r.returncode == 0 and "unit: 3 passed, 0 failed" in r.stdout, r.stdout + r.stderr


def test_cleanup_even_on_failure(tmp_path):
    """A second, short-lived bed: an exception inside leaves nothing behind."""
    if e2e_bed.usable():
        pytest.skip(e2e_bed.usable())
    b = e2e_bed.Bed(str(tmp_path))
    b.tag = f"{e2e_bed.PREFIX}{os.getpid()}-x"
    with pytest.raises(RuntimeError):
        with b:
            nsd_pid = b.procs[0].pid
            assert any(ns.startswith(b.tag) for ns in e2e_bed.netns_list())
            raise RuntimeError("test failed")
    assert not any(ns.startswith(b.tag) for ns in e2e_bed.netns_list())
    assert not any(d.startswith(b.tag) for d in os.listdir("/etc/netns")) \
        if os.path.isdir("/etc/netns") else True
    assert subprocess.run(["kill", "-0", str(nsd_pid)], capture_output=True).returncode != 0


def test_dkim_verifies_against_the_bed_dns(bed, unit_runner, tmp_path):
    """tegami's signer with host A's keys (DMS layout, via the keyset
    loader), checked by dkimverify inside host B against nsd."""
    a = bed.hosts["a"]
    out = tmp_path / "signed"
    out.mkdir()
    env = dict(os.environ, TEGAMI_TEST_DKIM_OUT=str(out),
               TEGAMI_TEST_DKIM_CONFIG_DIR=a.config_dir,
               TEGAMI_TEST_DKIM_FROM=f"alice@{a.domain}")
    r = subprocess.run([unit_runner, "dkim_export_keyset"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert "unit: 1 passed, 0 failed" in r.stdout, r.stdout + r.stderr
    msg = (out / "keyset.eml").read_bytes()
    assert msg.count(b"DKIM-Signature:") == 2
    # dkimverify checks the first signature; check each by moving it first.
    head, body = msg.split(b"\r\n\r\n", 1)
    sigs, rest, cur = [], [], None
    for line in head.split(b"\r\n"):
        if line.startswith(b"DKIM-Signature:"):
            cur = [line]
            sigs.append(cur)
        elif line[:1] in (b" ", b"\t") and cur is not None:
            cur.append(line)
        else:
            cur = None
            rest.append(line)
    assert len(sigs) == 2
    for sig in sigs:
        one = b"\r\n".join(sig + rest) + b"\r\n\r\n" + body
        r = subprocess.run(["ip", "netns", "exec", bed.ns("b"), "/usr/bin/python3",
                            "/usr/bin/dkimverify"], input=one, capture_output=True,
                           timeout=30)
        assert r.returncode == 0 and b"signature ok" in r.stdout, r.stdout + r.stderr
