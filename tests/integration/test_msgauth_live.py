"""SPF, DKIM and DMARC through the real libunbound resolver against a real
authoritative server: nsd on a free port serving a zone written by the
test, a small C driver over the library objects (msgauth/dns_resolver).
Checks what a static zone cannot: TXT records of several strings, names
that need escaping, NXDOMAIN/NODATA from a real server, a DKIM signature
made by another implementation (python3-dkim, Ed25519).
"""
import base64
import os
import shutil
import socket
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OBJ = os.path.join(ROOT, "build/obj-san")
OBJS = ["filter/dnsbl.o", "msgauth/dns_resolver.o", "msgauth/spf.o", "msgauth/dmarc.o", "msgauth/psl.o",
        "msgauth/dns_iface.o", "msgauth/dkim_verify.o", "msgauth/dkim_canon.o",
        "msgauth/dkim_sign.o", "mail/decode.o", "dns/resolver.o", "dns/dns_wire.o",
        "dns/cache.o"]

DRIVER = r'''
#include "dns/dns.h"
#include "filter/dnsbl.h"
#include "lib/file.h"
#include <event2/event.h>
#include "msgauth/dkim_verify.h"
#include "msgauth/dmarc.h"
#include "msgauth/dns_resolver.h"
#include "msgauth/spf.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int dnsbl_left;
static struct event_base *base;

static void
dnsbl_done(const struct dnsbl_result *r, void *ctx)
{
	printf("dnsbl %s score=%d reject=%d refused=%u first=%s\n", (const char *)ctx,
	    r->score, r->reject, r->refused, r->first_listed);
	if (--dnsbl_left == 0)
		event_base_loopbreak(base);
}

int main(int argc, char **argv);
int
main(int argc, char **argv)
{
	const char *servers[] = { argv[1] };
	struct dns_config cfg = { servers, 1, NULL };
	char *err = NULL, *msg;
	size_t len;
	struct dns_resolver *res = dns_resolver_create(NULL, &cfg, &err);
	struct msgauth_dns dns;
	struct psl *psl;
	static const char *const ips[] = { "192.0.2.1", "198.51.100.7", "203.0.113.5", "192.0.2.99" };

	if (argc < 3 || res == NULL || psl_load(PSL_DEFAULT_PATH, &psl, &err) < 0) {
		printf("setup: %s\n", err ? err : "?");
		return 1;
	}
	msgauth_dns_resolver_init(&dns, res);
	{
		/* DNSBL at connect: every zone at once on an event loop */
		static const char *const clients[] = { "192.0.2.50", "192.0.2.51", "192.0.2.52" };
		struct dns_resolver *ares;
		struct dnsbl_list l;

		base = event_base_new();
		ares = dns_resolver_create(base, &cfg, &err);
		if (ares == NULL || dnsbl_list_parse("bl.example.test=127.0.0.[2..11]*3, "
		    "wl.example.test*-2", 3, -1, &l, &err) < 0)
			return 1;
		for (size_t i = 0; i < 3; i++) {
			struct msgauth_ip ip;

			msgauth_ip_parse(clients[i], &ip);
			if (dnsbl_check_async(ares, &l, &ip, dnsbl_done, (void *)clients[i]) != NULL)
				dnsbl_left++;
		}
		if (dnsbl_left > 0)
			event_base_dispatch(base);
		dnsbl_list_free(&l);
		dns_resolver_destroy(&ares);
		event_base_free(base);
	}
	for (size_t i = 0; i < 4; i++) {
		struct spf_request req = { .sender = "joe@example.test",
		    .helo = "h.example.test", .receiver = "mx.ours" };
		struct spf_outcome o;
		msgauth_ip_parse(ips[i], &req.ip);
		spf_check_mailfrom(&dns, &req, &o);
		printf("spf %s %s\n", ips[i], spf_result_name(o.result));
		spf_outcome_free(&o);
	}
	{
		struct spf_request req = { .sender = "x@nowhere.example.test", .helo = "h" };
		struct spf_outcome o;
		msgauth_ip_parse("192.0.2.1", &req.ip);
		spf_check_mailfrom(&dns, &req, &o);
		printf("spf nxdomain %s\n", spf_result_name(o.result));
		spf_outcome_free(&o);
	}
	for (int a = 3; a < argc; a++) {
		struct dkim_verify_result r;

		if (file_read_all(argv[a], 1 << 20, &msg, &len) < 0)
			return 1;
		dkim_verify(&dns, msg, len, 1700000000, &r);
		printf("dkim-file %s %s %s\n", strrchr(argv[a], '/') + 1,
		    r.count ? dkim_result_name(r.sig[0].result) : "-",
		    r.count ? r.sig[0].problem : "");
		free(msg);
	}
	if (file_read_all(argv[2], 1 << 20, &msg, &len) < 0)
		return 1;
	{
		struct dkim_verify_result r;
		struct dmarc_dkim_sig sig;
		struct dmarc_input in = { .from_domain = "example.test",
		    .spf_result = SPF_RESULT_FAIL, .spf_domain = "example.test",
		    .dkim = &sig, .dkim_count = 1 };
		struct dmarc_outcome d;

		dkim_verify(&dns, msg, len, 1700000000, &r);
		printf("dkim %zu %s %s\n", r.count, r.count ? dkim_result_name(r.sig[0].result) : "-",
		    r.count ? r.sig[0].problem : "");
		sig.domain = r.sig[0].domain;
		sig.pass = r.sig[0].result == DKIM_RESULT_PASS;
		dmarc_evaluate(&dns, psl, &in, &d);
		printf("dmarc-signed %s %s\n", dmarc_result_name(d.result), dmarc_disposition_name(d.disposition));
		in.dkim_count = 0;
		dmarc_evaluate(&dns, psl, &in, &d);
		printf("dmarc-unsigned %s %s\n", dmarc_result_name(d.result), dmarc_disposition_name(d.disposition));
		in.from_domain = "sub.example.test";
		dmarc_evaluate(&dns, psl, &in, &d);
		printf("dmarc-sub %s %s\n", dmarc_result_name(d.result), dmarc_disposition_name(d.disposition));
	}
	free(msg);
	psl_free(&psl);
	dns_resolver_destroy(&res);
	return 0;
}
'''


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def txt_strings(value, size=200):
    return " ".join('"%s"' % value[i:i + size] for i in range(0, len(value), size))


def test_msgauth_live(tmp_path):
    dkim = pytest.importorskip("dkim")
    ed = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    ser = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    nsd = shutil.which("nsd") or "/usr/sbin/nsd"
    if not os.path.exists(nsd):
        pytest.skip("nsd is not installed")
    objs = [os.path.join(OBJ, o) for o in OBJS]
    libs = [os.path.join(OBJ, "lib", f) for f in sorted(os.listdir(os.path.join(OBJ, "lib")))
            if f.endswith(".o") and not f.startswith("test_")] if os.path.isdir(os.path.join(OBJ, "lib")) else []
    if not libs or not all(os.path.exists(o) for o in objs):
        pytest.skip("build the sanitizer objects first (make SANITIZE=1)")

    key = ed.Ed25519PrivateKey.generate()
    raw = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    pub = key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    msg = (b"From: Joe <joe@example.test>\r\nTo: ann@ours.example\r\nSubject: hi\r\n"
           b"\r\nHello Ann\r\n")
    sig = dkim.sign(msg, b"ed", b"example.test", base64.b64encode(raw),
                    signature_algorithm=b"ed25519-sha256", canonicalize=(b"relaxed", b"relaxed"))
    (tmp_path / "msg.eml").write_bytes(sig + msg)

    # RSA, every canonicalization, as sent (CRLF) and as stored (LF)
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    rkey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rpem = rkey.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL,
                              ser.NoEncryption())
    rder = rkey.public_key().public_bytes(ser.Encoding.DER,
                                          ser.PublicFormat.SubjectPublicKeyInfo)
    body = (b"From: Joe <joe@example.test>\r\nTo: ann@ours.example,\r\n  bob@ours.example\r\n"
            b"Subject:  Hello   there \r\n\r\nBody  line \r\n\r\n\r\n")
    files = []
    for hc in (b"simple", b"relaxed"):
        for bc in (b"simple", b"relaxed"):
            signed = dkim.sign(body, b"rsa", b"example.test", rpem, canonicalize=(hc, bc),
                               include_headers=[b"from", b"to", b"subject"]) + body
            for kind, data in (("crlf", signed), ("lf", signed.replace(b"\r\n", b"\n"))):
                name = "%s-%s-%s.eml" % (hc.decode(), bc.decode(), kind)
                (tmp_path / name).write_bytes(data)
                files.append(str(tmp_path / name))
    bad = signed.replace(b"Body  line", b"Body line!")
    (tmp_path / "tampered.eml").write_bytes(bad)
    files.append(str(tmp_path / "tampered.eml"))

    port = free_port()
    zone = "\n".join([
        "$ORIGIN example.test.", "$TTL 60",
        "@ IN SOA ns.example.test. admin.example.test. 1 3600 600 86400 60",
        "@ IN NS ns.example.test.", "ns IN A 127.0.0.1",
        # one record in two strings: joined without a space
        '@ IN TXT "v=spf1 ip4:192.0.2.0/24 " "include:_spf.example.test a:sp%_ace.example.test -all"',
        '_spf IN TXT "v=spf1 ip4:198.51.100.7 -all"',
        "sp\\032ace IN A 192.0.2.99",
        '_dmarc IN TXT "v=DMARC1; p=reject; sp=quarantine"',
        "ed._domainkey IN TXT " + txt_strings("v=DKIM1; k=ed25519; p=" + base64.b64encode(pub).decode()),
        "rsa._domainkey IN TXT " + txt_strings("v=DKIM1; k=rsa; p=" + base64.b64encode(rder).decode()),
        "sub IN A 192.0.2.5",
        "50.2.0.192.bl IN A 127.0.0.2",
        "51.2.0.192.bl IN A 127.255.255.254",
        "52.2.0.192.wl IN A 127.0.0.2",
        "bl IN A 127.0.0.1", "wl IN A 127.0.0.1", ""])
    (tmp_path / "example.test.zone").write_text(zone)
    (tmp_path / "nsd.conf").write_text(f'''server:
  ip-address: 127.0.0.1@{port}
  port: {port}
  zonesdir: "{tmp_path}"
  database: ""
  pidfile: "{tmp_path}/nsd.pid"
  logfile: "{tmp_path}/nsd.log"
  username: ""
  xfrdfile: "{tmp_path}/xfrd.state"
  zonelistfile: "{tmp_path}/zone.list"
remote-control:
  control-enable: no
zone:
  name: "example.test"
  zonefile: "example.test.zone"
''')
    (tmp_path / "driver.c").write_text(DRIVER)
    exe = tmp_path / "driver"
    subprocess.run(["cc", "-std=c17", "-D_GNU_SOURCE", "-g", "-I" + os.path.join(ROOT, "src"),
                    "-fsanitize=address,undefined", "-o", str(exe), str(tmp_path / "driver.c")]
                   + objs + libs + ["-lunbound", "-levent", "-levent_pthreads", "-lssl",
                                    "-lcrypto", "-lpthread"], check=True)
    proc = subprocess.Popen([nsd, "-d", "-c", str(tmp_path / "nsd.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if (tmp_path / "nsd.pid").exists():
                break
            time.sleep(0.1)
        time.sleep(0.3)
        r = subprocess.run([str(exe), f"127.0.0.1@{port}", str(tmp_path / "msg.eml")] + files,
                           capture_output=True, text=True, timeout=120)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    out = r.stdout.splitlines()
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "dnsbl 192.0.2.50 score=3 reject=1 refused=0 first=bl.example.test" in out
    assert "dnsbl 192.0.2.51 score=0 reject=0 refused=1 first=" in out
    assert "dnsbl 192.0.2.52 score=-2 reject=0 refused=0 first=" in out
    assert "spf 192.0.2.1 pass" in out
    assert "spf 198.51.100.7 pass" in out      # through include:
    assert "spf 203.0.113.5 fail" in out
    assert "spf 192.0.2.99 pass" in out        # a:sp%_ace -> "sp ace", escaped
    assert "spf nxdomain none" in out
    assert "dkim 1 pass " in out
    assert "dmarc-signed pass none" in out
    assert "dmarc-unsigned fail reject" in out
    assert "dmarc-sub fail quarantine" in out
    for f in files[:-1]:
        assert "dkim-file %s pass " % os.path.basename(f) in out, r.stdout
    assert "dkim-file tampered.eml fail body hash mismatch" in out
