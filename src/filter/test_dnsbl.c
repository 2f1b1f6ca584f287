#include "filter/dnsbl.h"
#include "lib/test.h"
#include "msgauth/test_fake_dns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct fake_rr zone[] = {
	{ "99.2.0.192.zen.spamhaus.org", "A", "127.0.0.4" },
	{ "98.2.0.192.zen.spamhaus.org", "A", "127.255.255.254" },
	{ "98.2.0.192.b.barracudacentral.org", "A", "127.0.0.2" },
	{ "97.2.0.192.list.dnswl.org", "A", "127.0.5.1" },
	{ "97.2.0.192.bl.spameatingmonkey.net", "A", "127.0.0.2" },
	{ "96.2.0.192.zen.spamhaus.org", "A", "127.0.0.20" },
	{ "96.2.0.192.bl.mailspike.net", "A", "127.0.0.14" },
	{ "96.2.0.192.psbl.surriel.com", "A", "127.0.0.2" },
	{ "96.2.0.192.dnsbl.sorbs.net", "A", "127.0.0.10" },
	{ "95.2.0.192.dnsbl.sorbs.net", "TEMPFAIL", "" },
	{ "95.2.0.192.zen.spamhaus.org", "A", "127.0.0.2" },
	{ "1.100.51.198.zen.spamhaus.org", "A", "10.0.0.1" },
	{ "1.100.51.198.psbl.surriel.com", "A", "10.0.0.1" },
	{ "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org",
	    "A", "127.0.0.3" },
	{ "94.2.0.192.zen.spamhaus.org", "A", "127.0.0.11" },
	{ "94.2.0.192.zen.spamhaus.org", "A", "127.255.255.252" },
};

static void
test_dnsbl_parse(void)
{
	struct dnsbl_list l;
	const char *zones[16];
	char *err = NULL, name[256];
	struct msgauth_ip ip;
	static const char *const bad[] = {
		"zen.spamhaus.org=127.0.0.[2..]", "x.org=1.2.3", "x.org*abc",
		"x.org=127.0.0.[5..2]", "x.org=127.0.0.256", "=127.0.0.2",
		"x.org=127.0.0.[2;", "x.org*3junk", "bad/zone.org",
	};

	test_begin("dnsbl: sites, zones and query names");
	test_assert(dnsbl_list_parse(dnsbl_dms_sites, DNSBL_DMS_THRESHOLD,
	    DNSBL_DMS_ALLOW_THRESHOLD, &l, &err) == 0);
	test_assert(l.count == 9);
	test_assert(dnsbl_zones(&l, zones, 16) == 7);
	test_assert_str(zones[0], "zen.spamhaus.org");
	test_assert_str(zones[6], "list.dnswl.org");
	test_assert(l.sites[0].weight == 3 && l.sites[2].weight == 2 &&
	    l.sites[4].weight == 1 && l.sites[8].weight == -4);
	dnsbl_list_free(&l);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		test_assert(dnsbl_list_parse(bad[i], 3, -1, &l, &err) == -1);
		free(err);
		err = NULL;
	}
	test_assert(msgauth_ip_parse("192.0.2.1", &ip) == 0);
	test_assert(dnsbl_query_name("zen.spamhaus.org", &ip, name, sizeof(name)) == 0);
	test_assert_str(name, "1.2.0.192.zen.spamhaus.org");
	test_assert(msgauth_ip_parse("2001:db8::1", &ip) == 0);
	test_assert(dnsbl_query_name("zen.spamhaus.org", &ip, name, sizeof(name)) == 0);
	test_assert_str(name, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "8.b.d.0.1.0.0.2.zen.spamhaus.org");
	test_end();
}
TEST(test_dnsbl_parse)

static void
test_dnsbl_check(void)
{
	static const struct {
		const char *ip;
		int score;
		bool reject, allow;
		unsigned int refused, errors;
	} cases[] = {
		{ "192.0.2.99", 3, true, false, 0, 0 },
		/* the refused answer is no listing: only barracuda counts */
		{ "192.0.2.98", 2, false, false, 1, 0 },
		{ "192.0.2.97", -2, false, true, 0, 0 },
		{ "192.0.2.96", 3, true, false, 0, 0 },
		{ "192.0.2.95", 3, true, false, 0, 1 },
		{ "198.51.100.1", 0, false, false, 0, 0 },
		{ "192.0.2.1", 0, false, false, 0, 0 },
		{ "2001:db8::1", 3, true, false, 0, 0 },
		/* a real code beside a refusal: the zone is not trusted */
		{ "192.0.2.94", 0, false, false, 1, 0 },
	};
	struct fake_zone z = { zone, sizeof(zone) / sizeof(zone[0]), NULL, 0, 0 };
	struct msgauth_dns dns;
	struct dnsbl_list l;
	char *err = NULL;

	test_begin("dnsbl: weights, threshold, allow-list, refused resolver");
	fake_dns_init(&dns, &z);
	test_assert(dnsbl_list_parse(dnsbl_dms_sites, DNSBL_DMS_THRESHOLD,
	    DNSBL_DMS_ALLOW_THRESHOLD, &l, &err) == 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct msgauth_ip ip;
		struct dnsbl_result r;

		test_assert(msgauth_ip_parse(cases[i].ip, &ip) == 0);
		dnsbl_check(&dns, &l, &ip, &r);
		if (r.score != cases[i].score || r.reject != cases[i].reject ||
		    r.allowlisted != cases[i].allow || r.refused != cases[i].refused ||
		    r.errors != cases[i].errors) {
			printf("     %s: score %d reject %d allow %d refused %u "
			    "errors %u\n", cases[i].ip, r.score, r.reject,
			    r.allowlisted, r.refused, r.errors);
			test_assert(false);
		}
	}
	dnsbl_list_free(&l);
	test_end();
}
TEST(test_dnsbl_check)
