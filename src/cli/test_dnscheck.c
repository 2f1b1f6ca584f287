#include "cli/dnscheck.h"
#include "lib/str.h"
#include "lib/test.h"
#include "lib/xalloc.h"
#include "msgauth/dkim_key.h"
#include "msgauth/test_fake_dns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The pure parts.                                                     */

static void
test_dnscheck_names_and_records(void)
{
	static const struct { const char *a, *b; bool eq; } names[] = {
		{ "mx.example.com", "MX.Example.COM", true },
		{ "mx.example.com.", "mx.example.com", true },
		{ "mx.example.com", "mx.example.co", false },
		{ "mx.example.com", "mx2.example.com", false },
		{ "", ".", true },
	};
	static const struct { const char *txt[4]; size_t spf, dmarc; } recs[] = {
		{ { "v=spf1 mx -all", NULL }, 1, 0 },
		{ { "V=SPF1 mx -all", "v=spf1", NULL }, 2, 0 },	/* case, bare */
		{ { "v=spf10 -all", "v=spf1-all", "spf1 -all", NULL }, 0, 0 },
		{ { "google-site-verification=x", "v=spf1 a", "v=spf1 mx", NULL }, 2, 0 },
		{ { "v=DMARC1; p=none", NULL }, 0, 1 },
		{ { " v = DMARC1 ; p=reject", "v=DMARC1", NULL }, 0, 2 },
		{ { "v=DMARC10; p=none", "p=none; v=DMARC1", "v=dmarc1; p=none", NULL }, 0, 0 },
	};

	test_begin("dnscheck: name comparison, SPF/DMARC record selection");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		test_assert(dnscheck_name_eq(names[i].a, names[i].b) == names[i].eq);
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		struct msgauth_dns_txt t;
		size_t idx[4];

		memset(&t, 0, sizeof(t));
		for (size_t k = 0; recs[i].txt[k] != NULL; k++) {
			t.txt[k] = (char *)recs[i].txt[k];
			t.len[k] = strlen(recs[i].txt[k]);
			t.count++;
		}
		test_assert_int(dnscheck_spf_records(&t, idx, 4), recs[i].spf);
		test_assert_int(dnscheck_dmarc_records(&t, idx, 4), recs[i].dmarc);
	}
	/* idx gets the positions, at most max, the count is all of them */
	{
		struct msgauth_dns_txt t;
		size_t idx[1] = { 99 };

		memset(&t, 0, sizeof(t));
		t.txt[0] = "x";
		t.txt[1] = "v=spf1 a";
		t.txt[2] = "v=spf1 mx";
		for (int k = 0; k < 3; k++)
			t.len[k] = strlen(t.txt[k]);
		t.count = 3;
		test_assert_int(dnscheck_spf_records(&t, idx, 1), 2);
		test_assert_int(idx[0], 1);
	}
	test_end();
}
TEST(test_dnscheck_names_and_records)

static void
test_dnscheck_spf_with(void)
{
	static const struct { const char *rec, *terms, *want; } cases[] = {
		{ "v=spf1 mx ~all", "ip4:192.0.2.1", "v=spf1 ip4:192.0.2.1 mx ~all" },
		{ "v=spf1", "ip6:2001:db8::1", "v=spf1 ip6:2001:db8::1" },
		{ "v=spf1   -all", "a:mx.example.com", "v=spf1 a:mx.example.com -all" },
		{ "V=SPF1 include:x.example -all", "ip4:1.2.3.4 ip6:::1",
		  "v=spf1 ip4:1.2.3.4 ip6:::1 include:x.example -all" },
	};

	test_begin("dnscheck: SPF fix puts this server first");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = dnscheck_spf_with(cases[i].rec, strlen(cases[i].rec),
		    cases[i].terms);

		test_assert_str(s, cases[i].want);
		free(s);
	}
	test_end();
}
TEST(test_dnscheck_spf_with)

static void
test_dnscheck_mailto(void)
{
	static const struct { const char *in; const char *want[3]; } cases[] = {
		{ "mailto:dmarc@example.com", { "dmarc@example.com", NULL } },
		{ "mailto:A@Example.COM!10m, mailto:b@x.example", { "a@example.com",
		  "b@x.example", NULL } },
		{ "https://report.example/x, mailto:c@y.example", { "c@y.example",
		  NULL } },
		{ "mailto:re%2Bports@example.com", { "re+ports@example.com", NULL } },
		{ "mailto:, mailto:noat, mailto:%zz@example.com",
		  { "%zz@example.com", NULL } },
		{ "", { NULL } },
	};

	test_begin("dnscheck: DMARC rua= mailto addresses");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char **got = dnscheck_mailto_addresses(cases[i].in);
		size_t n = 0;

		for (; cases[i].want[n] != NULL; n++)
			test_assert(got != NULL && got[n] != NULL &&
			    strcmp(got[n], cases[i].want[n]) == 0);
		test_assert(n == 0 ? got == NULL : got[n] == NULL);
		str_array_free(got);
	}
	test_end();
}
TEST(test_dnscheck_mailto)

static void
test_dnscheck_txt_quoted(void)
{
	char big[600], *q, *expect;

	test_begin("dnscheck: TXT values as zone-file strings");
	q = dnscheck_txt_quoted("v=spf1 mx ~all");
	test_assert_str(q, "\"v=spf1 mx ~all\"");
	free(q);
	q = dnscheck_txt_quoted("a \"quoted\" \\ value");
	test_assert_str(q, "\"a \\\"quoted\\\" \\\\ value\"");
	free(q);
	/* A DKIM record: the key starts its own string, none over 255. */
	memset(big, 'A', 400);
	big[400] = '\0';
	expect = xasprintf("v=DKIM1; k=rsa; p=%s", big);
	q = dnscheck_txt_quoted(expect);
	test_assert(str_has_prefix(q, "\"v=DKIM1; k=rsa; \" \"p=AAA"));
	test_assert(strlen(q) == strlen(expect) + 3 * 2 + 2);	/* 3 strings */
	free(q);
	free(expect);
	test_end();
}
TEST(test_dnscheck_txt_quoted)

/* The record of a fresh key (RSA 1024 to keep the test fast). */
static char *
new_record(enum dkim_key_type type)
{
	char *pem = NULL, *rec = NULL;
	const char *why;

	if (dkim_key_generate(type, 1024, &pem, &why) < 0 ||
	    dkim_key_record(pem, strlen(pem), &rec, NULL, NULL, &why) < 0)
		return NULL;
	free(pem);
	return rec;
}

/* "p=ABCD" -> "p=AB CD" (folding whitespace is allowed in p=). */
static char *
with_spaces(const char *rec)
{
	const char *p = strstr(rec, "p=");
	size_t head = (size_t)(p - rec) + 10;

	return xasprintf("%.*s \t %s", (int)head, rec, rec + head);
}

static void
test_dnscheck_dkim_compare(void)
{
	char *rsa = new_record(DKIM_KEY_RSA), *rsa2 = new_record(DKIM_KEY_RSA);
	char *ed = new_record(DKIM_KEY_ED25519), *spaced, *reordered;
	const char *why;

	test_begin("dnscheck: DKIM published key against the key on disk");
	test_assert(rsa != NULL && rsa2 != NULL && ed != NULL);
	if (rsa == NULL || rsa2 == NULL || ed == NULL)
		goto out;
	spaced = with_spaces(rsa);
	/* tags in another order, without the optional ones */
	reordered = xasprintf("k=rsa; %s", strstr(rsa, "p="));
	test_assert(dnscheck_dkim_compare(rsa, rsa, strlen(rsa), &why) ==
	    DNSCHECK_KEY_SAME);
	test_assert(dnscheck_dkim_compare(rsa, spaced, strlen(spaced), &why) ==
	    DNSCHECK_KEY_SAME);
	test_assert(dnscheck_dkim_compare(rsa, reordered, strlen(reordered),
	    &why) == DNSCHECK_KEY_SAME);
	test_assert(dnscheck_dkim_compare(rsa, strstr(rsa, "p="),
	    strlen(strstr(rsa, "p=")), &why) == DNSCHECK_KEY_SAME);
	/* the stale key after a rotation */
	test_assert(dnscheck_dkim_compare(rsa, rsa2, strlen(rsa2), &why) ==
	    DNSCHECK_KEY_OTHER);
	test_assert(dnscheck_dkim_compare(ed, ed, strlen(ed), &why) ==
	    DNSCHECK_KEY_SAME);
	test_assert(dnscheck_dkim_compare(ed, rsa, strlen(rsa), &why) ==
	    DNSCHECK_KEY_OTHER_TYPE);
	test_assert(dnscheck_dkim_compare(rsa, "v=DKIM1; k=rsa; p=", 18,
	    &why) == DNSCHECK_KEY_REVOKED);
	test_assert(dnscheck_dkim_compare(rsa, "v=DKIM1; k=rsa", 14, &why) ==
	    DNSCHECK_KEY_INVALID && why != NULL);
	test_assert(dnscheck_dkim_compare(rsa, "v=DKIM2; p=AAAA", 15, &why) ==
	    DNSCHECK_KEY_INVALID);
	test_assert(dnscheck_dkim_compare(rsa, "v=DKIM1; p=%%%", 14, &why) ==
	    DNSCHECK_KEY_INVALID);
	test_assert(dnscheck_dkim_compare(rsa, "v=DKIM1; k=rsa; p=A\0B", 21,
	    &why) == DNSCHECK_KEY_INVALID);
	free(spaced);
	free(reordered);
out:
	free(rsa);
	free(rsa2);
	free(ed);
	test_end();
}
TEST(test_dnscheck_dkim_compare)

/* ------------------------------------------------------------------ */
/* The checks on a static zone.                                        */

#define HOST "mx.example.com"
#define V4 "192.0.2.10"
#define V6 "2001:db8::10"
#define REV4 "10.2.0.192.in-addr.arpa"
#define REV6 "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
#define HOST_ROWS \
	{ HOST, "A", V4 }, { HOST, "AAAA", V6 }, \
	{ REV4, "PTR", HOST }, { REV6, "PTR", HOST }
/* The same without IPv6: nothing for the checks to guess from. */
#define HOST4_ROWS { HOST, "A", V4 }, { REV4, "PTR", HOST }

enum which { C_HOST, C_PTR, C_MX, C_SPF, C_DMARC };

struct scenario {
	const char *name;
	enum which check;
	const char *v4, *v6;	/* configured addresses, NULL = not set */
	const char *not_want;	/* a text the report must not have */
	struct fake_rr rows[24];
	const char *want[4];	/* lines (or parts of them) the report has */
};

static const struct scenario scenarios[] = {
	/* 1. A / AAAA */
	{ "A and AAAA as configured", C_HOST, V4, V6, "\nFAIL", { HOST_ROWS },
	  { "OK   A mx.example.com: 192.0.2.10, as TEGAMI_PUBLIC_IPV4 says\n",
	    "OK   AAAA mx.example.com: 2001:db8::10, as TEGAMI_PUBLIC_IPV6 says\n" } },

	{ "A elsewhere", C_HOST, V4, NULL, NULL, { { HOST, "A", "198.51.100.7" } },
	  { "FAIL A mx.example.com: 198.51.100.7, not this server's 192.0.2.10",
	    "     published: mx.example.com. A 198.51.100.7\n",
	    "     should be: mx.example.com. A 192.0.2.10\n",
	    "     fix:       publish mx.example.com. 3600 IN A 192.0.2.10 instead\n" } },
	{ "A missing", C_HOST, V4, NULL, NULL, { { HOST, "TXT", "x" } },
	  { "FAIL A mx.example.com: no A record: other servers",
	    "fix:       publish mx.example.com. 3600 IN A 192.0.2.10\n",
	    "OK   AAAA mx.example.com: none, and TEGAMI_PUBLIC_IPV6 is not set" } },
	{ "A with extra address", C_HOST, V4, NULL, NULL,
	  { { HOST, "A", V4 }, { HOST, "A", "198.51.100.7" } },
	  { "WARN A mx.example.com: 192.0.2.10 and 198.51.100.7: this server",
	    "fix:       delete the A records of mx.example.com other than 192.0.2.10" } },
	{ "public address unknown", C_HOST, NULL, NULL, NULL, { HOST_ROWS },
	  { "WARN A mx.example.com: 192.0.2.10; tegami does not know this server's public IPv4",
	    "fix:       set TEGAMI_PUBLIC_IPV4 to the server's public address",
	    "WARN AAAA mx.example.com: 2001:db8::10; tegami does not know" } },
	{ "host name fails temporarily", C_HOST, V4, NULL, NULL, { { HOST, "TEMPFAIL", "" } },
	  { "FAIL A mx.example.com: could not look it up (DNS temporary failure" } },
	/* 2. PTR */
	{ "PTR and back", C_PTR, V4, V6, "\nFAIL", { HOST_ROWS },
	  { "OK   PTR 192.0.2.10: mx.example.com, which resolves back to 192.0.2.10\n",
	    "OK   PTR 2001:db8::10: mx.example.com, which resolves back to 2001:db8::10\n" } },

	{ "PTR missing", C_PTR, V4, NULL, NULL, { { HOST, "A", V4 } },
	  { "FAIL PTR 192.0.2.10: no PTR record: Gmail, Outlook",
	    "published: nothing at 10.2.0.192.in-addr.arpa\n",
	    "should be: 10.2.0.192.in-addr.arpa. PTR mx.example.com.\n",
	    "fix:       ask your VPS provider to set the reverse DNS (PTR) of 192.0.2.10 to mx.example.com" } },
	{ "PTR names the provider's host", C_PTR, V4, NULL, NULL,
	  { { HOST, "A", V4 }, { REV4, "PTR", "host-10.provider.example" } },
	  { "FAIL PTR 192.0.2.10: host-10.provider.example, not the host name mx.example.com",
	    "published: 10.2.0.192.in-addr.arpa. PTR host-10.provider.example.\n" } },
	{ "PTR not forward-confirmed", C_PTR, V4, NULL, NULL,
	  { { HOST, "A", "198.51.100.7" }, { REV4, "PTR", HOST } },
	  { "FAIL PTR 192.0.2.10: mx.example.com, but mx.example.com does not resolve back to 192.0.2.10",
	    "fix:       publish mx.example.com. 3600 IN A 192.0.2.10\n" } },
	{ "PTR guessed from the A record", C_PTR, NULL, NULL, NULL, { HOST_ROWS },
	  { "OK   PTR 192.0.2.10: mx.example.com, which resolves back to 192.0.2.10 (an address of the host name's A record: TEGAMI_PUBLIC_IPV4 is not set)" } },
	/* 3. MX */
	{ "MX to this host", C_MX, V4, NULL, NULL, { HOST_ROWS, { "example.com", "MX", "10 mx.example.com" } },
	  { "OK   MX example.com: 10 mx.example.com (this server)\n" } },
	{ "MX to another host", C_MX, V4, NULL, NULL,
	  { HOST_ROWS, { "example.com", "MX", "10 mail.old.example" },
	    { "mail.old.example", "A", "198.51.100.20" } },
	  { "FAIL MX example.com: points at mail.old.example (198.51.100.20), another host, not at this server (mx.example.com)",
	    "published: example.com. MX 10 mail.old.example.\n",
	    "should be: example.com. MX 10 mx.example.com.\n",
	    "fix:       publish example.com. 3600 IN MX 10 mx.example.com. instead of the MX naming mail.old.example\n" } },
	{ "MX to another name of this host", C_MX, V4, NULL, NULL,
	  { HOST_ROWS, { "example.com", "MX", "10 smtp.example.com" },
	    { "smtp.example.com", "A", V4 } },
	  { "OK   MX example.com: 10 smtp.example.com (this server's address)\n" } },
	{ "MX with a backup first", C_MX, V4, NULL, NULL,
	  { HOST_ROWS, { "example.com", "MX", "20 mx.example.com" },
	    { "example.com", "MX", "5 backup.example" } },
	  { "WARN MX example.com: 5 backup.example, 20 mx.example.com (this server): mail goes first to backup.example",
	    "fix:       give mx.example.com a lower preference number than backup.example" } },
	{ "MX with a backup after", C_MX, V4, NULL, NULL,
	  { HOST_ROWS, { "example.com", "MX", "10 mx.example.com" },
	    { "example.com", "MX", "20 backup.example" } },
	  { "OK   MX example.com: 10 mx.example.com (this server), 20 backup.example\n" } },
	{ "null MX", C_MX, V4, NULL, NULL, { HOST_ROWS, { "example.com", "MX", "0 " } },
	  { "FAIL MX example.com: a null MX (RFC 7505)",
	    "published: example.com. MX 0 .\n",
	    "fix:       delete the null MX and publish example.com. 3600 IN MX 10 mx.example.com.\n" } },
	{ "no MX, address of this host", C_MX, V4, NULL, NULL,
	  { HOST_ROWS, { "example.com", "A", V4 } },
	  { "WARN MX example.com: no MX record: mail still arrives through the domain's own address 192.0.2.10 (implicit MX)",
	    "fix:       publish example.com. 3600 IN MX 10 mx.example.com.\n" } },
	{ "no MX, no address", C_MX, V4, NULL, NULL,
	  { HOST_ROWS, { "example.com", "TXT", "v=spf1 -all" } },
	  { "FAIL MX example.com: no MX record and no address" } },
	{ "domain does not exist", C_MX, V4, NULL, NULL, { HOST_ROWS },
	  { "FAIL MX example.com: the domain does not exist in DNS (NXDOMAIN)" } },
	/* 4. SPF */
	{ "SPF passes, others fail", C_SPF, V4, V6, NULL,
	  { HOST_ROWS, { "example.com", "MX", "10 mx.example.com" },
	    { "example.com", "TXT", "v=spf1 mx -all" } },
	  { "OK   SPF example.com: pass for 192.0.2.10 (by \"mx\"), 2001:db8::10 (by \"mx\"); other senders get fail\n" } },
	{ "SPF soft", C_SPF, V4, NULL, NULL,
	  { HOST4_ROWS, { "example.com", "TXT", "v=spf1 ip4:192.0.2.0/24 ~all" } },
	  { "OK   SPF example.com: pass for 192.0.2.10 (by \"ip4:192.0.2.0/24\"); other senders get softfail\n" } },
	{ "no SPF", C_SPF, V4, NULL, NULL,
	  { HOST4_ROWS, { "example.com", "TXT", "google-site-verification=abc" } },
	  { "FAIL SPF example.com: no SPF record",
	    "published: no TXT record starting with v=spf1 at example.com\n",
	    "fix:       publish example.com. 3600 IN TXT \"v=spf1 mx ~all\"\n" } },
	{ "two SPF records", C_SPF, V4, NULL, NULL,
	  { HOST4_ROWS, { "example.com", "TXT", "v=spf1 mx ~all" },
	    { "example.com", "TXT", "v=spf1 ip4:192.0.2.10 -all" } },
	  { "FAIL SPF example.com: 2 SPF records: receivers treat more than one as an error (permerror)",
	    "published: example.com. TXT \"v=spf1 mx ~all\"\n",
	    "published: example.com. TXT \"v=spf1 ip4:192.0.2.10 -all\"\n",
	    "should be: exactly one TXT record starting with v=spf1\n" } },
	{ "SPF fails this server", C_SPF, V4, NULL, NULL,
	  { HOST4_ROWS, { "example.com", "TXT", "v=spf1 ip4:198.51.100.0/24 -all" } },
	  { "FAIL SPF example.com: fail for 192.0.2.10 (by \"-all\"): receivers may refuse",
	    "should be: a record that passes 192.0.2.10\n",
	    "fix:       publish example.com. 3600 IN TXT \"v=spf1 ip4:192.0.2.10 ip4:198.51.100.0/24 -all\" instead\n" } },
	{ "SPF neutral for this server, address guessed", C_SPF, NULL, NULL, NULL,
	  { HOST_ROWS, { "example.com", "TXT", "v=spf1 ip4:198.51.100.0/24" } },
	  { "FAIL SPF example.com: neutral for 192.0.2.10 (no term matched)",
	    "fix:       publish example.com. 3600 IN TXT \"v=spf1 a:mx.example.com ip4:198.51.100.0/24\" instead\n" } },
	{ "SPF too many lookups", C_SPF, V4, NULL, NULL,
	  { HOST4_ROWS, { "example.com", "TXT", "v=spf1 include:a.example include:a.example "
	      "include:a.example include:a.example include:a.example include:a.example "
	      "include:a.example include:a.example include:a.example include:a.example "
	      "include:a.example ip4:192.0.2.10 -all" },
	    { "a.example", "TXT", "v=spf1 ip4:198.51.100.1" } },
	  { "FAIL SPF example.com: permerror for 192.0.2.10: more than 10 DNS-querying terms (",
	    "should be: a record that evaluates within 10 DNS lookups",
	    "fix:       remove the include: terms you do not need" } },
	{ "SPF allows everyone", C_SPF, V4, NULL, NULL,
	  { HOST4_ROWS, { "example.com", "TXT", "v=spf1 +all" } },
	  { "FAIL SPF example.com: pass for 192.0.2.10 (by \"+all\"); but any address passes (240.0.0.1 too): forgers pass\n" } },
	{ "SPF without all", C_SPF, V4, NULL, NULL,
	  { HOST4_ROWS, { "example.com", "TXT", "v=spf1 ip4:192.0.2.10" } },
	  { "WARN SPF example.com: pass for 192.0.2.10 (by \"ip4:192.0.2.10\"); but other senders get neutral",
	    "fix:       publish example.com. 3600 IN TXT \"v=spf1 ip4:192.0.2.10 ~all\" instead\n" } },
	{ "SPF ?all", C_SPF, V4, NULL, NULL,
	  { HOST4_ROWS, { "example.com", "TXT", "v=spf1 ip4:192.0.2.10 ?all" } },
	  { "WARN SPF example.com: pass for 192.0.2.10 (by \"ip4:192.0.2.10\"); but other senders get neutral",
	    "fix:       publish example.com. 3600 IN TXT \"v=spf1 ip4:192.0.2.10 ~all\" instead\n" } },
	{ "SPF redirect to a neutral record", C_SPF, V4, NULL, NULL,
	  { HOST4_ROWS, { "example.com", "TXT", "v=spf1 ip4:192.0.2.10 redirect=_spf.example.com" },
	    { "_spf.example.com", "TXT", "v=spf1 ip4:198.51.100.1" } },
	  { "WARN SPF example.com: pass for 192.0.2.10 (by \"ip4:192.0.2.10\"); but other senders get neutral",
	    "fix:       end the record (or the one it redirects to) with ~all\n" } },
	{ "SPF fails one of two addresses", C_SPF, V4, V6, NULL,
	  { HOST_ROWS, { "example.com", "TXT", "v=spf1 ip4:192.0.2.10 -all" } },
	  { "FAIL SPF example.com: fail for 2001:db8::10 (by \"-all\")",
	    "fix:       publish example.com. 3600 IN TXT \"v=spf1 ip6:2001:db8::10 ip4:192.0.2.10 -all\" instead\n" } },
	{ "SPF fails both addresses", C_SPF, V4, V6, NULL,
	  { HOST_ROWS, { "example.com", "TXT", "v=spf1 -all" } },
	  { "FAIL SPF example.com: fail for 192.0.2.10 (by \"-all\")",
	    "fix:       publish example.com. 3600 IN TXT \"v=spf1 ip4:192.0.2.10 ip6:2001:db8::10 -all\" instead\n" } },
	{ "SPF syntax error", C_SPF, V4, NULL, NULL,
	  { HOST4_ROWS, { "example.com", "TXT", "v=spf1 ip4:192.0.2.300 -all" } },
	  { "FAIL SPF example.com: permerror for 192.0.2.10: SPF record of example.com: ",
	    "fix:       correct the record, e.g. publish example.com. 3600 IN TXT \"v=spf1 mx ~all\"\n" } },
	{ "SPF passes us, permerror for others", C_SPF, V4, NULL, NULL,
	  { HOST4_ROWS, { "example.com", "TXT", "v=spf1 ip4:192.0.2.10 include:none.example -all" } },
	  { "WARN SPF example.com: pass for 192.0.2.10 (by \"ip4:192.0.2.10\"); but for other senders it is a permerror (included domain none.example has no SPF record)" } },
	/* 6. DMARC */
	{ "DMARC", C_DMARC, V4, NULL, NULL,
	  { { "_dmarc.example.com", "TXT", "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.com" } },
	  { "OK   DMARC example.com: p=quarantine, adkim=r (relaxed), aspf=r (relaxed); reports to postmaster@example.com\n" } },
	{ "DMARC strict, pct", C_DMARC, V4, NULL, NULL,
	  { { "_dmarc.example.com", "TXT", "v=DMARC1; p=reject; adkim=s; aspf=s; pct=50" } },
	  { "OK   DMARC example.com: p=reject, adkim=s (strict), aspf=s (strict), pct=50 (the policy applies to 50% of failing mail); no reports asked for (no rua=)\n" } },
	{ "no DMARC", C_DMARC, V4, NULL, NULL, { { "_dmarc.example.com", "TXT", "hello" } },
	  { "FAIL DMARC example.com: no DMARC record",
	    "published: no TXT record starting with v=DMARC1 at _dmarc.example.com\n",
	    "fix:       publish _dmarc.example.com. 3600 IN TXT \"v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@example.com\"\n" } },
	{ "two DMARC", C_DMARC, V4, NULL, NULL,
	  { { "_dmarc.example.com", "TXT", "v=DMARC1; p=none" },
	    { "_dmarc.example.com", "TXT", "v=DMARC1; p=reject" } },
	  { "FAIL DMARC example.com: 2 DMARC records at _dmarc.example.com: receivers ignore them all" } },
	{ "invalid DMARC", C_DMARC, V4, NULL, NULL,
	  { { "_dmarc.example.com", "TXT", "v=DMARC1; p=maybe" } },
	  { "FAIL DMARC example.com: the record at _dmarc.example.com is not valid (",
	    "published: _dmarc.example.com. TXT \"v=DMARC1; p=maybe\"\n" } },
	{ "DMARC p=none", C_DMARC, V4, NULL, NULL,
	  { { "_dmarc.example.com", "TXT", "v=DMARC1; p=none; rua=mailto:postmaster@example.com" } },
	  { "WARN DMARC example.com: p=none, adkim=r (relaxed), aspf=r (relaxed); reports to postmaster@example.com: policy none" } },
	{ "DMARC reports to nobody here", C_DMARC, V4, NULL, NULL,
	  { { "_dmarc.example.com", "TXT", "v=DMARC1; p=reject; rua=mailto:nobody@example.com" } },
	  { "OK   DMARC example.com: p=reject",
	    "WARN DMARC example.com: reports go to nobody@example.com, which is no account or alias here",
	    "fix:       tegami alias add nobody@example.com <your address>\n" } },
	{ "DMARC reports elsewhere, not authorized", C_DMARC, V4, NULL, NULL,
	  { { "_dmarc.example.com", "TXT", "v=DMARC1; p=reject; rua=mailto:r@reports.example" } },
	  { "WARN DMARC example.com: reports go to r@reports.example, at another domain that has not published example.com._report._dmarc.reports.example" } },
	{ "DMARC reports elsewhere, authorized", C_DMARC, V4, NULL, "\nWARN",
	  { { "_dmarc.example.com", "TXT", "v=DMARC1; p=reject; rua=mailto:r@reports.example" },
	    { "example.com._report._dmarc.reports.example", "TXT", "v=DMARC1" } },
	  { "OK   DMARC example.com: p=reject, adkim=r (relaxed), aspf=r (relaxed); reports to r@reports.example\n" } },
};

/* postmaster@example.com exists; the rest of example.com does not. */
static bool
fake_address(void *ctx, const char *address, bool *local_r)
{
	const char *at = strrchr(address, '@');

	*local_r = at != NULL && strcmp(at + 1, "example.com") == 0;
	return strcmp(address, "postmaster@example.com") == 0;
}

static char *
run_scenario(const struct scenario *s, const char *domain, struct psl *psl)
{
	struct fake_zone z = { NULL, 0, s->rows, 0, 0 };
	struct dnscheck_report *rep = dnscheck_report_new();
	struct dnscheck_host host;
	struct msgauth_dns dns;
	char *out = NULL;
	size_t outlen = 0;
	FILE *f;

	while (z.extra_count < 24 && s->rows[z.extra_count].name != NULL)
		z.extra_count++;
	fake_dns_init(&dns, &z);
	memset(&host, 0, sizeof(host));
	host.name = HOST;
	if (s->v4 != NULL)
		msgauth_ip_parse(s->v4, &host.conf_v4);
	if (s->v6 != NULL)
		msgauth_ip_parse(s->v6, &host.conf_v6);
	dnscheck_host(rep, &dns, &host);
	switch (s->check) {
	case C_HOST: break;
	case C_PTR: dnscheck_ptr(rep, &dns, &host); break;
	case C_MX: dnscheck_mx(rep, &dns, domain, &host); break;
	case C_SPF: dnscheck_spf(rep, &dns, domain, &host, false); break;
	case C_DMARC:
		dnscheck_dmarc(rep, &dns, psl, domain, fake_address, NULL);
		break;
	}
	f = open_memstream(&out, &outlen);
	dnscheck_print(rep, f, false);
	fclose(f);
	dnscheck_report_free(&rep);
	dnscheck_host_free(&host);
	return out;
}

static void
test_dnscheck_scenarios(void)
{
	struct psl *psl;
	char *err = NULL;

	test_begin("dnscheck: A/AAAA, PTR, MX, SPF, DMARC on a static zone");
	test_assert(psl_parse("com\nexample\n", 12, &psl, &err) == 0);
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		const struct scenario *s = &scenarios[i];
		char *out = run_scenario(s, "example.com", psl);
		bool bad = false;

		for (size_t k = 0; k < 4 && s->want[k] != NULL; k++)
			bad = bad || strstr(out, s->want[k]) == NULL;
		bad = bad || (s->not_want != NULL &&
		    strstr(out, s->not_want) != NULL);
		if (bad)
			printf("     scenario \"%s\":\n%s", s->name, out);
		test_assert(!bad);
		free(out);
	}
	psl_free(&psl);
	test_end();
}
TEST(test_dnscheck_scenarios)

static void
test_dnscheck_dmarc_org_domain(void)
{
	static const struct scenario org = {
		"org", C_DMARC, V4, NULL, NULL,
		{ { "_dmarc.example.com", "TXT", "v=DMARC1; p=reject; sp=quarantine" } },
		{ "OK   DMARC lists.example.com: no record of its own; the "
		  "organizational domain's (_dmarc.example.com) applies: "
		  "sp=quarantine, adkim=r (relaxed), aspf=r (relaxed); no reports "
		  "asked for (no rua=)\n" }
	};
	static const struct scenario none = {
		"none", C_DMARC, V4, NULL, NULL, { { "example.com", "TXT", "x" } },
		{ "published: no TXT record starting with v=DMARC1 at "
		  "_dmarc.lists.example.com nor at _dmarc.example.com\n" }
	};
	struct psl *psl;
	char *err = NULL, *out;

	test_begin("dnscheck: DMARC of a subdomain from the organizational domain");
	/* "*": the default rule alone, what the command falls back on */
	test_assert(psl_parse("*\n", 2, &psl, &err) == 0);
	out = run_scenario(&org, "lists.example.com", psl);
	test_assert(strstr(out, org.want[0]) != NULL);
	free(out);
	out = run_scenario(&none, "lists.example.com", psl);
	test_assert(strstr(out, none.want[0]) != NULL);
	free(out);
	psl_free(&psl);
	test_end();
}
TEST(test_dnscheck_dmarc_org_domain)

static void
test_dnscheck_dkim(void)
{
	char *rsa = new_record(DKIM_KEY_RSA), *old = new_record(DKIM_KEY_RSA);
	char *testing = NULL, *out = NULL;
	struct fake_rr rows[3];
	struct fake_zone z = { NULL, 0, rows, 0, 0 };
	struct dnscheck_dkim_key key = { "mail", "opendkim/keys/example.com/"
	    "mail.private", rsa, "RSA 1024" };
	struct msgauth_dns dns;
	struct dnscheck_report *rep;
	size_t outlen;
	FILE *f;

	test_begin("dnscheck: DKIM records against the keys on disk");
	test_assert(rsa != NULL && old != NULL);
	if (rsa == NULL || old == NULL)
		goto out;
	testing = xasprintf("v=DKIM1; t=y; %s", strstr(rsa, "k=rsa"));
	fake_dns_init(&dns, &z);
	rep = dnscheck_report_new();
	/* as published by `tegami dns` */
	rows[0] = (struct fake_rr){ "mail._domainkey.example.com", "TXT", rsa };
	z.extra_count = 1;
	dnscheck_dkim(rep, &dns, "example.com", &key);
	/* stale: the key from before `config dkim` made a new one */
	rows[0].data = old;
	dnscheck_dkim(rep, &dns, "example.com", &key);
	/* none */
	rows[0] = (struct fake_rr){ "example.com", "TXT", "x" };
	dnscheck_dkim(rep, &dns, "example.com", &key);
	/* testing mode */
	rows[0] = (struct fake_rr){ "mail._domainkey.example.com", "TXT", testing };
	dnscheck_dkim(rep, &dns, "example.com", &key);
	/* the right one among others */
	rows[0].data = rsa;
	rows[1] = (struct fake_rr){ "mail._domainkey.example.com", "TXT", old };
	z.extra_count = 2;
	dnscheck_dkim(rep, &dns, "example.com", &key);
	f = open_memstream(&out, &outlen);
	dnscheck_print(rep, f, false);
	fclose(f);
	dnscheck_report_free(&rep);

	char *quoted = dnscheck_txt_quoted(rsa), *quoted_old =
	    dnscheck_txt_quoted(old), *line;

	test_assert(strstr(out, "OK   DKIM mail._domainkey.example.com: the "
	    "RSA 1024 key of opendkim/keys/example.com/mail.private\n") != NULL);
	test_assert(strstr(out, "FAIL DKIM mail._domainkey.example.com: another "
	    "key than the RSA 1024 key in opendkim/keys/example.com/mail.private")
	    != NULL);
	line = xasprintf("     published: mail._domainkey.example.com. TXT %s\n",
	    quoted_old);
	test_assert(strstr(out, line) != NULL);
	free(line);
	line = xasprintf("     fix:       publish mail._domainkey.example.com. "
	    "3600 IN TXT %s and delete the others at that name\n", quoted);
	test_assert(strstr(out, line) != NULL);
	free(line);
	test_assert(strstr(out, "FAIL DKIM mail._domainkey.example.com: no "
	    "record: receivers cannot check the signatures made with the RSA "
	    "1024 key opendkim/keys/example.com/mail.private\n") != NULL);
	test_assert(strstr(out, "     published: nothing at "
	    "mail._domainkey.example.com\n") != NULL);
	test_assert(strstr(out, "WARN DKIM mail._domainkey.example.com: the RSA "
	    "1024 key of opendkim/keys/example.com/mail.private, in testing mode "
	    "(t=y)") != NULL);
	test_assert(strstr(out, "WARN DKIM mail._domainkey.example.com: the RSA "
	    "1024 key of opendkim/keys/example.com/mail.private, and 1 other "
	    "records at the same name") != NULL);
	test_assert(strstr(out, "summary: 1 OK, 2 WARN, 2 FAIL\n") != NULL);
	free(quoted);
	free(quoted_old);
out:
	free(out);
	free(testing);
	free(rsa);
	free(old);
	test_end();
}
TEST(test_dnscheck_dkim)

static void
test_dnscheck_print(void)
{
	struct dnscheck_report *rep = dnscheck_report_new();
	struct dnscheck_item *it;
	char *out = NULL;
	size_t len;
	unsigned int ok, warn, fail;
	FILE *f;

	test_begin("dnscheck: the report, full and --quiet");
	dnscheck_section(rep, "Empty section");
	dnscheck_section(rep, "Domain example.com");
	dnscheck_add(rep, DNSCHECK_OK, "MX example.com", "fine");
	it = dnscheck_add(rep, DNSCHECK_FAIL, "SPF example.com", "bad %d", 2);
	dnscheck_published(it, "p");
	dnscheck_expected(it, "e");
	dnscheck_fix(it, "f");
	dnscheck_detail(it, "tried:", "t");
	dnscheck_add(rep, DNSCHECK_WARN, "DMARC example.com", "hmm");
	f = open_memstream(&out, &len);
	dnscheck_print(rep, f, false);
	fclose(f);
	test_assert_str(out,
	    "\nDomain example.com\n"
	    "OK   MX example.com: fine\n"
	    "FAIL SPF example.com: bad 2\n"
	    "     published: p\n"
	    "     should be: e\n"
	    "     fix:       f\n"
	    "     tried:     t\n"
	    "WARN DMARC example.com: hmm\n"
	    "\nsummary: 1 OK, 1 WARN, 1 FAIL\n");
	free(out);
	out = NULL;
	f = open_memstream(&out, &len);
	dnscheck_print(rep, f, true);
	fclose(f);
	test_assert_str(out,
	    "FAIL SPF example.com: bad 2\n"
	    "     published: p\n"
	    "     should be: e\n"
	    "     fix:       f\n"
	    "     tried:     t\n"
	    "WARN DMARC example.com: hmm\n");
	free(out);
	dnscheck_counts(rep, &ok, &warn, &fail);
	test_assert(ok == 1 && warn == 1 && fail == 1);
	dnscheck_report_free(&rep);
	/* all OK and quiet: nothing at all */
	rep = dnscheck_report_new();
	dnscheck_add(rep, DNSCHECK_OK, "x", "y");
	out = NULL;
	f = open_memstream(&out, &len);
	dnscheck_print(rep, f, true);
	fclose(f);
	test_assert_str(out, "");
	free(out);
	dnscheck_report_free(&rep);
	test_end();
}
TEST(test_dnscheck_print)

static void
test_dnscheck_cert_names(void)
{
	static const struct fake_rr rows[] = {
		HOST_ROWS,
		{ "example.com", "MX", "10 mx.example.com" },
		{ "example.org", "MX", "10 smtp.example.org" },
		{ "smtp.example.org", "A", V4 },
		{ "example.net", "A", V4 },		/* implicit MX, this server */
		{ "example.info", "MX", "10 elsewhere.example" },
		{ "elsewhere.example", "A", "198.51.100.1" },
	};
	struct fake_zone z = { rows, sizeof(rows) / sizeof(rows[0]), NULL, 0, 0 };
	struct dnscheck_report *rep = dnscheck_report_new();
	struct dnscheck_host host;
	struct msgauth_dns dns;
	const char *domains[] = { "example.com", "example.org", "example.net",
	    "example.info", "example.com" };

	test_begin("dnscheck: the names the certificate must cover");
	fake_dns_init(&dns, &z);
	memset(&host, 0, sizeof(host));
	host.name = HOST;
	msgauth_ip_parse(V4, &host.conf_v4);
	dnscheck_host(rep, &dns, &host);
	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
		dnscheck_mx(rep, &dns, domains[i], &host);
	test_assert(host.cert_names != NULL &&
	    str_array_len(host.cert_names) == 3);
	if (host.cert_names != NULL && str_array_len(host.cert_names) == 3) {
		test_assert_str(host.cert_names[0], HOST);
		test_assert_str(host.cert_names[1], "smtp.example.org");
		test_assert_str(host.cert_names[2], "example.net");
	}
	dnscheck_report_free(&rep);
	dnscheck_host_free(&host);
	test_end();
}
TEST(test_dnscheck_cert_names)
