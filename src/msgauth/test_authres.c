#include "lib/str.h"
#include "lib/test.h"
#include "msgauth/authres.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_authres_format(void)
{
	struct authres ar;
	struct spf_request req = { .sender = "joe@example.com",
	    .helo = "mta.example.com" };
	struct spf_outcome spf;
	struct dmarc_outcome dmarc;
	char *f;

	test_begin("authres: one result per folded line, values quoted when needed");
	memset(&spf, 0, sizeof(spf));
	spf.result = SPF_RESULT_PASS;
	memset(&dmarc, 0, sizeof(dmarc));
	dmarc.result = DMARC_RESULT_FAIL;
	dmarc.have_record = true;
	dmarc.policy = DMARC_POLICY_REJECT;
	dmarc.disposition = DMARC_DISP_REJECT;

	authres_init(&ar, "mx.tegami.test");
	authres_add_spf(&ar, &spf, &req);
	authres_add(&ar, "dkim", "pass", NULL, "header.d", "example.com",
	    "header.s", "sel 1", "header.b", "AbCd+/12", (const char *)NULL);
	authres_add(&ar, "dkim", "fail", "body hash \"mismatch\"\r\n",
	    "header.i", "@example.com", (const char *)NULL);
	authres_add_dmarc(&ar, &dmarc, "example.com");
	f = authres_finish(&ar, "\r\n");
	test_assert_str(f, "Authentication-Results: mx.tegami.test;\r\n"
	    "\tspf=pass smtp.mailfrom=joe@example.com;\r\n"
	    "\tdkim=pass header.d=example.com header.s=\"sel 1\" header.b=\"AbCd+/12\";\r\n"
	    "\tdkim=fail reason=\"body hash \\\"mismatch\\\"??\" header.i=@example.com;\r\n"
	    "\tdmarc=fail (p=reject dis=reject) header.from=example.com");
	free(f);

	authres_init(&ar, "mx.tegami.test");
	f = authres_finish(&ar, "\n");
	test_assert_str(f, "Authentication-Results: mx.tegami.test; none");
	free(f);

	/* DKIM results */
	{
		struct dkim_sig_result d;

		memset(&d, 0, sizeof(d));
		d.result = DKIM_RESULT_PASS;
		str_copy(d.domain, sizeof(d.domain), "example.com");
		str_copy(d.selector, sizeof(d.selector), "sel");
		str_copy(d.identity, sizeof(d.identity), "@example.com");
		str_copy(d.b_text, sizeof(d.b_text), "AbCd1234");
		d.algorithm = "rsa-sha256";
		authres_init(&ar, "mx.tegami.test");
		authres_add_dkim(&ar, &d);
		authres_add_dkim(&ar, NULL);
		f = authres_finish(&ar, "\n");
		test_assert_str(f, "Authentication-Results: mx.tegami.test;\n"
		    "\tdkim=pass header.d=example.com header.s=sel "
		    "header.i=@example.com header.a=rsa-sha256 header.b=AbCd1234;\n"
		    "\tdkim=none");
		free(f);
	}

	/* the null sender reports the HELO identity */
	req.sender = "";
	spf.result = SPF_RESULT_PERMERROR;
	str_copy(spf.problem, sizeof(spf.problem), "more than 10 DNS-querying terms");
	authres_init(&ar, "mx.tegami.test");
	authres_add_spf(&ar, &spf, &req);
	f = authres_finish(&ar, "\n");
	test_assert_str(f, "Authentication-Results: mx.tegami.test;\n"
	    "\tspf=permerror reason=\"more than 10 DNS-querying terms\" "
	    "smtp.helo=mta.example.com");
	free(f);
	test_end();
}
TEST(test_authres_format)

static void
test_authres_id(void)
{
	static const struct { const char *body, *id; } cases[] = {
		{ " mx.tegami.test; spf=pass", "mx.tegami.test" },
		{ "mx.tegami.test 1; none", "mx.tegami.test" },
		{ " (a (nested) comment)\r\n\t mx.tegami.test;", "mx.tegami.test" },
		{ " \"quoted.id\"; none", "quoted.id" },
		{ "\tMX.Tegami.TEST;", "MX.Tegami.TEST" },
		{ " ; none", NULL },
		{ " (unterminated", NULL },
		{ "", NULL },
		{ " \"open", NULL },
	};
	char id[64];

	test_begin("authres: authserv-id behind comments and folding");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = authres_authserv_id(cases[i].body, strlen(cases[i].body),
		    id, sizeof(id));

		if (cases[i].id == NULL) {
			test_assert(ret == -1);
		} else {
			test_assert(ret == 0);
			if (ret == 0)
				test_assert_str(id, cases[i].id);
		}
	}
	test_assert(authres_authserv_id(" a-very-long-id.example", 23, id, 8) == -1);
	test_end();
}
TEST(test_authres_id)

static void
test_authres_strip(void)
{
	static const char in[] =
	    "Received: from x by y\r\n"
	    "Authentication-Results: mx.tegami.test; dkim=pass\r\n"
	    "\theader.d=forged.example\r\n"
	    "Subject: hi\r\n"
	    "authentication-results : (forged) MX.TEGAMI.TEST;\r\n"
	    " spf=pass\r\n"
	    "Authentication-Results: other.example; spf=fail\r\n"
	    "X-Authentication-Results: mx.tegami.test; none\r\n"
	    "\r\n"
	    "Authentication-Results: mx.tegami.test; in the body\r\n";
	static const char want[] =
	    "Received: from x by y\r\n"
	    "Subject: hi\r\n"
	    "Authentication-Results: other.example; spf=fail\r\n"
	    "X-Authentication-Results: mx.tegami.test; none\r\n"
	    "\r\n"
	    "Authentication-Results: mx.tegami.test; in the body\r\n";
	struct buf out;

	test_begin("authres: forged fields with our authserv-id are removed");
	buf_init(&out, 1 << 16);
	test_assert(authres_strip_ours(in, strlen(in), "mx.tegami.test", &out) == 2);
	test_assert_str(buf_cstr(&out), want);
	buf_reset(&out);
	/* bare LF, no body, last line unterminated */
	test_assert(authres_strip_ours("A: 1\nAuthentication-Results: mx.tegami.test;"
	    " x", 46, "mx.tegami.test", &out) == 1);
	test_assert_str(buf_cstr(&out), "A: 1\n");
	buf_free(&out);

	buf_init(&out, 4);
	test_assert(authres_strip_ours(in, strlen(in), "mx.tegami.test", &out) == -1);
	buf_free(&out);
	test_end();
}
TEST(test_authres_strip)
