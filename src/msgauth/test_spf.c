#include "lib/test.h"
#include "lib/xalloc.h"
#include "msgauth/spf.h"
#include "msgauth/test_fake_dns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Close to the zone of RFC 7208 Appendix A, plus helpers for the limits. */
static const struct fake_rr base_zone[] = {
	{ "example.com", "MX", "10 mail-a.example.com" },
	{ "example.com", "MX", "20 mail-b.example.com" },
	{ "example.com", "A", "192.0.2.10" },
	{ "example.com", "A", "192.0.2.11" },
	{ "example.com", "AAAA", "2001:db8::10" },
	{ "amy.example.com", "A", "192.0.2.65" },
	{ "bob.example.com", "A", "192.0.2.66" },
	{ "mail-a.example.com", "A", "192.0.2.129" },
	{ "mail-b.example.com", "A", "192.0.2.130" },
	{ "mail-a.example.com", "TXT", "v=spf1 a -all" },
	{ "example.org", "MX", "10 mail-c.example.org" },
	{ "mail-c.example.org", "A", "192.0.2.140" },
	{ "10.2.0.192.in-addr.arpa", "PTR", "example.com" },
	{ "65.2.0.192.in-addr.arpa", "PTR", "amy.example.com" },
	{ "66.2.0.192.in-addr.arpa", "PTR", "bob.example.com" },
	{ "129.2.0.192.in-addr.arpa", "PTR", "mail-a.example.com" },
	{ "140.2.0.192.in-addr.arpa", "PTR", "mail-c.example.org" },
	/* a PTR whose name does not lead back: never validated */
	{ "200.2.0.192.in-addr.arpa", "PTR", "amy.example.com" },
	{ "3.2.0.192.joe._spf.example.com", "A", "127.0.0.2" },
	{ "explain.example.com", "TXT",
	    "%{i} is not one of %{d}'s designated mail servers." },
	{ "inc.example.net", "TXT", "v=spf1 ip4:192.0.2.3 -all exp=incexp.example.net" },
	{ "incexp.example.net", "TXT", "from the include" },
	{ "red.example.net", "TXT", "v=spf1 ip4:192.0.2.3 -all exp=redexp.example.net" },
	{ "redexp.example.net", "TXT", "from the redirect" },
	{ "neutral.example.net", "TXT", "v=spf1 ?all" },
	{ "nospf.example.net", "TXT", "hello world" },
	{ "tempfail.example.net", "TEMPFAIL", "" },
	{ "two.example.net", "TXT", "v=spf1 +all" },
	{ "two.example.net", "TXT", "v=spf1 -all" },
	{ "loop.example.net", "TXT", "v=spf1 include:loop.example.net -all" },
	{ "i1.example.net", "TXT", "v=spf1 include:i2.example.net -all" },
	{ "i2.example.net", "TXT", "v=spf1 include:i3.example.net -all" },
	{ "i3.example.net", "TXT", "v=spf1 include:i4.example.net -all" },
	{ "i4.example.net", "TXT", "v=spf1 include:i5.example.net -all" },
	{ "i5.example.net", "TXT", "v=spf1 include:i6.example.net -all" },
	{ "i6.example.net", "TXT", "v=spf1 include:i7.example.net -all" },
	{ "i7.example.net", "TXT", "v=spf1 include:i8.example.net -all" },
	{ "i8.example.net", "TXT", "v=spf1 include:i9.example.net -all" },
	{ "i9.example.net", "TXT", "v=spf1 include:i10.example.net -all" },
	{ "i10.example.net", "TXT", "v=spf1 ip4:192.0.2.3 include:i11.example.net -all" },
	{ "i11.example.net", "TXT", "v=spf1 +all" },
	{ "mx10.example.net", "MX", "1 m1.example.net" },
	{ "mx10.example.net", "MX", "2 m2.example.net" },
	{ "mx10.example.net", "MX", "3 m3.example.net" },
	{ "mx10.example.net", "MX", "4 m4.example.net" },
	{ "mx10.example.net", "MX", "5 m5.example.net" },
	{ "mx10.example.net", "MX", "6 m6.example.net" },
	{ "mx10.example.net", "MX", "7 m7.example.net" },
	{ "mx10.example.net", "MX", "8 m8.example.net" },
	{ "mx10.example.net", "MX", "9 m9.example.net" },
	{ "mx10.example.net", "MX", "10 m10.example.net" },
	{ "m10.example.net", "A", "192.0.2.3" },
	{ "mx11.example.net", "MX", "1 m1.example.net" },
	{ "mx11.example.net", "MX", "2 m2.example.net" },
	{ "mx11.example.net", "MX", "3 m3.example.net" },
	{ "mx11.example.net", "MX", "4 m4.example.net" },
	{ "mx11.example.net", "MX", "5 m5.example.net" },
	{ "mx11.example.net", "MX", "6 m6.example.net" },
	{ "mx11.example.net", "MX", "7 m7.example.net" },
	{ "mx11.example.net", "MX", "8 m8.example.net" },
	{ "mx11.example.net", "MX", "9 m9.example.net" },
	{ "mx11.example.net", "MX", "10 m10.example.net" },
	{ "mx11.example.net", "MX", "11 m11.example.net" },
	{ "nullmx.example.net", "MX", "0 " },
	{ "helo.example.net", "TXT", "v=spf1 ip4:192.0.2.3 -all" },
	{ "foo:bar/baz.example.com", "A", "192.0.2.3" },
	{ "sp ace.example.com", "A", "192.0.2.9" },
};

struct spf_case {
	const char *record;	/* TXT of example.com; NULL = none */
	const char *ip;
	const char *sender;	/* default joe@example.com */
	enum spf_result want;
};

static const struct spf_case cases[] = {
	{ "v=spf1 +all", "192.0.2.3", NULL, SPF_RESULT_PASS },
	{ "v=spf1", "192.0.2.3", NULL, SPF_RESULT_NEUTRAL },
	{ "v=spf1 -all", "192.0.2.3", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 ~all", "192.0.2.3", NULL, SPF_RESULT_SOFTFAIL },
	{ "v=spf1 ?all", "192.0.2.3", NULL, SPF_RESULT_NEUTRAL },
	{ "v=spf1  +all  ", "192.0.2.3", NULL, SPF_RESULT_PASS },
	{ "V=SPF1 IP4:192.0.2.3 -ALL", "192.0.2.3", NULL, SPF_RESULT_PASS },
	{ "v=spf1 foo=bar +all", "192.0.2.3", NULL, SPF_RESULT_PASS },
	{ "v=spf1 ip4:10.0.0.1", "192.0.2.3", NULL, SPF_RESULT_NEUTRAL },
	/* a */
	{ "v=spf1 a -all", "192.0.2.10", NULL, SPF_RESULT_PASS },
	{ "v=spf1 a -all", "192.0.2.65", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 a/24 -all", "192.0.2.65", NULL, SPF_RESULT_PASS },
	{ "v=spf1 a:amy.example.com -all", "192.0.2.65", NULL, SPF_RESULT_PASS },
	{ "v=spf1 a:amy.example.com/30 -all", "192.0.2.66", NULL, SPF_RESULT_PASS },
	{ "v=spf1 a:example.org -all", "192.0.2.140", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 a -all", "2001:db8::10", NULL, SPF_RESULT_PASS },
	{ "v=spf1 a -all", "2001:db8::11", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 a//64 -all", "2001:db8::1:2", NULL, SPF_RESULT_PASS },
	{ "v=spf1 a/32//64 -all", "2001:db8::1:2", NULL, SPF_RESULT_PASS },
	{ "v=spf1 a/24 -all", "2001:db8::1:2", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 a:tempfail.example.net -all", "192.0.2.3", NULL, SPF_RESULT_TEMPERROR },
	/* mx */
	{ "v=spf1 mx -all", "192.0.2.129", NULL, SPF_RESULT_PASS },
	{ "v=spf1 mx -all", "192.0.2.130", NULL, SPF_RESULT_PASS },
	{ "v=spf1 mx -all", "192.0.2.10", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 mx/30 -all", "192.0.2.131", NULL, SPF_RESULT_PASS },
	{ "v=spf1 mx:example.org -all", "192.0.2.140", NULL, SPF_RESULT_PASS },
	{ "v=spf1 mx:mx10.example.net -all", "192.0.2.3", NULL, SPF_RESULT_PASS },
	{ "v=spf1 mx:mx11.example.net -all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 mx:nullmx.example.net -all", "192.0.2.3", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 mx:tempfail.example.net -all", "192.0.2.3", NULL, SPF_RESULT_TEMPERROR },
	/* ptr */
	{ "v=spf1 ptr -all", "192.0.2.65", NULL, SPF_RESULT_PASS },
	{ "v=spf1 ptr -all", "192.0.2.10", NULL, SPF_RESULT_PASS },
	{ "v=spf1 ptr -all", "192.0.2.140", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 ptr -all", "192.0.2.200", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 ptr:example.org -all", "192.0.2.140", NULL, SPF_RESULT_PASS },
	{ "v=spf1 ptr:amy.example.com -all", "192.0.2.66", NULL, SPF_RESULT_FAIL },
	/* ip4 / ip6 */
	{ "v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.129", NULL, SPF_RESULT_PASS },
	{ "v=spf1 ip4:192.0.2.128/28 -all", "192.0.2.10", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 ip4:0.0.0.0/0 -all", "198.51.100.7", NULL, SPF_RESULT_PASS },
	{ "v=spf1 ip4:0.0.0.0/0 -all", "2001:db8::1", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 ip6:2001:db8::/32 -all", "2001:db8::cb01", NULL, SPF_RESULT_PASS },
	{ "v=spf1 ip6:2001:db8::/32 -all", "2001:db9::1", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 ip6:2001:db8::/32 -all", "192.0.2.3", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 ip4:192.0.2.3 -all", "::ffff:192.0.2.3", NULL, SPF_RESULT_PASS },
	/* exists, with macros */
	{ "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", "192.0.2.3", NULL, SPF_RESULT_PASS },
	{ "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", "192.0.2.4", NULL, SPF_RESULT_FAIL },
	/* include */
	{ "v=spf1 include:inc.example.net -all", "192.0.2.3", NULL, SPF_RESULT_PASS },
	{ "v=spf1 include:inc.example.net -all", "192.0.2.4", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 -include:inc.example.net +all", "192.0.2.3", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 include:neutral.example.net ~all", "192.0.2.3", NULL, SPF_RESULT_SOFTFAIL },
	{ "v=spf1 include:nospf.example.net -all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 include:nowhere.example.net -all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 include:tempfail.example.net -all", "192.0.2.3", NULL, SPF_RESULT_TEMPERROR },
	{ "v=spf1 include:two.example.net -all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 ip4:192.0.2.3 include:nospf.example.net -all", "192.0.2.3", NULL, SPF_RESULT_PASS },
	/* redirect */
	{ "v=spf1 redirect=red.example.net", "192.0.2.3", NULL, SPF_RESULT_PASS },
	{ "v=spf1 redirect=red.example.net", "192.0.2.4", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 redirect=red.example.net ip4:192.0.2.4", "192.0.2.4", NULL, SPF_RESULT_PASS },
	{ "v=spf1 ?all redirect=red.example.net", "192.0.2.3", NULL, SPF_RESULT_NEUTRAL },
	{ "v=spf1 redirect=nospf.example.net", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 redirect=tempfail.example.net", "192.0.2.3", NULL, SPF_RESULT_TEMPERROR },
	{ "v=spf1 redirect=%{d}.example.com", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	/* limits */
	{ "v=spf1 a a a a a a a a a a -all", "192.0.2.3", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 a a a a a a a a a a a -all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a a a a a a a a a a ip4:192.0.2.3 -all", "192.0.2.3", NULL, SPF_RESULT_PASS },
	{ "v=spf1 include:i1.example.net -all", "192.0.2.3", NULL, SPF_RESULT_PASS },
	{ "v=spf1 include:i1.example.net -all", "192.0.2.4", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 include:i2.example.net -all", "192.0.2.4", NULL, SPF_RESULT_PASS },
	{ "v=spf1 include:loop.example.net -all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a:n1.example.net a:n2.example.net -all", "192.0.2.3", NULL, SPF_RESULT_FAIL },
	{ "v=spf1 a:n1.example.net a:n2.example.net a:n3.example.net -all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 mx:n1.example.net exists:n2.example.net ptr:n3.example.net -all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	/* syntax: permerror wherever the error is */
	{ "v=spf1 +all foo", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 +all\t", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 ip4:192.0.2.300", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 ip4:01.2.3.4 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 ip4:1.2.3.4/33 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 ip4:1.2.3.4/024 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 ip4:2001:db8::1 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 ip6:192.0.2.3 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 ip6:2001:db8::/129 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a/33 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a//129 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a: +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a:foo.1 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a:1.2.3.4 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a:museum +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a:%{x}.com +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a:%{d0}.com +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a:%{c}.com +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a:foo%.com +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 include +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 exists +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 all:foo.com", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 ptr/24 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 include:foo.com/24 +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 redirect=a.com redirect=b.com", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 exp=a.com exp=b.com +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 redirect= +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 foo=%{z} +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 =foo +all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 ++all", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a:%{d}.%{l}", "192.0.2.3", NULL, SPF_RESULT_NEUTRAL },
	{ "v=spf1 a:foo.example.com\\0", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 +all \\0", "192.0.2.3", NULL, SPF_RESULT_PERMERROR },
	/* '/' inside a domain-spec; only a trailing /N or //N is a cidr */
	{ "v=spf1 a:foo:bar/baz.example.com -all", "192.0.2.3", NULL, SPF_RESULT_PASS },
	{ "v=spf1 a:foo:bar/baz.example.com/24 -all", "192.0.2.77", NULL, SPF_RESULT_PASS },
	{ "v=spf1 a:foo:bar/baz.example.com/240 -all", "192.0.2.77", NULL, SPF_RESULT_PERMERROR },
	{ "v=spf1 a:example.com/24//64 -all", "192.0.2.77", NULL, SPF_RESULT_PASS },
	{ "v=spf1 a:example.com/1234 -all", "192.0.2.77", NULL, SPF_RESULT_PERMERROR },
	/* "%_" can put a space in a name */
	{ "v=spf1 a:sp%_ace.example.com -all", "192.0.2.9", NULL, SPF_RESULT_PASS },
	/* not SPF records at all */
	{ "v=spf10 +all", "192.0.2.3", NULL, SPF_RESULT_NONE },
	{ "spf1 +all", "192.0.2.3", NULL, SPF_RESULT_NONE },
	{ NULL, "192.0.2.3", NULL, SPF_RESULT_NONE },
	/* sender forms */
	{ "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", "192.0.2.3", "joe@example.com", SPF_RESULT_PASS },
	{ "v=spf1 exists:%{ir}.%{l}._spf.%{d} -all", "192.0.2.3", "example.com", SPF_RESULT_FAIL },
	{ "v=spf1 exists:%{ir}.%{l}._spf.%{d} -all", "192.0.2.3", "@example.com", SPF_RESULT_FAIL },
};

static void
run_case(const struct spf_case *c, struct spf_outcome *out)
{
	struct fake_rr extra[1] = { { "example.com", "TXT", c->record } };
	struct fake_zone zone = { base_zone, sizeof(base_zone) / sizeof(base_zone[0]),
	    extra, c->record != NULL ? 1 : 0, 0 };
	struct msgauth_dns dns;
	struct spf_request req = { .helo = "mta.example.org",
	    .receiver = "mx.tegami.test", .now = 1700000000 };

	fake_dns_init(&dns, &zone);
	test_assert(msgauth_ip_parse(c->ip, &req.ip) == 0);
	req.sender = c->sender != NULL ? c->sender : "joe+x@example.com";
	spf_check_host(&dns, &req, "example.com", req.sender, out);
}

static void
test_spf_table(void)
{
	test_begin("spf: check_host over the mechanism / limit / syntax table");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spf_outcome out;

		run_case(&cases[i], &out);
		if (out.result != cases[i].want) {
			printf("     case %zu \"%s\" ip %s: got %s want %s (%s)\n", i,
			    cases[i].record ? cases[i].record : "(none)", cases[i].ip,
			    spf_result_name(out.result),
			    spf_result_name(cases[i].want), out.problem);
			test_assert(out.result == cases[i].want);
		}
		test_assert(out.dns_lookups <= SPF_DNS_LOOKUP_LIMIT + 1);
		spf_outcome_free(&out);
	}
	test_end();
}
TEST(test_spf_table)

struct macro_case {
	const char *macro;
	const char *want;	/* NULL = syntax error */
	bool exp;
};

static void
test_spf_macros_rfc(void)
{
	/* RFC 7208 §7.4, sender strong-bad@email.example.com, IP 192.0.2.3 */
	static const struct macro_case mc[] = {
		{ "%{s}", "strong-bad@email.example.com", false },
		{ "%{o}", "email.example.com", false },
		{ "%{d}", "email.example.com", false },
		{ "%{d4}", "email.example.com", false },
		{ "%{d3}", "email.example.com", false },
		{ "%{d2}", "example.com", false },
		{ "%{d1}", "com", false },
		{ "%{dr}", "com.example.email", false },
		{ "%{d2r}", "example.email", false },
		{ "%{l}", "strong-bad", false },
		{ "%{l-}", "strong.bad", false },
		{ "%{lr}", "strong-bad", false },
		{ "%{lr-}", "bad.strong", false },
		{ "%{l1r-}", "strong", false },
		{ "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com", false },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com", false },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		    "bad.strong.lp.3.2.0.192.in-addr._spf.example.com", false },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
		    "3.2.0.192.in-addr.strong.lp._spf.example.com", false },
		{ "%{d2}.trusted-domains.example.net",
		    "example.com.trusted-domains.example.net", false },
		/* ours: escapes, upper case, exp letters, errors */
		{ "%{S}", "strong-bad%40email.example.com", false },
		{ "%%%_%-", "% %20", false },
		{ "%{i}", "192.0.2.3", false },
		{ "%{h}", "mta.example.org", false },
		{ "%{p}", "unknown", false },
		{ "%{D1R}", "email", false },
		{ "%{d100}", "email.example.com", false },
		{ "%{c} at %{t} by %{r}", "192.0.2.3 at 1700000000 by mx.tegami.test", true },
		{ "%{c}", NULL, false },
		{ "%{r}", NULL, false },
		{ "%{d0}", NULL, false },
		{ "%{q}", NULL, false },
		{ "%{d", NULL, false },
		{ "%", NULL, false },
		{ "%x", NULL, false },
		{ "%{d2r!}", NULL, false },
		{ "a b", NULL, false },
		{ "a b", "a b", true },
		{ "caf\xc3\xa9", NULL, false },
	};
	struct spf_request req = { .helo = "mta.example.org",
	    .receiver = "mx.tegami.test", .now = 1700000000 };

	test_begin("spf: macro expansion reproduces RFC 7208 7.4");
	test_assert(msgauth_ip_parse("192.0.2.3", &req.ip) == 0);
	for (size_t i = 0; i < sizeof(mc) / sizeof(mc[0]); i++) {
		char *out = NULL;
		const char *err = NULL;
		int ret = spf_macro_expand(mc[i].macro, &req, "email.example.com",
		    "strong-bad@email.example.com", mc[i].exp, false, NULL, &out,
		    &err);

		if (mc[i].want == NULL) {
			if (ret != -1)
				printf("     macro \"%s\" expanded to \"%s\"\n",
				    mc[i].macro, out);
			test_assert(ret == -1);
		} else {
			test_assert(ret == 0);
			if (ret == 0)
				test_assert_str(out, mc[i].want);
			else
				printf("     macro \"%s\": %s\n", mc[i].macro, err);
		}
		free(out);
	}
	test_end();
}
TEST(test_spf_macros_rfc)

static void
test_spf_macros_ip6_ptr(void)
{
	struct fake_zone zone = { base_zone, sizeof(base_zone) / sizeof(base_zone[0]),
	    NULL, 0, 0 };
	struct msgauth_dns dns;
	struct spf_request req = { .helo = "h.example.org" };
	char *out, long_macro[600];
	const char *err;

	test_begin("spf: %{ir} for IPv6, %{p}, long domains cut on the left");
	fake_dns_init(&dns, &zone);
	test_assert(msgauth_ip_parse("2001:db8::cb01", &req.ip) == 0);
	test_assert(spf_macro_expand("%{ir}.%{v}._spf.%{d2}", &req,
	    "email.example.com", "a@email.example.com", false, true, &dns, &out,
	    &err) == 0);
	test_assert_str(out, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "8.b.d.0.1.0.0.2.ip6._spf.example.com");
	free(out);

	test_assert(msgauth_ip_parse("192.0.2.65", &req.ip) == 0);
	test_assert(spf_macro_expand("%{p}", &req, "example.com", "a@example.com",
	    false, true, &dns, &out, &err) == 0);
	test_assert_str(out, "amy.example.com");
	free(out);
	test_assert(msgauth_ip_parse("192.0.2.200", &req.ip) == 0);
	test_assert(spf_macro_expand("%{p}", &req, "example.com", "a@example.com",
	    false, true, &dns, &out, &err) == 0);
	test_assert_str(out, "unknown");
	free(out);

	/* 100 labels "%{d1}." of 4 bytes each expand past 253 */
	long_macro[0] = '\0';
	for (int i = 0; i < 100; i++)
		strcat(long_macro, "abc.");
	strcat(long_macro, "%{d}");
	test_assert(spf_macro_expand(long_macro, &req, "example.com",
	    "a@example.com", false, true, NULL, &out, &err) == 0);
	test_assert(strlen(out) <= 253);
	test_assert(str_has_suffix(out, "abc.example.com"));
	test_assert(strncmp(out, "abc.", 4) == 0);
	free(out);
	test_end();
}
TEST(test_spf_macros_ip6_ptr)

static void
test_spf_explanation(void)
{
	struct spf_case c = { "v=spf1 mx -all exp=explain.example.com",
	    "192.0.2.3", NULL, SPF_RESULT_FAIL };
	struct spf_outcome out;

	test_begin("spf: exp= explanation, not from includes, from redirects");
	run_case(&c, &out);
	test_assert(out.result == SPF_RESULT_FAIL);
	test_assert_str(out.explanation,
	    "192.0.2.3 is not one of example.com's designated mail servers.");
	test_assert_str(out.mechanism, "-all");
	spf_outcome_free(&out);

	c.record = "v=spf1 include:inc.example.net -all";
	c.ip = "192.0.2.4";
	run_case(&c, &out);
	test_assert(out.result == SPF_RESULT_FAIL);
	test_assert(out.explanation == NULL);
	spf_outcome_free(&out);

	c.record = "v=spf1 redirect=red.example.net exp=explain.example.com";
	run_case(&c, &out);
	test_assert(out.result == SPF_RESULT_FAIL);
	test_assert_str(out.explanation, "from the redirect");
	spf_outcome_free(&out);

	/* pass: no explanation even with exp= */
	c.record = "v=spf1 +all exp=explain.example.com";
	run_case(&c, &out);
	test_assert(out.result == SPF_RESULT_PASS);
	test_assert(out.explanation == NULL);
	spf_outcome_free(&out);
	test_end();
}
TEST(test_spf_explanation)

static void
test_spf_helo_mailfrom(void)
{
	struct fake_zone zone = { base_zone, sizeof(base_zone) / sizeof(base_zone[0]),
	    NULL, 0, 0 };
	struct msgauth_dns dns;
	struct spf_request req = { .receiver = "mx.tegami.test" };
	struct spf_outcome out;
	char *hdr;

	test_begin("spf: HELO check, null sender, Received-SPF");
	fake_dns_init(&dns, &zone);
	test_assert(msgauth_ip_parse("192.0.2.129", &req.ip) == 0);
	req.helo = "mail-a.example.com";
	req.sender = "";
	test_assert(spf_check_helo(&dns, &req, &out) == SPF_RESULT_PASS);
	test_assert(out.identity == SPF_IDENTITY_HELO);
	test_assert_str(out.domain, "mail-a.example.com");
	spf_outcome_free(&out);

	/* null sender: the HELO identity */
	test_assert(spf_check_mailfrom(&dns, &req, &out) == SPF_RESULT_PASS);
	test_assert(out.identity == SPF_IDENTITY_HELO);
	hdr = spf_received_spf(&req, &out);
	test_assert_str(hdr, "Received-SPF: pass (mx.tegami.test: domain of "
	    "postmaster@mail-a.example.com designates 192.0.2.129 as permitted "
	    "sender) client-ip=192.0.2.129; envelope-from=\"\"; "
	    "helo=mail-a.example.com; receiver=mx.tegami.test; identity=helo; "
	    "mechanism=a");
	free(hdr);
	spf_outcome_free(&out);

	req.helo = "[192.0.2.129]";
	test_assert(spf_check_helo(&dns, &req, &out) == SPF_RESULT_NONE);
	spf_outcome_free(&out);
	req.helo = "localhost";
	test_assert(spf_check_helo(&dns, &req, &out) == SPF_RESULT_NONE);
	spf_outcome_free(&out);

	req.helo = "helo.example.net";
	req.sender = "bob@mail-a.example.com";
	test_assert(msgauth_ip_parse("192.0.2.3", &req.ip) == 0);
	test_assert(spf_check_mailfrom(&dns, &req, &out) == SPF_RESULT_FAIL);
	test_assert(out.identity == SPF_IDENTITY_MAILFROM);
	hdr = spf_received_spf(&req, &out);
	test_assert_str(hdr, "Received-SPF: fail (mx.tegami.test: domain of "
	    "bob@mail-a.example.com does not designate 192.0.2.3 as permitted "
	    "sender) client-ip=192.0.2.3; envelope-from=\"bob@mail-a.example.com\"; "
	    "helo=helo.example.net; receiver=mx.tegami.test; identity=mailfrom; "
	    "mechanism=-all");
	free(hdr);
	spf_outcome_free(&out);

	/* hostile values are quoted and cleaned */
	req.sender = "a\"b(c)\r\n@x";
	req.helo = "evil\r\nX-Injected: 1";
	memset(&out, 0, sizeof(out));
	out.result = SPF_RESULT_PERMERROR;
	str_copy(out.problem, sizeof(out.problem), "bad \"record\"");
	hdr = spf_received_spf(&req, &out);
	test_assert(strchr(hdr, '\r') == NULL && strchr(hdr, '\n') == NULL);
	test_assert(strstr(hdr, "envelope-from=\"a\\\"b(c)??@x\"") != NULL);
	test_assert(strstr(hdr, "problem=\"bad \\\"record\\\"\"") != NULL);
	test_assert(strstr(hdr, "a\"b\\(c\\)??@x") != NULL);
	free(hdr);
	test_end();
}
TEST(test_spf_helo_mailfrom)

static void
test_spf_parse_prefixes(void)
{
	static const char rec[] = "v=spf1 -ip4:192.0.2.0/24 ~a:%{d2}.example.com/24//64 "
	    "?mx:mx.%{o}//48 ptr:%{ir}.x.org include:_spf.%{d} "
	    "exists:%{l1r-}.%{i}.e.org ip6:2001:db8::/32 foo=%{h} "
	    "exp=exp.%{d} redirect=%{d2}";
	struct spf_record *r;
	const char *err;

	test_begin("spf: every prefix of a record parses or fails cleanly");
	test_assert(spf_record_parse(rec, strlen(rec), &r, &err) == 0);
	test_assert(r != NULL && r->mech_count == 7);
	if (r != NULL) {
		test_assert(r->mechs[0].qualifier == '-' && r->mechs[0].cidr4 == 24);
		test_assert(r->mechs[1].qualifier == '~' && r->mechs[1].cidr4 == 24 &&
		    r->mechs[1].cidr6 == 64);
		test_assert_str(r->mechs[1].domain_spec, "%{d2}.example.com");
		test_assert(r->mechs[2].cidr4 == 32 && r->mechs[2].cidr6 == 48);
		test_assert_str(r->redirect, "%{d2}");
		test_assert_str(r->exp, "exp.%{d}");
		test_assert(!r->has_all);
	}
	spf_record_free(&r);
	for (size_t n = 0; n <= strlen(rec); n++) {
		if (spf_record_parse(rec, n, &r, &err) == 0)
			spf_record_free(&r);
		test_assert(r == NULL);
	}
	test_end();
}
TEST(test_spf_parse_prefixes)
