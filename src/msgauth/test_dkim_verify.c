#include "lib/buf.h"
#include "lib/str.h"
#include "lib/test.h"
#include "lib/xalloc.h"
#include "msgauth/dkim_canon.h"
#include "msgauth/dkim_key.h"
#include "msgauth/dkim_sign.h"
#include "msgauth/dkim_verify.h"
#include "msgauth/test_fake_dns.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_dkim_sig_parse(void)
{
	static const struct { const char *v; bool ok; } cases[] = {
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from:to; bh=YQ==; b=YQ==", true },
		{ " v = 1 ;a=ed25519-sha256;c=relaxed/simple;d=Example.COM;s=s;\r\n"
		  "\th=From : Subject;bh=YQ==;b=Y Q\r\n =="
		  "; i=joe@mail.example.com; l=10; t=100; x=200; q=dns/txt;", true },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==; z=x", true },
		{ "v=2; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==", false },
		{ "a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==", false },
		{ "v=1; a=rsa-sha1; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==", false },
		{ "v=1; a=rsa-md5; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==", false },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=to; bh=YQ==; b=YQ==", false },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==", false },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==; i=a@evil.com", false },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==; i=a@xexample.com", false },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==; c=fancy", false },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==; q=http", false },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==; l=x", false },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==; t=200; x=100", false },
		{ "v=1; v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==", false },
		{ "v=1; a=rsa-sha256; d=example.com; s=sel; h=from; bh=Y!Q; b=YQ==", false },
		{ "v=1;; a=rsa-sha256; d=example.com; s=sel; h=from; bh=YQ==; b=YQ==", false },
		{ "", false },
	};
	struct dkim_sig sig;
	const char *err;

	test_begin("dkim verify: DKIM-Signature tag lists");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = dkim_sig_parse(cases[i].v, strlen(cases[i].v), &sig, &err);

		if ((ret == 0) != cases[i].ok)
			printf("     case %zu: %d (%s)\n", i, ret, ret < 0 ? err : "");
		test_assert((ret == 0) == cases[i].ok);
		if (ret == 0)
			dkim_sig_free(&sig);
	}
	test_assert(dkim_sig_parse(cases[1].v, strlen(cases[1].v), &sig, &err) == 0);
	test_assert(sig.algorithm == DKIM_ALG_ED25519_SHA256);
	test_assert(sig.header_canon == DKIM_CANON_RELAXED &&
	    sig.body_canon == DKIM_CANON_SIMPLE);
	test_assert_str(sig.domain, "example.com");
	test_assert_str(sig.identity, "joe@mail.example.com");
	test_assert_str(sig.headers, "From:Subject");
	test_assert(sig.have_l && sig.l == 10 && sig.t == 100 && sig.x == 200);
	test_assert(sig.b_len == 1 && sig.b[0] == 'a');
	test_assert_str(sig.b_text, "YQ==");
	dkim_sig_free(&sig);
	test_end();
}
TEST(test_dkim_sig_parse)

static void
test_dkim_key_record_parse(void)
{
	static const struct { const char *v; bool ok; } cases[] = {
		{ "v=DKIM1; k=rsa; p=YQ==", true },
		{ "p=YQ==", true },
		{ "v=DKIM1; p=", true },
		{ "v=DKIM1; k=ed25519; h=sha256; s=email; t=y:s; n=notes; p=YQ==", true },
		{ "k=rsa; v=DKIM1; p=YQ==", false },
		{ "v=DKIM2; p=YQ==", false },
		{ "v=DKIM1; k=dsa; p=YQ==", false },
		{ "v=DKIM1; k=rsa", false },
		{ "v=DKIM1; p=Y!Q", false },
		{ "v=DKIM1; p=YQ==; p=YQ==", false },
		{ "garbage", false },
	};
	struct dkim_key_record k;
	const char *err;

	test_begin("dkim verify: key records");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = dkim_key_record_parse(cases[i].v, strlen(cases[i].v), &k, &err);

		if ((ret == 0) != cases[i].ok)
			printf("     case %zu: %d\n", i, ret);
		test_assert((ret == 0) == cases[i].ok);
		dkim_key_record_free(&k);
	}
	test_assert(dkim_key_record_parse("v=DKIM1; p=", 11, &k, &err) == 0 && k.revoked);
	dkim_key_record_free(&k);
	test_assert(dkim_key_record_parse(cases[3].v, strlen(cases[3].v), &k, &err) == 0);
	test_assert(k.key_type == 1 && k.testing && k.strict && k.sha256_ok && k.email_ok);
	dkim_key_record_free(&k);
	test_assert(dkim_key_record_parse("h=sha1; s=tlsrpt; p=YQ==", 24, &k, &err) == 0);
	test_assert(!k.sha256_ok && !k.email_ok);
	dkim_key_record_free(&k);
	/* a NUL inside the record */
	test_assert(dkim_key_record_parse("v=DKIM1; p=YQ==\0x", 17, &k, &err) == -1);
	test_end();
}
TEST(test_dkim_key_record_parse)

/* ------------------------------------------------------------------ */

static const char message[] =
    "From: Joe <joe@example.com>\r\n"
    "To: ann@example.org\r\n"
    "Subject: lunch\r\n"
    "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n"
    "Message-ID: <1@example.com>\r\n"
    "\r\n"
    "Shall we meet at noon?\r\n"
    "\r\n"
    "Joe\r\n";

struct keys {
	struct dkim_key *rsa, *ed;
	char *rsa_rec, *ed_rec, *short_rec;
};

static bool
make_keys(struct keys *k)
{
	char *pem, *err = NULL;
	const char *cerr;
	EVP_PKEY *small;
	unsigned char *der = NULL;
	int derlen;
	char *b64;

	memset(k, 0, sizeof(*k));
	if (dkim_key_generate(DKIM_KEY_RSA, 1024, &pem, &cerr) < 0)
		return false;
	if (dkim_key_from_pem(pem, strlen(pem), "example.com", "rsa", &k->rsa,
	    &err) < 0)
		return false;
	free(pem);
	if (dkim_key_generate(DKIM_KEY_ED25519, 0, &pem, &cerr) < 0)
		return false;
	if (dkim_key_from_pem(pem, strlen(pem), "example.com", "ed", &k->ed,
	    &err) < 0)
		return false;
	free(pem);
	k->rsa_rec = dkim_key_dns_record(k->rsa);
	k->ed_rec = dkim_key_dns_record(k->ed);
	/* a 512-bit RSA public key, to be refused */
	small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	if (small == NULL)
		return false;
	derlen = i2d_PUBKEY(small, &der);
	b64 = xmalloc((size_t)derlen * 2 + 4);
	EVP_EncodeBlock((unsigned char *)b64, der, derlen);
	k->short_rec = xasprintf("v=DKIM1; k=rsa; p=%s", b64);
	free(b64);
	OPENSSL_free(der);
	EVP_PKEY_free(small);
	return true;
}

static void
free_keys(struct keys *k)
{
	dkim_key_free(&k->rsa);
	dkim_key_free(&k->ed);
	free(k->rsa_rec);
	free(k->ed_rec);
	free(k->short_rec);
}

/* The message signed by both keys, fields on top. */
static char *
sign_both(const struct keys *k, const char *msg)
{
	struct dkim_signer *s = dkim_signer_new(1700000000);
	struct dkim_key *keys[2] = { k->rsa, k->ed };
	char *fields = NULL, *err = NULL, *out;

	dkim_signer_update(s, msg, strlen(msg));
	if (dkim_signer_finish(s, keys, 2, &fields, &err) < 0) {
		printf("     sign: %s\n", err);
		free(err);
		dkim_signer_free(&s);
		return xstrdup(msg);
	}
	dkim_signer_free(&s);
	out = xasprintf("%s%s", fields, msg);
	free(fields);
	return out;
}

/* A signature made by hand with extra tags (x=, l=, s=...). */
static char *
sign_custom(const struct keys *k, const char *msg, const char *selector,
    const char *extra)
{
	static const char *const h[] = { "from", "subject" };
	struct dkim_signer *s = dkim_signer_new(1700000000);
	char bh[45], *field, *b64 = NULL, *err = NULL, *out;

	dkim_signer_update(s, msg, strlen(msg));
	dkim_signer_body_hash(s, bh);
	field = xasprintf("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; "
	    "d=example.com; s=%s; %sh=from:subject; bh=%s; b=", selector, extra, bh);
	if (dkim_signer_sign_field(s, k->rsa, h, 2, field, &b64, &err) < 0) {
		printf("     sign: %s\n", err);
		free(err);
	}
	out = xasprintf("%s%s\r\n%s", field, b64 != NULL ? b64 : "", msg);
	free(field);
	free(b64);
	dkim_signer_free(&s);
	return out;
}

static void
verify(const struct keys *k, const char *m, struct dkim_verify_result *r,
    bool tempfail)
{
	struct fake_rr rows[] = {
		{ "rsa._domainkey.example.com", "TXT", k->rsa_rec },
		{ "ed._domainkey.example.com", "TXT", k->ed_rec },
		{ "short._domainkey.example.com", "TXT", k->short_rec },
		{ "revoked._domainkey.example.com", "TXT", "v=DKIM1; k=rsa; p=" },
		{ "notmail._domainkey.example.com", "TXT", "v=DKIM1; s=tlsrpt; p=YQ==" },
		{ "rsa._domainkey.example.com", tempfail ? "TEMPFAIL" : "X", "" },
	};
	struct fake_zone z = { rows, sizeof(rows) / sizeof(rows[0]), NULL, 0, 0 };
	struct msgauth_dns dns;

	fake_dns_init(&dns, &z);
	dkim_verify(&dns, m, strlen(m), 1700000100, r);
}

static char *
replace(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);

	if (p == NULL)
		return xstrdup(s);
	return xasprintf("%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
}

static void
test_dkim_verify(void)
{
	struct keys k;
	struct dkim_verify_result r;
	char *signed_msg, *m, *lf;

	test_begin("dkim verify: RSA and Ed25519 signatures, what breaks them");
	test_assert(make_keys(&k));
	if (k.rsa == NULL || k.ed == NULL) {
		test_end();
		return;
	}
	signed_msg = sign_both(&k, message);

	verify(&k, signed_msg, &r, false);
	test_assert(r.count == 2);
	test_assert(r.sig[0].result == DKIM_RESULT_PASS);
	test_assert(r.sig[1].result == DKIM_RESULT_PASS);
	test_assert_str(r.sig[0].domain, "example.com");
	test_assert_str(r.sig[0].algorithm, "rsa-sha256");
	test_assert_str(r.sig[1].algorithm, "ed25519-sha256");
	test_assert(r.sig[0].key_bits == 1024 && strlen(r.sig[0].b_text) == 8);

	/* the same message stored with LF line ends */
	{
		struct buf b;

		buf_init(&b, 1 << 20);
		for (const char *p = signed_msg; *p != '\0'; p++) {
			if (*p != '\r')
				buf_append_c(&b, *p);
		}
		lf = buf_steal(&b);
	}
	verify(&k, lf, &r, false);
	test_assert(r.count == 2 && r.sig[0].result == DKIM_RESULT_PASS &&
	    r.sig[1].result == DKIM_RESULT_PASS);
	free(lf);

	/* a body changed in transit */
	m = replace(signed_msg, "at noon", "at one");
	verify(&k, m, &r, false);
	test_assert(r.sig[0].result == DKIM_RESULT_FAIL &&
	    r.sig[1].result == DKIM_RESULT_FAIL);
	test_assert_str(r.sig[0].problem, "body hash mismatch");
	free(m);
	/* a signed header changed */
	m = replace(signed_msg, "Subject: lunch", "Subject: lunch!");
	verify(&k, m, &r, false);
	test_assert(r.sig[0].result == DKIM_RESULT_FAIL &&
	    r.sig[1].result == DKIM_RESULT_FAIL);
	test_assert_str(r.sig[1].problem, "signature did not verify");
	free(m);
	/* relaxed canonicalization forgives white space in headers */
	m = replace(signed_msg, "Subject: lunch", "Subject:   lunch ");
	verify(&k, m, &r, false);
	test_assert(r.sig[0].result == DKIM_RESULT_PASS);
	free(m);
	/* a second From added (From is over-signed) */
	m = replace(signed_msg, "To: ann", "From: evil@evil.example\r\nTo: ann");
	verify(&k, m, &r, false);
	test_assert(r.sig[0].result == DKIM_RESULT_FAIL);
	free(m);
	/* DNS trouble, no key */
	verify(&k, signed_msg, &r, true);
	test_assert(r.sig[0].result == DKIM_RESULT_TEMPERROR);
	test_assert(r.sig[1].result == DKIM_RESULT_PASS);
	m = replace(signed_msg, "s=ed;", "s=nokey;");
	verify(&k, m, &r, false);
	test_assert(r.sig[1].result == DKIM_RESULT_PERMERROR);
	free(m);
	/* the Ed25519 signature checked against the RSA key */
	m = replace(signed_msg, "s=ed;", "s=rsa;");
	verify(&k, m, &r, false);
	test_assert(r.sig[1].result == DKIM_RESULT_FAIL);
	free(m);
	/* no signature */
	verify(&k, message, &r, false);
	test_assert(r.count == 0);
	free(signed_msg);

	/* hand-made signatures: expiry, l=, short and revoked keys */
	m = sign_custom(&k, message, "rsa", "x=1700000050; ");
	verify(&k, m, &r, false);
	test_assert(r.sig[0].result == DKIM_RESULT_FAIL);
	test_assert_str(r.sig[0].problem, "signature expired");
	free(m);
	m = sign_custom(&k, message, "rsa", "x=1800000000; ");
	verify(&k, m, &r, false);
	test_assert(r.sig[0].result == DKIM_RESULT_PASS);
	free(m);
	m = sign_custom(&k, message, "short", "");
	verify(&k, m, &r, false);
	test_assert(r.sig[0].result == DKIM_RESULT_FAIL);
	test_assert(strstr(r.sig[0].problem, "too short") != NULL);
	free(m);
	m = sign_custom(&k, message, "revoked", "");
	verify(&k, m, &r, false);
	test_assert(r.sig[0].result == DKIM_RESULT_FAIL);
	test_assert_str(r.sig[0].problem, "key revoked");
	free(m);
	m = sign_custom(&k, message, "notmail", "");
	verify(&k, m, &r, false);
	test_assert(r.sig[0].result == DKIM_RESULT_FAIL);
	free(m);
	{
		/* l= covering the whole body: pass; then something appended */
		const char *body = strstr(message, "\r\n\r\n") + 4;
		char extra[64];
		char *tail;

		snprintf(extra, sizeof(extra), "l=%zu; ", strlen(body));
		m = sign_custom(&k, message, "rsa", extra);
		verify(&k, m, &r, false);
		test_assert(r.sig[0].result == DKIM_RESULT_PASS);
		tail = xasprintf("%sBuy cheap pills at http://spam.example/\r\n", m);
		verify(&k, tail, &r, false);
		test_assert(r.sig[0].result == DKIM_RESULT_POLICY);
		free(tail);
		free(m);
		snprintf(extra, sizeof(extra), "l=%zu; ", strlen(body) + 100);
		m = sign_custom(&k, message, "rsa", extra);
		verify(&k, m, &r, false);
		test_assert(r.sig[0].result == DKIM_RESULT_FAIL);
		free(m);
	}
	/* an unparseable signature is neutral, rsa-sha1 a fail */
	m = xasprintf("DKIM-Signature: v=1; a=rsa-sha256; d=example.com\r\n%s", message);
	verify(&k, m, &r, false);
	test_assert(r.count == 1 && r.sig[0].result == DKIM_RESULT_NEUTRAL);
	free(m);
	m = xasprintf("DKIM-Signature: v=1; a=rsa-sha1; d=example.com; s=rsa; "
	    "h=from; bh=YQ==; b=YQ==\r\n%s", message);
	verify(&k, m, &r, false);
	test_assert(r.count == 1 && r.sig[0].result == DKIM_RESULT_FAIL);
	free(m);
	free_keys(&k);
	test_end();
}
TEST(test_dkim_verify)
