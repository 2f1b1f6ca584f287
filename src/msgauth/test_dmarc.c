#include "lib/test.h"
#include "lib/xalloc.h"
#include "msgauth/dmarc.h"
#include "msgauth/psl.h"
#include "msgauth/test_fake_dns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct psl *
load_psl(void)
{
	struct psl *psl;
	char *err = NULL;

	if (psl_load(PSL_DEFAULT_PATH, &psl, &err) < 0) {
		printf("     %s\n", err);
		free(err);
		return NULL;
	}
	return psl;
}

static void
test_psl_real_list(void)
{
	static const struct { const char *name, *org; } cases[] = {
		{ "example.com", "example.com" },
		{ "mail.example.com", "example.com" },
		{ "Mail.Example.COM", "example.com" },
		{ "a.b.example.co.uk", "example.co.uk" },
		{ "example.co.uk", "example.co.uk" },
		{ "co.uk", NULL },
		{ "com", NULL },
		{ "www.ck", "www.ck" },
		{ "a.www.ck", "www.ck" },
		{ "foo.ck", NULL },
		{ "a.foo.ck", "a.foo.ck" },
		{ "b.a.foo.ck", "a.foo.ck" },
		{ "city.kawasaki.jp", "city.kawasaki.jp" },
		{ "x.city.kawasaki.jp", "city.kawasaki.jp" },
		{ "foo.kawasaki.jp", NULL },
		{ "a.foo.kawasaki.jp", "a.foo.kawasaki.jp" },
		{ "example.zzzz", "example.zzzz" },
		{ "x.example.zzzz", "example.zzzz" },
		{ "zzzz", NULL },
		{ "foo.github.io", "foo.github.io" },
		{ "www.foo.github.io", "foo.github.io" },
		{ "mail.example.com.", "example.com" },
		{ "a..example.com", NULL },
		{ ".example.com", NULL },
		{ "", NULL },
	};
	struct psl *psl;
	char out[256];

	test_begin("psl: organizational domains from the Debian list");
	psl = load_psl();
	test_assert(psl != NULL);
	if (psl == NULL) {
		test_end();
		return;
	}
	test_assert(psl_rule_count(psl) > 5000);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = psl_org_domain(psl, cases[i].name, out, sizeof(out));

		if (cases[i].org == NULL) {
			if (ret != -1)
				printf("     %s -> %s\n", cases[i].name, out);
			test_assert(ret == -1);
		} else {
			test_assert(ret == 0);
			if (ret == 0)
				test_assert_str(out, cases[i].org);
			else
				printf("     %s -> -1\n", cases[i].name);
		}
	}
	test_assert(psl_org_domain(psl, "a.example.com", out, 8) == -1);
	psl_free(&psl);
	test_end();
}
TEST(test_psl_real_list)

static void
test_psl_small_list(void)
{
	static const char list[] =
	    "// comment\n"
	    "com\n"
	    "\n"
	    "*.wild\n"
	    "!keep.wild\n"
	    "a.b.c   trailing text is ignored\n"
	    "// ===END ICANN DOMAINS===\n";
	struct psl *psl;
	char *err = NULL, out[256];

	test_begin("psl: wildcard and exception rules, parsed from memory");
	test_assert(psl_parse(list, strlen(list), &psl, &err) == 0);
	test_assert(psl_rule_count(psl) == 4);
	test_assert(psl_suffix_labels(psl, "x.com") == 1);
	test_assert(psl_suffix_labels(psl, "x.y.wild") == 2);
	test_assert(psl_suffix_labels(psl, "keep.wild") == 1);
	test_assert(psl_suffix_labels(psl, "x.keep.wild") == 1);
	test_assert(psl_suffix_labels(psl, "z.a.b.c") == 3);
	test_assert(psl_suffix_labels(psl, "b.c") == 1);
	test_assert(psl_org_domain(psl, "q.z.a.b.c", out, sizeof(out)) == 0);
	test_assert_str(out, "z.a.b.c");
	test_assert(psl_org_domain(psl, "x.keep.wild", out, sizeof(out)) == 0);
	test_assert_str(out, "keep.wild");
	psl_free(&psl);
	test_assert(psl_parse("// nothing\n", 11, &psl, &err) == -1);
	free(err);
	test_end();
}
TEST(test_psl_small_list)

static void
test_dmarc_record(void)
{
	static const struct { const char *text; bool ok; } cases[] = {
		{ "v=DMARC1; p=none", true },
		{ "v=DMARC1;p=reject;", true },
		{ "v = DMARC1 ; p = quarantine ; ", true },
		{ "v=DMARC1; p=REJECT", true },
		{ "v=DMARC1; rua=mailto:x@example.com", true },
		{ "v=DMARC1; p=none; future_tag=whatever", true },
		{ "v=DMARC1; p=none\t;\r\n rua=mailto:a@b.c", true },
		{ "", false },
		{ "p=reject; v=DMARC1", false },
		{ "v=DMARC2; p=none", false },
		{ "v=dmarc1; p=none", false },
		{ "v=DMARC1", false },
		{ "v=DMARC1;", false },
		{ "v=DMARC1; p=maybe", false },
		{ "v=DMARC1; p=none; p=reject", false },
		{ "v=DMARC1;; p=none", false },
		{ "v=DMARC1; p", false },
		{ "v=DMARC1; 1p=none", false },
		{ "v=DMARC1; p=none;;", false },
		{ "v=DMARC1; p=maybe; rua=nonsense", false },
		{ "v=DMARC1; p=n\x01one", false },
	};
	struct dmarc_record r;
	const char *err;
	const char *full = "v=DMARC1; p=reject; sp=none; pct=20; adkim=s; "
	    "aspf=r; rua=mailto:a@b.c,mailto:d@e.f; ruf=mailto:f@b.c; fo=1:d; "
	    "rf=afrf; ri=3600; x=unknown";

	test_begin("dmarc: record parser");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = dmarc_record_parse(cases[i].text, strlen(cases[i].text),
		    &r, &err);

		if ((ret == 0) != cases[i].ok)
			printf("     \"%s\": got %d\n", cases[i].text, ret);
		test_assert((ret == 0) == cases[i].ok);
	}
	test_assert(dmarc_record_parse(full, strlen(full), &r, &err) == 0);
	test_assert(r.p == DMARC_POLICY_REJECT && r.sp == DMARC_POLICY_NONE);
	test_assert(r.pct == 20 && r.ri == 3600);
	test_assert(r.adkim == DMARC_ALIGN_STRICT && r.aspf == DMARC_ALIGN_RELAXED);
	test_assert_str(r.rua, "mailto:a@b.c,mailto:d@e.f");
	test_assert_str(r.ruf, "mailto:f@b.c");
	test_assert_str(r.fo, "1:d");
	test_assert_str(r.rf, "afrf");

	/* bad values fall back on defaults */
	full = "v=DMARC1; p=quarantine; sp=bogus; pct=200; adkim=x; fo=2; ri=abc";
	test_assert(dmarc_record_parse(full, strlen(full), &r, &err) == 0);
	test_assert(r.p == DMARC_POLICY_QUARANTINE && r.sp == DMARC_POLICY_UNSET);
	test_assert(r.pct == 100 && r.ri == 86400 && r.adkim == DMARC_ALIGN_RELAXED);
	test_assert_str(r.fo, "0");
	/* p= missing but rua= present: p=none */
	full = "v=DMARC1; rua=mailto:x@example.com";
	test_assert(dmarc_record_parse(full, strlen(full), &r, &err) == 0);
	test_assert(r.p == DMARC_POLICY_NONE);
	test_end();
}
TEST(test_dmarc_record)

static const struct fake_rr dmarc_zone[] = {
	{ "_dmarc.example.com", "TXT", "v=DMARC1; p=reject; sp=quarantine" },
	{ "_dmarc.example.com", "TXT", "some other text" },
	{ "_dmarc.strict.example", "TXT", "v=DMARC1; p=reject; adkim=s; aspf=s" },
	{ "_dmarc.quar.example", "TXT", "v=DMARC1; p=quarantine; pct=50" },
	{ "_dmarc.rej.example", "TXT", "v=DMARC1; p=reject; pct=50" },
	{ "_dmarc.zero.example", "TXT", "v=DMARC1; p=reject; pct=0" },
	{ "_dmarc.none.example", "TXT", "v=DMARC1; p=none" },
	{ "_dmarc.bad.example", "TXT", "v=DMARC1; p=bogus" },
	{ "_dmarc.two.example", "TXT", "v=DMARC1; p=reject" },
	{ "_dmarc.two.example", "TXT", "v=DMARC1; p=none" },
	{ "_dmarc.temp.example", "TEMPFAIL", "" },
	{ "_dmarc.nosp.example", "TXT", "v=DMARC1; p=reject" },
	{ "_dmarc.sub.two2.example", "TXT", "v=DMARC1; p=none" },
	{ "_dmarc.sub.two2.example", "TXT", "v=DMARC1; p=none" },
	{ "_dmarc.two2.example", "TXT", "v=DMARC1; p=reject" },
	{ "_dmarc.example.co.uk", "TXT", "v=DMARC1; p=reject" },
};

struct dmarc_case {
	const char *from;
	enum spf_result spf;
	const char *spf_domain;
	const char *dkim_domain;	/* NULL = no signature */
	bool dkim_pass;
	unsigned int rand;
	enum dmarc_result want;
	enum dmarc_disposition disp;
};

static unsigned int
fixed_random(void *ctx)
{
	return *(const unsigned int *)ctx;
}

static void
test_dmarc_evaluate(void)
{
	static const struct dmarc_case cases[] = {
		{ "example.com", SPF_RESULT_PASS, "example.com", NULL, false, 0,
		    DMARC_RESULT_PASS, DMARC_DISP_NONE },
		{ "example.com", SPF_RESULT_PASS, "bounces.example.com", NULL, false, 0,
		    DMARC_RESULT_PASS, DMARC_DISP_NONE },
		{ "Example.COM", SPF_RESULT_PASS, "example.com", NULL, false, 0,
		    DMARC_RESULT_PASS, DMARC_DISP_NONE },
		{ "example.com", SPF_RESULT_FAIL, "example.com", NULL, false, 0,
		    DMARC_RESULT_FAIL, DMARC_DISP_REJECT },
		{ "example.com", SPF_RESULT_SOFTFAIL, "example.com", NULL, false, 0,
		    DMARC_RESULT_FAIL, DMARC_DISP_REJECT },
		{ "example.com", SPF_RESULT_PASS, "evil.example", NULL, false, 0,
		    DMARC_RESULT_FAIL, DMARC_DISP_REJECT },
		{ "sub.example.com", SPF_RESULT_NONE, NULL, NULL, false, 0,
		    DMARC_RESULT_FAIL, DMARC_DISP_QUARANTINE },
		{ "sub.example.com", SPF_RESULT_NONE, NULL, "example.com", true, 0,
		    DMARC_RESULT_PASS, DMARC_DISP_NONE },
		{ "sub.example.com", SPF_RESULT_NONE, NULL, "example.com", false, 0,
		    DMARC_RESULT_FAIL, DMARC_DISP_QUARANTINE },
		{ "strict.example", SPF_RESULT_PASS, "mail.strict.example", NULL, false, 0,
		    DMARC_RESULT_FAIL, DMARC_DISP_REJECT },
		{ "strict.example", SPF_RESULT_PASS, "strict.example", NULL, false, 0,
		    DMARC_RESULT_PASS, DMARC_DISP_NONE },
		{ "strict.example", SPF_RESULT_NONE, NULL, "strict.example", true, 0,
		    DMARC_RESULT_PASS, DMARC_DISP_NONE },
		{ "strict.example", SPF_RESULT_NONE, NULL, "a.strict.example", true, 0,
		    DMARC_RESULT_FAIL, DMARC_DISP_REJECT },
		{ "quar.example", SPF_RESULT_FAIL, "quar.example", NULL, false, 10,
		    DMARC_RESULT_FAIL, DMARC_DISP_QUARANTINE },
		{ "quar.example", SPF_RESULT_FAIL, "quar.example", NULL, false, 60,
		    DMARC_RESULT_FAIL, DMARC_DISP_NONE },
		{ "rej.example", SPF_RESULT_FAIL, "rej.example", NULL, false, 49,
		    DMARC_RESULT_FAIL, DMARC_DISP_REJECT },
		{ "rej.example", SPF_RESULT_FAIL, "rej.example", NULL, false, 50,
		    DMARC_RESULT_FAIL, DMARC_DISP_QUARANTINE },
		{ "zero.example", SPF_RESULT_FAIL, "zero.example", NULL, false, 0,
		    DMARC_RESULT_FAIL, DMARC_DISP_QUARANTINE },
		{ "none.example", SPF_RESULT_FAIL, "none.example", NULL, false, 0,
		    DMARC_RESULT_FAIL, DMARC_DISP_NONE },
		{ "bad.example", SPF_RESULT_FAIL, "bad.example", NULL, false, 0,
		    DMARC_RESULT_PERMERROR, DMARC_DISP_NONE },
		{ "two.example", SPF_RESULT_FAIL, "two.example", NULL, false, 0,
		    DMARC_RESULT_NONE, DMARC_DISP_NONE },
		/* several records at the From domain stop the search */
		{ "sub.two2.example", SPF_RESULT_FAIL, "x.example", NULL, false, 0,
		    DMARC_RESULT_NONE, DMARC_DISP_NONE },
		{ "temp.example", SPF_RESULT_PASS, "temp.example", NULL, false, 0,
		    DMARC_RESULT_TEMPERROR, DMARC_DISP_NONE },
		{ "nothing.example", SPF_RESULT_FAIL, "x.example", NULL, false, 0,
		    DMARC_RESULT_NONE, DMARC_DISP_NONE },
		{ "co.uk", SPF_RESULT_FAIL, "x.example", NULL, false, 0,
		    DMARC_RESULT_NONE, DMARC_DISP_NONE },
		{ "a..example", SPF_RESULT_FAIL, "x.example", NULL, false, 0,
		    DMARC_RESULT_NONE, DMARC_DISP_NONE },
		{ "sub.nosp.example", SPF_RESULT_FAIL, "nosp.example", NULL, false, 0,
		    DMARC_RESULT_FAIL, DMARC_DISP_REJECT },
		{ "sub.nosp.example", SPF_RESULT_PASS, "nosp.example", NULL, false, 0,
		    DMARC_RESULT_PASS, DMARC_DISP_NONE },
		/* relaxed alignment uses the PSL: other.co.uk is not example.co.uk */
		{ "mail.example.co.uk", SPF_RESULT_PASS, "other.co.uk", NULL, false, 0,
		    DMARC_RESULT_FAIL, DMARC_DISP_REJECT },
		{ "mail.example.co.uk", SPF_RESULT_PASS, "b.example.co.uk", NULL, false, 0,
		    DMARC_RESULT_PASS, DMARC_DISP_NONE },
	};
	struct fake_zone zone = { dmarc_zone, sizeof(dmarc_zone) / sizeof(dmarc_zone[0]),
	    NULL, 0, 0 };
	struct msgauth_dns dns;
	struct psl *psl;

	test_begin("dmarc: policy discovery, alignment, result, disposition");
	fake_dns_init(&dns, &zone);
	psl = load_psl();
	test_assert(psl != NULL);
	for (size_t i = 0; psl != NULL && i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct dmarc_case *c = &cases[i];
		struct dmarc_dkim_sig sig = { c->dkim_domain, c->dkim_pass };
		unsigned int rnd = c->rand;
		struct dmarc_input in = { .from_domain = c->from,
		    .spf_result = c->spf, .spf_domain = c->spf_domain,
		    .dkim = &sig, .dkim_count = c->dkim_domain != NULL ? 1 : 0,
		    .random_pct = fixed_random, .random_ctx = &rnd };
		struct dmarc_outcome out;

		dmarc_evaluate(&dns, psl, &in, &out);
		if (out.result != c->want || out.disposition != c->disp) {
			printf("     case %zu %s: got %s/%s want %s/%s (%s)\n", i,
			    c->from, dmarc_result_name(out.result),
			    dmarc_disposition_name(out.disposition),
			    dmarc_result_name(c->want),
			    dmarc_disposition_name(c->disp), out.problem);
			test_assert(out.result == c->want);
			test_assert(out.disposition == c->disp);
		}
	}
	/* where the policy came from */
	if (psl != NULL) {
		struct dmarc_input in = { .from_domain = "a.b.example.com",
		    .spf_result = SPF_RESULT_NONE };
		struct dmarc_outcome out;

		test_assert(dmarc_evaluate(&dns, psl, &in, &out) == DMARC_RESULT_FAIL);
		test_assert_str(out.policy_domain, "example.com");
		test_assert_str(out.org_domain, "example.com");
		test_assert(out.policy == DMARC_POLICY_QUARANTINE);
		test_assert(dmarc_aligned(psl, "a.example.com", "b.example.com",
		    DMARC_ALIGN_RELAXED));
		test_assert(!dmarc_aligned(psl, "a.example.com", "b.example.com",
		    DMARC_ALIGN_STRICT));
		test_assert(!dmarc_aligned(psl, "a.github.io", "b.github.io",
		    DMARC_ALIGN_RELAXED));
	}
	psl_free(&psl);
	test_end();
}
TEST(test_dmarc_evaluate)

static void
test_dmarc_from_domain(void)
{
	static const struct { const char *hdr, *domain; } cases[] = {
		{ "From: joe@Example.COM\r\nTo: x@y\r\n\r\nFrom: body@x.org\r\n",
		    "example.com" },
		{ "Subject: a\nFrom: \"Doe, Joe\" <joe@example.com>\n", "example.com" },
		{ "from :Joe (the \"boss\" <x@evil.example>) <joe@mail.example.org.>\n",
		    "mail.example.org" },
		{ "From: =?utf-8?q?J=C3=B6e?= <joe@example.com> (comment)\r\n",
		    "example.com" },
		{ "From: a@example.com,\r\n\tb@example.com\r\n", "example.com" },
		{ "From: team: a@example.com, b@example.com;\r\n", "example.com" },
		{ "From: \"joe@evil.example\" <joe@example.com>\r\n", "example.com" },
		{ "From: \"odd@local\"@example.net\r\n", "example.net" },
		{ "From: joe@example.com\r\nFrom: eve@evil.example\r\n", NULL },
		{ "From: a@example.com, b@other.example\r\n", NULL },
		{ "To: a@example.com\r\n\r\n", NULL },
		{ "From: undisclosed\r\n", NULL },
		{ "From: <>\r\n", NULL },
		{ "From: joe@\r\n", NULL },
		{ "From: joe@a..example\r\n", NULL },
		{ "X-From: a@b.example\r\nFromage: c@d.example\r\nFrom: joe@e.example\r\n",
		    "e.example" },
	};
	char out[256];
	const char *err;

	test_begin("dmarc: the RFC5322.From domain of a header block");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = dmarc_from_domain(cases[i].hdr, strlen(cases[i].hdr), out,
		    sizeof(out), &err);

		if (cases[i].domain == NULL) {
			if (ret != -1)
				printf("     case %zu: got %s\n", i, out);
			test_assert(ret == -1);
		} else {
			if (ret != 0)
				printf("     case %zu: %s\n", i, err);
			test_assert(ret == 0);
			if (ret == 0)
				test_assert_str(out, cases[i].domain);
		}
	}
	/* one byte at a time: every prefix is handled */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t n = 0; n <= strlen(cases[i].hdr); n++)
			(void)dmarc_from_domain(cases[i].hdr, n, out, sizeof(out), &err);
	}
	test_end();
}
TEST(test_dmarc_from_domain)
