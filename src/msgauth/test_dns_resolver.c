#include "lib/test.h"
#include "msgauth/dns_resolver.h"

#include <arpa/inet.h>
#include <string.h>

static void
test_msgauth_dns_resolver(void)
{
	struct dns_txt txts[2] = { { (char *)"v=spf1 -all", 11 },
	    { (char *)"a\0b", 3 } };
	struct dns_addr addrs[2];
	struct dns_mx mx[2] = { { 10, (char *)"mx1.example.com" }, { 0, (char *)"" } };
	struct dns_result res;
	struct msgauth_dns_txt t;
	struct msgauth_dns_addrs a;
	struct msgauth_dns_names n;
	char esc[64];

	test_begin("msgauth dns: libunbound results into the msgauth_dns table");
	memset(&res, 0, sizeof(res));
	res.status = DNS_FOUND;
	res.type = DNS_TYPE_TXT;
	res.count = 2;
	res.txt = txts;
	memset(&t, 0, sizeof(t));
	test_assert(msgauth_dns_convert_txt(&res, &t) == MSGAUTH_DNS_FOUND);
	test_assert(t.count == 2 && t.len[1] == 3 && t.txt[1][1] == '\0');
	test_assert_str(t.txt[0], "v=spf1 -all");
	msgauth_dns_txt_free(&t);

	memset(addrs, 0, sizeof(addrs));
	addrs[0].family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", &addrs[0].u.v4);
	addrs[1].family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &addrs[1].u.v6);
	res.type = DNS_TYPE_A;
	res.addrs = addrs;
	memset(&a, 0, sizeof(a));
	test_assert(msgauth_dns_convert_addrs(&res, &a) == MSGAUTH_DNS_FOUND);
	test_assert(a.count == 2 && a.ip[0].family == 4 && a.ip[0].addr[3] == 1 &&
	    a.ip[1].family == 6 && a.ip[1].addr[15] == 1);

	res.type = DNS_TYPE_MX;
	res.mx = mx;
	memset(&n, 0, sizeof(n));
	test_assert(msgauth_dns_convert_names(&res, &n) == MSGAUTH_DNS_FOUND);
	test_assert(n.count == 2 && n.pref[0] == 10);
	test_assert_str(n.name[0], "mx1.example.com");
	test_assert_str(n.name[1], "");

	res.status = DNS_NXDOMAIN;
	memset(&n, 0, sizeof(n));
	test_assert(msgauth_dns_convert_names(&res, &n) == MSGAUTH_DNS_NXDOMAIN);
	res.status = DNS_TEMPFAIL;
	test_assert(msgauth_dns_convert_names(&res, &n) == MSGAUTH_DNS_TEMPFAIL);
	res.status = DNS_NODATA;
	test_assert(msgauth_dns_convert_names(&res, &n) == MSGAUTH_DNS_NODATA);

	test_assert(msgauth_dns_escape_name("sp ace.example.com", esc, sizeof(esc)) == 0);
	test_assert_str(esc, "sp\\032ace.example.com");
	test_assert(msgauth_dns_escape_name("a\\b.example", esc, sizeof(esc)) == 0);
	test_assert_str(esc, "a\\092b.example");
	test_assert(msgauth_dns_escape_name("abcdef", esc, 4) == -1);
	test_end();
}
TEST(test_msgauth_dns_resolver)
